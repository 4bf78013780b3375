"""Fixtures for the device tests: the private virtual headset (see tests/devices/headset.py)."""
from __future__ import annotations

import pytest

from devices import audio
from tests.devices.headset import PrivateHeadset


@pytest.fixture(scope="module")
def private_headset(tmp_path_factory):
    headset = PrivateHeadset(tmp_path_factory.mktemp("pa"))
    headset.script("start")
    yield headset
    headset.script("stop")


@pytest.fixture
def on_headset(private_headset, monkeypatch):
    """This process's PortAudio talks to the private headset for the test."""
    private_headset.script("start")  # idempotent: restarts it if a test stopped it, unmutes the mic
    for key, value in private_headset.env.items():
        monkeypatch.setenv(key, value)
    audio.rescan()
    yield private_headset
    private_headset.stop_players()
    monkeypatch.undo()
    audio.rescan()
