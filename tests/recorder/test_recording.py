"""The recording loop on the real virtual headset: a stream the host drops, stalls or hangs
is reopened and the gap flagged; the journal keeps every frame that arrived."""
from __future__ import annotations

import time

import pytest

from recorder.capture import _with_dropouts
from recorder.journal import Journal, JournalHeader, JournalWriter
from recorder.recording import Recorder
from recorder.takes import CaptureError
from tests.recorder.signals import RATE


def test_a_recording_needs_a_song_or_a_length(tmp_path):
    header = JournalHeader(take_id="x", rate=RATE, target=str(tmp_path / "x.flac"))
    with JournalWriter(Journal(tmp_path / "j", header)) as writer:
        with pytest.raises(CaptureError) as err:
            Recorder(writer, rate=RATE)
    assert "--seconds" in err.value.zh and "--seconds" in err.value.en


class DroppingRecorder(Recorder):
    """The host drops the stream once, a second in (what PortAudio 19.6 on ALSA does under
    load, PortAudio issue #758): the real stream is aborted from inside its callback."""

    def _callback(self, indata, outdata, frames, time_info, status):
        import sounddevice as sd

        if not self.restarts and self.captured >= RATE:
            raise sd.CallbackAbort
        return super()._callback(indata, outdata, frames, time_info, status)


@pytest.mark.audio
def test_a_dropped_stream_is_reopened_and_the_gap_flagged(tmp_path, headset):
    header = JournalHeader(take_id="drop", rate=RATE, target=str(tmp_path / "drop.flac"))
    journal = Journal(tmp_path / "j", header)
    with JournalWriter(journal) as writer:
        result = DroppingRecorder(writer, rate=RATE, max_seconds=2.0).run()
    # At least the drop we caused (a loaded machine's host may add its own).
    assert result.stream_restarts >= 1 and result.dropout_count >= 1
    assert len(result.segments) == result.stream_restarts + 1
    assert result.segments[0]["start_frame"] == 0
    assert result.stopped_by == "max_seconds"
    assert journal.frames_on_disk() == result.frames >= 2 * RATE
    found = _with_dropouts({"verdict": "accept", "reasons": []}, result.overflow_count,
                           result.stream_restarts)
    assert found["verdict"] == "retake" and "耳机连接中断" in found["reasons"][0]["zh"]


@pytest.mark.audio
def test_a_headset_without_48k_or_44k_is_a_clear_error(headset):
    from recorder.recording import choose_rate

    with pytest.raises(CaptureError) as err:
        choose_rate(device=99)          # no such device: no rate works
    assert err.value.code == "no_rate" and "48000" in err.value.zh and "44100" in err.value.en


class StallingRecorder(Recorder):
    """The computer freezes for 1.5 s two seconds in: the real stream's thread is blocked,
    so the host has nowhere to put the microphone's audio meanwhile."""

    def _callback(self, indata, outdata, frames, time_info, status):
        if not getattr(self, "stalled", False) and self.captured >= 2 * RATE:
            self.stalled = True
            time.sleep(1.5)
        return super()._callback(indata, outdata, frames, time_info, status)


@pytest.mark.audio
def test_audio_lost_without_an_overflow_report_is_still_flagged(tmp_path, headset):
    header = JournalHeader(take_id="stall", rate=RATE, target=str(tmp_path / "stall.flac"))
    with JournalWriter(Journal(tmp_path / "j", header)) as writer:
        result = StallingRecorder(writer, rate=RATE, max_seconds=4.0).run()
    # PortAudio on ALSA/PulseAudio may or may not report an overflow; either way it is a dropout.
    assert result.dropout_count >= 1
    if result.stream_restarts == 0:   # (a loaded machine's host may drop the stream as well)
        assert result.overflow_count >= 1 or result.lost_s > 0.25
    found = _with_dropouts({"verdict": "accept", "reasons": []}, result.overflow_count,
                           result.stream_restarts, result.lost_s)
    assert found["verdict"] == "retake" and found["reasons"][0]["code"] == "dropouts"


@pytest.mark.audio
def test_a_hung_stream_is_abandoned_and_the_take_goes_on(tmp_path, headset):
    """The callback thread stops coming back (as when PortAudio's ALSA poll sticks): the
    recorder must neither wait for it forever nor let it write once it wakes."""
    import threading

    release = threading.Event()

    class HungRecorder(Recorder):
        def _callback(self, indata, outdata, frames, time_info, status):
            if not getattr(self, "hung", False) and self.captured >= RATE:
                self.hung = True
                release.wait(30)          # blocks PortAudio's thread: abort cannot finish
                return
            return super()._callback(indata, outdata, frames, time_info, status)

    header = JournalHeader(take_id="hung", rate=RATE, target=str(tmp_path / "hung.flac"))
    journal = Journal(tmp_path / "j", header)
    try:
        with JournalWriter(journal) as writer:
            recorder = HungRecorder(writer, rate=RATE, max_seconds=2.0, stall_s=1.0,
                                    device_call_s=1.0)
            result = recorder.run()
        assert result.stopped_by == "max_seconds"
        assert result.stream_restarts >= 1 and result.dropout_count >= 1
        assert journal.frames_on_disk() == result.frames >= 2 * RATE
        assert recorder._abandoned            # the hung stream was given up, not waited for
    finally:
        release.set()
