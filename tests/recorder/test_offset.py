"""The playback-to-capture offset from the accompaniment's bleed (pure, no device)."""
from __future__ import annotations

import numpy as np
import pytest

from recorder.analysis.offset import xcorr_offset
from tests.recorder.signals import RATE, sung_melody


def test_offset_found_by_cross_correlation_when_the_song_bleeds_into_the_mic():
    rng = np.random.default_rng(4)
    song = rng.standard_normal(RATE * 3)
    delay = 0.137
    recorded = np.concatenate([np.zeros(int(delay * RATE)), 0.2 * song])[:RATE * 4]
    recorded = recorded + 0.5 * sung_melody(len(recorded) / RATE)[:len(recorded)] \
        + 0.05 * rng.standard_normal(len(recorded))
    offset, confidence = xcorr_offset(recorded, song, RATE)
    assert offset == pytest.approx(delay, abs=1 / RATE)
    assert confidence > 10


def test_no_offset_from_cross_correlation_when_no_bleed_is_heard():
    rng = np.random.default_rng(5)
    song = rng.standard_normal(RATE * 3)
    recorded = sung_melody(4.0) + 0.05 * rng.standard_normal(RATE * 4)
    offset, _ = xcorr_offset(recorded, song, RATE)
    assert offset is None
    assert xcorr_offset(np.zeros(RATE), song, RATE) == (None, 0.0)
