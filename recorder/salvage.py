"""Salvage: rebuild takes a crash or a power cut left as journals.

Run at start-up and by ``station sing salvage``. Each journal that no live process holds
is repaired into a valid FLAC/WAV with every whole frame that reached the disk (a torn last
frame is dropped), its sidecar says ``"interrupted": true``, its database row becomes
``interrupted`` (so it does not use up a retake, and the proctor is shown it), and only then
is the journal removed. A journal that cannot be read is left where it is, and reported:
nothing a student sang is deleted by salvage.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import sqlite_utils

from recorder import takes
from recorder.journal import (HEADER_SUFFIX, PCM_SUFFIX, Journal, JournalError, finalize,
                              sha256_of, sidecar_for, sidecar_path, utc_now, write_json_durably)

Verify = Callable[[Path], dict]


@dataclass
class SalvageResult:
    """One journal's outcome: ``repaired``, ``already_kept`` (only the clean-up had been cut
    off), ``empty`` (nothing reached disk), ``live`` (still
    being recorded, left alone), ``failed`` (could not write the file now; journal kept for
    the next run) or ``unreadable`` (left in place for the information center)."""
    status: str
    journal: Path
    zh: str
    en: str
    take_id: str | None = None
    student: str | None = None
    path: Path | None = None
    sha256: str | None = None
    frames: int = 0
    duration_s: float = 0.0
    verdict: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def find_journals(directory: Path) -> list[Path]:
    """Header files of the journals in ``directory`` (oldest name first)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{HEADER_SUFFIX}"))


def find_orphans(directory: Path) -> list[Path]:
    """PCM files with no header: cannot be rebuilt alone, but must not be lost either."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(f"*{PCM_SUFFIX}")
                  if not p.with_name(p.name[:-len(PCM_SUFFIX)] + HEADER_SUFFIX).exists())


def salvage(directory: Path, *, db: sqlite_utils.Database | None = None,
            verify: Verify | None = None, policy: str = "last_accepted") -> list[SalvageResult]:
    """Repair every interrupted journal in ``directory``; returns one result per journal."""
    if db is not None and "takes" not in db.table_names():
        raise JournalError("数据库中没有录音表，请先启动一次 station 完成数据库升级，再修复录音。",
                           "The database has no takes table: start the station once to upgrade "
                           "it, then repair the recordings.")
    results = [salvage_one(p, db=db, verify=verify, policy=policy) for p in find_journals(directory)]
    for orphan in find_orphans(directory):
        results.append(SalvageResult(
            "unreadable", orphan,
            f"发现一个没有说明文件的录音数据 {orphan.name}，无法自动修复。文件已保留，请联系信息中心。",
            f"Found recording data without its header, {orphan.name}; it cannot be repaired "
            "automatically. The file is kept; call the information center."))
    return results


def salvage_one(header_path: Path, *, db: sqlite_utils.Database | None = None,
                verify: Verify | None = None, policy: str = "last_accepted") -> SalvageResult:
    try:
        journal = Journal.load(header_path)
    except JournalError as exc:
        return SalvageResult("unreadable", Path(header_path), exc.zh, exc.en)
    header = journal.header
    base = dict(journal=header_path, take_id=header.take_id, student=header.student)
    if journal.is_live():
        return SalvageResult("live", zh=f"考生 {header.student} 的录音仍在进行中，未做处理。",
                             en=f"The take of student {header.student} is still recording; left alone.",
                             **base)
    if _already_kept(journal, db):
        journal.discard()
        return SalvageResult("already_kept", path=Path(header.target),
                             zh=f"考生 {header.student} 第 {header.attempt} 次录音此前已保存完整，已清理临时文件。",
                             en=f"Take {header.attempt} of student {header.student} had already been "
                                "kept in full; its temporary files were cleaned up.", **base)
    frames = journal.frames_on_disk()
    if frames == 0:
        if db is not None:
            _ensure_row(db, journal)
            takes.mark_failed(db, header.take_id, policy=policy, frames=0, ended_at=utc_now(),
                              interrupted=True)
        journal.discard()
        return SalvageResult(
            "empty", zh=f"考生 {header.student} 第 {header.attempt} 次录音中断时还没有录到声音，没有可修复的内容。"
                        "这次不计入重录次数，请重新录制。",
            en=f"Take {header.attempt} of student {header.student} was interrupted before any audio "
               "reached the disk; there is nothing to repair. It does not use up a retake: record again.",
            **base)
    try:
        kept = finalize(journal)
    except Exception as exc:  # disk full, folder unwritable: keep the journal for next time
        return SalvageResult(
            "failed", zh=f"考生 {header.student} 第 {header.attempt} 次录音修复失败（{exc}）。"
                         "原始数据已保留，请检查磁盘空间后再运行 station sing salvage。",
            en=f"Repairing take {header.attempt} of student {header.student} failed ({exc}). "
               "The raw data is kept; check the free disk space, then run station sing salvage again.",
            **base)
    found = run_verify(verify, kept.path)
    sidecar = sidecar_for(header, kept, interrupted=True, salvaged_at=utc_now(),
                          overflow_count=None, offsets=None, metrics=found)
    write_json_durably(sidecar_path(kept.path), sidecar)
    if db is not None:
        _ensure_row(db, journal)
        takes.mark_interrupted(
            db, header.take_id, policy=policy, path=str(kept.path), sha256=kept.sha256,
            format=kept.format, sample_rate=kept.rate, channels=kept.channels, frames=kept.frames,
            duration_s=kept.duration_s, ended_at=sidecar["salvaged_at"],
            verdict=(found or {}).get("verdict"), reasons=(found or {}).get("reasons", []))
    # Only now: the file, its sidecar and its row all exist.
    journal.discard()
    return SalvageResult(
        "repaired", path=kept.path, sha256=kept.sha256, frames=kept.frames,
        duration_s=kept.duration_s, verdict=(found or {}).get("verdict"),
        zh=f"考生 {header.student} 第 {header.attempt} 次录音因程序中断未正常结束，已修复并保存 "
           f"{kept.duration_s:.1f} 秒录音。请试听后决定是否重录。",
        en=f"Take {header.attempt} of student {header.student} was interrupted; {kept.duration_s:.1f} s "
           "were repaired and kept. Listen to it and decide whether to record again.",
        **base)


def _already_kept(journal: Journal, db: sqlite_utils.Database | None) -> bool:
    """The take finished (file, sidecar and row written) and only the clean-up was cut off."""
    target = Path(journal.header.target)
    try:
        sidecar = json.loads(sidecar_path(target).read_text(encoding="utf-8"))
        matches = (not sidecar.get("interrupted") and sidecar.get("take_id") == journal.header.take_id
                   and sidecar.get("frames") == journal.frames_on_disk()
                   and sidecar.get("sha256") == sha256_of(target))
    except (OSError, ValueError, AttributeError):
        return False
    if not matches:
        return False
    if db is None:
        return True
    rows = list(db["takes"].rows_where("id = ?", [journal.header.take_id]))
    return bool(rows) and rows[0]["state"] == "kept"


def run_verify(verify: Verify | None, path: Path) -> dict | None:
    if verify is None:
        return None
    try:
        return verify(path)
    except Exception as exc:  # a verifier bug must not cost the take its file, row or sidecar
        return {"verdict": None, "error": f"{type(exc).__name__}: {exc}", "reasons": []}


def _ensure_row(db: sqlite_utils.Database, journal: Journal) -> None:
    """A journal whose row was lost (a copied data dir, a db restored from backup) gets one."""
    header = journal.header
    if not list(db["takes"].rows_where("id = ?", [header.take_id])):
        takes.begin(db, take_id=header.take_id, sitting_id=header.sitting,
                    student_code=header.student, attempt=_free_attempt(db, header),
                    started_at=header.started_at, song_id=header.song, sample_rate=header.rate,
                    device=header.device, format=header.format)


def _free_attempt(db: sqlite_utils.Database, header) -> int:
    existing = {t.attempt for t in takes.takes_of(db, header.sitting, header.student)}
    if header.attempt and header.attempt not in existing:
        return int(header.attempt)
    return max(existing, default=0) + 1
