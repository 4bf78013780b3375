"""The crash-safe journal: audio reaches the disk while it is captured, and becomes FLAC/WAV."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.journal import (Journal, JournalError, JournalHeader, JournalWriter, finalize,
                              sha256_of, sidecar_path)

RATE = 48000


def make_journal(directory: Path, take_id: str = "t1", fmt: str = "flac", channels: int = 1) -> Journal:
    header = JournalHeader(take_id=take_id, rate=RATE, channels=channels, format=fmt,
                           target=str(directory / "kept" / f"S0001-1.{fmt}"),
                           student="S0001", sitting="20261122-01", song="song-a", attempt=1)
    return Journal(directory / "journal", header)


def melody(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    return (x * 32767).astype("<i2").reshape(-1, 1)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    """Poll for a condition the writer thread brings about (generous, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_header_is_on_disk_before_the_first_sample(tmp_path):
    journal = make_journal(tmp_path)
    with JournalWriter(journal):
        loaded = Journal.load(journal.header_path)
        assert loaded.header == journal.header
        assert journal.frames_on_disk() == 0


def test_audio_reaches_the_file_while_the_take_is_still_recording(tmp_path):
    journal = make_journal(tmp_path)
    audio = melody(1.0)
    writer = JournalWriter(journal).open()
    try:
        for block in np.array_split(audio, 20):
            writer.put(block.copy())
        # Not closed yet: a crash now must find the audio in the file, not in memory.
        assert wait_for(lambda: journal.frames_on_disk() == len(audio))
        on_disk = journal.read_frames(0, len(audio))
        assert np.array_equal(on_disk, audio)
    finally:
        writer.close()


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_finalize_keeps_every_sample_and_hashes_the_file(tmp_path, fmt):
    journal = make_journal(tmp_path, fmt=fmt)
    audio = melody(2.5)
    with JournalWriter(journal) as writer:
        for block in np.array_split(audio, 37):
            writer.put(block.copy())
    kept = finalize(journal)
    assert kept.path == Path(journal.header.target)
    data, rate = sf.read(kept.path, dtype="int16", always_2d=True)
    assert rate == RATE
    assert np.array_equal(data, audio)
    assert kept.sha256 == sha256_of(kept.path)
    assert kept.frames == len(audio) and kept.duration_s == pytest.approx(2.5)
    assert sf.info(str(kept.path)).format == fmt.upper()
    # No temp file left beside it; the journal stays until the caller discards it.
    assert [p.name for p in kept.path.parent.iterdir()] == [kept.path.name]
    assert journal.pcm_path.exists()
    journal.discard()
    assert not any(journal.directory.iterdir())


def test_torn_last_frame_is_dropped(tmp_path):
    journal = make_journal(tmp_path)
    audio = melody(0.5)
    with JournalWriter(journal) as writer:
        writer.put(audio.copy())
    with open(journal.pcm_path, "ab") as f:
        f.write(b"\x7f")  # half a sample: a power cut mid-write
    assert journal.frames_on_disk() == len(audio)
    data, _ = sf.read(finalize(journal).path, dtype="int16", always_2d=True)
    assert np.array_equal(data, audio)


def test_a_second_writer_on_the_same_take_is_refused(tmp_path):
    journal = make_journal(tmp_path)
    with JournalWriter(journal):
        assert journal.is_live()
        with pytest.raises(JournalError) as err:
            JournalWriter(Journal(journal.directory, journal.header)).open()
        assert "另一个程序" in err.value.zh and "another program" in err.value.en
    assert not journal.is_live()


def test_unsupported_format_is_refused_with_a_clear_message(tmp_path):
    journal = make_journal(tmp_path)
    with JournalWriter(journal) as writer:
        writer.put(melody(0.1))
    with pytest.raises(JournalError) as err:
        finalize(journal, fmt="mp3")
    assert "mp3" in err.value.zh and "flac or wav" in err.value.en
    assert journal.frames_on_disk() == int(0.1 * RATE)  # nothing lost


def test_empty_journal_is_refused_not_written_as_a_broken_file(tmp_path):
    journal = make_journal(tmp_path)
    with JournalWriter(journal):
        pass
    with pytest.raises(JournalError) as err:
        finalize(journal)
    assert "重新录制" in err.value.zh and "Record the take again" in err.value.en
    assert not Path(journal.header.target).exists()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", json.dumps({"take_id": "x"}),
                                     json.dumps({"take_id": "x", "rate": 48000, "target": "/a.flac",
                                                 "sample_format": "f32le"})])
def test_bad_header_gives_a_bilingual_error(tmp_path, content):
    path = tmp_path / "x.journal.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(JournalError) as err:
        Journal.load(path)
    assert "信息中心" in err.value.zh and "information center" in err.value.en
    assert path.read_text(encoding="utf-8") == content


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_reported_not_swallowed(tmp_path):
    journal = make_journal(tmp_path)
    journal.directory.mkdir(parents=True)
    os.symlink("/dev/full", journal.pcm_path)  # every write fails with ENOSPC
    writer = JournalWriter(journal).open()
    try:
        writer.put(melody(0.2))
        assert writer.failed.wait(10)
        assert isinstance(writer.error, OSError)
    finally:
        writer.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=30),
       channels=st.sampled_from([1, 2]))
def test_any_sequence_of_blocks_is_kept_in_order(tmp_path_factory, sizes, channels):
    directory = tmp_path_factory.mktemp("j")
    journal = make_journal(directory, channels=channels)
    rng = np.random.default_rng(len(sizes))
    blocks = [rng.integers(-32768, 32767, size=(n, channels), dtype="int16") for n in sizes]
    with JournalWriter(journal) as writer:
        for block in blocks:
            writer.put(block)
    expected = np.concatenate(blocks)
    assert journal.frames_on_disk() == len(expected)
    assert np.array_equal(journal.read_frames(0, len(expected)), expected)


def test_sidecar_sits_beside_the_audio():
    assert sidecar_path(Path("/d/S0001-2.flac")) == Path("/d/S0001-2.json")


def test_a_journal_that_cannot_be_created_is_a_clear_error(tmp_path):
    (tmp_path / "journal").write_text("a file where the folder should be", encoding="utf-8")
    with pytest.raises(JournalError) as err:
        JournalWriter(make_journal(tmp_path)).open()
    assert "磁盘空间和权限" in err.value.zh and "permissions" in err.value.en


def test_a_header_that_cannot_be_written_releases_the_lock(tmp_path):
    journal = make_journal(tmp_path)
    journal.directory.mkdir(parents=True)
    journal.header_path.mkdir()       # the header cannot be replaced by a file
    with pytest.raises(JournalError):
        JournalWriter(journal).open()
    assert not journal.is_live()


def test_journal_and_kept_folders_are_private(tmp_path):
    if sys.platform == "win32":
        pytest.skip("the user profile's ACL protects it on Windows")
    journal = make_journal(tmp_path)
    with JournalWriter(journal) as writer:
        writer.put(melody(0.1))
    kept = finalize(journal)
    for folder in (journal.directory, kept.path.parent):
        assert folder.stat().st_mode & 0o077 == 0
