"""The private virtual headset of the device tests, for the audio checks here too."""
from tests.devices.conftest import on_headset, private_headset  # noqa: F401 - pytest fixtures
