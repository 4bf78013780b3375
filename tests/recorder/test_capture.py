"""A take on the real virtual headset: the song in the earphones, the student in the mic."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from recorder import takes
from recorder.capture import (Accompaniment, CaptureError, Recorder, _with_dropouts, kept_path,
                              record_take, xcorr_offset)
from recorder.journal import Journal, JournalHeader, JournalWriter, journal_dir, sha256_of, sidecar_path

RATE = 48000
SITTING = "20261122-01"
NOTES = (262.0, 330.0, 392.0, 523.0)     # C4 E4 G4 C5: the tune the student sings
SONG_NOTE = 150.0                        # the accompaniment's drone, below the tune


def sung_melody(seconds: float, rate: int = RATE) -> np.ndarray:
    """A child's voice, roughly: each note with harmonics and vibrato, looping for ``seconds``."""
    t = np.arange(int(seconds * rate)) / rate
    note = np.array(NOTES)[(t // 0.5).astype(int) % len(NOTES)]
    phase = 2 * np.pi * np.cumsum(note * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / rate
    voice = sum(a * np.sin(k * phase) for k, a in ((1, 0.5), (2, 0.2), (3, 0.1)))
    return 0.8 * voice


def accompaniment(path: Path, seconds: float, rate: int) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * SONG_NOTE * t), rate, subtype="PCM_16")
    return path


def dominant_notes(samples: np.ndarray, rate: int) -> set[float]:
    """The note nearest to the spectral peak of each 0.25 s frame with sound in it."""
    found = set()
    size = rate // 4
    for start in range(0, len(samples) - size, size):
        frame = samples[start:start + size] * np.hanning(size)
        if np.sqrt(np.mean(frame ** 2)) < 1e-3:
            continue
        spectrum = np.abs(np.fft.rfft(frame))
        peak = np.fft.rfftfreq(size, 1 / rate)[np.argmax(spectrum)]
        nearest = min(NOTES + (SONG_NOTE,), key=lambda n: abs(n - peak))
        if abs(nearest - peak) < 8:
            found.add(nearest)
    return found


def stand_in_verify(path: Path) -> dict:
    """Until recorder.verify lands: accept a file that is loud enough and holds the tune."""
    samples, rate = sf.read(str(path), dtype="float64")
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(samples ** 2)) + 1e-12)
    notes = dominant_notes(samples, rate)
    ok = rms_dbfs > -40 and set(NOTES) <= notes
    return {"path": str(path), "rms_dbfs": rms_dbfs, "notes": sorted(notes),
            "verdict": "accept" if ok else "reject",
            "reasons": [] if ok else [{"code": "no_singing", "zh": "没有听到歌声", "en": "no singing heard"}]}


@pytest.mark.audio
def test_a_sung_melody_is_recorded_while_the_song_plays_and_accepted(tmp_path, db, headset,
                                                                   sing_into_mic):
    song = accompaniment(tmp_path / "song.wav", 3.0, 44100)   # resampled to the stream's 48 kHz
    ear = tmp_path / "ear.wav"
    listener = subprocess.Popen(["parec", f"--device={headset['earphones']}.monitor",
                                 "--file-format=wav", "--rate=48000", "--channels=1",
                                 "--format=s16le", str(ear)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mic = sing_into_mic(sung_melody(30.0), RATE)   # outlasts even a restarted stream
    try:
        outcome = record_take(db, data_dir=tmp_path / "data", sitting_id=SITTING,
                              student_code="S0001", song_id="song-a", accompaniment=song,
                              verify=stand_in_verify)
    finally:
        listener.send_signal(signal.SIGINT)
        listener.wait(10)
    assert mic.poll() is None, "the singing stopped before the take ended"
    take = outcome.take
    path = Path(take.path)
    assert path == kept_path(tmp_path / "data", SITTING, "S0001", 1, "flac")
    info = sf.info(str(path))
    assert info.format == "FLAC" and info.channels == 1 and info.samplerate == RATE
    # Stops by itself at the end of the song plus a one-second tail.
    assert outcome.capture.stopped_by == "song_end"
    assert info.frames == 4 * RATE
    assert take.state == "kept" and take.sha256 == sha256_of(path)
    # The verifier heard the whole tune and accepted it …
    sidecar = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    assert sidecar["metrics"]["verdict"] == "accept", sidecar["metrics"]
    # … and the take stands, unless the host lost audio on the way (PortAudio 19.6 on a
    # loaded machine can): then it is flagged, never accepted as if whole.
    if not take.dropouts:
        assert take.verdict == "accept" and take.counts
    else:
        assert take.verdict == "retake" and not take.counts
        assert [r["code"] for r in take.reasons] == ["dropouts"]
    assert take.offset_latency_s is not None and 0 < take.offset_latency_s < 3
    assert take.offset_method in ("time_info", "stream_latency", "xcorr")

    for key, value in {"student": "S0001", "sitting": SITTING, "song": "song-a",
                       "sample_rate": RATE, "accompaniment_rate": 44100,
                       "overflow_count": take.overflow_count, "lost_s": take.lost_s,
                       "stream_restarts": take.stream_restarts, "sha256": take.sha256,
                       "interrupted": False, "verdict": take.verdict}.items():
        assert sidecar[key] == value, key
    assert sidecar["device"] and sidecar["offsets"]["latency_s"] == take.offset_latency_s
    assert sidecar["metrics"]["notes"]
    # The earphones heard the song (it was played, not just recorded over).
    heard, rate = sf.read(str(ear), dtype="float64")
    assert SONG_NOTE in dominant_notes(heard, rate)
    # The journal is gone once the take is kept.
    assert not list(journal_dir(tmp_path / "data").glob("*.pcm"))


@pytest.mark.audio
def test_a_silent_microphone_is_recorded_and_rejected_by_the_verifier(tmp_path, db, headset):
    outcome = record_take(db, data_dir=tmp_path / "data", sitting_id=SITTING, student_code="S0002",
                          max_seconds=1.5, verify=stand_in_verify, fmt="wav")
    assert outcome.capture.stopped_by == "max_seconds"
    assert Path(outcome.take.path).suffix == ".wav"
    assert outcome.take.verdict == "reject" and not outcome.take.counts
    assert outcome.take.offset_latency_s is None    # no song, nothing to line up


@pytest.mark.audio
def test_the_proctor_can_stop_a_take(tmp_path, db, headset):
    import threading

    stop = threading.Event()
    song = accompaniment(tmp_path / "song.wav", 30.0, RATE)

    def progress(recorder: Recorder) -> None:
        if recorder.captured >= RATE:   # one second in, the proctor presses stop
            stop.set()

    outcome = record_take(db, data_dir=tmp_path / "data", sitting_id=SITTING, student_code="S0003",
                          accompaniment=song, verify=stand_in_verify, stop=stop, progress=progress)
    assert outcome.capture.stopped_by == "stop"
    assert RATE <= outcome.take.frames < 20 * RATE


def test_retake_limit_is_checked_before_the_headset_is_touched(tmp_path, db):
    for attempt in (1, 2, 3):
        takes.begin(db, take_id=f"t{attempt}", sitting_id=SITTING, student_code="S0001",
                    attempt=attempt, started_at="2026-11-22T09:00:00Z")
        takes.keep(db, f"t{attempt}", verdict="retake", path=f"/r/{attempt}.flac")
    with pytest.raises(takes.TakeError) as err:
        record_take(db, data_dir=tmp_path / "data", sitting_id=SITTING, student_code="S0001",
                    max_seconds=1, verify=stand_in_verify)
    assert err.value.code == "retake_limit"
    assert not journal_dir(tmp_path / "data").exists()


@pytest.mark.audio
def test_an_unreadable_song_fails_the_take_clearly_and_frees_the_retake(tmp_path, db, headset):
    bad = tmp_path / "song.flac"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(CaptureError) as err:
        record_take(db, data_dir=tmp_path / "data", sitting_id=SITTING, student_code="S0001",
                    accompaniment=bad, verify=stand_in_verify, retakes=0)
    assert err.value.code == "bad_song" and "伴奏" in err.value.zh and "accompaniment" in err.value.en
    [take] = takes.takes_of(db, SITTING, "S0001")
    assert take.state == "failed"
    assert takes.next_attempt(db, SITTING, "S0001", retakes=0) == 2
    assert not list(journal_dir(tmp_path / "data").iterdir())


def test_a_recording_needs_a_song_or_a_length(tmp_path):
    header = JournalHeader(take_id="x", rate=RATE, target=str(tmp_path / "x.flac"))
    with JournalWriter(Journal(tmp_path / "j", header)) as writer:
        with pytest.raises(CaptureError) as err:
            Recorder(writer, rate=RATE)
    assert "--seconds" in err.value.zh and "--seconds" in err.value.en


def test_overflows_flag_dropouts_even_when_the_audio_sounds_fine():
    found = _with_dropouts({"verdict": "accept", "reasons": []}, overflows=2)
    assert found["verdict"] == "retake"
    [reason] = found["reasons"]
    assert reason["code"] == "dropouts" and "2" in reason["zh"] and "2" in reason["en"]
    assert _with_dropouts({"verdict": "accept", "reasons": []}, overflows=0)["verdict"] == "accept"
    already = {"verdict": "retake", "reasons": [{"code": "dropouts", "zh": "", "en": ""}]}
    assert len(_with_dropouts(already, overflows=1)["reasons"]) == 1


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


class DroppingRecorder(Recorder):
    """The host drops the stream once, a second in (what PortAudio 19.6 on ALSA does under
    load, PortAudio issue #758): the real stream is aborted from inside its callback."""

    def _callback(self, indata, outdata, frames, time_info, status):
        import sounddevice as sd

        if not self.restarts and self.captured >= RATE:
            raise sd.CallbackAbort
        super()._callback(indata, outdata, frames, time_info, status)


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


@pytest.fixture
def leaky_headset(headset, monkeypatch):
    """A private headset whose earphones leak into its microphone (module-loopback), on
    sinks of this test's own, so the shared qm_ear/qm_mic of other tests are untouched."""
    tag = f"qmrec{os.getpid()}"
    loaded = []

    def load(*args: str) -> None:
        out = subprocess.run(["pactl", "load-module", *args], capture_output=True, text=True,
                             timeout=10)
        assert out.returncode == 0, out.stderr
        loaded.append(out.stdout.strip())

    try:
        load("module-null-sink", f"sink_name={tag}_ear", "rate=48000")
        load("module-null-sink", f"sink_name={tag}_mic", "rate=48000")
        load("module-loopback", f"source={tag}_ear.monitor", f"sink={tag}_mic", "latency_msec=60")
        # Read by the ALSA pulse plugin each time a stream opens.
        monkeypatch.setenv("PULSE_SINK", f"{tag}_ear")
        monkeypatch.setenv("PULSE_SOURCE", f"{tag}_mic.monitor")
        yield tag
    finally:
        for index in reversed(loaded):
            subprocess.run(["pactl", "unload-module", index], capture_output=True, timeout=10)


@pytest.mark.audio
def test_offset_measured_from_the_earphone_bleed_on_a_real_stream(tmp_path, db, leaky_headset):
    rng = np.random.default_rng(7)
    t = np.arange(3 * RATE) / RATE
    song = tmp_path / "song.wav"
    sf.write(str(song), 0.3 * np.sin(2 * np.pi * SONG_NOTE * t) + 0.1 * rng.standard_normal(len(t)),
             RATE, subtype="PCM_16")
    outcome = record_take(db, data_dir=tmp_path / "data", sitting_id=SITTING, student_code="S0004",
                          accompaniment=song, verify=lambda p: {"verdict": "accept", "reasons": []})
    take = outcome.take
    assert take.offset_method == "xcorr"
    # The bleed travels the earphone path (PortAudio's figure) plus the loopback's 60 ms.
    assert take.offset_latency_s is not None
    assert take.offset_latency_s < take.offset_xcorr_s < take.offset_latency_s + 0.5
    assert outcome.sidecar["offsets"]["xcorr_s"] == take.offset_xcorr_s


@pytest.mark.audio
def test_a_headset_without_48k_or_44k_is_a_clear_error(headset):
    from recorder.capture import choose_rate

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
        super()._callback(indata, outdata, frames, time_info, status)


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


def test_silent_loss_message_names_the_seconds():
    found = _with_dropouts({"verdict": "accept", "reasons": []}, 0, 0, lost_s=1.4)
    assert found["verdict"] == "retake"
    assert "1.4 秒" in found["reasons"][0]["zh"] and "1.4 s" in found["reasons"][0]["en"]
    assert _with_dropouts({"verdict": "accept", "reasons": []}, 0, 0, lost_s=0.1)["verdict"] == "accept"


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
            super()._callback(indata, outdata, frames, time_info, status)

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
