"""Generated sound for the recorder tests: a sung tune over a drone accompaniment, never a child."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 48000
NOTES = (262.0, 330.0, 392.0, 523.0)     # C4 E4 G4 C5: the tune the student sings
SONG_NOTE = 150.0                        # the accompaniment's drone, below the tune


def sung_melody(seconds: float, rate: int = RATE) -> np.ndarray:
    """A child's voice, roughly: each note with harmonics and vibrato, looping for ``seconds``."""
    t = np.arange(int(seconds * rate)) / rate
    note = np.array(NOTES)[(t // 0.5).astype(int) % len(NOTES)]
    phase = 2 * np.pi * np.cumsum(note * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / rate
    voice = sum(a * np.sin(k * phase) for k, a in ((1, 0.5), (2, 0.2), (3, 0.1)))
    return 0.8 * voice


def accompaniment(path: Path, seconds: float, rate: int) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * SONG_NOTE * t), rate, subtype="PCM_16")
    return path


def dominant_notes(samples: np.ndarray, rate: int) -> set[float]:
    """The note nearest to the spectral peak of each 0.25 s frame with sound in it."""
    found = set()
    size = rate // 4
    for start in range(0, len(samples) - size, size):
        frame = samples[start:start + size] * np.hanning(size)
        if np.sqrt(np.mean(frame ** 2)) < 1e-3:
            continue
        spectrum = np.abs(np.fft.rfft(frame))
        peak = np.fft.rfftfreq(size, 1 / rate)[np.argmax(spectrum)]
        nearest = min(NOTES + (SONG_NOTE,), key=lambda n: abs(n - peak))
        if abs(nearest - peak) < 8:
            found.add(nearest)
    return found
