"""Takes: every recording of a student in a singing sitting, and which one counts.

Pure logic on the database handle passed in (sqlite-utils); no audio, no files. Rules:

- every take is kept, rejected ones too;
- a student gets one take plus up to ``retakes`` retakes (default 2) per sitting; a take
  that ended through no fault of the student (``interrupted``: the station crashed or lost
  power; ``failed``: the device failed) does not use up a retake;
- the take that counts is, by default, the last accepted one (``last_accepted``), or the
  first accepted one (``first_accepted``); no accepted take, none counts until the proctor
  picks one (:func:`choose`), whose choice then stands over the rule.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import sqlite_utils

from qmbase.db import transaction
from qmbase.refusal import Refusal

DEFAULT_RETAKES = 2
LOSS_TOLERANCE_S = 0.25   # audio missing beyond this (lost_s) makes a take a dropout take
POLICIES = ("last_accepted", "first_accepted")
# States that are the station's fault, not the student's: they do not use up a retake.
_NOT_COUNTED_AGAINST = ("interrupted", "failed", "recording")


class TakeError(Refusal):
    """A take cannot be started or changed; ``zh``/``en`` are shown to the proctor."""

    exit_code = 1      # the job ran and was refused (DESIGN.md: a take rejected)

    def __init__(self, code: str, zh: str, en: str):
        super().__init__(zh, en, code=code)


class CaptureError(TakeError):
    """A take could not be recorded: the headset, the song file or the disk failed."""


@dataclass
class Take:
    id: str
    student_code: str
    sitting_id: str
    attempt: int
    state: str
    started_at: str
    song_id: str | None = None
    path: str | None = None
    sha256: str | None = None
    format: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    frames: int | None = None
    duration_s: float | None = None
    device: str | None = None
    accompaniment_rate: int | None = None
    offset_latency_s: float | None = None
    offset_xcorr_s: float | None = None
    offset_method: str | None = None
    overflow_count: int = 0
    stream_restarts: int = 0
    lost_s: float = 0.0
    dropouts: bool = False
    interrupted: bool = False
    verdict: str | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    counts: bool = False
    counts_by: str | None = None
    ended_at: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Take":
        data = dict(row)
        data["reasons"] = json.loads(data.get("reasons") or "[]")
        for flag in ("dropouts", "interrupted", "counts"):
            data[flag] = bool(data.get(flag))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})




def get(db: sqlite_utils.Database, take_id: str) -> Take:
    rows = list(db["takes"].rows_where("id = ?", [take_id]))
    if not rows:
        raise TakeError("unknown_take", f"找不到录音记录 {take_id}。", f"No take {take_id} on this station.")
    return Take.from_row(rows[0])


def takes_of(db: sqlite_utils.Database, sitting_id: str, student_code: str) -> list[Take]:
    """A student's takes in a sitting, in the order they were made."""
    return [Take.from_row(r) for r in db["takes"].rows_where(
        "sitting_id = ? AND student_code = ?", [sitting_id, student_code], order_by="attempt")]


def used_attempts(takes: Sequence[Take]) -> int:
    """Takes that count against the limit: those the student sang to the end."""
    return sum(1 for t in takes if t.state not in _NOT_COUNTED_AGAINST)


def next_attempt(db: sqlite_utils.Database, sitting_id: str, student_code: str, *,
                 retakes: int = DEFAULT_RETAKES) -> int:
    """The attempt number of a new take, or :class:`TakeError` ``retake_limit`` when used up."""
    takes = takes_of(db, sitting_id, student_code)
    if used_attempts(takes) >= 1 + retakes:
        raise TakeError(
            "retake_limit",
            f"考生 {student_code} 在本场次已录制 {used_attempts(takes)} 次，已达到重录上限（{retakes} 次重录）。"
            "如确需再录，请由监测员在场次记录中说明后调整配置。",
            f"Student {student_code} already has {used_attempts(takes)} takes in this sitting: the retake "
            f"limit ({retakes} retakes) is reached. If another take is truly needed, the proctor notes "
            "why on the sitting sheet and raises the limit in the configuration.")
    return max((t.attempt for t in takes), default=0) + 1


def begin(db: sqlite_utils.Database, *, take_id: str, sitting_id: str, student_code: str,
          attempt: int, started_at: str, song_id: str | None = None, **fields: Any) -> Take:
    """Record that a take has started (state ``recording``) before the first sample is captured,
    so salvage finds its row after a crash."""
    row = {"id": take_id, "sitting_id": sitting_id, "student_code": student_code,
           "attempt": attempt, "song_id": song_id, "state": "recording",
           "started_at": started_at, **fields}
    with transaction(db):
        db["takes"].insert(row)
    return get(db, take_id)


def _finish(db: sqlite_utils.Database, take_id: str, state: str, fields: dict[str, Any],
            policy: str) -> Take:
    fields = dict(fields)
    if "reasons" in fields:
        fields["reasons"] = json.dumps(fields["reasons"] or [], ensure_ascii=False)
    with transaction(db):
        take = get(db, take_id)
        if {"overflow_count", "stream_restarts", "lost_s"} & fields.keys():
            gaps = int(fields.get("overflow_count", take.overflow_count) or 0) \
                + int(fields.get("stream_restarts", take.stream_restarts) or 0)
            lost = float(fields.get("lost_s", take.lost_s) or 0.0)
            fields["dropouts"] = gaps > 0 or lost > LOSS_TOLERANCE_S
        db["takes"].update(take_id, {**fields, "state": state})
        update_counting(db, take.sitting_id, take.student_code, policy=policy)
    return get(db, take_id)


def keep(db: sqlite_utils.Database, take_id: str, *, policy: str = "last_accepted",
         **fields: Any) -> Take:
    """A take sung to the end and kept: path, sha256, rates, offsets, overflows, verdict, reasons."""
    return _finish(db, take_id, "kept", fields, policy)


def mark_interrupted(db: sqlite_utils.Database, take_id: str, *, policy: str = "last_accepted",
                     **fields: Any) -> Take:
    """A take rebuilt by salvage after a crash or power cut."""
    return _finish(db, take_id, "interrupted", {**fields, "interrupted": True}, policy)


def mark_failed(db: sqlite_utils.Database, take_id: str, *, policy: str = "last_accepted",
                **fields: Any) -> Take:
    """A take that produced no file (device error, no audio reached disk)."""
    return _finish(db, take_id, "failed", fields, policy)


def counting_take(takes: Sequence[Take], policy: str = "last_accepted") -> Take | None:
    """Which take counts under ``policy``; a proctor's choice stands over the rule."""
    if policy not in POLICIES:
        raise TakeError("bad_policy", f"未知的计分规则：{policy}（可用 {', '.join(POLICIES)}）。",
                        f"Unknown rule for the counting take: {policy} (use {', '.join(POLICIES)}).")
    chosen = [t for t in takes if t.counts and t.counts_by == "proctor"]
    if chosen:
        return chosen[-1]
    accepted = [t for t in sorted(takes, key=lambda t: t.attempt)
                if t.verdict == "accept" and t.path and t.state in ("kept", "interrupted")]
    if not accepted:
        return None
    return accepted[-1] if policy == "last_accepted" else accepted[0]


def update_counting(db: sqlite_utils.Database, sitting_id: str, student_code: str, *,
                    policy: str = "last_accepted") -> Take | None:
    """Set the ``counts`` flag on exactly the take that counts (or on none)."""
    with transaction(db):
        winner = counting_take(takes_of(db, sitting_id, student_code), policy)
        db.execute("UPDATE takes SET counts = 0, counts_by = NULL "
                   "WHERE sitting_id = ? AND student_code = ? AND id != ?",
                   [sitting_id, student_code, winner.id if winner else ""])
        if winner and not winner.counts:
            db["takes"].update(winner.id, {"counts": 1, "counts_by": "rule"})
    return get(db, winner.id) if winner else None


def choose(db: sqlite_utils.Database, take_id: str) -> Take:
    """The proctor picks the take that counts (it must have a kept file)."""
    take = get(db, take_id)
    if not take.path or take.state not in ("kept", "interrupted"):
        raise TakeError("no_file", f"第 {take.attempt} 次录音没有保存的录音文件，不能作为有效录音。",
                        f"Take {take.attempt} has no kept recording, so it cannot be the one that counts.")
    with transaction(db):
        db.execute("UPDATE takes SET counts = 0, counts_by = NULL WHERE sitting_id = ? "
                   "AND student_code = ?", [take.sitting_id, take.student_code])
        db["takes"].update(take_id, {"counts": 1, "counts_by": "proctor"})
    return get(db, take_id)


def interrupted_takes(db: sqlite_utils.Database) -> list[Take]:
    """Interrupted takes, for the proctor's start-up notice."""
    return [Take.from_row(r) for r in db["takes"].rows_where("state = 'interrupted'",
                                                             order_by="started_at")]
