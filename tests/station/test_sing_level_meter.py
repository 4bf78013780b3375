"""The /precheck and /sing level meters show the same number for the same microphone.

Each signal goes through each page's own code path: the /precheck meter reads float blocks
from a ``devices.audio`` stream (``station.web.precheck.live.Meter``); the /sing meter reads
the take's int16 frames back from its journal (``station.singing.input_level_dbfs``). The
take's report (``recorder.verify``'s ``rms_dbfs``) must say the same too. They once differed
by 3 dB: one followed AES17 (a full-scale sine is 0 dBFS), the other plain 20·log10(RMS).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from devices.audio import DuplexStream
from recorder.capture import Recorder
from recorder.journal import Journal, JournalHeader, JournalWriter
from recorder.verify import verify_samples
from station.singing import input_level_dbfs
from station.web.precheck.live import Meter
from tests.station.singing import RATE, demo_voice


def precheck_meter(block: np.ndarray) -> float:
    """What the /precheck page is sent for one microphone block."""
    stream = DuplexStream(input_device=None, output_device=False, samplerate=RATE)  # never opened
    stream.blocks.put(block.reshape(-1, 1).astype(np.float32))
    stop, sent = threading.Event(), []

    def publish(event: dict) -> None:
        sent.append(event)
        stop.set()

    Meter(lambda: "", publish)._read(stream, stop)
    assert len(sent) == 1 and "dbfs" in sent[0], sent
    return sent[0]["dbfs"]


def sing_meter(block: np.ndarray, tmp_path) -> float:
    """What the /sing page shows while a take is recorded: the journal's newest frames."""
    journal = Journal(tmp_path / "journal", JournalHeader(take_id="meter", rate=RATE,
                                                          target=str(tmp_path / "t.flac")))
    with JournalWriter(journal) as writer:
        writer.put(np.round(block * 32767).astype(np.int16).reshape(-1, 1))
    recorder = Recorder(writer, rate=RATE, max_seconds=1.0)   # never started: no device
    return input_level_dbfs(recorder, window_s=len(block) / RATE)


def sine(amplitude: float, seconds: float = 0.1, hz: float = 997.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * RATE)) / RATE)


@pytest.mark.parametrize("name, block, expected", [
    ("sine at -20 dBFS", sine(0.1), -20.0),          # AES17: a sine's RMS level = its peak level
    ("full-scale sine", sine(0.999), -0.01),
    ("quiet sine", sine(0.001), -60.0),
    ("generated voice", demo_voice(1.5)[int(0.5 * RATE):int(0.6 * RATE)], None),
    ("room noise", np.random.default_rng(3).normal(0, 0.0005, int(0.1 * RATE)), None),
])
def test_precheck_and_sing_meters_agree(name, block, expected, tmp_path):
    shown_precheck = precheck_meter(block)
    shown_sing = sing_meter(block, tmp_path)
    assert shown_precheck == pytest.approx(shown_sing, abs=0.1), name
    if expected is not None:
        assert shown_precheck == pytest.approx(expected, abs=0.1), name
        assert shown_sing == pytest.approx(expected, abs=0.1), name


def test_the_take_report_uses_the_same_dbfs():
    tone = sine(0.1, seconds=6.0, hz=220.0).astype(np.float32)
    report = verify_samples(tone, RATE)
    assert report["rms_dbfs"] == pytest.approx(precheck_meter(tone[:4800]), abs=0.1)
    assert report["rms_dbfs"] == pytest.approx(-20.0, abs=0.1)
    assert report["peak_dbfs"] == pytest.approx(-20.0, abs=0.1)
