"""Key-invariant, tempo-tolerant match of a sung pitch track against a reference melody.

The sung track is cut into notes (runs of voiced frames that hold a pitch), both note
sequences are made relative to their own median (so any key fits), and a DTW over the
two sequences (so any tempo fits) measures how far apart the tunes are, in semitones.
"""
from __future__ import annotations

from statistics import median
from typing import Sequence

import numpy as np

NOTE_SPLIT_ST = 0.8    # a jump this far from the current note's pitch starts a new note
MIN_NOTE_S = 0.08      # shorter blips (consonants, glides) are not notes
MAX_COST_ST = 2.0      # a note two semitones off is as wrong as one an octave off
STEP_PENALTY = 0.4     # cost of stretching: without it DTW aligns any tune built of the same
                       # notes (measured on generated voices: a shuffled melody scored 0.68,
                       # with it 0.50; the right tune 20 % slow, 0.3 st off keeps 0.87)
SHIFTS_ST = (-1.0, -0.5, 0.0, 0.5, 1.0)  # fine transpositions tried after median alignment


def to_midi(f0_hz: np.ndarray) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.asarray(f0_hz, dtype=np.float64) / 440.0)


def sung_notes(f0_hz: np.ndarray, voiced: np.ndarray, hop_s: float) -> list[tuple[float, float]]:
    """(pitch in MIDI, duration s) of each note held in the track."""
    notes: list[tuple[float, float]] = []
    min_frames = max(1, int(round(MIN_NOTE_S / hop_s)))
    current: list[float] = []

    def close() -> None:
        if len(current) >= min_frames:
            notes.append((median(current), len(current) * hop_s))
        current.clear()

    # plain floats and statistics.median: a note's frames are a handful, where numpy's
    # per-call overhead would dominate
    midi = np.where(voiced, to_midi(np.where(voiced, f0_hz, 440.0)), np.nan).tolist()
    for value in midi:
        if value != value:  # NaN: an unvoiced frame ends the note
            close()
        elif current and abs(value - median(current[-10:])) > NOTE_SPLIT_ST:
            close()
            current.append(float(value))
        else:
            current.append(float(value))
    close()
    return notes


def _centred(pitches: np.ndarray, weights: np.ndarray) -> np.ndarray:
    order = np.argsort(pitches)
    cum = np.cumsum(weights[order])
    middle = pitches[order][np.searchsorted(cum, cum[-1] / 2.0)]  # duration-weighted median
    return pitches - middle


def _dtw_cost(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cost along the best DTW path (symmetric steps, diagonal weighted 2, stretch
    steps penalised).

    Written out rather than librosa.sequence.dtw: a minute of singing is ~150 notes
    against a few dozen in the reference, so plain loops over Python floats take a few
    milliseconds, and librosa's version costs a numba compile at every cold start.
    """
    diff = a[:, None] - b[None, :]
    diff = (diff + 6.0) % 12.0 - 6.0           # an octave slip is not a wrong note
    cost = (np.minimum(np.abs(diff), MAX_COST_ST) / MAX_COST_ST).tolist()
    n, m = len(a), len(b)
    inf = float("inf")
    prev = [0.0] + [inf] * m  # row 0 of the accumulated cost
    for i in range(n):
        c = cost[i]
        row = [inf] * (m + 1)
        for j in range(1, m + 1):
            cj = c[j - 1]
            row[j] = min(prev[j - 1] + 2.0 * cj, prev[j] + cj + STEP_PENALTY,
                         row[j - 1] + cj + STEP_PENALTY)
        prev = row
    return prev[m] / (n + m)


def match(f0_hz: np.ndarray, voiced: np.ndarray, hop_s: float, reference: Sequence) -> float | None:
    """Score 0..1 (1 = the reference tune in some key and tempo); None if nothing to match.

    ``reference`` holds notes with ``midi`` and ``duration`` attributes (recorder.songs.Note).
    """
    n = min(len(f0_hz), len(voiced))
    sung = sung_notes(f0_hz[:n], voiced[:n], hop_s)
    if len(sung) < 3 or len(reference) < 3:
        return None
    s_pitch = np.array([p for p, _ in sung])
    s_w = np.array([d for _, d in sung])
    r_pitch = np.array([float(n.midi) for n in reference])
    r_w = np.array([float(n.duration) for n in reference])
    s_rel, r_rel = _centred(s_pitch, s_w), _centred(r_pitch, r_w)
    best = min(_dtw_cost(s_rel + shift, r_rel) for shift in SHIFTS_ST)
    return max(0.0, 1.0 - best)
