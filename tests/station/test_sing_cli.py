"""`station sing record` and `station sing salvage` on the real virtual headset.

A generated voice is played into the virtual microphone while the command records; the
roster, sitting and student codes are generated, never real people.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import soundfile as sf
import sqlite_utils

from recorder.journal import Journal, JournalHeader, sha256_of, sidecar_path
from tests.station.servers import import_roster
from tests.station.singing import RATE, demo_voice

SECONDS = "6"


def db_of(data_dir: Path) -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(str(data_dir / "station.db")))


@pytest.fixture
def room(station, data_dir, tmp_path):
    """A roster of two generated students and an open singing sitting."""
    import_roster(station, tmp_path / "roster.csv",
                  "学籍号,姓名,性别,年级,班级\n4001,测试甲,男,四年级,4(1)\n4002,测试乙,女,四年级,4(1)\n")
    sitting = station("session", "open", "--kind", "singing", "--json", check=True)
    return json.loads(sitting.stdout)["id"]


@pytest.mark.audio
def test_a_sung_melody_is_recorded_accepted_and_stored(room, station, data_dir, sing_into_mic):
    # The voice outlasts the take: it must still be singing when the take ends.
    singer = sing_into_mic(demo_voice(30.0), RATE)
    done = station("sing", "record", "--student", "4001", "--seconds", SECONDS, "--json")
    assert singer.poll() is None, "the singing stopped before the take ended"
    assert done.returncode in (0, 1), done.stderr
    doc = json.loads(done.stdout)
    take = doc["take"]
    path = Path(doc["path"])
    assert path.suffix == ".flac" and path.is_relative_to(data_dir)
    info = sf.info(str(path))
    assert info.format == "FLAC" and info.channels == 1 and info.samplerate in (48000, 44100)
    assert doc["sha256"] == sha256_of(path)
    row = db_of(data_dir)["takes"].get(take["id"])
    assert row["sha256"] == doc["sha256"] and row["path"] == str(path) and row["sitting_id"] == room
    sidecar = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    assert sidecar["student"] == "4001" and sidecar["song"] == "demo"
    # The verifier heard singing. PortAudio 19.6 on a loaded machine can lose audio: such
    # a take is flagged `dropouts` (exit 1), never accepted as if whole.
    assert sidecar["metrics"]["verdict"] == "accept", sidecar["metrics"]["reasons"]
    if take["dropouts"]:
        assert done.returncode == 1 and doc["verdict"] == "retake"
    else:
        assert done.returncode == 0 and doc["verdict"] == "accept" and take["counts"]


@pytest.mark.audio
def test_silence_is_rejected_as_silent_with_exit_1(room, station, data_dir, headset):
    from recorder.analysis.reasons import reason

    done = station("sing", "record", "--student", "4002", "--seconds", SECONDS)
    assert done.returncode == 1, done.stderr
    # What the proctor reads: the reason in Chinese, then in English.
    silent = reason("silent")
    assert silent["zh"] in done.stdout and silent["en"] in done.stdout
    assert done.stdout.index(silent["zh"]) < done.stdout.index(silent["en"])
    # A rejected take is kept all the same, with its reasons.
    [row] = db_of(data_dir)["takes"].rows_where("student_code = ?", ["4002"])
    assert Path(row["path"]).exists() and row["state"] == "kept" and row["verdict"] != "accept"
    assert "silent" in [r["code"] for r in json.loads(row["reasons"])]


def test_a_student_not_in_the_roster_is_refused_with_exit_2(room, station, data_dir):
    done = station("sing", "record", "--student", "9999", "--seconds", SECONDS)
    assert done.returncode == 2
    assert "不在名册" in done.stderr and "not in the roster" in done.stderr
    assert "takes" not in db_of(data_dir).table_names() or db_of(data_dir)["takes"].count == 0


def test_no_open_singing_sitting_is_refused_with_exit_2(station, data_dir, tmp_path):
    import_roster(station, tmp_path / "roster.csv", "学籍号,姓名,性别,年级\n4001,测试甲,男,四年级\n")
    station("session", "open", "--kind", "pe", "--item", "sit_and_reach", check=True)
    done = station("sing", "record", "--student", "4001", "--seconds", SECONDS)
    assert done.returncode == 2
    assert "没有进行中的演唱场次" in done.stderr and "No singing sitting is open" in done.stderr


def test_an_unknown_song_is_refused_with_exit_2(room, station):
    done = station("sing", "record", "--student", "4001", "--song", "no-such-song")
    assert done.returncode == 2
    assert "找不到歌曲" in done.stderr and "No song" in done.stderr


def _add_take(db, sitting: str, code: str, attempt: int, verdict: str) -> None:
    from recorder import takes

    takes.begin(db, take_id=f"t{attempt}", sitting_id=sitting, student_code=code, attempt=attempt,
                started_at="2026-11-22T08:00:00Z")
    takes.keep(db, f"t{attempt}", path=f"/nowhere/{code}-{attempt}.flac", verdict=verdict,
               reasons=[{"code": "too_quiet", "zh": "声音太小", "en": "too quiet"}])


def test_the_retake_limit_is_refused_with_exit_2_and_the_reason(room, station, data_dir):
    (data_dir / "station.toml").write_text("[singing]\nretake_limit = 1\n", encoding="utf-8")
    db = db_of(data_dir)
    _add_take(db, room, "4001", 1, "retake")
    _add_take(db, room, "4001", 2, "retake")
    done = station("sing", "record", "--student", "4001", "--seconds", SECONDS)
    assert done.returncode == 2
    assert "重录上限" in done.stderr and "retake limit" in done.stderr
    assert db["takes"].count == 2        # nothing was recorded


def test_bad_seconds_are_refused_with_exit_2(room, station):
    done = station("sing", "record", "--student", "4001", "--seconds", "-3")
    assert done.returncode == 2
    assert "录音时长" in done.stderr and "not possible" in done.stderr


def test_salvage_repairs_an_interrupted_take_and_marks_it(room, station, data_dir):
    from recorder import takes
    from recorder.capture import kept_path
    from recorder.journal import journal_dir

    # What a power cut leaves: a row in state `recording` and a journal with 2 s of audio.
    target = kept_path(data_dir, room, "4001", 1, "flac")
    header = JournalHeader(take_id="cut1", rate=RATE, target=str(target), format="flac",
                           student="4001", sitting=room, attempt=1, device="test")
    journal = Journal(journal_dir(data_dir), header)
    journal.directory.mkdir(parents=True, exist_ok=True)
    journal.header_path.write_text(json.dumps(header.to_json()), encoding="utf-8")
    pcm = (demo_voice(2.0) * 32767).astype("<i2")
    journal.pcm_path.write_bytes(pcm.tobytes())
    db = db_of(data_dir)
    takes.begin(db, take_id="cut1", sitting_id=room, student_code="4001", attempt=1,
                started_at=header.started_at)

    done = station("sing", "salvage", "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    assert result["status"] == "repaired" and result["student"] == "4001"
    assert "中断" in result["zh"] and "interrupted" in result["en"]
    assert sf.info(str(target)).frames == len(pcm)
    row = db["takes"].get("cut1")
    assert row["state"] == "interrupted" and row["interrupted"] and row["sha256"] == sha256_of(target)
    assert json.loads(sidecar_path(target).read_text(encoding="utf-8"))["interrupted"] is True
    # Run again: nothing left to repair, and the take is not touched.
    again = station("sing", "salvage")
    assert again.returncode == 0 and "没有需要修复的录音" in again.stdout
    assert db["takes"].get("cut1")["sha256"] == row["sha256"]


@pytest.mark.audio
def test_ctrl_c_is_the_proctors_stop_and_the_take_is_kept(room, station, data_dir, sing_into_mic):
    import os
    import signal
    import subprocess
    import time

    from recorder.journal import journal_dir

    sing_into_mic(demo_voice(60.0), RATE)
    from tests.helpers import station_command

    proc = subprocess.Popen([*station_command(), "sing", "record", "--student", "4001", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    try:
        # Wait for 6 s of audio on disk (not for wall time: the machine may be slow).
        deadline = time.monotonic() + 90
        while sum(p.stat().st_size for p in journal_dir(data_dir).glob("*.pcm")) < 6 * RATE * 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the take never reached 6 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 1), err
    doc = json.loads(out)
    assert doc["sidecar"]["stopped_by"] == "stop"
    assert 6 <= doc["take"]["duration_s"] < 30         # the 37 s song was cut short, and kept
    assert Path(doc["path"]).exists() and doc["take"]["state"] == "kept"
