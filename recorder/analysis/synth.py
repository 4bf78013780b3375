"""Generated audio: a sung-like voice and a simple keyboard accompaniment.

Used to make the demo song (scripts/make-demo-song), and by tests and benchmarks to
produce takes of known content. No recording of a real person is ever needed.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np


def midi_to_hz(midi) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _envelope(n: int, rate: int, attack_s: float, release_s: float) -> np.ndarray:
    env = np.ones(n)
    a, r = min(n // 2, int(attack_s * rate)), min(n // 2, int(release_s * rate))
    if a:
        env[:a] = np.linspace(0.0, 1.0, a)
    if r:
        env[n - r:] = np.linspace(1.0, 0.0, r)
    return env


def voice(notes: Iterable, rate: int = 48000, amplitude: float = 0.3,
          vibrato_st: float = 0.35, vibrato_hz: float = 5.5, tempo: float = 1.0,
          transpose: float = 0.0, total_s: float | None = None, seed: int = 0,
          drift_st: float = 0.2) -> np.ndarray:
    """A voice-like signal singing ``notes`` ((midi, start, duration) or Note objects).

    Harmonics falling off like a child's voice, vibrato that sets in after the attack,
    slight random pitch drift and a little breath noise, so a pitch tracker sees what it
    sees with real singing rather than a clean sine.
    """
    rng = np.random.default_rng(seed)
    notes = [_triple(n) for n in notes]
    end = max((s + d for _, s, d in notes), default=0.0) * tempo
    length = int(round((total_s if total_s is not None else end + 0.5) * rate))
    out = np.zeros(length)
    harmonics = np.array([1.0, 0.55, 0.35, 0.22, 0.12, 0.07])
    for midi, start, dur in notes:
        i0, n = int(start * tempo * rate), int(dur * tempo * rate)
        n = min(n, length - i0)
        if n <= 0:
            continue
        t = np.arange(n) / rate
        depth = vibrato_st * np.clip(t / 0.25, 0.0, 1.0)
        drift = np.cumsum(rng.normal(0.0, 0.002, n))
        drift -= drift.mean()
        vibrato = depth * np.sin(2 * np.pi * vibrato_hz * t)
        semis = midi + transpose + vibrato + np.clip(drift, -drift_st, drift_st)
        phase = 2 * np.pi * np.cumsum(midi_to_hz(semis)) / rate
        wave = sum(h * np.sin((k + 1) * phase) for k, h in enumerate(harmonics))
        wave = wave / harmonics.sum() + rng.normal(0.0, 0.01, n)
        out[i0:i0 + n] += wave * _envelope(n, rate, 0.04, 0.08)
    peak = np.max(np.abs(out)) if length else 0.0
    return (out * (amplitude / peak) if peak > 0 else out).astype(np.float32)


def keys(notes: Iterable, rate: int = 48000, amplitude: float = 0.3,
         total_s: float | None = None) -> np.ndarray:
    """A plucked keyboard-like sound: decaying harmonics, no vibrato."""
    notes = [_triple(n) for n in notes]
    end = max((s + d for _, s, d in notes), default=0.0)
    length = int(round((total_s if total_s is not None else end + 1.0) * rate))
    out = np.zeros(length)
    for midi, start, dur in notes:
        i0 = int(start * rate)
        n = min(int((dur + 0.3) * rate), length - i0)
        if n <= 0:
            continue
        t = np.arange(n) / rate
        f = float(midi_to_hz(midi))
        wave = sum((0.6 ** k) * np.sin(2 * np.pi * f * (k + 1) * t) * np.exp(-t * (2.5 + k))
                   for k in range(5))
        out[i0:i0 + n] += wave * _envelope(n, rate, 0.005, 0.05)
    peak = np.max(np.abs(out)) if length else 0.0
    return (out * (amplitude / peak) if peak > 0 else out).astype(np.float32)


def _triple(note) -> tuple[float, float, float]:
    if hasattr(note, "midi"):
        return float(note.midi), float(note.start), float(note.duration)
    midi, start, duration = note
    return float(midi), float(start), float(duration)
