"""The accompaniment-bleed check, calibrated on leaks of known level (recorder/analysis/bleed.py).

The demo song's accompaniment is mixed under a generated voice, late by the playback path,
at a level relative to the voice's RMS: -10 dB is a loudspeaker (or earphones turned right
up) and must be flagged ``accompaniment_bleed``; -30 dB is a closed headset and must not.
Through the real analysis (``recorder.verify``), with the lag known and unknown.
"""
from __future__ import annotations

import numpy as np
import pytest

from recorder import verify
from recorder.analysis import synth
from recorder.analysis.verdict import Thresholds
from recorder.songs import SongCatalog
from tests.station.singing import RATE, demo_voice

LAG_S = 0.12   # playback reaches the microphone this late


@pytest.fixture(scope="module")
def demo():
    return SongCatalog().get("demo")


def voices(song, seconds: float) -> dict[str, np.ndarray]:
    return {"demo_voice": demo_voice(seconds),
            "synth": synth.voice(song.melody, RATE, amplitude=0.3, total_s=seconds, seed=11)}


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def leak(voice: np.ndarray, acc: np.ndarray, under_db: float) -> np.ndarray:
    """``voice`` with ``acc`` arriving LAG_S late, ``under_db`` dB under the voice's RMS."""
    lag = int(LAG_S * RATE)
    late = np.zeros(len(voice), np.float32)
    late[lag:] = acc[:len(voice) - lag]
    gain = rms(voice) * 10 ** (-under_db / 20) / rms(late)
    return (voice + gain * late).astype(np.float32)


def bleed_codes(result: dict) -> list[str]:
    return [r["code"] for r in result["reasons"] if r["code"] == "accompaniment_bleed"]


@pytest.mark.parametrize("voice_name", ["demo_voice", "synth"])
def test_a_loudspeaker_leak_10_db_under_the_voice_is_flagged(demo, voice_name):
    acc, rate = demo.load_accompaniment()
    assert rate == RATE
    mic = leak(voices(demo, len(acc) / RATE)[voice_name], acc, 10.0)
    for offset in (LAG_S - 0.01, None):          # the capture's measured offset, or none
        result = verify.verify_samples(mic, RATE, song=demo, offset_s=offset)
        assert bleed_codes(result) == ["accompaniment_bleed"], (voice_name, offset, result["bleed"])
        assert result["verdict"] == "retake"
        assert result["bleed"]["lag_s"] == pytest.approx(LAG_S, abs=0.002)
        # a clear margin, not a coin toss at the threshold
        assert result["bleed"]["score"] > 1.5 * Thresholds().bleed_max


@pytest.mark.parametrize("voice_name", ["demo_voice", "synth"])
def test_a_closed_headset_leak_30_db_under_the_voice_is_not_flagged(demo, voice_name):
    acc, _ = demo.load_accompaniment()
    mic = leak(voices(demo, len(acc) / RATE)[voice_name], acc, 30.0)
    for offset in (LAG_S - 0.01, None):
        result = verify.verify_samples(mic, RATE, song=demo, offset_s=offset)
        assert bleed_codes(result) == [], (voice_name, offset, result["bleed"])
        assert result["bleed"]["score"] < Thresholds().bleed_max / 2
