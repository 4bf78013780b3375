"""From metrics and thresholds to a verdict: a pure function, no I/O, no numpy needed."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .reasons import SEVERITY_ORDER, severity


@dataclass(frozen=True)
class Thresholds:
    """Every limit the verdict uses; ``[recorder.verify]`` in station.toml overrides any."""

    min_duration_s: float = 5.0       # shorter takes cannot hold a song's phrase
    # RMS levels, dBFS of devices.levels (a full-scale sine = 0 dBFS)
    silence_dbfs: float = -52.0       # a 20 ms frame under this is silence (mic hiss is ~-57)
    quiet_dbfs: float = -33.0         # the loud parts (95th percentile frame) must reach this
    clip_level: float = 0.999         # |sample| at or above this is full scale (-0.01 dBFS)
    clip_min_run: int = 3             # consecutive full-scale samples that make a clip
    clipped_ratio_max: float = 0.001  # 0.1 % of samples clipped is audible distortion
    yin_threshold: float = 0.2        # YIN aperiodicity under this is a periodic (voiced) frame
    # Plausible sung F0. Grade-4 children sing ~200-800 Hz, but grade-8 boys whose voices
    # have broken sing down to ~90 Hz (F2-G2), so the band starts at 85 Hz, not 180 Hz
    # (mains hum, 50/60 Hz, stays outside); the top leaves room for a child's head voice.
    f0_min_hz: float = 85.0
    f0_max_hz: float = 1000.0
    voiced_ratio_min: float = 0.2     # share of non-silent frames with a sung pitch
    voiced_min_s: float = 1.0         # and at least this much sung time in total
    dropouts_max: int = 0
    dropout_gap_s: float = 0.005      # a run of exact zeros this long cut into sound
    melody_score_min: float = 0.7     # under this the sung tune is flagged wrong_melody
    # share of the mic's power that is leaked accompaniment (recorder/analysis/bleed.py).
    # Calibrated on the demo song leaked under generated voices (tests/recorder/test_bleed.py):
    # a loudspeaker's leak 10 dB under the voice measures 0.096-0.11 and must be flagged; a
    # closed headset's 30 dB under 0.004-0.015 (a clean take 0.003-0.013, the voice singing
    # the song's notes) must not. 0.05 (a leak ~13 dB under the voice) sits between them.
    bleed_max: float = 0.05
    bleed_search_s: float = 0.05      # tolerance around the given playback offset

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> "Thresholds":
        """Build from a config table; unknown keys and bad values raise ValueError."""
        if not config:
            return cls()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in config.items():
            if key not in fields:
                raise ValueError(
                    f"配置项 recorder.verify.{key} 不存在，请检查拼写（可用：{', '.join(fields)}）。"
                    f" / Unknown setting recorder.verify.{key}: check the spelling "
                    f"(known: {', '.join(fields)}).")
            kind = int if fields[key].type in (int, "int") else float
            try:
                if isinstance(raw, bool) or (kind is int and float(raw) != int(raw)):
                    raise ValueError
                values[key] = kind(raw)
            except (TypeError, ValueError):
                raise ValueError(
                    f"配置项 recorder.verify.{key} 的值 {raw!r} 不是数字，请改为数字。"
                    f" / Setting recorder.verify.{key} = {raw!r} is not a number: "
                    f"write a number.") from None
        return cls(**values)


def judge(m: Mapping[str, Any], t: Thresholds) -> tuple[str, list[str], list[str]]:
    """Return (verdict, reason codes, flag codes) for the metrics of one take.

    Flags (severity "accept") are shown to the proctor but leave the verdict alone:
    judging how well a child sings is the test's job, not the recorder's.
    """
    codes: list[str] = []
    if m["duration_s"] < t.min_duration_s:
        codes.append("too_short")
    silent = m["level_p95_dbfs"] < t.silence_dbfs
    if silent:
        codes.append("silent")
    else:
        if m["level_p95_dbfs"] < t.quiet_dbfs:
            codes.append("too_quiet")
        if m["voiced_ratio"] < t.voiced_ratio_min or m["voiced_s"] < t.voiced_min_s:
            codes.append("no_singing")
    if m["clipped_ratio"] > t.clipped_ratio_max:
        codes.append("clipped")
    if m["dropouts"] > t.dropouts_max:
        codes.append("dropouts")
    bleed = m.get("bleed")
    if bleed is not None and bleed["score"] > t.bleed_max:
        codes.append("accompaniment_bleed")
    melody = m.get("melody_score")
    if melody is not None and "no_singing" not in codes and not silent \
            and melody < t.melody_score_min:
        codes.append("wrong_melody")
    reasons = [c for c in codes if severity(c) != "accept"]
    flags = [c for c in codes if severity(c) == "accept"]
    verdict = max((severity(c) for c in reasons), key=SEVERITY_ORDER.__getitem__,
                  default="accept")
    return verdict, reasons, flags
