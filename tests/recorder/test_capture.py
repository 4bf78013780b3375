"""A take on the real virtual headset: the song in the earphones, the student in the mic."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from recorder import takes
from recorder.capture import CaptureError, _with_dropouts, kept_path, record_take
from recorder.journal import journal_dir, sha256_of, sidecar_path
from tests.recorder.signals import NOTES, RATE, SONG_NOTE, accompaniment, dominant_notes, sung_melody

SITTING = "20261122-01"


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


def test_overflows_flag_dropouts_even_when_the_audio_sounds_fine():
    found = _with_dropouts({"verdict": "accept", "reasons": []}, overflows=2)
    assert found["verdict"] == "retake"
    [reason] = found["reasons"]
    assert reason["code"] == "dropouts" and "2" in reason["zh"] and "2" in reason["en"]
    assert _with_dropouts({"verdict": "accept", "reasons": []}, overflows=0)["verdict"] == "accept"
    already = {"verdict": "retake", "reasons": [{"code": "dropouts", "zh": "", "en": ""}]}
    assert len(_with_dropouts(already, overflows=1)["reasons"]) == 1


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


def test_silent_loss_message_names_the_seconds():
    found = _with_dropouts({"verdict": "accept", "reasons": []}, 0, 0, lost_s=1.4)
    assert found["verdict"] == "retake"
    assert "1.4 秒" in found["reasons"][0]["zh"] and "1.4 s" in found["reasons"][0]["en"]
    assert _with_dropouts({"verdict": "accept", "reasons": []}, 0, 0, lost_s=0.1)["verdict"] == "accept"
