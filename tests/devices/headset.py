"""A virtual headset on its own PulseAudio server, for tests that stop, mute or loop it.

Same ``scripts/virtual-audio`` as the session's shared headset, with a private
``QM_AUDIO_RUNTIME``: stopping it or loading a loopback cannot touch the other tests, and
other tests playing into the shared microphone cannot land in these recordings.
The fixtures ``private_headset`` and ``on_headset`` are in tests/devices/conftest.py.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np

from station.rehearsal.singer import write_wav

ROOT = Path(__file__).resolve().parents[2]
RATE = 48000


class PrivateHeadset:
    """A virtual headset on its own PulseAudio server, switched to with the ``on_headset`` fixture."""

    def __init__(self, runtime: Path):
        self.runtime = runtime
        self.env = {"QM_AUDIO_RUNTIME": str(runtime), "XDG_RUNTIME_DIR": str(runtime),
                    "PULSE_SERVER": f"unix:{runtime}/pulse/native",
                    "PULSE_RUNTIME_PATH": f"{runtime}/pulse", "PULSE_STATE_PATH": f"{runtime}/state"}
        self.players: list[subprocess.Popen] = []

    def script(self, command: str) -> None:
        result = subprocess.run([str(ROOT / "scripts" / "virtual-audio"), command],
                                env={**os.environ, **self.env}, capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stderr

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", "--server", self.env["PULSE_SERVER"], *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip()

    def play_into(self, sink: str, samples: np.ndarray, path: Path) -> subprocess.Popen:
        """Play into a sink (``qm_mic`` is the microphone); stopped at the test's end."""
        write_wav(path, samples)
        proc = subprocess.Popen(["paplay", "--server", self.env["PULSE_SERVER"],
                                 f"--device={sink}", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.players.append(proc)
        self._wait_until_playing(proc)
        return proc

    def _wait_until_playing(self, proc: subprocess.Popen, within_s: float = 30.0) -> None:
        """Return once the server plays ``proc``'s stream: on a loaded machine paplay may take
        a second or more to start, and a recording begun before would miss the voice."""
        deadline = time.monotonic() + within_s
        needle = f'application.process.id = "{proc.pid}"'
        while needle not in self.pactl("list", "sink-inputs"):
            if proc.poll() is not None:   # a short clip may be over already
                assert proc.returncode == 0, f"paplay failed (exit {proc.returncode})"
                return
            assert time.monotonic() < deadline, "paplay's stream never reached the server"
            time.sleep(0.05)

    def into_mic(self, samples: np.ndarray, path: Path) -> subprocess.Popen:
        """Play into the microphone, as a student (or the room) would."""
        return self.play_into("qm_mic", samples, path)

    def stop_players(self) -> None:
        for proc in self.players:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.players.clear()
