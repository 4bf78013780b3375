"""Level, clipping and dropout measures on the full-rate samples (numpy only).

Levels follow the station's one dBFS convention (``devices.levels``: a full-scale sine's RMS
is 0 dBFS), so a take's report, the /sing meter and the pre-check agree.
"""
from __future__ import annotations

import numpy as np

from devices.levels import SILENCE_DBFS, frame_dbfs, peak_dbfs, power_dbfs

DB_FLOOR = SILENCE_DBFS  # what digital silence reports instead of -inf (JSON has no -inf)
FRAME_S = 0.020    # the level frame; the pitch track uses the same hop so frames align

__all__ = ["DB_FLOOR", "FRAME_S", "frame_db", "peak_dbfs", "power_dbfs", "runs",
           "clipped_ratio", "dropout_gaps"]


def frame_db(x: np.ndarray, rate: int) -> np.ndarray:
    """RMS level of each FRAME_S block in dBFS (a trailing partial block is dropped)."""
    return frame_dbfs(x, int(round(rate * FRAME_S)))


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of each run of True in a 1-D bool array.

    Works on the True positions only, so a mask that is mostly False (the usual case:
    few clipped or zero samples) costs little more than the comparison that made it.
    """
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return idx, idx
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks] + 1, [idx[-1] + 1]))
    return starts, ends


def clipped_ratio(x: np.ndarray, level: float, min_run: int = 3) -> float:
    """Share of samples inside runs of >= min_run consecutive samples at full scale.

    A lone sample at full scale is a loud but intact peak; a flat run is the converter
    (or a gain stage) cutting the waveform off.
    """
    if len(x) == 0 or max(float(x.max()), -float(x.min())) < level:
        return 0.0
    starts, ends = runs(np.abs(x) >= level)
    lengths = ends - starts
    return float(lengths[lengths >= min_run].sum() / len(x))


def dropout_gaps(x: np.ndarray, rate: int, min_gap_s: float = 0.005,
                 edge: float = 0.01) -> int:
    """Count holes of exact digital zero cut into sound: lost buffers in a capture.

    A microphone never gives a run of exact zeros while someone sings; a lost buffer
    that the driver filled with zeros does, and it starts and ends abruptly. Zeros
    reached by fading out (a pause, the silence before the song) are not counted.
    """
    if len(x) < 3:
        return 0
    starts, ends = runs(x == 0.0)
    keep = (ends - starts >= int(rate * min_gap_s)) & (starts > 0) & (ends < len(x))
    starts, ends = starts[keep], ends[keep]
    abrupt = (np.abs(x[starts - 1]) >= edge) & (np.abs(x[ends]) >= edge)
    return int(abrupt.sum())
