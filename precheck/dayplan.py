"""What one test day records on one station: the disk and upload checks' shared estimate."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DayPlan:
    """Every assumption named, none hidden.

    Defaults: a sampled class of 30 students, a 90 s song, 1.5 takes each on average
    (some students sing again), 48 kHz 16-bit mono, FLAC at about 60 % of the PCM size
    for singing through a headset microphone.
    """

    students: int = 30
    song_seconds: float = 90.0
    takes_per_student: float = 1.5
    sample_rate: int = 48000
    bytes_per_sample: int = 2
    channels: int = 1
    flac_ratio: float = 0.6


def expected_day_bytes(plan: DayPlan) -> int:
    """Bytes of FLAC recordings the day produces (pure; the upload and disk checks share it)."""
    pcm_per_second = plan.sample_rate * plan.bytes_per_sample * plan.channels
    seconds = plan.students * plan.takes_per_student * plan.song_seconds
    return int(seconds * pcm_per_second * plan.flac_ratio)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
