"""Accompaniment leaking into the microphone (earphones too loud, or room speakers).

Leaked sound is the accompaniment passed through a fixed path (earcup, room); the voice
is not. Once the mic and the accompaniment are lined up at the playback-to-capture lag,
the part of the mic's spectrum that the accompaniment predicts, block after block
(coherence times the mic's power, from Welch averages), is the leaked power; the score is
its share of all the mic's power: ~0.01 for a clean take, 0.5 when the leak is as loud as
the voice. Coherence rather than a plain correlation because the voice sings the same
notes as the accompaniment: their waveforms line up by chance at some lag, but not
consistently over many blocks.
"""
from __future__ import annotations

import numpy as np

from .pitch import ANALYSIS_RATE, decimate

SEARCH_UNKNOWN_S = (0.0, 1.0)  # lag range tried when the caller does not know the offset
BLOCK = 2048                   # 256 ms at 8 kHz: longer than a small room's reverberation


def find_lag(x: np.ndarray, a: np.ndarray, lo_s: float, hi_s: float) -> int:
    """Lag k (x[n + k] ~ a[n]) within [lo_s, hi_s] by phase-transform correlation.

    PHAT whitening makes a delayed copy a sharp peak whatever the spectrum, where a plain
    correlation is dominated by the strongest tones.
    """
    from scipy import fft as sfft

    nfft = sfft.next_fast_len(len(x) + len(a), real=True)
    cross = sfft.rfft(x, nfft) * np.conj(sfft.rfft(a, nfft))
    corr = sfft.irfft(cross / (np.abs(cross) + 1e-12), nfft)
    lags = np.arange(int(np.floor(lo_s * ANALYSIS_RATE)), int(np.ceil(hi_s * ANALYSIS_RATE)) + 1)
    lags = lags[(lags > -len(a)) & (lags < len(x))]
    return int(lags[np.argmax(corr[lags % nfft])]) if len(lags) else 0


def spectra(x: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch averages (Hann blocks, half overlap) of |X|^2, |A|^2 and X conj(A).

    The same estimate as scipy.signal.welch and csd, written out so the two signals are
    cut and transformed once for all three spectra instead of once per call.
    """
    from scipy import fft as sfft

    hop = BLOCK // 2
    window = np.hanning(BLOCK + 1)[:-1].astype(np.float32)  # periodic Hann, as scipy's
    view = np.lib.stride_tricks.sliding_window_view
    fx = sfft.rfft(view(x, BLOCK)[::hop] * window, axis=1)
    fa = sfft.rfft(view(a, BLOCK)[::hop] * window, axis=1)
    return ((fx.real ** 2 + fx.imag ** 2).mean(axis=0), (fa.real ** 2 + fa.imag ** 2).mean(axis=0),
            (fx * np.conj(fa)).mean(axis=0))


def measure(mic: np.ndarray, mic_rate: int, acc: np.ndarray, acc_rate: int,
            offset_s: float | None, tolerance_s: float = 0.05) -> dict[str, float] | None:
    """{"score": leaked share 0..1, "lag_s", "level_db": leak vs the rest in dB} or None when
    there is too little overlap to tell."""
    x, a = decimate(mic, mic_rate), decimate(acc, acc_rate)
    if offset_s is None:
        lo, hi = SEARCH_UNKNOWN_S
    else:
        lo, hi = offset_s - tolerance_s, offset_s + tolerance_s
    k = find_lag(x, a, lo, hi)
    xs, as_ = (x[k:], a) if k >= 0 else (x, a[-k:])
    n = min(len(xs), len(as_))
    if n < 4 * BLOCK:
        return None
    p_xx, p_aa, p_xa = spectra(xs[:n], as_[:n])
    # leaked power per frequency = |Pxa|^2 / Paa (coherence times Pxx); bins where the
    # accompaniment is silent cannot hold any of it
    floor = 1e-9 * float(p_aa.max())
    usable = p_aa > floor if floor > 0 else np.zeros(len(p_aa), dtype=bool)
    leaked = float((np.abs(p_xa[usable]) ** 2 / p_aa[usable]).sum())
    total = float(p_xx.sum())
    score = min(1.0, leaked / total) if total > 0 else 0.0
    return {"score": score, "lag_s": k / ANALYSIS_RATE,
            "level_db": float(10 * np.log10(max(score, 1e-12) / max(1.0 - score, 1e-12)))}
