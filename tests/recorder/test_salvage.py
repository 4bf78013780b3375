"""Salvage: a take a crash left behind is repaired, marked interrupted, and nothing is lost."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import sqlite_utils

from recorder import takes
from recorder.journal import (Journal, JournalError, JournalHeader, JournalWriter, journal_dir,
                              sha256_of, sidecar_path)
from recorder.salvage import salvage

RATE = 48000
SITTING = "20261122-01"


def crashed_take(data_dir: Path, audio: np.ndarray, *, db=None, take_id="a1", attempt=1,
                 fmt="flac") -> Journal:
    """What a crash leaves: the header, the PCM so far, a row in state 'recording'."""
    header = JournalHeader(take_id=take_id, rate=RATE, format=fmt, student="S0001",
                           sitting=SITTING, song="song-a", attempt=attempt,
                           target=str(data_dir / "recordings" / SITTING / f"S0001-{attempt}.{fmt}"))
    journal = Journal(journal_dir(data_dir), header)
    if db is not None:
        takes.begin(db, take_id=take_id, sitting_id=SITTING, student_code="S0001",
                    attempt=attempt, started_at=header.started_at, sample_rate=RATE)
    with JournalWriter(journal) as writer:   # closed, never finalized: as after kill -9
        if len(audio):
            writer.put(audio)
    return journal


def tone(seconds: float, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2").reshape(-1, 1)


def test_an_interrupted_take_is_repaired_marked_and_recorded(tmp_path, db):
    audio = tone(2.0)
    journal = crashed_take(tmp_path, audio, db=db)
    [result] = salvage(journal_dir(tmp_path), db=db)
    assert result.status == "repaired"
    assert "已修复" in result.zh and "repaired" in result.en
    data, rate = sf.read(result.path, dtype="int16", always_2d=True)
    assert rate == RATE and np.array_equal(data, audio)
    sidecar = json.loads(sidecar_path(result.path).read_text(encoding="utf-8"))
    assert sidecar["interrupted"] is True and sidecar["sha256"] == sha256_of(result.path)
    assert sidecar["student"] == "S0001" and sidecar["sitting"] == SITTING
    row = takes.get(db, "a1")
    assert row.state == "interrupted" and row.interrupted
    assert row.sha256 == sha256_of(result.path) and row.frames == len(audio)
    # The journal goes only once the file, sidecar and row exist.
    assert not journal.pcm_path.exists() and not journal.header_path.exists()
    assert salvage(journal_dir(tmp_path), db=db) == []


def test_a_torn_last_frame_is_cut_and_wav_is_honoured(tmp_path, db):
    audio = tone(0.7)
    journal = crashed_take(tmp_path, audio, db=db, fmt="wav")
    with open(journal.pcm_path, "ab") as f:
        f.write(b"\x01")
    [result] = salvage(journal_dir(tmp_path), db=db)
    assert result.path.suffix == ".wav" and result.frames == len(audio)
    assert np.array_equal(sf.read(result.path, dtype="int16", always_2d=True)[0], audio)


def test_the_verdict_of_the_repaired_file_is_stored(tmp_path, db):
    crashed_take(tmp_path, tone(1.0), db=db)
    seen = []

    def verify(path: Path) -> dict:
        seen.append(sf.info(str(path)).frames)
        return {"verdict": "accept", "reasons": []}

    [result] = salvage(journal_dir(tmp_path), db=db, verify=verify)
    assert seen == [RATE] and result.verdict == "accept"
    assert takes.get(db, "a1").counts     # an accepted salvaged take can be the one that counts


def test_a_failing_verifier_does_not_stop_the_salvage(tmp_path, db):
    crashed_take(tmp_path, tone(0.5), db=db, take_id="a1", attempt=1)
    crashed_take(tmp_path, tone(0.5), db=db, take_id="a2", attempt=2)

    def verify(path: Path) -> dict:
        raise RuntimeError("verifier bug")

    results = salvage(journal_dir(tmp_path), db=db, verify=verify)
    assert [r.status for r in results] == ["repaired", "repaired"]
    sidecar = json.loads(sidecar_path(results[0].path).read_text(encoding="utf-8"))
    assert "verifier bug" in sidecar["metrics"]["error"]


def test_a_take_still_recording_is_left_alone(tmp_path, db):
    header = JournalHeader(take_id="live", rate=RATE, target=str(tmp_path / "x.flac"),
                           student="S0001", sitting=SITTING)
    with JournalWriter(Journal(journal_dir(tmp_path), header)) as writer:
        writer.put(tone(0.2))
        [result] = salvage(journal_dir(tmp_path), db=db)
        assert result.status == "live"
        assert "仍在进行" in result.zh and "still recording" in result.en
    assert not (tmp_path / "x.flac").exists()


def test_nothing_on_disk_marks_the_take_failed_and_frees_the_retake(tmp_path, db):
    crashed_take(tmp_path, tone(0.0), db=db)
    [result] = salvage(journal_dir(tmp_path), db=db)
    assert result.status == "empty"
    assert "不计入重录次数" in result.zh and "does not use up a retake" in result.en
    assert takes.get(db, "a1").state == "failed"
    assert takes.next_attempt(db, SITTING, "S0001", retakes=0) == 2


def test_a_journal_without_its_row_gets_one(tmp_path, db):
    crashed_take(tmp_path, tone(0.3))        # the row was lost (a restored db)
    [result] = salvage(journal_dir(tmp_path), db=db)
    [row] = takes.takes_of(db, SITTING, "S0001")
    assert row.state == "interrupted" and row.path == str(result.path)


def test_an_unreadable_header_is_reported_and_every_file_kept(tmp_path, db):
    directory = journal_dir(tmp_path)
    directory.mkdir(parents=True)
    (directory / "bad.journal.json").write_text("{torn", encoding="utf-8")
    (directory / "bad.pcm").write_bytes(tone(0.1).tobytes())
    (directory / "orphan.pcm").write_bytes(tone(0.1).tobytes())
    results = salvage(directory, db=db)
    assert [r.status for r in results] == ["unreadable", "unreadable"]
    assert all("信息中心" in r.zh and "information center" in r.en for r in results)
    assert sorted(p.name for p in directory.iterdir()) == ["bad.journal.json", "bad.pcm", "orphan.pcm"]


def test_no_journal_dir_means_nothing_to_do(tmp_path):
    assert salvage(tmp_path / "missing") == []


# --- the real thing: kill -9 a recorder mid-take on the virtual headset ------------------------

def goertzel_level(x: np.ndarray, freq: float, rate: int) -> float:
    """Amplitude of ``freq`` in ``x`` (full scale = 1)."""
    x = np.asarray(x, dtype="float64").ravel() / 32768
    n = np.arange(len(x))
    return float(2 * abs(np.dot(x, np.exp(-2j * np.pi * freq * n / rate))) / len(x))


@pytest.mark.audio
def test_sigkill_mid_take_loses_at_most_a_second(tmp_path, db, sing_into_mic):
    freq = 1234.0
    mic = sing_into_mic(tone(60.0, freq, 0.5).ravel() / 32767 * 1.0, RATE)  # a student singing
    jdir = tmp_path / "data" / "recordings" / ".journal"
    proc = subprocess.Popen(
        [sys.executable, "-m", "recorder.capture", "--journal-dir", str(jdir),
         "--target", str(tmp_path / "data" / "kept.flac"), "--seconds", "60", "--keep-journal"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    captured = 0
    try:
        for line in proc.stdout:   # progress lines; the stream delivers audio at real time
            captured = json.loads(line)["captured"]
            if captured >= 4 * RATE:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert mic.poll() is None, "the microphone feed stopped before the kill"
    assert captured >= 4 * RATE, proc.stderr.read()

    [result] = salvage(jdir, db=db)
    assert result.status == "repaired"
    data, rate = sf.read(result.path, dtype="int16", always_2d=True)   # a valid FLAC
    assert rate == RATE
    # Everything the callback had captured when the kill was sent, but the last second.
    assert len(data) >= captured - RATE
    # And the audio is what was sung, right up to the end of the file.
    last = data[-RATE // 2:, 0]
    assert goertzel_level(last, freq, RATE) > 0.1
    assert takes.takes_of(db, "DEBUG", "DEBUG")[0].interrupted


def test_a_repair_that_cannot_write_keeps_the_journal_for_next_time(tmp_path, db):
    journal = crashed_take(tmp_path, tone(0.5), db=db)
    (tmp_path / "recordings" / SITTING).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "recordings" / SITTING).write_text("a file where the folder should be")
    [result] = salvage(journal_dir(tmp_path), db=db)
    assert result.status == "failed"
    assert "原始数据已保留" in result.zh and "raw data is kept" in result.en
    assert journal.frames_on_disk() == int(0.5 * RATE)
    assert takes.get(db, "a1").state == "recording"
    (tmp_path / "recordings" / SITTING).unlink()
    [again] = salvage(journal_dir(tmp_path), db=db)
    assert again.status == "repaired" and again.frames == int(0.5 * RATE)


def test_a_database_without_the_takes_table_is_refused_before_touching_files(tmp_path):
    journal = crashed_take(tmp_path, tone(0.2))
    bare = sqlite_utils.Database(sqlite3.connect(str(tmp_path / "bare.db")))
    with pytest.raises(JournalError) as err:
        salvage(journal_dir(tmp_path), db=bare)
    assert "升级" in err.value.zh and "upgrade" in err.value.en
    assert journal.frames_on_disk() == int(0.2 * RATE)


def test_a_take_kept_in_full_before_the_crash_is_not_downgraded(tmp_path, db):
    from recorder.journal import finalize, sidecar_for, write_json_durably

    journal = crashed_take(tmp_path, tone(0.5), db=db)
    kept = finalize(journal)                       # the flow got this far …
    write_json_durably(sidecar_path(kept.path),
                       sidecar_for(journal.header, kept, interrupted=False, verdict="accept"))
    takes.keep(db, "a1", path=str(kept.path), sha256=kept.sha256, verdict="accept")
    # … and the power went before the journal was removed.
    [result] = salvage(journal_dir(tmp_path), db=db)
    assert result.status == "already_kept"
    row = takes.get(db, "a1")
    assert row.state == "kept" and not row.interrupted and row.counts
    assert not journal.pcm_path.exists()
    assert json.loads(sidecar_path(kept.path).read_text(encoding="utf-8"))["interrupted"] is False
