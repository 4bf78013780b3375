"""One PE sitting's decisions: a reading arrives, the proctor scans, confirms, corrects.

Plain methods on a database handle plus callbacks passed in (``lookup_student``,
``audit``, ``on_event``): no ports, no threads of its own, no web. The service feeds it
readings from the port readers; the page and the terminal station call its decisions.
The rules it applies live apart: whose a reading is in ``assign``, what a value counts
for in ``rules``, which state may follow which in ``states``, the SQL in ``store``, the
words in ``messages``.

* an unstable reading is shown live and stored, never taken as a result;
* a reading nobody can be given is kept as *unassigned* with the reason, never dropped;
* a value outside the hard limits is refused with the reason; outside the usual range the
  proctor must confirm it; every attempt waits for the proctor's confirmation;
* a correction keeps the old value, the reason and who made it;
* a derived item (BMI) follows from its inputs' confirmed values, recomputed on a void
  or a correction;
* a reading in another unit is converted exactly (g to kg, mm to cm …); one that cannot be
  converted (lb) is unassigned with the reason.

Every method that writes does so in one transaction, so a power cut leaves each
reading, attempt and decision whole or absent.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Callable

import sqlite_utils

from devices.drivers import Reading, RunTimer
from pe_station import assign, messages as msg, rules, states, timer_fix
from pe_station.assign import lane_slot  # noqa: F401 - the page's name for a lane's card
from pe_station.messages import FlowError
from pe_station.results import Results
from pe_station.store import Store, local_now, local_time

log = logging.getLogger(__name__)

LookupStudent = Callable[[str], "dict | None"]
Audit = Callable[..., None]     # (db, who, action, entity, entity_id, old, new), as station.audit.record
OnEvent = Callable[[dict], None]

__all__ = ["Flow", "FlowError", "lane_slot"]


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

    store: Store = field(init=False, repr=False)
    results: Results = field(init=False, repr=False)
    slots: assign.Slots = field(default_factory=assign.Slots, init=False)
    _live: dict[str, dict] = field(default_factory=dict, init=False)
    _timers: dict[str, RunTimer] = field(default_factory=dict, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.measured is None:
            if self.item.derived:
                raise ValueError(f"{self.item.id} is derived: pass measured=rules.measured(items, "
                                 f"{self.item.id!r})")
            self.measured = {self.item.id: self.item}
        self.store = Store(self.db, self.sitting)
        self.results = Results(self.store, self.item, self.measured, self.lookup_student, self._audit)

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

    # --- the proctor scans -------------------------------------------------------------
    def scan(self, code: str, who: str, device: str | None = None, lane: int | None = None) -> dict:
        """Make ``code`` the student of ``device`` (None: of every device of the sitting),
        or of ``lane`` of the sitting's timing gate."""
        with self._lock:
            student = self._student(code)
            slot = device if lane is None else self._lane_slot(lane)
            if not self._left(student["code"]):
                if len(self.measured) == 1:
                    raise msg.refuse(msg.HAD_ALL, name=student["name"], code=code,
                                     n=self.item.attempts, item_zh=self.item.name_zh,
                                     item_en=self.item.name_en)
                raise msg.refuse(msg.MEASURED_ALL, name=student["name"], code=code,
                                 items_zh="、".join(i.name_zh for i in self.measured.values()),
                                 items_en=", ".join(i.name_en for i in self.measured.values()))
            with self.store.transaction():
                self.results.open(student["code"], who)
            self.slots.put(slot, student["code"], lane)
            self._emit({"type": "scan", "device": device, "lane": lane, "student": student["code"]})
            return student

    def current(self, device: str | None = None) -> str | None:
        with self._lock:
            return self.slots.of(device)

    def _lane_slot(self, lane) -> str:
        try:
            lane = int(lane)
        except (TypeError, ValueError):
            lane = 0
        if not self.lanes:
            raise FlowError(*msg.NO_LANES)
        if not 1 <= lane <= self.lanes:
            raise msg.refuse(msg.BAD_LANE, lanes=self.lanes)
        return lane_slot(lane)

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
                with self.store.transaction():
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
                "stable": reading.stable, "at": local_time(reading.at), "code": reading.code}
        self._live[device] = live
        if not reading.stable:
            self.store.add_reading(reading, device, port, None, "")
            return {"type": "live", **live}
        if reading.channel is not None:
            return self._impulse(reading, device, port)
        return self._final(reading, device, port, reading.value, None)

    def _impulse(self, reading: Reading, device: str, port: str) -> dict:
        timer = self._timers.get(device)
        if timer is None:
            timer = self._timers[device] = RunTimer(
                self.device_pairing.get(device) or ("bib" if self.by_bib else "sequence"))
        lane, feeds, counts = assign.timer_feed(reading, self.device_lanes.get(device, 0))
        for one in feeds:
            run = timer.feed(one)
        run = run if counts else None
        # The page shows the run, not the impulse's time of day: "timing" until it ends.
        self._live[device].update(value="" if run is None else format(run.seconds, "f"),
                                  timing=run is None)
        if run is None:
            reading_id = self.store.add_reading(reading, device, port, None, "")
            return {"type": "impulse", "device": device, "reading": reading_id,
                    "channel": reading.channel, "code": reading.code, "lane": lane,
                    "flag": reading.flag}
        if run.replaces is not None:
            return timer_fix.apply(self, reading, device, port, run)
        return self.take_run(reading, device, port, run)

    def take_run(self, reading: Reading, device: str, port: str, run) -> dict:
        """A run time as a final value; the run's code (None when the timer numbers
        impulses rather than bibs) says whose it is. Inside a transaction."""
        reading = assign.run_reading(reading, run.code, self.device_lanes.get(device, 0))
        start = None if reading.at is None else local_time(reading.at - float(run.seconds))
        event = self._final(reading, device, port, run.seconds, start)
        if event["type"] == "attempt":
            self.run_attempts[(device, run.id)] = event["attempt"]["id"]
        return event

    def _final(self, reading: Reading, device: str, port: str, value: Decimal,
               started_at: str | None) -> dict:
        item, why = assign.item_for(self.measured, reading.item, self.device_items.get(device),
                                    reading.unit)
        code = student = None
        if item is not None:
            converted = rules.convert(value, reading.unit, item)
            if converted is None:
                why = msg.fmt(msg.WRONG_UNIT, got=reading.unit.strip(), want=item.unit)
            else:
                code, why = assign.whose(reading, device, self.device_lanes.get(device, 0), self.slots,
                                         lambda c: self.lookup_student(c) is not None)
        if code is not None:
            student = self.lookup_student(code)
            if student is None:
                code, why = None, msg.fmt(msg.UNKNOWN_CODE, code=code)
        if student is not None and self.store.turns_used(code, item.id) >= item.attempts:
            code, why = None, msg.fmt(msg.ALL_DONE, code=code, n=item.attempts)
        reading_id = self.store.add_reading(reading, device, port, code, "\n".join(why) if why else "",
                                            run_time=value if reading.channel is not None else None)
        if code is None:
            return {"type": "unassigned", "device": device, "reading": reading_id,
                    "value": format(value, "f"), "unit": reading.unit, "zh": why[0], "en": why[1]}
        attempt = self._add_attempt(student, reading_id, device, converted, started_at, item)
        if not self._left(code) and self.derived is None:
            # Done: the next reading is not theirs. A BMI sitting keeps the student current
            # until the next scan, as height and weight may come in either order.
            self.slots.finish(code)
        return {"type": "attempt", "device": device, "reading": reading_id, "attempt": attempt}

    def _add_attempt(self, student: dict, reading_id: int | None, device: str, value: Decimal,
                     started_at: str | None, item: rules.Item) -> dict:
        """``value`` is already in the item's unit; the reading row keeps the device's own."""
        check = rules.check(item, value, student.get("grade"), student.get("gender"))
        attempt_id = self.store.add_attempt(student["code"], item, reading_id, device, value, check,
                                            started_at)
        self.results.open(student["code"], "device", audited=False)
        return self.attempt(attempt_id)

    # --- the proctor decides -----------------------------------------------------------
    def assign(self, reading_id: int, code: str, who: str, item: str | None = None) -> dict:
        """Give an unassigned reading to a student (the proctor forgot to scan first).
        ``item``: which of the sitting's items it is, when the reading cannot tell."""
        with self._lock:
            student = self._student(code)
            row = self.store.unassigned_reading(reading_id)
            if row is None:
                raise msg.refuse(msg.NOT_UNASSIGNED, reading=reading_id)
            if item and item not in self.measured:
                raise msg.refuse(msg.NOT_MEASURED, got=item, want=", ".join(self.measured))
            target, why = (self.measured[item], None) if item else \
                assign.item_for(self.measured, row["item"], self.device_items.get(row["device"]),
                                row["unit"])
            if target is None:
                raise FlowError(*why)
            value = rules.convert(Decimal(row["counts"]), row["unit"], target)
            if value is None:
                raise msg.refuse(msg.WRONG_UNIT, got=row["unit"], want=target.unit)
            if self.store.turns_used(student["code"], target.id) >= target.attempts:
                raise msg.refuse(msg.ALL_DONE, code=student["code"], n=target.attempts)
            with self.store.transaction():
                self.store.give_reading(reading_id, student["code"])
                attempt = self._add_attempt(student, reading_id, row["device"], value, None, target)
                self._audit(who, "pe.reading.assign", "pe_reading", reading_id,
                            {"student": None}, {"student": student["code"], "item": target.id})
            self._emit({"type": "decision", "attempt": attempt})
            return attempt

    def confirm(self, attempt_id: int, who: str) -> dict:
        return self._decide(attempt_id, who, "confirm", "pe.attempt.confirm")

    def void(self, attempt_id: int, who: str) -> dict:
        return self._decide(attempt_id, who, "void", "pe.attempt.void")

    def retest(self, code: str, who: str, device: str | None = None, item: str | None = None,
               lane: int | None = None) -> dict:
        """Void the student's latest attempt (of ``item``, or of the device's item, or of any
        item of the sitting) and make them current again."""
        with self._lock:
            student = self._student(code)
            slot = device if lane is None else self._lane_slot(lane)
            if item and item not in self.measured:
                raise msg.refuse(msg.NOT_MEASURED, got=item, want=", ".join(self.measured))
            item = item or self.device_items.get(device or "")
            latest = self.store.latest_turn(student["code"],
                                            [item] if item in self.measured else list(self.measured))
            if latest:
                self._decide(latest["id"], who, "retest", "pe.attempt.retest")
            self.slots.again(slot, student["code"], lane)
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
            raise FlowError(*msg.NEEDS_REASON)
        try:
            value = Decimal(str(new_value).strip())
            if not value.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise msg.refuse(msg.NOT_A_NUMBER, value=new_value) from None
        with self._lock:
            old = self.attempt(attempt_id)
            if not states.allows(old["state"], "correct"):
                raise msg.refuse(msg.VOIDED_FINAL, attempt=attempt_id)
            item = self.measured.get(old["item"], self.item)
            student = self.lookup_student(old["student"]) or {}
            check = rules.check(item, value, student.get("grade"), student.get("gender"))
            if check.verdict == "reject":
                raise FlowError(check.zh, check.en)
            at = local_now()
            with self.store.transaction():
                self.store.add_correction(attempt_id, old["rounded"], format(check.value, "f"),
                                          reason, who, at)
                # The proctor typed the value: it is their decision, confirmed as typed.
                self.store.decide(old, "correct", who, at, value=format(value, "f"),
                                  rounded=format(check.value, "f"), verdict=check.verdict,
                                  reason_zh=check.zh, reason_en=check.en)
                self._audit(who, "pe.attempt.correct", "pe_attempt", attempt_id,
                            {"value": old["rounded"], "state": old["state"]},
                            {"value": format(check.value, "f"), "reason": reason})
                self.results.refresh(old["student"], old["item"], who)
            attempt = self.attempt(attempt_id)
            self._emit({"type": "decision", "attempt": attempt})
            return attempt

    def _decide(self, attempt_id: int, who: str, event: str, action: str) -> dict:
        with self._lock:
            old = self.attempt(attempt_id)
            if not states.allows(old["state"], event):
                state_zh = states.ATTEMPT_LABELS[old["state"]][0]
                raise msg.refuse(msg.WRONG_STATE, attempt=attempt_id, state_zh=state_zh,
                                 state=old["state"])
            with self.store.transaction():
                state = self.store.decide(old, event, who, local_now())
                self._audit(who, action, "pe_attempt", attempt_id, {"state": old["state"]},
                            {"state": state})
                self.results.refresh(old["student"], old["item"], who)
            attempt = self.attempt(attempt_id)
            self._emit({"type": "decision", "attempt": attempt})
            return attempt

    def _mark(self, code: str, who: str, mark: str) -> dict:
        """Absent or exempt: from every item of the sitting (height, weight and BMI alike)."""
        with self._lock:
            student = self._student(code)
            with self.store.transaction():
                self.results.mark(student["code"], who, mark)
            self.slots.leave(student["code"])
            result = self.result(student["code"])
            self._emit({"type": "decision", "result": result})
            return result

    # --- results -----------------------------------------------------------------------
    def result(self, code: str, item_id: str | None = None) -> dict | None:
        """The student's result for ``item_id`` (default: the sitting's item)."""
        return self.store.result(code, item_id or self.item.id)

    def _left(self, code: str) -> list[str]:
        return assign.items_left(self.measured, lambda i: self.store.turns_used(code, i))

    def attempt(self, attempt_id: int) -> dict:
        row = self.store.attempt(attempt_id)
        if row is None:
            raise msg.refuse(msg.NO_ATTEMPT, attempt=attempt_id)
        return row

    def attempts_of(self, code: str, item: str | None = None) -> list[dict]:
        """The student's attempts at ``item``, or at every item the sitting measures."""
        return self.store.attempts_of(code, [item] if item else list(self.measured))

    def unassigned(self, limit: int = 50) -> list[dict]:
        return self.store.unassigned(limit)

    def progress(self) -> dict[str, int]:
        """Students by status of the sitting's item (a BMI sitting: done = both measured)."""
        return self.store.progress(self.item.id)

    def state(self) -> dict:
        """Everything the page or the terminal station shows, as JSON-ready data."""
        with self._lock:
            current = {}
            for slot, code, finished in self.slots.shown():
                student = self.lookup_student(code) or {"code": code}
                current[slot or ""] = {"student": student, "attempts": self.attempts_of(code),
                                       "result": self.result(code), "lane": assign.slot_lane(slot),
                                       "finished": finished,
                                       "results": {i: self.result(code, i) for i in self.results.items}}
            return {"sitting": self.sitting, "item": self.item.id, "unit": self.item.unit,
                    "attempts_allowed": self.item.attempts, "current": current,
                    "items": [{"id": i.id, "unit": i.unit, "attempts": i.attempts}
                              for i in self.measured.values()],
                    "derived": self.derived.id if self.derived else None, "lanes": self.lanes,
                    "live": dict(self._live), "progress": self.progress(),
                    "pending": self.store.waiting(), "unassigned": self.unassigned()}

    # --- helpers -----------------------------------------------------------------------
    def _student(self, code: str) -> dict:
        code = (code or "").strip()
        student = self.lookup_student(code) if code else None
        if student is None:
            raise msg.refuse(msg.NOT_IN_ROSTER, code=code)
        if student.get("grade") and student.get("gender") and self.item.usual \
                and not self.item.applies_to(student["grade"], student["gender"]):
            boys = student["gender"] == "M"
            raise msg.refuse(msg.NOT_THEIR_ITEM, grade=student["grade"], gender_zh="男" if boys else "女",
                             gender_en="boys" if boys else "girls", item_zh=self.item.name_zh,
                             item_en=self.item.name_en)
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
