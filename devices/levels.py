"""Sound levels in dBFS: the station's one convention, for every meter, check and report.

**0 dBFS is the RMS level of a full-scale sine** (its peaks reach ±1.0): AES17 (§3.12,
"full-scale amplitude"; Prism Sound's glossary quotes it) and IEC 61606, what
audio-measurement software such as SpectraFoo and Audition's "AES-17" setting shows. So a
sine's RMS level equals its peak level, a tone played at -20 dBFS reads -20 dBFS on every
meter, and a full-scale square wave reads +3.01 dBFS. Peak levels are 20·log10(|peak|).
(The other habit, plain 20·log10(RMS) with a full-scale square at 0 dBFS, reads every sound
3.01 dB lower; the /precheck and /sing meters once disagreed by exactly that.)

Silence is ``SILENCE_DBFS`` instead of -inf, which JSON lacks.

It lives in ``devices/`` because it is the lowest package both the pre-check and the
recorder may import (``recorder → devices``); the recorder's signal maths in
``recorder/analysis/`` builds on it. numpy only, no device needed.
"""
from __future__ import annotations

import numpy as np

SILENCE_DBFS = -120.0
#: mean square of a full-scale sine: the 0 dBFS reference for RMS levels (AES17)
SINE_POWER = 0.5


def power_dbfs(mean_square):
    """Mean square (scalar or array, full scale 1.0) to RMS dBFS, floored at SILENCE_DBFS."""
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(np.asarray(mean_square, dtype=np.float64) / SINE_POWER)
    db = np.maximum(np.nan_to_num(db, nan=SILENCE_DBFS, neginf=SILENCE_DBFS), SILENCE_DBFS)
    return float(db) if db.ndim == 0 else db


def peak_dbfs(peak: float) -> float:
    """A peak amplitude (full scale 1.0) in dBFS, floored at SILENCE_DBFS."""
    if not peak > 0 or not np.isfinite(peak):
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * float(np.log10(peak)))


def as_float(x: np.ndarray) -> np.ndarray:
    """Samples as float64 at full scale 1.0 (int16 as the sound card gives them, or float)."""
    x = np.asarray(x)
    if x.dtype == np.int16:
        return x.astype(np.float64) / 32768.0
    return x.astype(np.float64, copy=False)


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of all samples (int16 or float; first channel of a (frames, channels) block)."""
    x = as_float(x)
    if x.ndim > 1:
        x = x[:, 0]
    if len(x) == 0:
        return SILENCE_DBFS
    return power_dbfs(float(np.dot(x, x)) / len(x))


def frame_dbfs(x: np.ndarray, frame: int) -> np.ndarray:
    """RMS level of each block of ``frame`` samples (a trailing partial block is dropped).

    A reshape, no copy, and float64 sums: a 60 s take at 48 kHz costs a few milliseconds.
    """
    frame = max(1, int(frame))
    blocks = x[: len(x) // frame * frame].reshape(-1, frame)
    power = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64) / frame
    return power_dbfs(power) if len(power) else np.zeros(0)


def meter_dbfs(block: np.ndarray) -> float:
    """What a live level meter shows for one block: its RMS level, one decimal.

    The /precheck and /setup meters (float blocks from ``devices.audio``) and the /sing meter
    (int16 frames read back from the take's journal) all show this number.
    """
    return round(rms_dbfs(block), 1)
