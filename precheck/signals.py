"""The pre-check's signal maths: levels, spectrum, the test tone and chirp, finding the chirp
in a recording, and the speech test's verdict. Pure: samples in, numbers out, tested without
a device; the checks in ``precheck/audio.py`` play and record, and call these.

Levels are dBFS as ``devices.levels`` defines them for the whole station (AES17: a full-scale
sine is 0 dBFS, so a sine of peak 0.1 is -20 dBFS); silence is ``SILENCE_DBFS``, not -inf.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from devices import levels

SILENCE_DBFS = levels.SILENCE_DBFS
TONE_HZ = 1000.0
TONE_DBFS = -20.0
TONE_SECONDS = 0.6
# Short and in the telephone band: a headset passes it, and PulseAudio's loopback (which
# resamples a little to track clock drift) does not smear it; a 0.4 s sweep to 6 kHz lost up
# to half its correlation that way.
CHIRP_SECONDS = 0.15
CHIRP_HZ = (300.0, 3000.0)
LEAD_IN_SECONDS = 0.25      # silence before the chirp: the loopback's own noise floor
MAX_LATENCY_SECONDS = 0.6   # how long after the chirp we keep listening for it
FRAME_SECONDS = 0.05        # level frames for noise floor and speech

# ---------------------------------------------------------------- pure analysis

def dbfs(value: float) -> float:
    """A peak amplitude (full scale 1.0) in dBFS, two decimals."""
    return round(levels.peak_dbfs(value), 2)


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dBFS, two decimals."""
    return round(levels.rms_dbfs(x), 2)


def frame_levels(x: np.ndarray, rate: int, seconds: float = FRAME_SECONDS) -> np.ndarray:
    """RMS level of consecutive frames, dBFS."""
    n = max(1, int(rate * seconds))
    if len(x) < n:
        return np.array([rms_dbfs(x)])
    return levels.frame_dbfs(np.asarray(x, dtype=np.float64), n)


def noise_floor_dbfs(x: np.ndarray, rate: int) -> float:
    """The level of the quiet parts: 10th percentile of the frame levels (ignores a cough)."""
    return round(float(np.percentile(frame_levels(x, rate), 10)), 2)


def level_envelope(x: np.ndarray, rate: int, points: int = 100) -> list[float]:
    """About ``points`` RMS levels (dBFS) across the recording: the report's level strip."""
    if len(x) == 0:
        return []
    chunks = np.array_split(np.asarray(x, dtype=np.float64), min(points, len(x)))
    return [rms_dbfs(c) for c in chunks]


def welch(x: np.ndarray, rate: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch's power spectral density as ``scipy.signal.welch`` computes it by default
    (periodic Hann window, half overlap, each segment's mean removed, one-sided, density).

    In numpy, not scipy: importing scipy.signal pulls in scipy.stats, interpolate and optimize,
    0.6 s on Linux and 6-8 s under Wine, most of the microphone check's time limit there.
    """
    step = nperseg - nperseg // 2
    count = (len(x) - nperseg // 2) // step
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nperseg) / nperseg)
    segments = np.lib.stride_tricks.as_strided(
        x, shape=(count, nperseg), strides=(x.strides[0] * step, x.strides[0]), writeable=False)
    segments = segments - segments.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(segments * window, axis=1)) ** 2 / (rate * (window ** 2).sum())
    power[:, 1:-1 if nperseg % 2 == 0 else None] *= 2
    return np.fft.rfftfreq(nperseg, 1 / rate), power.mean(axis=0)


def spectrum(x: np.ndarray, rate: int, bins: int = 128, fmin: float = 20.0) -> dict[str, list[float]]:
    """Band levels in ``bins`` log-spaced bands from ``fmin`` to Nyquist (dBFS, AES17).

    Each band's power is Welch's density integrated over the band, as a real-time
    analyser shows it: a tone reads its own level in the band that holds it. Narrow low
    bands that hold no FFT line take the density at their centre, so the picture has no holes.
    """
    if len(x) < 256:
        return {"freq_hz": [], "db": []}
    freqs, psd = welch(np.asarray(x, dtype=np.float64), rate, min(8192, len(x)))
    step = freqs[1] - freqs[0]
    edges = np.geomspace(fmin, rate / 2, bins + 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    power = np.interp(centres, freqs, psd) * np.diff(edges)
    index = np.searchsorted(freqs, edges)
    for i in range(bins):
        lo, hi = index[i], index[i + 1]
        if hi > lo:
            power[i] = psd[lo:hi].sum() * step
    db = levels.power_dbfs(power)
    return {"freq_hz": [round(float(f), 1) for f in centres], "db": [round(float(d), 1) for d in db]}


def analyse_input(x: np.ndarray, rate: int, noise_warn_dbfs: float = -40.0) -> dict[str, Any]:
    """What a few seconds of a quiet microphone say about it.

    ``verdict`` is ``zeros`` (every sample exactly 0: muted, or blocked by the operating
    system's privacy setting; a live microphone always has some noise), ``constant`` (the
    signal does not move: a stuck converter or a DC-only input), ``noisy`` (noise floor above
    ``noise_warn_dbfs``), ``clipped`` (full scale reached while nobody spoke) or ``ok``.
    """
    x = np.asarray(x, dtype=np.float64)
    nonzero = int(np.count_nonzero(x))
    out: dict[str, Any] = {
        "seconds": round(len(x) / rate, 3),
        "samples": int(len(x)),
        "zero_ratio": round(1 - nonzero / len(x), 4) if len(x) else 1.0,
        "peak_dbfs": dbfs(float(np.max(np.abs(x)))) if len(x) else SILENCE_DBFS,
        "rms_dbfs": rms_dbfs(x),
        "dc_offset": round(float(np.mean(x)), 5) if len(x) else 0.0,
        "std": float(np.std(x)) if len(x) else 0.0,
        "noise_floor_dbfs": noise_floor_dbfs(x, rate) if len(x) else SILENCE_DBFS,
    }
    if len(x) == 0 or nonzero == 0:
        out["verdict"] = "zeros"
    # Below one 16-bit step of movement: nothing a microphone would produce.
    elif out["std"] < 1 / 32768:
        out["verdict"] = "constant"
    elif out["peak_dbfs"] >= -0.1:
        out["verdict"] = "clipped"
    elif out["noise_floor_dbfs"] > noise_warn_dbfs:
        out["verdict"] = "noisy"
    else:
        out["verdict"] = "ok"
    return out


def tone(freq: float, seconds: float, rate: int, level_dbfs: float = TONE_DBFS) -> np.ndarray:
    """A sine with 10 ms raised-cosine fades (no clicks), peak at ``level_dbfs``."""
    t = np.arange(int(seconds * rate)) / rate
    y = 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return _fade(y, rate).astype(np.float32)


def chirp(seconds: float, rate: int, f0: float = CHIRP_HZ[0], f1: float = CHIRP_HZ[1],
          level_dbfs: float = TONE_DBFS) -> np.ndarray:
    """A logarithmic sweep: one sharp correlation peak, and it survives a headset's band.

    scipy.signal.chirp(method="logarithmic")'s formula, in numpy (see ``welch`` for why)."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * f0 * seconds / np.log(f1 / f0) * ((f1 / f0) ** (t / seconds) - 1)
    y = 10 ** (level_dbfs / 20) * np.cos(phase)
    return _fade(y, rate).astype(np.float32)


def _fade(y: np.ndarray, rate: int, seconds: float = 0.01) -> np.ndarray:
    n = min(int(rate * seconds), len(y) // 2)
    if n:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def _correlate_valid(rec: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """scipy.signal.correlate(rec, ref, mode="valid", method="fft"), in numpy (see ``welch``)."""
    n = len(rec) + len(ref) - 1
    size = 1 << (n - 1).bit_length()
    full = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    return full[:len(rec) - len(ref) + 1]


def find_test_signal(recorded: np.ndarray, reference: np.ndarray, rate: int, offset: int,
                     min_correlation: float = 0.5) -> dict[str, Any]:
    """Find ``reference`` (played from sample ``offset``) in ``recorded`` by cross-correlation.

    Returns ``found``, the normalised correlation at the best lag (1.0 = an exact, scaled
    copy), the round-trip ``latency_ms`` (best lag minus ``offset``), and the level of the
    copy found and its ``gain_db`` against what was played.
    """
    rec = np.asarray(recorded, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    out: dict[str, Any] = {"found": False, "correlation": 0.0, "latency_ms": None,
                           "level_dbfs": None, "gain_db": None}
    if len(rec) < len(ref) or not np.any(rec) or not np.any(ref):
        return out
    corr = _correlate_valid(rec, ref)
    # Energy of each window of the recording, so the score is a true correlation coefficient
    # (running sum: np.convolve with a window this long is quadratic and takes seconds).
    cumulative = np.concatenate([[0.0], np.cumsum(rec ** 2)])
    energy = cumulative[len(ref):] - cumulative[:-len(ref)]
    score = np.abs(corr) / np.sqrt(np.maximum(energy, 1e-20) * np.sum(ref ** 2))
    lag = int(np.argmax(score))
    best = float(score[lag])
    out["correlation"] = round(best, 3)
    if best < min_correlation:
        return out
    copy = rec[lag:lag + len(ref)]
    out.update(found=True, latency_ms=round((lag - offset) * 1000 / rate, 1),
               level_dbfs=rms_dbfs(copy), gain_db=round(rms_dbfs(copy) - rms_dbfs(ref), 1))
    return out


def analyse_speech(x: np.ndarray, rate: int, noise_dbfs: float, peak_min: float = -30.0,
                   peak_max: float = -3.0, snr_min: float = 20.0) -> dict[str, Any]:
    """Speech level and signal-to-noise against the noise floor measured before it.

    The speech level is the mean of the loudest fifth of the 50 ms frames: the syllables,
    not the pauses between them. Problems come back as reason codes with bilingual words.
    """
    levels = frame_levels(np.asarray(x, dtype=np.float64), rate)
    loud = np.sort(levels)[-max(1, len(levels) // 5):]
    speech = round(float(np.mean(loud)), 2)
    peak = dbfs(float(np.max(np.abs(x)))) if len(x) else SILENCE_DBFS
    snr = round(speech - noise_dbfs, 1)
    reasons = []
    if peak < peak_min:
        reasons.append({"code": "too_quiet",
                        "zh": f"说话声太小（峰值 {peak:.0f} dBFS，应不低于 {peak_min:.0f}）",
                        "en": f"speech too quiet (peak {peak:.0f} dBFS, should be at least {peak_min:.0f})"})
    if peak > peak_max:
        reasons.append({"code": "too_loud",
                        "zh": f"说话声太大或削波（峰值 {peak:.1f} dBFS，应不高于 {peak_max:.0f}）",
                        "en": f"speech too loud or clipped (peak {peak:.1f} dBFS, should be at most {peak_max:.0f})"})
    if snr < snr_min:
        reasons.append({"code": "low_snr",
                        "zh": f"信噪比太低（{snr:.0f} dB，应不低于 {snr_min:.0f} dB）",
                        "en": f"signal-to-noise too low ({snr:.0f} dB, should be at least {snr_min:.0f} dB)"})
    return {"peak_dbfs": peak, "speech_dbfs": speech, "noise_floor_dbfs": noise_dbfs,
            "snr_db": snr, "thresholds": {"peak_min_dbfs": peak_min, "peak_max_dbfs": peak_max,
                                          "snr_min_db": snr_min},
            "reasons": reasons, "ok": not reasons}
