"""Take verification: is this recording good enough to keep?

``verify_file`` / ``verify_samples`` return the verify JSON of DESIGN.md (one dict per
take, never raising for a bad file). Everything heavy is in ``recorder.analysis``; this
module wires reading, measuring and judging, and stays cheap to import.

Fields added to DESIGN's: ``level_p95_dbfs`` (the loud parts, what too_quiet and silent
judge), ``noise_floor_dbfs`` (the quiet tenth of frames; ``snr_db`` is the difference),
``voiced_s``, ``dropouts_detected`` (holes found in the samples; ``dropouts`` is the
larger of that and the capture's count), ``melody_score`` (0..1 or null), ``bleed``
(``{"score", "lag_s", "level_db"}`` or null), ``song_id``, ``flags`` (reasons that do not
change the verdict: ``wrong_melody``), and, when it applies, ``error`` (why a file is
unreadable) and ``song_error`` (the song's audio could not be read: song checks skipped).
Levels are dBFS as ``devices.levels`` defines them (a full-scale sine's RMS is 0 dBFS),
floored at -120 (never -inf); ``voiced_ratio`` is the share of the
non-silent 20 ms frames that carry a pitch inside [f0_min_hz, f0_max_hz].
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import levels, pitch
from .analysis.audio_io import Audio, UnreadableAudio, as_audio, load
from .analysis.reasons import reason
from .analysis.verdict import Thresholds, judge

__all__ = ["Thresholds", "verify_file", "verify_samples", "analyse", "warm_up", "plot",
           "Analysis"]


@dataclass
class Analysis:
    """Everything measured on one take; ``result`` is its verify JSON."""

    mono: np.ndarray
    rate: int
    frame_db: np.ndarray
    track: pitch.PitchTrack
    voiced: np.ndarray        # per frame: sung pitch inside the plausible band
    result: dict[str, Any]


def verify_file(path: str | Path, thresholds: Thresholds | None = None, song=None,
                dropouts: int = 0, offset_s: float | None = None) -> dict[str, Any]:
    """Verify a take on disk. A missing, foreign or truncated file gives ``unreadable``."""
    try:
        audio = load(path)
    except UnreadableAudio as exc:
        return unreadable_result(path, str(exc))
    try:
        return analyse(audio, thresholds, song=song, dropouts=dropouts, offset_s=offset_s,
                       path=path).result
    except UnreadableAudio as exc:
        return unreadable_result(path, str(exc))


def verify_samples(samples, rate: int, thresholds: Thresholds | None = None, song=None,
                   dropouts: int = 0, offset_s: float | None = None,
                   path: str | Path | None = None) -> dict[str, Any]:
    """Verify what was just captured: int16 or float samples, mono or (frames, channels).

    ``dropouts`` is the capture's own count of lost buffers (overflows); ``offset_s`` is
    where the accompaniment's start lands in the capture, for the bleed check.
    """
    try:
        return analyse(as_audio(samples, rate), thresholds, song=song, dropouts=dropouts,
                       offset_s=offset_s, path=path).result
    except UnreadableAudio as exc:
        return unreadable_result(path, str(exc))


def unreadable_result(path, detail: str) -> dict[str, Any]:
    return {"path": None if path is None else str(path), "duration_s": None,
            "sample_rate": None, "channels": None, "rms_dbfs": None, "peak_dbfs": None,
            "clipped_ratio": None, "silence_ratio": None, "snr_db": None,
            "voiced_ratio": None, "median_f0_hz": None, "dropouts": None, "verdict": "reject",
            "reasons": [reason("unreadable")], "flags": [], "error": detail}


def analyse(audio: Audio, thresholds: Thresholds | None = None, song=None,
            dropouts: int = 0, offset_s: float | None = None,
            path: str | Path | None = None) -> Analysis:
    """Measure one take and judge it; raises UnreadableAudio for non-finite samples."""
    t = thresholds or Thresholds()
    x = audio.samples
    if not np.isfinite(x).all():
        # a float file can hold NaN or inf: no measure below would mean anything
        raise UnreadableAudio("samples are not finite numbers")
    mono = x[:, 0] if audio.channels == 1 else x.mean(axis=1, dtype=np.float32)
    rate = audio.rate

    frame_db = levels.frame_db(mono, rate)
    track = pitch.track(mono, rate, threshold=t.yin_threshold)
    frames = min(len(frame_db), len(track.f0_hz))  # the two framings differ by <= 1 frame
    frame_db = frame_db[:frames]
    track = pitch.PitchTrack(track.f0_hz[:frames], track.aperiodicity[:frames], track.hop_s)
    active = frame_db >= t.silence_dbfs
    with np.errstate(invalid="ignore"):  # NaN F0 (no period found) compares False
        voiced = (active & (track.aperiodicity < t.yin_threshold)
                  & (track.f0_hz >= t.f0_min_hz) & (track.f0_hz <= t.f0_max_hz))

    detected = levels.dropout_gaps(mono, rate, t.dropout_gap_s)
    m: dict[str, Any] = {
        "path": None if path is None else str(path),
        "duration_s": round(len(mono) / rate, 3),
        "sample_rate": rate,
        "channels": audio.channels,
        **_level_metrics(x, mono, frame_db, active, t),
        **_pitch_metrics(track, voiced, active),
        "dropouts": max(int(dropouts), detected),  # the capture's count and the holes
        "dropouts_detected": detected,             # found in the file are the same events
        "melody_score": None,
        "bleed": None,
    }
    if song is not None:
        try:
            _song_checks(m, song, mono, rate, track, voiced, offset_s, t)
        except (OSError, RuntimeError) as exc:
            # the song's file went missing or bad since the catalog loaded: the take
            # itself is still judged, only the song checks are skipped
            m["song_error"] = f"{type(exc).__name__}: {exc}"
    verdict, reason_codes, flag_codes = judge(m, t)
    m["verdict"] = verdict
    m["reasons"] = [reason(c) for c in reason_codes]
    m["flags"] = [reason(c) for c in flag_codes]
    return Analysis(mono=mono, rate=rate, frame_db=frame_db, track=track, voiced=voiced,
                    result=m)


def _level_metrics(x: np.ndarray, mono: np.ndarray, frame_db: np.ndarray,
                   active: np.ndarray, t: Thresholds) -> dict[str, Any]:
    n, frames = len(mono), len(frame_db)
    peak = float(np.max(np.abs(x))) if n else 0.0
    mean_square = float(np.dot(mono, mono) / n) if n else 0.0
    # the loud parts (95th percentile frame) say how loud the singing is whatever the
    # pauses; the quiet tenth of frames is the room and the mic's own noise
    p95 = float(np.percentile(frame_db, 95)) if frames else levels.DB_FLOOR
    floor = float(np.percentile(frame_db, 10)) if frames else levels.DB_FLOOR
    clip = max((levels.clipped_ratio(x[:, c], t.clip_level, t.clip_min_run)
                for c in range(x.shape[1])), default=0.0)
    return {
        "rms_dbfs": _r(levels.power_dbfs(mean_square)),
        "peak_dbfs": _r(levels.peak_dbfs(peak)),
        "clipped_ratio": round(clip, 5),
        "silence_ratio": round(1.0 - int(active.sum()) / frames, 4) if frames else 1.0,
        "noise_floor_dbfs": _r(floor),
        "level_p95_dbfs": _r(p95),
        "snr_db": _r(p95 - floor),
    }


def _pitch_metrics(track: pitch.PitchTrack, voiced: np.ndarray,
                   active: np.ndarray) -> dict[str, Any]:
    n_active, n_voiced = int(active.sum()), int(voiced.sum())
    return {
        # share of the non-silent frames that carry a sung pitch: long pauses before or
        # after the song do not count against it
        "voiced_ratio": round(n_voiced / n_active, 4) if n_active else 0.0,
        "voiced_s": round(n_voiced * track.hop_s, 2),
        "median_f0_hz": round(float(np.median(track.f0_hz[voiced])), 1) if n_voiced else None,
    }


def _song_checks(m, song, mono, rate, track, voiced, offset_s, t: Thresholds) -> None:
    from .analysis import bleed, melody

    m["song_id"] = getattr(song, "id", None)
    notes = getattr(song, "melody", None)
    if notes:
        score = melody.match(track.f0_hz, voiced, track.hop_s, notes)
        m["melody_score"] = None if score is None else round(score, 3)
    accompaniment = song.load_accompaniment() if hasattr(song, "load_accompaniment") else None
    if accompaniment is not None:
        acc, acc_rate = accompaniment
        found = bleed.measure(mono, rate, acc, acc_rate, offset_s, t.bleed_search_s)
        m["bleed"] = None if found is None else {k: round(v, 4) for k, v in found.items()}


def _r(db: float) -> float:
    return round(float(db), 2) if math.isfinite(db) else levels.DB_FLOOR


def warm_up() -> None:
    """Run short verifications so the first student's take pays no import or first-call
    cost: soundfile, soxr, scipy.fft, and scipy.signal for the song checks (~1 s in all,
    paid when ``station serve`` starts instead)."""
    import soundfile  # noqa: F401  (libsndfile loads on import)

    from .analysis import synth

    rate = 48000
    notes = [(60 + (i % 5), 0.1 + 0.4 * i, 0.35) for i in range(8)]
    voice = synth.voice(notes, rate, total_s=4.0)
    verify_samples(voice, rate, song=_WarmUpSong(notes, synth.keys(notes, rate, total_s=4.0)))


class _WarmUpSong:
    """Just enough of recorder.songs.Song for warm_up to run the song checks."""

    id = "warm-up"

    def __init__(self, notes, accompaniment):
        from .songs import Note

        self.melody = tuple(Note(*n) for n in notes)
        self._acc = accompaniment

    def load_accompaniment(self):
        return self._acc, 48000


def plot(path_or_result, png_path, song=None, thresholds: Thresholds | None = None):
    """Draw waveform, level and pitch over the reference melody (see recorder.plot)."""
    from .plot import plot as _plot

    return _plot(path_or_result, png_path, song=song, thresholds=thresholds)
