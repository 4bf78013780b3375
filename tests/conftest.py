"""Fixtures shared by every test package: the real virtual devices and a data dir.

Audio goes to the PulseAudio virtual headset of ``scripts/virtual-audio``; serial goes
through socat PTY pairs; nothing here mocks a device.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from station.rehearsal.singer import write_wav  # noqa: F401 - the tests' WAV writer too
from tests.helpers import station_command

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
AUDIO_RUNTIME = os.environ.setdefault("QM_AUDIO_RUNTIME", "/tmp/qm-virtual-audio")

# PortAudio reads these when it initialises (at the first `import sounddevice`), so they
# are set before any test module imports it.
os.environ.setdefault("XDG_RUNTIME_DIR", AUDIO_RUNTIME)
os.environ.setdefault("PULSE_SERVER", f"unix:{AUDIO_RUNTIME}/pulse/native")
os.environ.setdefault("PULSE_RUNTIME_PATH", f"{AUDIO_RUNTIME}/pulse")
os.environ.setdefault("PULSE_STATE_PATH", f"{AUDIO_RUNTIME}/state")
# numba compiles librosa's kernels once; keep its cache out of the source tree.
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))


# Parts only Linux has: the PulseAudio scripts, socat PTYs, Playwright's driver, /proc. Under
# the Windows Python (scripts/test-windows) a test needing one is skipped before it starts, so
# no Linux script is ever handed to Wine (which would run it natively, with Windows paths).
LINUX_ONLY_MARKS = ("linux_only", "audio", "serial", "browser")
LINUX_ONLY_FIXTURES = ("headset", "sing_into_mic", "pty_pair", "postgres_server")


def pytest_collection_modifyitems(config, items):
    if sys.platform != "win32":
        return
    skip = pytest.mark.skip(reason="needs a Linux-only part (PulseAudio scripts, socat, Chromium, /proc)")
    for item in items:
        if any(item.get_closest_marker(m) for m in LINUX_ONLY_MARKS) or \
                set(LINUX_ONLY_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


def virtual_audio(command: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / "virtual-audio"), command],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="session")
def headset():
    """The virtual headset, started if it is not running."""
    if shutil.which("pulseaudio") is None:
        pytest.fail("pulseaudio is not installed: scripts/test installs it")
    result = virtual_audio("start")
    assert result.returncode == 0, result.stderr
    return {"earphones": "qm_ear", "mic_feed": "qm_mic", "mic_source": "qm_mic.monitor"}


@pytest.fixture
def sing_into_mic(headset, tmp_path):
    """Play samples into the virtual microphone, as a student singing: returns the paplay process."""
    procs: list[subprocess.Popen] = []

    def play(samples, rate: int = 48000) -> subprocess.Popen:
        wav = write_wav(tmp_path / f"mic-{len(procs)}.wav", samples, rate)
        proc = subprocess.Popen(["paplay", f"--device={headset['mic_feed']}", str(wav)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        return proc

    yield play
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


class PtyPair:
    """A socat PTY pair: the station opens ``station_end``, a simulator writes ``device_end``."""

    def __init__(self, directory: Path, name: str = "tty"):
        self.station_end = str(directory / f"{name}A")
        self.device_end = str(directory / f"{name}B")
        self.proc: subprocess.Popen | None = None

    def plug(self) -> "PtyPair":
        if shutil.which("socat") is None:
            pytest.fail("socat is not installed: scripts/test installs it")
        for end in (self.station_end, self.device_end):
            Path(end).unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["socat", f"pty,raw,echo=0,link={self.station_end}",
             f"pty,raw,echo=0,link={self.device_end}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not (os.path.exists(self.station_end) and os.path.exists(self.device_end)):
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not create the PTY pair")
            time.sleep(0.02)
        return self

    def unplug(self) -> None:
        """Tear the pair down, as a USB adapter pulled out."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def pty_pair(tmp_path):
    """Factory of plugged PTY pairs, all unplugged at the end of the test."""
    pairs: list[PtyPair] = []

    def make(name: str = "tty") -> PtyPair:
        pair = PtyPair(tmp_path, f"{name}{len(pairs)}").plug()
        pairs.append(pair)
        return pair

    yield make
    for pair in pairs:
        pair.unplug()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh station data dir, used by every `station` command the test runs."""
    d = tmp_path / "station-data"
    monkeypatch.setenv("STATION_DATA_DIR", str(d))
    return d


@pytest.fixture
def station(data_dir):
    """Run the `station` command as a user would; returns the CompletedProcess."""
    command = station_command()

    def run(*args: str, timeout: float = 120, input: str | None = None, check: bool = False):
        result = subprocess.run([*command, *args], capture_output=True, text=True,
                                timeout=timeout, input=input, env=os.environ.copy())
        if check and result.returncode != 0:
            raise AssertionError(f"station {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    return run


def running(service):
    """A tests/services.py service, started for a fixture; a failed start says what to install."""
    try:
        with service:
            yield service
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL cluster for the whole run (tests/services.py), or the server
    QM_TEST_POSTGRES_URL names. Tests keep apart by each using its own database."""
    from tests.services import PostgresServer

    yield from running(PostgresServer())


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database of this test's own: its postgresql:// URL."""
    return postgres_server.new_database()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server in its own process for the whole run (tests/services.py)."""
    from tests.services import S3Server

    yield from running(S3Server(log=tmp_path_factory.mktemp("s3") / "moto.log"))


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, empty bucket of this test's own on ``s3_server``: its name."""
    return s3_server.new_bucket()
