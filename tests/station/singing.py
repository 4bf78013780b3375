"""Generated singing for the singing-station tests: a synthetic voice, never a child's."""
from __future__ import annotations

import numpy as np

from recorder.analysis import synth
from recorder.songs import SongCatalog

RATE = 48000


def demo_voice(seconds: float, rate: int = RATE) -> np.ndarray:
    """The demo song's own tune, sung from the start of the take (no waiting for the intro)."""
    melody = SongCatalog().get("demo").melody
    first = melody[0].start
    notes = [(n.midi, n.start - first + 0.3, n.duration) for n in melody
             if n.start - first + n.duration < seconds]
    return synth.voice(notes, rate, amplitude=0.5, total_s=seconds)
