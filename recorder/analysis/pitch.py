"""F0 and voicing: YIN (de Cheveigne & Kawahara 2002) on a signal decimated to 8 kHz.

Written here (numpy, with scipy.fft for single-precision FFTs) rather than calling
``librosa.yin`` because librosa's YIN runs its peak interpolation through numba: ~33 s of
JIT compiling in a fresh install and ~3 s of cache loading in every new process, which
breaks the 3 s cold-start budget of ``station sing verify``. The algorithm is the same
(difference function through one FFT per frame, cumulative-mean normalisation, first
trough under a threshold, parabolic refinement); tests/recorder/test_verify.py checks it
against the known pitch of generated voices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANALYSIS_RATE = 8000   # a child's sung F0 (< 1.1 kHz) and its first harmonics fit easily
HOP_S = 0.020          # same as the level frame (levels.FRAME_S); 50 pitches a second
                       # follow a melody and keep 60 s of audio under ~30 ms
WINDOW_S = 0.025       # YIN integration window: two periods of the lowest F0 searched
FMIN_HZ = 70.0         # search range, wider than the plausible band in Thresholds so a
FMAX_HZ = 1100.0       # slightly low or high voice is still tracked, then judged


@dataclass(frozen=True)
class PitchTrack:
    f0_hz: np.ndarray          # per hop; NaN where no period was found
    aperiodicity: np.ndarray   # YIN's d'(tau) at the chosen lag: 0 periodic .. ~1 noise
    hop_s: float = HOP_S


def decimate(x: np.ndarray, rate: int, target: int = ANALYSIS_RATE) -> np.ndarray:
    """Band-limit and resample to the analysis rate (soxr: ~6 ms for 60 s at 48 kHz)."""
    import soxr

    if rate == target:
        return np.ascontiguousarray(x, dtype=np.float32)
    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), rate, target,
                         quality="HQ")


def yin(y: np.ndarray, rate: int = ANALYSIS_RATE, threshold: float = 0.2,
        fmin: float = FMIN_HZ, fmax: float = FMAX_HZ, hop_s: float = HOP_S,
        window_s: float = WINDOW_S) -> PitchTrack:
    """Frame i covers y[i*hop : i*hop + window + max_lag] (zero padded at the end)."""
    hop = int(round(rate * hop_s))
    win = int(round(rate * window_s))
    tau_min = max(2, int(np.floor(rate / fmax)))
    tau_max = int(np.ceil(rate / fmin))
    n_frames = int(np.ceil(len(y) / hop)) if len(y) else 0
    if n_frames == 0:
        return PitchTrack(np.zeros(0), np.zeros(0), hop_s)
    span = win + tau_max + 1  # +1: the parabola needs d'(tau_max + 1)
    padded = np.zeros((n_frames - 1) * hop + span, dtype=np.float32)
    padded[: len(y)] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, span)[::hop]

    # d(tau) = e(0) + e(tau) - 2 r(tau): energies from a running sum (float64: a sum over
    # a minute of samples), r from one FFT per frame in float32, which scipy.fft does
    # natively (numpy's FFT runs in float64), several times faster at this size.
    from scipy import fft as sfft

    nfft = sfft.next_fast_len(span, real=True)  # >= span: no circular wrap for tau <= max
    spec_full = sfft.rfft(frames, nfft, axis=1)
    spec_head = sfft.rfft(frames[:, :win], nfft, axis=1)
    acf = sfft.irfft(np.conj(spec_head) * spec_full, nfft, axis=1)[:, : tau_max + 2]
    csum = np.concatenate(([0.0], np.cumsum(np.square(padded, dtype=np.float64))))
    taus = np.arange(tau_max + 2)
    starts = (np.arange(n_frames) * hop)[:, None] + taus
    energy = csum[starts + win] - csum[starts]
    diff = np.maximum(energy[:, :1] + energy - 2.0 * acf, 0.0)

    # cumulative mean normalised difference d'(tau)
    cmnd = np.ones_like(diff)
    running = np.cumsum(diff[:, 1:], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cmnd[:, 1:] = diff[:, 1:] * taus[1:] / running
    cmnd = np.nan_to_num(cmnd, nan=1.0, posinf=1.0)

    # first local minimum under the threshold within [tau_min, tau_max], else the global min
    band = cmnd[:, tau_min - 1: tau_max + 2]
    mid = band[:, 1:-1]
    trough = (mid < band[:, :-2]) & (mid <= band[:, 2:])
    good = trough & (mid < threshold)
    has_good = good.any(axis=1)
    first = np.where(has_good, good.argmax(axis=1), mid.argmin(axis=1))
    tau = first + tau_min
    rows = np.arange(n_frames)
    aper = cmnd[rows, tau]

    # parabolic refinement through the three points around the chosen lag
    left, right = cmnd[rows, tau - 1], cmnd[rows, tau + 1]
    denom = left - 2.0 * aper + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / denom, 0.0)
    shift = np.clip(shift, -1.0, 1.0)
    f0 = rate / (tau + shift)
    silent = energy[:, 0] <= 1e-10 * win
    f0[silent] = np.nan
    aper = np.where(silent, 1.0, aper)
    return PitchTrack(f0_hz=f0, aperiodicity=aper, hop_s=hop_s)


def track(x: np.ndarray, rate: int, threshold: float = 0.2) -> PitchTrack:
    return yin(decimate(x, rate), ANALYSIS_RATE, threshold=threshold)
