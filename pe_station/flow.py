"""One PE sitting's logic: whose reading is this, does it count, what did the proctor decide.

Plain functions on a database handle plus callbacks passed in (``lookup_student``,
``audit``, ``on_event``): no ports, no threads of its own, no web. The service feeds it
readings from the port readers; the page and the terminal station call its decisions.

The rules of the test room:

* the proctor scans a student; the next *stable* reading of that device is theirs, until
  they have had all their attempts (sit-and-reach: 2, vital capacity: 3 …);
* a device that sends a code (qm-frame CODE, a timing gate's bib) names the student itself;
* an unstable reading is shown live and stored, never taken as a result;
* a reading nobody can be given is kept as *unassigned* with the reason, never dropped;
* a value outside the hard limits is refused with the reason; outside the usual range the
  proctor must confirm it; every attempt waits for the proctor's confirmation;
* a correction keeps the old value, the reason and who made it;
* a sitting may measure several items and derive one from them: the BMI sitting (身高体重)
  measures height and weight, each reading going to the item of the device that sent it,
  and BMI follows from the two confirmed values (recomputed on a void or correction);
* a reading in another unit is converted exactly (g to kg, mm to cm …); one that cannot be
  converted (lb) is unassigned with the reason;
* a timing gate set up for lanes sends the lane as its bib: the proctor scans a student
  *for a lane*, and the lane's finish is that student's.

Every method that writes does so in one transaction, so a power cut leaves each
reading, attempt and decision whole or absent.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import sqlite_utils

from qmbase.db import transaction
from devices.drivers import Reading, RunTimer, escape_raw
from pe_station import rules, timer_fix

log = logging.getLogger(__name__)

LookupStudent = Callable[[str], "dict | None"]
Audit = Callable[..., None]     # (db, who, action, entity, entity_id, old, new), as station.audit.record
OnEvent = Callable[[dict], None]

# Why a reading is unassigned: (zh, en). The page shows both.
NO_STUDENT = ("未扫描学生条码，读数未分配。请先扫描学生，再把这条读数分配给学生或让学生重测。",
              "No student was scanned, so the reading is unassigned: scan the student, then assign "
              "the reading or let the student test again.")
UNKNOWN_CODE = ("设备发送的编号 {code} 不在名册中，读数未分配。请核对学生条码或号码布。",
                "The device sent code {code}, which is not in the roster; the reading is unassigned. "
                "Check the student's barcode or bib.")
OTHER_ITEM = ("设备报告的项目是 {got}，本场次测的是 {want}，读数未分配。请检查设备设置。",
              "The device reports item {got} but this sitting tests {want}; the reading is "
              "unassigned. Check the device's setting.")
WRONG_UNIT = ("设备发送的单位是 {got}，本项目的单位是 {want}，读数未分配。请把设备设置为 {want}。",
              "The device sent the unit {got} but this item is measured in {want}; the reading is "
              "unassigned. Set the device to {want}.")
WHICH_ITEM = ("无法判断这条读数属于哪个项目（{items}），读数未分配。请在 station.toml 的 [[pe.devices]] "
              "中为这台设备写上 item。",
              "Cannot tell which item ({items}) this reading is for; it is unassigned. Add item = "
              "to this device's [[pe.devices]] in station.toml.")
NO_LANE_STUDENT = ("第 {lane} 道没有扫描学生，读数未分配。请先为第 {lane} 道扫描学生，再把这条读数分配给学生。",
                   "No student was scanned for lane {lane}, so the reading is unassigned: scan the "
                   "lane's student, then assign the reading.")
NOT_MEASURED = ("本场次不测项目 {got}（测 {want}），请选择本场次的项目。",
                "This sitting does not measure {got} (it measures {want}); choose one of its items.")
ALL_DONE = ("学生 {code} 已完成全部 {n} 次测试，读数未分配。如需重测请点“重测”。",
            "Student {code} has had all {n} attempts; the reading is unassigned. Press Retest "
            "to test again.")


class FlowError(Exception):
    """A request the proctor cannot make now; the message says why and what to do (zh, en)."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh}\n{en}")
        self.zh, self.en = zh, en


def _local_now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def _local_time(unix: float | None) -> str:
    if unix is None:
        return _local_now()
    return dt.datetime.fromtimestamp(unix).astimezone().isoformat(timespec="milliseconds")


def _rows(db: sqlite_utils.Database, sql: str, args: Any = ()) -> list[dict]:
    cur = db.execute(sql, args)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def lane_slot(lane: int) -> str:
    """The key of a lane's current student in ``Flow.state()["current"]``."""
    return f"lane-{lane}"


def _lane_of(code: str | None, lanes: int) -> int | None:
    """The lane a timing gate's bib names, when the gate is set up for lanes."""
    if lanes and code and code.isdigit() and 1 <= int(code) <= lanes:
        return int(code)
    return None


@dataclass
class Flow:
    """The live state of one open PE sitting and the decisions on it.

    ``item`` is the sitting's item. Most sittings measure just it; a derived item's sitting
    (bmi) measures its inputs, given as ``measured`` (``rules.measured`` picks them).
    """

    db: sqlite_utils.Database
    sitting: str
    item: rules.Item
    lookup_student: LookupStudent
    audit: Audit | None = None
    on_event: OnEvent | None = None
    by_bib: bool = True                 # timing gates: pair start and finish by bib
    measured: dict[str, rules.Item] | None = None
    device_items: dict[str, str] = field(default_factory=dict)   # device -> the item it measures
    device_lanes: dict[str, int] = field(default_factory=dict)   # timing gate -> its lanes
    device_pairing: dict[str, str] = field(default_factory=dict)  # timing gate -> bib | sequence
    # (device, run id) -> the attempt made from that run, so the timer can correct it.
    run_attempts: dict[tuple[str, int], int] = field(default_factory=dict, init=False)

    _current: dict[str | None, str] = field(default_factory=dict, init=False)
    # Students who have made every attempt: readings no longer go to them, but their card
    # stays on the page until the next scan, so the proctor confirms the result where it
    # appeared (a 50 m time, a BMI appearing) rather than hunting for it in a list.
    _finished: dict[str | None, str] = field(default_factory=dict, init=False)
    _live: dict[str, dict] = field(default_factory=dict, init=False)
    _timers: dict[str, RunTimer] = field(default_factory=dict, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.measured is None:
            if self.item.derived:
                raise ValueError(f"{self.item.id} is derived: pass measured=rules.measured(items, "
                                 f"{self.item.id!r})")
            self.measured = {self.item.id: self.item}

    @property
    def derived(self) -> rules.Item | None:
        return self.item if self.item.derived else None

    @property
    def lanes(self) -> int:
        """How many lanes the sitting's timing gate has (0: no lanes)."""
        return max(self.device_lanes.values(), default=0)

    def add_device(self, name: str, item: str | None = None, lanes: int = 0,
                   pairing: str | None = None) -> None:
        """Tell the flow what a configured device measures, how many lanes it times and
        how its impulses pair into runs (by bib, or by sequence)."""
        with self._lock:
            if item:
                self.device_items[name] = item
            if lanes:
                self.device_lanes[name] = int(lanes)
            if pairing:
                self.device_pairing[name] = pairing

    @property
    def _result_items(self) -> list[str]:
        """The items that get a result row per student: the measured ones and the derived one."""
        return [*self.measured, *([self.item.id] if self.derived else [])]

    # --- the proctor scans -------------------------------------------------------------
    def scan(self, code: str, who: str, device: str | None = None, lane: int | None = None) -> dict:
        """Make ``code`` the student of ``device`` (None: of every device of the sitting),
        or of ``lane`` of the sitting's timing gate."""
        with self._lock:
            student = self._student(code)
            slot = device
            if lane is not None:
                slot = self._lane_slot(lane)
            if not self._left(student["code"]):
                if len(self.measured) == 1:
                    raise FlowError(
                        f"{student['name']}（{code}）已完成全部 {self.item.attempts} 次{self.item.name_zh}测试。"
                        f"如需重测，请点“重测”。",
                        f"{code} has had all {self.item.attempts} attempts at {self.item.name_en}; "
                        f"press Retest to test again.")
                names_zh = "、".join(i.name_zh for i in self.measured.values())
                names_en = ", ".join(i.name_en for i in self.measured.values())
                raise FlowError(f"{student['name']}（{code}）的{names_zh}都已测完。如需重测，请点“重测”。",
                                f"{code} has been measured for {names_en}; press Retest to test again.")
            with transaction(self.db):
                self._open_results(student["code"], self._result_items, who)
            if lane is not None:
                # A student runs in one lane: scanning them for another moves them.
                self._leave(student["code"])
            if slot is None:
                self._finished.clear()
            else:
                self._finished.pop(slot, None)
            self._current[slot] = student["code"]
            self._emit({"type": "scan", "device": device, "lane": lane, "student": student["code"]})
            return student

    def current(self, device: str | None = None) -> str | None:
        with self._lock:
            return self._current.get(device) or self._current.get(None)

    def _lane_slot(self, lane) -> str:
        try:
            lane = int(lane)
        except (TypeError, ValueError):
            lane = 0
        if not self.lanes:
            raise FlowError("本场次的计时器没有设置分道，请直接扫描学生。",
                            "This sitting's timer has no lanes; scan the student without a lane.")
        if not 1 <= lane <= self.lanes:
            raise FlowError(f"道次只能是 1～{self.lanes}。", f"The lane is 1 to {self.lanes}.")
        return lane_slot(lane)

    def _leave(self, code: str) -> None:
        for slots in (self._current, self._finished):
            for key in [k for k, v in slots.items() if v == code]:
                del slots[key]

    def _finish(self, code: str) -> None:
        """Every attempt made: out of ``current``, still shown (see ``_finished``)."""
        for key in [k for k, v in self._current.items() if v == code]:
            self._finished[key] = self._current.pop(key)

    # --- a device sends ----------------------------------------------------------------
    def on_reading(self, reading: Reading, device: str, port: str = "") -> dict:
        """Store ``reading`` and give it to its student if it is a final value; returns
        what happened: {"type": "live" | "impulse" | "attempt" | "unassigned", …}."""
        return self.on_readings([(reading, device, port)])[0]

    def on_readings(self, batch: list[tuple[Reading, str, str]]) -> list[dict]:
        """``on_reading`` for several (reading, device, port) in one transaction.

        Group commit: with every commit waiting for the disk (synchronous=FULL), frames
        that arrived while the last commit was being written share the next one, so
        eight devices at ten frames a second do not queue behind each other's fsync.
        Events go out after the commit: the page never shows what is not yet stored.
        """
        with self._lock:
            try:
                with transaction(self.db):
                    events = [self._one(*item) for item in batch]
            except Exception:
                if len(batch) == 1:
                    raise
                log.exception("PE batch of %d readings failed; storing them one by one", len(batch))
                events = [self.on_reading(*item) for item in batch]
                return events
            for event in events:
                self._emit(event)
            return events

    def _one(self, reading: Reading, device: str, port: str) -> dict:
        live = {"device": device, "value": format(reading.value, "f"), "unit": reading.unit,
                "stable": reading.stable, "at": _local_time(reading.at), "code": reading.code}
        self._live[device] = live
        if not reading.stable:
            self._store(reading, device, port, None, "")
            return {"type": "live", **live}
        if reading.channel is not None:
            return self._impulse(reading, device, port)
        return self._final(reading, device, port, reading.value, None)

    def _impulse(self, reading: Reading, device: str, port: str) -> dict:
        timer = self._timers.get(device)
        if timer is None:
            timer = self._timers[device] = RunTimer(
                self.device_pairing.get(device) or ("bib" if self.by_bib else "sequence"))
        lanes = self.device_lanes.get(device, 0)
        lane = _lane_of(reading.code, lanes)
        run = None
        if lane is not None:
            # "0001" and "1" are the same lane: pair start and finish by the lane number.
            run = timer.feed(replace(reading, code=str(lane)))
        elif lanes and reading.channel.upper() == "C0":
            # One starting gun for every lane: a start without a lane number starts them all.
            for n in range(1, lanes + 1):
                timer.feed(replace(reading, code=str(n)))
        else:
            run = timer.feed(reading)
        # The page shows the run, not the impulse's time of day: "timing" until it ends.
        self._live[device].update(value="" if run is None else format(run.seconds, "f"),
                                  timing=run is None)
        if run is None:
            reading_id = self._store(reading, device, port, None, "")
            return {"type": "impulse", "device": device, "reading": reading_id,
                    "channel": reading.channel, "code": reading.code, "lane": lane,
                    "flag": reading.flag}
        if run.replaces is not None:
            return timer_fix.apply(self, reading, device, port, run)
        return self.take_run(reading, device, port, run)

    def take_run(self, reading: Reading, device: str, port: str, run) -> dict:
        """A run time as a final value; the run's code (None when the timer numbers
        impulses rather than bibs) says whose it is. Inside a transaction."""
        if run.code != reading.code and _lane_of(reading.code, self.device_lanes.get(device, 0)) is None:
            reading = replace(reading, code=run.code)
        start = None if reading.at is None else _local_time(reading.at - float(run.seconds))
        event = self._final(reading, device, port, run.seconds, start)
        if event["type"] == "attempt":
            self.run_attempts[(device, run.id)] = event["attempt"]["id"]
        return event

    def _final(self, reading: Reading, device: str, port: str, value: Decimal,
               started_at: str | None) -> dict:
        item, why = self._item_for(reading.item, device, reading.unit)
        code = student = None
        if item is not None:
            converted = rules.convert(value, reading.unit, item)
            if converted is None:
                why = _fmt(WRONG_UNIT, got=reading.unit.strip(), want=item.unit)
            else:
                code, why = self._whose(reading, device)
        if code is not None:
            student = self.lookup_student(code)
            if student is None:
                code, why = None, _fmt(UNKNOWN_CODE, code=code)
        if student is not None and self._attempts_used(code, item.id) >= item.attempts:
            code, why = None, _fmt(ALL_DONE, code=code, n=item.attempts)
        reading_id = self._store(reading, device, port, code, "\n".join(why) if why else "",
                                 run_time=value if reading.channel is not None else None)
        if code is None:
            return {"type": "unassigned", "device": device, "reading": reading_id,
                    "value": format(value, "f"), "unit": reading.unit, "zh": why[0], "en": why[1]}
        attempt = self._add_attempt(student, reading_id, device, converted, started_at, item)
        if not self._left(code) and self.derived is None:
            # Done: the next reading is not theirs. A BMI sitting keeps the student current
            # until the next scan, as height and weight may come in either order.
            self._finish(code)
        return {"type": "attempt", "device": device, "reading": reading_id, "attempt": attempt}

    def _item_for(self, said: str | None, device: str, unit: str | None) -> tuple[
            rules.Item | None, tuple[str, str] | None]:
        """Which measured item a final reading is for: the one the device names, else the
        device's configured item, else the sitting's only one, else the one its unit fits."""
        wanted = ", ".join(self.measured)
        if said:
            if said in self.measured:
                return self.measured[said], None
            return None, _fmt(OTHER_ITEM, got=said, want=wanted)
        configured = self.device_items.get(device)
        if configured in self.measured:
            return self.measured[configured], None
        if len(self.measured) == 1:
            return next(iter(self.measured.values())), None
        # One device for height and weight that does not say which: kg is weight, cm height.
        fits = [i for i in self.measured.values()
                if rules.normal_unit(unit) and rules.convertible(unit, i)]
        if len(fits) == 1:
            return fits[0], None
        return None, _fmt(WHICH_ITEM, items=wanted)

    def _whose(self, reading: Reading, device: str) -> tuple[str | None, tuple[str, str] | None]:
        lane = _lane_of(reading.code, self.device_lanes.get(device, 0)) \
            if reading.channel is not None else None
        if lane is not None:
            code = self._current.get(lane_slot(lane))
            return (code, None) if code else (None, _fmt(NO_LANE_STUDENT, lane=lane))
        if reading.code:
            # A timing gate's bib may be a lane number rather than a student code: then
            # the scanned student ran in it.
            if reading.channel is not None and self.lookup_student(reading.code) is None \
                    and self.current(device):
                return self.current(device), None
            return reading.code, None
        current = self.current(device)
        return (current, None) if current else (None, NO_STUDENT)

    def _store(self, reading: Reading, device: str, port: str, student: str | None,
               note: str, run_time: Decimal | None = None) -> int:
        cur = self.db.execute(
            "INSERT INTO pe_readings (sitting, device, port, driver, item, at, value, unit, stable, "
            "code, channel, raw, run_time, student, note) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [self.sitting, device, port, reading.driver, reading.item, _local_time(reading.at),
             format(reading.value, "f"), reading.unit, int(reading.stable), reading.code,
             reading.channel, escape_raw(reading.raw),
             None if run_time is None else format(run_time, "f"), student, note])
        return cur.lastrowid

    def _add_attempt(self, student: dict, reading_id: int | None, device: str, value: Decimal,
                     started_at: str | None, item: rules.Item) -> dict:
        """``value`` is already in the item's unit; the reading row keeps the device's own."""
        check = rules.check(item, value, student.get("grade"), student.get("gender"))
        state = "rejected" if check.verdict == "reject" else "pending"
        cur = self.db.execute(
            "INSERT INTO pe_attempts (sitting, student, item, reading, device, value, rounded, unit, "
            "verdict, reason_zh, reason_en, state, started_at, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [self.sitting, student["code"], item.id, reading_id, device, format(value, "f"),
             format(check.value, "f"), item.unit, check.verdict, check.zh, check.en, state,
             started_at, _local_now()])
        self._open_results(student["code"], self._result_items, "device", audited=False)
        return self.attempt(cur.lastrowid)

    def _open_results(self, code: str, items: list[str], who: str, audited: bool = True) -> None:
        """A pending result row for each item that has none; a student marked absent or
        exempt who is tested after all (arrived late) is pending again. In a transaction."""
        for item_id in items:
            result = self._result(code, item_id)
            if result is None:
                self._set_result(code, "pending", None, who, item_id)
            elif result["status"] in ("absent", "exempt"):
                self._set_result(code, "pending", result["value"], who, item_id)
                if audited:
                    self._audit(who, "pe.result.status", "pe_result", code,
                                {"status": result["status"], "item": item_id},
                                {"status": "pending", "item": item_id})

    # --- the proctor decides -----------------------------------------------------------
    def assign(self, reading_id: int, code: str, who: str, item: str | None = None) -> dict:
        """Give an unassigned reading to a student (the proctor forgot to scan first).
        ``item``: which of the sitting's items it is, when the reading cannot tell."""
        with self._lock:
            student = self._student(code)
            rows = _rows(self.db, "SELECT *, coalesce(run_time, value) AS counts FROM pe_readings "
                         "WHERE id = ? AND sitting = ?", [reading_id, self.sitting])
            if not rows or rows[0]["student"] is not None or not rows[0]["note"]:
                raise FlowError(f"读数 {reading_id} 不是本场次未分配的读数。",
                                f"Reading {reading_id} is not an unassigned reading of this sitting.")
            row = rows[0]
            if item and item not in self.measured:
                raise FlowError(*_fmt(NOT_MEASURED, got=item, want=", ".join(self.measured)))
            target, why = (self.measured[item], None) if item else \
                self._item_for(row["item"], row["device"], row["unit"])
            if target is None:
                raise FlowError(*why)
            value = rules.convert(Decimal(row["counts"]), row["unit"], target)
            if value is None:
                raise FlowError(*_fmt(WRONG_UNIT, got=row["unit"], want=target.unit))
            if self._attempts_used(student["code"], target.id) >= target.attempts:
                raise FlowError(*_fmt(ALL_DONE, code=student["code"], n=target.attempts))
            with transaction(self.db):
                self.db.execute("UPDATE pe_readings SET student = ? WHERE id = ?",
                                [student["code"], reading_id])
                attempt = self._add_attempt(student, reading_id, row["device"], value, None, target)
                self._audit(who, "pe.reading.assign", "pe_reading", reading_id,
                            {"student": None}, {"student": student["code"], "item": target.id})
            self._emit({"type": "decision", "attempt": attempt})
            return attempt

    def confirm(self, attempt_id: int, who: str) -> dict:
        return self._decide(attempt_id, who, "confirmed", ("pending",), "pe.attempt.confirm")

    def void(self, attempt_id: int, who: str) -> dict:
        return self._decide(attempt_id, who, "voided", ("pending", "confirmed"), "pe.attempt.void")

    def retest(self, code: str, who: str, device: str | None = None, item: str | None = None,
               lane: int | None = None) -> dict:
        """Void the student's latest attempt (of ``item``, or of the device's item, or of any
        item of the sitting) and make them current again."""
        with self._lock:
            student = self._student(code)
            slot = device if lane is None else self._lane_slot(lane)
            if item and item not in self.measured:
                raise FlowError(*_fmt(NOT_MEASURED, got=item, want=", ".join(self.measured)))
            item = item or self.device_items.get(device or "")
            items = [item] if item in self.measured else list(self.measured)
            latest = _rows(self.db, "SELECT id FROM pe_attempts WHERE sitting = ? AND student = ? "
                           f"AND item IN ({','.join('?' * len(items))}) "
                           "AND state IN ('pending', 'confirmed') ORDER BY id DESC LIMIT 1",
                           [self.sitting, student["code"], *items])
            if latest:
                self._decide(latest[0]["id"], who, "voided", ("pending", "confirmed"),
                             "pe.attempt.retest")
            if lane is not None:
                self._leave(student["code"])
            for key in [k for k, v in self._finished.items() if v == student["code"]]:
                del self._finished[key]
            self._current[slot] = student["code"]
            self._emit({"type": "scan", "device": device, "lane": lane, "student": student["code"]})
            return student

    def absent(self, code: str, who: str) -> dict:
        return self._mark(code, who, "absent")

    def exempt(self, code: str, who: str) -> dict:
        return self._mark(code, who, "exempt")

    def correct(self, attempt_id: int, new_value: str, reason: str, who: str) -> dict:
        """Change an attempt's value; the old value, the reason and who stay on record."""
        reason = (reason or "").strip()
        if not reason:
            raise FlowError("更正成绩必须填写原因。", "A correction needs a reason; write why.")
        try:
            value = Decimal(str(new_value).strip())
            if not value.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise FlowError(f"“{new_value}”不是数字，请输入成绩数值，例如 8.2 或 -3.5。",
                            f"\"{new_value}\" is not a number; enter the value, e.g. 8.2 or -3.5.") from None
        with self._lock:
            old = self.attempt(attempt_id)
            if old["state"] == "voided":
                raise FlowError(f"第 {attempt_id} 条成绩已作废，不能更正。",
                                f"Attempt {attempt_id} is voided and cannot be corrected.")
            item = self.measured.get(old["item"], self.item)
            student = self.lookup_student(old["student"]) or {}
            check = rules.check(item, value, student.get("grade"), student.get("gender"))
            if check.verdict == "reject":
                raise FlowError(check.zh, check.en)
            at = _local_now()
            with transaction(self.db):
                self.db.execute("INSERT INTO pe_corrections (attempt, old_value, new_value, reason, "
                                "who, at) VALUES (?,?,?,?,?,?)",
                                [attempt_id, old["rounded"], format(check.value, "f"), reason, who, at])
                # The proctor typed the value: it is their decision, confirmed as typed.
                self.db.execute("UPDATE pe_attempts SET value = ?, rounded = ?, verdict = ?, "
                                "reason_zh = ?, reason_en = ?, state = 'confirmed', decided_by = ?, "
                                "decided_at = ? WHERE id = ?",
                                [format(value, "f"), format(check.value, "f"), check.verdict,
                                 check.zh, check.en, who, at, attempt_id])
                self._audit(who, "pe.attempt.correct", "pe_attempt", attempt_id,
                            {"value": old["rounded"], "state": old["state"]},
                            {"value": format(check.value, "f"), "reason": reason})
                self._refresh_result(old["student"], old["item"], who)
            attempt = self.attempt(attempt_id)
            self._emit({"type": "decision", "attempt": attempt})
            return attempt

    def _decide(self, attempt_id: int, who: str, state: str, allowed: tuple[str, ...],
                action: str) -> dict:
        with self._lock:
            old = self.attempt(attempt_id)
            if old["state"] not in allowed:
                raise FlowError(
                    f"第 {attempt_id} 条成绩当前状态是“{STATE_ZH[old['state']]}”，不能这样操作。",
                    f"Attempt {attempt_id} is {old['state']}; that cannot be done to it now.")
            at = _local_now()
            with transaction(self.db):
                self.db.execute("UPDATE pe_attempts SET state = ?, decided_by = ?, decided_at = ? "
                                "WHERE id = ?", [state, who, at, attempt_id])
                self._audit(who, action, "pe_attempt", attempt_id, {"state": old["state"]},
                            {"state": state})
                self._refresh_result(old["student"], old["item"], who)
            attempt = self.attempt(attempt_id)
            self._emit({"type": "decision", "attempt": attempt})
            return attempt

    def _mark(self, code: str, who: str, status: str) -> dict:
        """Absent or exempt: from every item of the sitting (height, weight and BMI alike)."""
        with self._lock:
            student = self._student(code)
            with transaction(self.db):
                for item_id in self._result_items:
                    old = self._result(student["code"], item_id)
                    self._set_result(student["code"], status, old and old["value"], who, item_id)
                    self._audit(who, f"pe.result.{status}", "pe_result", student["code"],
                                {"status": old["status"]} if old else None,
                                {"status": status, **({"item": item_id} if self.derived else {})})
            self._leave(student["code"])
            result = self._result(student["code"])
            self._emit({"type": "decision", "result": result})
            return result

    # --- results -----------------------------------------------------------------------
    def _refresh_result(self, code: str, item_id: str, who: str) -> None:
        """The value that counts and whether the student is done; inside a transaction."""
        item = self.measured.get(item_id, self.item)
        confirmed = [Decimal(r["rounded"]) for r in _rows(
            self.db, "SELECT rounded FROM pe_attempts WHERE sitting = ? AND student = ? AND item = ? "
            "AND state = 'confirmed'", [self.sitting, code, item.id])]
        best = rules.best(item, confirmed)
        old = self._result(code, item.id)
        status = old["status"] if old and old["status"] in ("absent", "exempt") else (
            "done" if len(confirmed) >= item.attempts else "pending")
        self._set_result(code, status, None if best is None else format(best, "f"), who, item.id)
        if self.derived is not None:
            self._derive(code, who)

    def _derive(self, code: str, who: str) -> None:
        """BMI from the confirmed height and weight, or cleared while one is missing.

        Outside the usual range (or the limits) it is still derived, from two values the
        proctor confirmed, but the reason is kept on the result for the proctor to see.
        """
        item = self.derived
        old = self._result(code, item.id)
        if old and old["status"] in ("absent", "exempt"):
            return
        inputs = {i: self._result(code, i) for i in item.inputs}
        if not all(r and r["status"] == "done" and r["value"] is not None for r in inputs.values()):
            self._set_result(code, "pending", None, who, item.id)
            return
        value = rules.derive(item, {i: Decimal(r["value"]) for i, r in inputs.items()})
        student = self.lookup_student(code) or {}
        check = rules.check(item, value, student.get("grade"), student.get("gender"))
        self._set_result(code, "done", format(check.value, "f"), who, item.id,
                         check.verdict, check.zh, check.en)

    def _set_result(self, code: str, status: str, value: str | None, who: str,
                    item_id: str | None = None, verdict: str | None = None,
                    reason_zh: str = "", reason_en: str = "") -> None:
        self.db.execute(
            "INSERT INTO pe_results (sitting, student, item, status, value, updated_at, updated_by, "
            "verdict, reason_zh, reason_en) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (sitting, student, item) DO UPDATE SET "
            "status = excluded.status, value = excluded.value, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by, verdict = excluded.verdict, "
            "reason_zh = excluded.reason_zh, reason_en = excluded.reason_en",
            [self.sitting, code, item_id or self.item.id, status, value, _local_now(), who,
             verdict, reason_zh, reason_en])

    def _result(self, code: str, item_id: str | None = None) -> dict | None:
        rows = _rows(self.db, "SELECT * FROM pe_results WHERE sitting = ? AND student = ? AND item = ?",
                     [self.sitting, code, item_id or self.item.id])
        return rows[0] if rows else None

    def _attempts_used(self, code: str, item_id: str | None = None) -> int:
        """Attempts that take a turn: pending or confirmed (voided and refused ones do not)."""
        return self.db.execute(
            "SELECT count(*) FROM pe_attempts WHERE sitting = ? AND student = ? AND item = ? "
            "AND state IN ('pending', 'confirmed')",
            [self.sitting, code, item_id or self.item.id]).fetchone()[0]

    def _left(self, code: str) -> list[str]:
        """The measured items the student still has attempts at."""
        return [i for i, item in self.measured.items() if self._attempts_used(code, i) < item.attempts]

    def attempt(self, attempt_id: int) -> dict:
        rows = _rows(self.db, "SELECT * FROM pe_attempts WHERE id = ? AND sitting = ?",
                     [attempt_id, self.sitting])
        if not rows:
            raise FlowError(f"本场次没有第 {attempt_id} 条成绩，请刷新页面。",
                            f"This sitting has no attempt {attempt_id}; reload the page.")
        return rows[0]

    def attempts_of(self, code: str, item: str | None = None) -> list[dict]:
        """The student's attempts at ``item``, or at every item the sitting measures."""
        items = [item] if item else list(self.measured)
        return _rows(self.db, "SELECT * FROM pe_attempts WHERE sitting = ? AND student = ? "
                     f"AND item IN ({','.join('?' * len(items))}) ORDER BY id",
                     [self.sitting, code, *items])

    def unassigned(self, limit: int = 50) -> list[dict]:
        return _rows(self.db, "SELECT id, device, at, coalesce(run_time, value) AS value, unit, code, "
                     "note FROM pe_readings "
                     "WHERE sitting = ? AND student IS NULL AND note != '' ORDER BY id DESC LIMIT ?",
                     [self.sitting, limit])

    def progress(self) -> dict[str, int]:
        """Students by status of the sitting's item (a BMI sitting: done = both measured)."""
        counts = {s: 0 for s in ("pending", "done", "absent", "exempt")}
        for status, n in self.db.execute("SELECT status, count(*) FROM pe_results WHERE sitting = ? "
                                          "AND item = ? GROUP BY status",
                                          [self.sitting, self.item.id]).fetchall():
            counts[status] = n
        return counts

    def state(self) -> dict:
        """Everything the page or the terminal station shows, as JSON-ready data."""
        with self._lock:
            current = {}
            shown = [(slot, code, True) for slot, code in self._finished.items()
                     if slot not in self._current]
            for slot, code, finished in [(k, v, False) for k, v in self._current.items()] + shown:
                student = self.lookup_student(code) or {"code": code}
                lane = int(slot[5:]) if slot and slot.startswith("lane-") else None
                current[slot or ""] = {"student": student, "attempts": self.attempts_of(code),
                                       "result": self._result(code), "lane": lane,
                                       "finished": finished,
                                       "results": {i: self._result(code, i) for i in self._result_items}}
            return {"sitting": self.sitting, "item": self.item.id, "unit": self.item.unit,
                    "attempts_allowed": self.item.attempts, "current": current,
                    "items": [{"id": i.id, "unit": i.unit, "attempts": i.attempts}
                              for i in self.measured.values()],
                    "derived": self.derived.id if self.derived else None, "lanes": self.lanes,
                    "live": dict(self._live), "progress": self.progress(),
                    "pending": _rows(self.db, "SELECT * FROM pe_attempts WHERE sitting = ? AND "
                                     "state = 'pending' ORDER BY id", [self.sitting]),
                    "unassigned": self.unassigned()}

    # --- helpers -----------------------------------------------------------------------
    def _student(self, code: str) -> dict:
        code = (code or "").strip()
        student = self.lookup_student(code) if code else None
        if student is None:
            raise FlowError(f"学籍号/考号“{code}”不在名册中。请核对条码，或先导入名册。",
                            f"The code \"{code}\" is not in the roster; check the barcode or import "
                            f"the roster first.")
        if student.get("grade") and student.get("gender") and self.item.usual \
                and not self.item.applies_to(student["grade"], student["gender"]):
            raise FlowError(f"{student['grade']} 年级{'男' if student['gender'] == 'M' else '女'}生"
                            f"不测{self.item.name_zh}，请核对学生或场次项目。",
                            f"Grade {student['grade']} {'boys' if student['gender'] == 'M' else 'girls'} "
                            f"do not take {self.item.name_en}; check the student or the sitting's item.")
        return student

    def _audit(self, who, action, entity, entity_id, old, new) -> None:
        if self.audit is not None:
            self.audit(self.db, who, action, entity, str(entity_id), old, new)

    def _emit(self, event: dict) -> None:
        if self.on_event is not None:
            try:
                self.on_event(json.loads(json.dumps(event, default=str)))
            except Exception:  # noqa: BLE001 - a display fault must not lose a reading
                log.exception("PE event callback failed")


STATE_ZH = {"pending": "待确认", "confirmed": "已确认", "voided": "已作废", "rejected": "已拒绝"}


def _fmt(pair: tuple[str, str], **values) -> tuple[str, str]:
    return pair[0].format(**values), pair[1].format(**values)
