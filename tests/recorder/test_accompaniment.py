"""The song fed to the recorder's stream: whole blocks, at the stream's rate, in both ears."""
from __future__ import annotations

import time

import numpy as np

from recorder.accompaniment import Accompaniment
from tests.recorder.signals import RATE, SONG_NOTE, accompaniment, dominant_notes


def test_a_44k_song_is_fed_at_48k_in_whole_blocks_with_its_pitch(tmp_path):
    song = accompaniment(tmp_path / "song.wav", 2.0, 44100)
    feed = Accompaniment(song, rate=RATE, blocksize=2400).start()
    blocks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        before = feed.underruns
        block = feed.next_block()
        if block is None:
            break
        if feed.underruns == before:   # a zero block stands in while the feeder catches up
            blocks.append(block)
        else:
            time.sleep(0.01)
    feed.stop()
    audio = np.concatenate(blocks)
    assert all(b.shape == (2400, 2) for b in blocks)
    assert abs(len(audio) - 2 * RATE) <= 2400                      # whole last block, padded
    assert np.array_equal(audio[:, 0], audio[:, 1])                # mono song in both ears
    assert SONG_NOTE in dominant_notes(audio[:, 0] / 32768, RATE)
    assert feed.frames == 2 * RATE
