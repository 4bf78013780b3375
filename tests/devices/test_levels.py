"""The station's one dBFS convention (devices/levels.py): a full-scale sine's RMS is 0 dBFS."""
from __future__ import annotations

import json

import numpy as np
import pytest

from devices import levels

RATE = 48000


def sine(amplitude: float, seconds: float = 1.0, hz: float = 997.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * RATE)) / RATE)


def test_a_full_scale_sine_is_0_dbfs_and_a_square_plus_3():
    assert levels.rms_dbfs(sine(1.0)) == pytest.approx(0.0, abs=0.01)
    assert levels.rms_dbfs(np.sign(sine(1.0))) == pytest.approx(3.01, abs=0.01)
    assert levels.peak_dbfs(1.0) == 0.0


def test_a_sines_rms_level_is_its_peak_level():
    for db in (-6.0, -20.0, -45.0):
        x = sine(10 ** (db / 20))
        assert levels.rms_dbfs(x) == pytest.approx(db, abs=0.01)
        assert levels.peak_dbfs(float(np.max(np.abs(x)))) == pytest.approx(db, abs=0.01)


def test_int16_blocks_read_at_the_same_level_as_float():
    x = sine(0.25)
    as_int16 = np.round(x * 32767).astype(np.int16)
    assert levels.rms_dbfs(as_int16) == pytest.approx(levels.rms_dbfs(x), abs=0.01)
    assert levels.meter_dbfs(as_int16.reshape(-1, 1)) == pytest.approx(-12.0, abs=0.05)


def test_frames_are_the_same_rms_level():
    x = np.concatenate([sine(0.1, 0.5), np.zeros(RATE // 2)])
    frames = levels.frame_dbfs(x, 960)
    assert len(frames) == RATE // 960
    assert frames[0] == pytest.approx(-20.0, abs=0.05)
    assert frames[-1] == levels.SILENCE_DBFS


def test_silence_is_a_number_json_can_carry():
    for value in (levels.rms_dbfs(np.zeros(100)), levels.rms_dbfs(np.zeros(0)),
                  levels.peak_dbfs(0.0), levels.peak_dbfs(float("nan")),
                  float(levels.power_dbfs(np.array([0.0]))[0])):
        assert value == levels.SILENCE_DBFS
        json.dumps(value, allow_nan=False)
