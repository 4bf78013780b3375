"""Every SQL statement on the PE tables (readings, attempts, results, corrections).

States are parameters (``states.py`` decides them); writes are plain SQL, so that they are
safe inside ``transaction`` (sqlite-utils' table helpers would commit halfway). The
caller opens the transaction: a reading, its attempt and its result change together.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

import sqlite_utils

from devices.drivers import Reading, escape_raw
from pe_station import states
from pe_station.messages import CHANGED, refuse
from qmbase.db import transaction


def local_now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def local_time(unix: float | None) -> str:
    if unix is None:
        return local_now()
    return dt.datetime.fromtimestamp(unix).astimezone().isoformat(timespec="milliseconds")


def _in(values: Iterable) -> str:
    return ",".join("?" * len(list(values)))


def _one(rows) -> dict | None:
    return next(iter(rows), None)


@dataclass
class Store:
    """One sitting's PE rows on one connection."""

    db: sqlite_utils.Database
    sitting: str

    def transaction(self) -> transaction:
        return transaction(self.db)

    # --- readings ----------------------------------------------------------------------
    def add_reading(self, reading: Reading, device: str, port: str, student: str | None,
                    note: str, run_time: Decimal | None = None) -> int:
        return self.db.execute(
            "INSERT INTO pe_readings (sitting, device, port, driver, item, at, value, unit, stable, "
            "code, channel, raw, run_time, student, note) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [self.sitting, device, port, reading.driver, reading.item, local_time(reading.at),
             format(reading.value, "f"), reading.unit, int(reading.stable), reading.code,
             reading.channel, escape_raw(reading.raw),
             None if run_time is None else format(run_time, "f"), student, note]).lastrowid

    def unassigned_reading(self, reading_id: int) -> dict | None:
        """The reading if it is one of this sitting's unassigned ones (``counts``: its value)."""
        return _one(self.db.query(
            "SELECT *, coalesce(run_time, value) AS counts FROM pe_readings WHERE id = ? AND "
            "sitting = ? AND student IS NULL AND note != ''", [reading_id, self.sitting]))

    def give_reading(self, reading_id: int, student: str) -> None:
        self.db.execute("UPDATE pe_readings SET student = ? WHERE id = ? AND student IS NULL",
                        [student, reading_id])

    def unassigned(self, limit: int = 50) -> list[dict]:
        return list(self.db.query(
            "SELECT id, device, at, coalesce(run_time, value) AS value, unit, code, note "
            "FROM pe_readings WHERE sitting = ? AND student IS NULL AND note != '' "
            "ORDER BY id DESC LIMIT ?", [self.sitting, limit]))

    # --- attempts ----------------------------------------------------------------------
    def add_attempt(self, student: str, item, reading_id: int | None, device: str, value: Decimal,
                    check, started_at: str | None) -> int:
        """``value`` in the item's unit; ``check`` is ``rules.check``'s verdict on it."""
        return self.db.execute(
            "INSERT INTO pe_attempts (sitting, student, item, reading, device, value, rounded, unit, "
            "verdict, reason_zh, reason_en, state, started_at, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [self.sitting, student, item.id, reading_id, device, format(value, "f"),
             format(check.value, "f"), item.unit, check.verdict, check.zh, check.en,
             states.new_attempt(check.verdict), started_at, local_now()]).lastrowid

    def attempt(self, attempt_id: int) -> dict | None:
        return _one(self.db.query("SELECT * FROM pe_attempts WHERE id = ? AND sitting = ?",
                                  [attempt_id, self.sitting]))

    def decide(self, attempt: dict, event: str, who: str | None, at: str | None,
               **changes) -> str:
        """Apply ``event`` to the attempt (``states.attempt_after`` refuses what is not allowed)
        with ``changes`` to its other columns; returns its new state. In a transaction."""
        state = states.attempt_after(attempt["state"], event)
        fields = {**changes, "state": state, "decided_by": who, "decided_at": at}
        changed = self.db.execute(
            f"UPDATE pe_attempts SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ? AND state = ?",
            [*fields.values(), attempt["id"], attempt["state"]]).rowcount
        if changed != 1:
            # Decided elsewhere since it was read (another page, `station pe run`): never
            # overwrite a decision the proctor has not seen.
            raise refuse(CHANGED, attempt=attempt["id"])
        return state

    def attempts_of(self, student: str, items: list[str]) -> list[dict]:
        return list(self.db.query(
            f"SELECT * FROM pe_attempts WHERE sitting = ? AND student = ? AND item IN ({_in(items)}) "
            "ORDER BY id", [self.sitting, student, *items]))

    def turns_used(self, student: str, item_id: str) -> int:
        """Attempts that take a turn (``states.TAKES_A_TURN``)."""
        return self.db.execute(
            "SELECT count(*) FROM pe_attempts WHERE sitting = ? AND student = ? AND item = ? "
            f"AND state IN ({_in(states.TAKES_A_TURN)})",
            [self.sitting, student, item_id, *states.TAKES_A_TURN]).fetchone()[0]

    def latest_turn(self, student: str, items: list[str]) -> dict | None:
        """The student's newest attempt that takes a turn at one of ``items``."""
        return _one(self.db.query(
            f"SELECT * FROM pe_attempts WHERE sitting = ? AND student = ? AND item IN ({_in(items)}) "
            f"AND state IN ({_in(states.TAKES_A_TURN)}) ORDER BY id DESC LIMIT 1",
            [self.sitting, student, *items, *states.TAKES_A_TURN]))

    def counted_values(self, student: str, item_id: str) -> list[Decimal]:
        """The rounded values the result is the best of (``states.COUNTS``)."""
        return [Decimal(r["rounded"]) for r in self.db.query(
            "SELECT rounded FROM pe_attempts WHERE sitting = ? AND student = ? AND item = ? "
            f"AND state IN ({_in(states.COUNTS)})", [self.sitting, student, item_id, *states.COUNTS])]

    def waiting(self) -> list[dict]:
        """Attempts waiting for the proctor, oldest first."""
        return list(self.db.query("SELECT * FROM pe_attempts WHERE sitting = ? AND state = ? "
                                  "ORDER BY id", [self.sitting, states.PENDING]))

    # --- corrections (append-only: the database refuses to change one) ------------------
    def add_correction(self, attempt_id: int, old: str, new: str, reason: str, who: str,
                       at: str) -> None:
        self.db.execute("INSERT INTO pe_corrections (attempt, old_value, new_value, reason, who, at) "
                        "VALUES (?,?,?,?,?,?)", [attempt_id, old, new, reason, who, at])

    # --- results -----------------------------------------------------------------------
    def result(self, student: str, item_id: str) -> dict | None:
        return _one(self.db.query(
            "SELECT * FROM pe_results WHERE sitting = ? AND student = ? AND item = ?",
            [self.sitting, student, item_id]))

    def set_result(self, student: str, item_id: str, status: str, value: str | None, who: str,
                   verdict: str | None = None, reason_zh: str = "", reason_en: str = "") -> None:
        self.db.execute(
            "INSERT INTO pe_results (sitting, student, item, status, value, updated_at, updated_by, "
            "verdict, reason_zh, reason_en) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (sitting, student, item) DO UPDATE SET "
            "status = excluded.status, value = excluded.value, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by, verdict = excluded.verdict, "
            "reason_zh = excluded.reason_zh, reason_en = excluded.reason_en",
            [self.sitting, student, item_id, status, value, local_now(), who,
             verdict, reason_zh, reason_en])

    def progress(self, item_id: str) -> dict[str, int]:
        counts = {s: 0 for s in states.RESULT_LABELS}
        for row in self.db.query("SELECT status, count(*) AS n FROM pe_results WHERE sitting = ? "
                                 "AND item = ? GROUP BY status", [self.sitting, item_id]):
            counts[row["status"]] = row["n"]
        return counts

    # --- the whole sitting, for its export ---------------------------------------------
    def all_attempts(self) -> list[dict]:
        return list(self.db.query("SELECT * FROM pe_attempts WHERE sitting = ? ORDER BY student, id",
                                  [self.sitting]))

    def all_corrections(self) -> list[dict]:
        return list(self.db.query(
            "SELECT c.* FROM pe_corrections c JOIN pe_attempts a ON a.id = c.attempt "
            "WHERE a.sitting = ? ORDER BY c.id", [self.sitting]))

    def all_results(self) -> list[dict]:
        return list(self.db.query("SELECT * FROM pe_results WHERE sitting = ?", [self.sitting]))

    def all_unassigned(self) -> list[dict]:
        return list(self.db.query(
            "SELECT id, device, port, at, coalesce(run_time, value) AS value, unit, code, raw, note "
            "FROM pe_readings WHERE sitting = ? AND student IS NULL AND note != '' ORDER BY id",
            [self.sitting]))
