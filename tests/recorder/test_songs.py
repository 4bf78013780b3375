"""The song catalog and the generated demo song."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from recorder.songs import (Note, SongCatalog, SongError, SongNotFound, builtin_songs_dir,
                            load_song)

ROOT = Path(__file__).resolve().parents[2]
RATE = 48000


def accompaniment(directory: Path, name: str = "tune.flac", seconds: float = 4.0,
                  channels: int = 1) -> Path:
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.2 * np.sin(2 * np.pi * 262 * t)
    sf.write(str(directory / name), np.stack([x] * channels, 1) if channels > 1 else x, RATE)
    return directory / name


def song_file(directory: Path, stem: str = "tune", **fields) -> Path:
    doc = {"id": stem, "title": "测试歌曲", "audio": f"{stem}.flac",
           "melody": [{"note": "C4", "start": 0.5, "duration": 0.5},
                      {"note": 62, "start": 1.0, "duration": 0.5},
                      {"note": "F#4", "start": 1.5, "duration": 0.5},
                      {"note": "Bb3", "start": 2.0, "duration": 1.0}]}
    doc.update(fields)
    doc = {k: v for k, v in doc.items() if v is not None}
    path = directory / f"{stem}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


# -- the demo song that ships -----------------------------------------------------------------

def test_demo_song_ships_with_a_singable_reference_melody():
    catalog = SongCatalog()
    assert catalog.problems == []
    demo = catalog.get("demo")
    assert "demo" in catalog and [s.id for s in catalog.list()] == ["demo"]
    assert 30 <= demo.duration_s <= 40
    samples, rate = demo.load_accompaniment()
    assert rate == RATE and samples.ndim == 1 and len(samples) / rate == pytest.approx(demo.duration_s)
    assert -30 < 20 * np.log10(np.sqrt(np.mean(samples ** 2))) < -6  # audible, not clipped
    assert np.max(np.abs(samples)) < 0.99
    pitches = [n.midi for n in demo.melody]
    assert len(pitches) >= 30
    assert 60 <= min(pitches) and max(pitches) <= 74  # C4..D5: inside a child's range
    assert demo.melody[0].start > 3.0                  # an introduction before singing
    assert all(a.start + a.duration <= b.start for a, b in zip(demo.melody, demo.melody[1:]))
    assert demo.melody[-1].start + demo.melody[-1].duration <= demo.duration_s
    assert demo.as_dict()["has_melody"] is True


def test_demo_song_is_what_the_script_generates(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make-demo-song"),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    shipped = builtin_songs_dir()
    assert json.loads((tmp_path / "demo.json").read_text(encoding="utf-8")) == \
        json.loads((shipped / "demo.json").read_text(encoding="utf-8"))
    fresh, _ = sf.read(str(tmp_path / "demo.flac"), dtype="int16")
    committed, _ = sf.read(str(shipped / "demo.flac"), dtype="int16")
    assert np.array_equal(fresh, committed)


def test_accompaniment_is_read_once_and_shared_read_only():
    demo = SongCatalog().get("demo")
    first, _ = demo.load_accompaniment()
    again, _ = demo.load_accompaniment()
    assert first is again
    with pytest.raises(ValueError):
        first[0] = 1.0


# -- a songs directory --------------------------------------------------------------------------

def test_song_with_note_names_and_numbers(tmp_path):
    accompaniment(tmp_path)
    song = load_song(song_file(tmp_path, title_en="Test Song", duration_s=4.0))
    assert [n.midi for n in song.melody] == [60, 62, 66, 58]
    assert song.melody[0] == Note(midi=60.0, start=0.5, duration=0.5)
    assert song.title == "测试歌曲" and song.title_en == "Test Song"
    assert song.duration_s == pytest.approx(4.0)


def test_duration_and_melody_are_optional_and_stereo_is_mixed(tmp_path):
    accompaniment(tmp_path, seconds=3.0, channels=2)
    song = load_song(song_file(tmp_path, melody=None))
    assert song.duration_s == pytest.approx(3.0) and song.melody == ()
    samples, rate = song.load_accompaniment()
    assert samples.ndim == 1 and rate == RATE


def test_catalog_reads_several_dirs_first_wins_and_lists_by_id(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b" / "sub"
    a.mkdir()
    b.mkdir(parents=True)
    for d in (a, b):
        accompaniment(d, "x.flac")
        accompaniment(d, "y.flac")
    song_file(a, "y", title="A 的歌")
    song_file(b, "y", title="B 的歌")
    song_file(b, "x")
    catalog = SongCatalog([a, tmp_path / "b"])
    assert [s.id for s in catalog.list()] == ["x", "y"]
    assert catalog.get("y").title == "A 的歌"
    assert len(catalog.problems) == 1 and "y" in catalog.problems[0]


def test_unknown_song_names_the_choices(tmp_path):
    accompaniment(tmp_path)
    song_file(tmp_path)
    with pytest.raises(SongNotFound) as err:
        SongCatalog([tmp_path]).get("nope")
    assert "nope" in str(err.value) and "tune" in str(err.value)
    assert "没有" in str(err.value) and "No song" in str(err.value)


BAD = {
    "no-id": (dict(id=None), "id"),
    "empty-title": (dict(title="  "), "title"),
    "no-audio-file": (dict(audio="missing.flac"), "audio"),
    "mp3": (dict(audio="tune.mp3"), "audio"),
    "duration-wrong": (dict(duration_s=30), "duration_s"),
    "duration-text": (dict(duration_s="4"), "duration_s"),
    "bad-note-name": (dict(melody=[{"note": "H9", "start": 0, "duration": 1}]), "melody[0].note"),
    "midi-out-of-range": (dict(melody=[{"note": 200, "start": 0, "duration": 1}]), "melody[0].note"),
    "negative-start": (dict(melody=[{"note": 60, "start": -1, "duration": 1}]), "melody[0]"),
    "after-the-end": (dict(melody=[{"note": 60, "start": 3.5, "duration": 5}]), "melody[0]"),
    "note-missing-field": (dict(melody=[{"note": 60, "start": 0}]), "melody[0]"),
}


@pytest.mark.parametrize("fields, where", BAD.values(), ids=BAD.keys())
def test_bad_song_file_names_file_and_field_and_spares_the_others(tmp_path, fields, where):
    accompaniment(tmp_path)
    accompaniment(tmp_path, "good.flac")
    (tmp_path / "tune.mp3").write_bytes(b"ID3")
    bad = song_file(tmp_path, **fields)
    song_file(tmp_path, "good")
    with pytest.raises(SongError) as err:
        load_song(bad)
    message = str(err.value)
    assert str(bad) in message and where in message
    assert "歌曲文件" in message and "Song file" in message
    catalog = SongCatalog([tmp_path])
    assert [s.id for s in catalog.list()] == ["good"]
    assert catalog.problems == [message]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe\x00garbage"])
def test_unreadable_song_json(tmp_path, content):
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(SongError) as err:
        load_song(path)
    assert "broken.json" in str(err.value)


def test_unreadable_accompaniment(tmp_path):
    (tmp_path / "tune.flac").write_bytes(b"fLaC not really")
    with pytest.raises(SongError) as err:
        load_song(song_file(tmp_path))
    assert "audio" in str(err.value) and "tune.flac" in str(err.value)


def test_utf8_bom_json_is_accepted(tmp_path):
    accompaniment(tmp_path)
    path = song_file(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # Windows Notepad saves this way
    assert load_song(path).id == "tune"
