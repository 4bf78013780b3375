"""The singing desk of one station: the take being recorded, the pages following it.

One take at a time per station (one headset): the take runs on a thread of its own, with
its own database connection (``Station.db`` is per thread), and reports its level and
time through the recorder's progress callback. Events reach the server-sent-event streams
through each stream's event loop, as the PE hub does.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from qmbase.refusal import Refusal
from station import roster
from station import singing
from station.context import Station
from station.web.events import Listeners

STATES = ("pending", "accepted", "retake", "rejected")


class Busy(Refusal):
    """A take is already being recorded."""

    code = "busy"

    def __init__(self):
        super().__init__("正在为另一名考生录音，请等这次录音结束（或点“停止”）后再开始。",
                         "A take is being recorded; wait for it to end (or press Stop) before "
                         "starting another.")


@dataclass
class Live:
    """The take on the headset now."""

    code: str
    sitting: str
    song: str | None
    seconds: float | None            # how long it runs unless stopped
    started: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0
    level_dbfs: float = -120.0
    stop: threading.Event = field(default_factory=threading.Event)

    def to_json(self) -> dict[str, Any]:
        remaining = None if self.seconds is None else max(0.0, round(self.seconds - self.elapsed_s, 1))
        return {"code": self.code, "sitting": self.sitting, "song": self.song, "seconds": self.seconds,
                "elapsed_s": round(self.elapsed_s, 1), "remaining_s": remaining,
                "level_dbfs": self.level_dbfs}


@dataclass
class Desk:
    station: Station
    live: Live | None = None
    last: dict | None = None               # the last take's verdict, or why it failed
    selected: str | None = None            # the student the proctor scanned
    salvaged: list[dict] | None = None     # None until start-up salvage has run
    # Unbounded: a page must not miss "done" behind a run of level events.
    _listeners: Listeners = field(default_factory=Listeners)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, app) -> "Desk":
        desk = getattr(app.state, "sing_desk", None)
        if desk is None:
            desk = app.state.sing_desk = cls(app.state.station)
        return desk

    # --- events ---------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue:
        return self._listeners.add()

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._listeners.remove(queue)

    def publish(self, event: dict) -> None:
        self._listeners.publish(event)

    def salvage_done(self, results: list[dict]) -> None:
        self.salvaged = results
        if results:
            self.publish({"type": "salvaged", "count": len(results)})

    # --- a take ---------------------------------------------------------------------------

    def select(self, code: str) -> dict:
        """The scanned student, checked against the roster and the open sitting."""
        db = self.station.db
        sitting = singing.open_singing_sitting(db)
        student = roster.lookup(db, code) if code else None
        if student is None:
            raise singing.TakeRefused(
                "not_in_roster", f"学籍号/考号“{code}”不在名册中，请核对条码后重新扫描。",
                f"Code \"{code}\" is not in the roster; check the barcode and scan again.")
        self.selected = student["code"]
        self.publish({"type": "selected", "code": student["code"]})
        return next(s for s in sitting_state(self.station, sitting)["students"]
                    if s["code"] == student["code"])

    def start(self, code: str, song: str | None = None, seconds: float | None = None) -> Live:
        """Check and start a take on a thread; raises Busy or TakeRefused."""
        with self._lock:
            if self.live is not None:
                raise Busy()
            # Checked under the lock: a second click cannot slip in between.
            plan = singing.plan_take(self.station, code, song, seconds)
            live = self.live = Live(code=plan.student["code"], sitting=plan.sitting_id,
                                    song=plan.song.id if plan.song else None, seconds=plan.song_seconds)
        self.selected = live.code
        threading.Thread(target=self._record, args=(plan, live), name="take", daemon=True).start()
        self.publish({"type": "started", **live.to_json()})
        return live

    def stop(self) -> bool:
        live = self.live
        if live is None:
            return False
        live.stop.set()
        return True

    def _record(self, plan: singing.TakePlan, live: Live) -> None:
        def progress(recorder) -> None:
            live.elapsed_s = recorder.captured / recorder.rate
            live.level_dbfs = singing.input_level_dbfs(recorder)
            self.publish({"type": "level", **live.to_json()})

        try:
            outcome = singing.record_plan(self.station, plan, stop=live.stop, progress=progress)
            summary = singing.take_summary(outcome)
            take = summary["take"]
            last = {"code": live.code, "attempt": take["attempt"], "take_id": take["id"],
                    "verdict": summary["verdict"], "reasons": summary["reasons"],
                    "duration_s": take["duration_s"], "dropouts": take["dropouts"],
                    "counts": take["counts"], "error": None}
        except singing.TakeRefused as exc:
            last = {"code": live.code, "verdict": None, "reasons": [],
                    "error": {"code": exc.code, "zh": exc.zh, "en": exc.en}}
        except Exception as exc:  # the page must leave "recording" whatever happened
            last = {"code": live.code, "verdict": None, "reasons": [], "error": {
                "code": "internal", "zh": f"录音出错（{type(exc).__name__}）。已录下的部分会在下次启动时修复，请重录。",
                "en": f"The take failed ({type(exc).__name__}). What was recorded is repaired at the "
                      "next start; record again."}}
        with self._lock:
            self.last = last
            self.live = None
        self.publish({"type": "done", **last})


def student_state(takes: list, retakes: int, policy: str) -> dict:
    """A student's standing in the sitting: pending, accepted, retake (needed) or rejected."""
    from recorder.takes import counting_take, used_attempts

    used = used_attempts(takes)
    counting = counting_take(takes, policy)
    if not takes:
        state = "pending"
    elif counting is not None:
        state = "accepted"
    elif used >= 1 + retakes:
        state = "rejected"
    else:
        state = "retake"
    last = takes[-1] if takes else None
    return {"state": state, "attempts_used": used, "attempts_allowed": 1 + retakes,
            "retakes_left": max(0, 1 + retakes - used),
            "last_verdict": last.verdict if last else None,
            "last_reasons": last.reasons if last else [],
            "interrupted": any(t.interrupted for t in takes)}


def sitting_state(station: Station, sitting: dict) -> dict:
    """Every roster student with their standing, and the sitting's progress (n of m done)."""
    from recorder.takes import Take

    db = station.db
    retakes = int(station.config["singing.retake_limit"])
    policy = station.config["singing.counts"]
    by_code: dict[str, list] = {}
    for row in db["takes"].rows_where("sitting_id = ?", [sitting["id"]], order_by="attempt"):
        by_code.setdefault(row["student_code"], []).append(Take.from_row(row))
    students = []
    for s in roster.students(db):
        students.append({"code": s["code"], "name": s["name"], "grade": s["grade"], "class": s["class"],
                         **student_state(by_code.get(s["code"], []), retakes, policy)})
    done = sum(1 for s in students if s["state"] in ("accepted", "rejected"))
    return {"sitting": sitting, "students": students,
            "progress": {"done": done, "total": len(students)}}
