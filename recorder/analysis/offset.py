"""Where the accompaniment lands in the recording: the playback-to-capture offset (pure numpy)."""
from __future__ import annotations

import numpy as np

XCORR_WINDOW_S = 10.0
XCORR_MAX_LAG_S = 2.0
XCORR_MIN_CONFIDENCE = 10.0       # peak over the correlation's spread: below this, no bleed heard


def xcorr_offset(recorded: np.ndarray, reference: np.ndarray, rate: int, *,
                 max_lag_s: float = XCORR_MAX_LAG_S,
                 min_confidence: float = XCORR_MIN_CONFIDENCE) -> tuple[float | None, float]:
    """Where the accompaniment appears in the recording (its bleed from the earphones), in s.

    Pure: generalized cross-correlation with phase transform (GCC-PHAT) over lags
    0 … ``max_lag_s``. PHAT whitens both spectra, so a song's strong steady notes, which make
    a plain cross-correlation a row of near-equal peaks, do not hide the one true lag.
    Returns (offset or None, confidence); None when the peak does not stand out (no bleed
    heard, as with closed earphones), so the caller falls back on PortAudio's latency figure.
    """
    rec = np.asarray(recorded, dtype="float64").ravel()
    ref = np.asarray(reference, dtype="float64").ravel()
    if len(rec) == 0 or len(ref) == 0 or not np.any(ref) or not np.any(rec):
        return None, 0.0
    n = len(rec) + len(ref)
    size = 1 << (n - 1).bit_length()
    cross = np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size))
    cross /= np.abs(cross) + 1e-12 * np.abs(cross).max()
    corr = np.fft.irfft(cross, size)
    max_lag = min(int(max_lag_s * rate), len(rec) - 1)
    window = corr[:max_lag + 1]
    lag = int(np.argmax(window))
    spread = float(np.std(window)) or 1e-12
    confidence = float(window[lag] / spread)
    if confidence < min_confidence:
        return None, confidence
    return lag / rate, confidence
