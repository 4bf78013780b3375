"""A sung demo for the singing room: a short melody on a vowel-like voice, into the virtual mic.

The voice is a sum of harmonics with a formant-shaped spectrum, a 5.5 Hz vibrato and soft
note onsets: enough like a child singing "a" that the take verifier hears singing (voiced,
pitched, in tune with itself), and made here so no recording of a real child is needed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import wave
from pathlib import Path

KINDS = ("melody", "silence")
RATE = 48000
# Two bars of an original tune (MIDI notes, beats) at about 110 bpm, in a child's range: just
# over the verifier's 5 s shortest take when played alone.
TUNE = ((64, 1), (67, 1), (67, 1), (69, 1), (67, 2), (64, 1), (62, 1), (60, 2))
BEAT_S = 0.55
LEAD_IN_S = 0.3


def melody(rate: int = RATE):
    import numpy as np

    parts = [np.zeros(int(LEAD_IN_S * rate))]
    for note, beats in TUNE:
        n = int(beats * BEAT_S * rate)
        t = np.arange(n) / rate
        f0 = 440.0 * 2 ** ((note - 69) / 12) * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        # Harmonic amplitudes shaped like an open vowel: strong up to ~1 kHz, falling after.
        voice = sum(np.sin(k * phase) * (1.0 if k * f0.mean() < 1000 else 1000 / (k * f0.mean())) ** 2 / k
                    for k in range(1, 12))
        envelope = np.minimum(1, np.minimum(t / 0.04, (t[-1] - t) / 0.06 + 0.05))
        parts.append(voice * envelope)
    parts.append(np.zeros(int(LEAD_IN_S * rate)))
    signal = np.concatenate(parts)
    return 0.35 * signal / np.max(np.abs(signal))


def write_wav(path: Path, samples, rate: int = RATE) -> Path:
    import numpy as np

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


_written: set[Path] = set()


def demo_file(folder: Path) -> Path:
    """Written once per run (a newer version's tune replaces an older file), then reused."""
    path = folder / "demo-singing.wav"
    if path not in _written:
        tmp = path.with_suffix(".tmp")
        write_wav(tmp, melody())
        os.replace(tmp, path)          # a paplay still reading the old file keeps it whole
        _written.add(path)
    return path


def seconds() -> float:
    return round(2 * LEAD_IN_S + sum(b for _, b in TUNE) * BEAT_S, 1)


def play(folder: Path, kind: str = "melody", sink: str = "qm_mic") -> dict:
    """Start playing into the virtual microphone and return at once (the take records it)."""
    if kind == "silence":
        return {"kind": kind, "seconds": 0}
    if not shutil.which("paplay"):
        raise RuntimeError("paplay is not installed")
    proc = subprocess.Popen(["paplay", f"--device={sink}", str(demo_file(folder))],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    threading.Thread(target=proc.wait, name="paplay", daemon=True).start()   # reap it when done
    return {"kind": kind, "seconds": seconds()}
