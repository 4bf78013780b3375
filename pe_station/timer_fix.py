"""A timer correcting a run the station already took: the proctor decides again.

An ALGE Timy can clear an impulse (``c``/``d`` in its first column) or take a re-entered
time (``i``) after the run was sent. The station then holds a run time the timer no
longer shows. This module applies the timer's correction to the attempt made from that
run: a new time replaces the value and sends the attempt back to *pending* (even when it
was confirmed: the proctor confirms the corrected time), a withdrawn run voids it; the
old and new values go to ``pe_corrections`` and the audit trail, with ``timer`` as who.
Called by `Flow` inside its transaction, with its lock held.
"""
from __future__ import annotations

from decimal import Decimal

from devices.drivers import Reading, RunTime
from pe_station import rules

WHO = "timer"
REASON = "计时器上更正了时间 / the time was corrected on the timer"
WITHDRAWN = ("计时器上清除了这次计时，成绩已作废，请让学生重测。",
             "The timer cleared this run; the attempt is voided: let the student run again.")
CORRECTED = ("计时器上更正了时间（原为 {old}），请重新确认。",
             "The time was corrected on the timer (it was {old}); confirm it again.")


def apply(flow, reading: Reading, device: str, port: str, run: RunTime) -> dict:
    """Store the correcting impulse and apply ``run`` (which replaces an earlier one)."""
    attempt_id = flow.run_attempts.pop((device, run.replaces), None)
    old = flow.attempt(attempt_id) if attempt_id is not None else None
    if old is None or old["state"] in ("voided", "rejected"):
        # Nothing stands on the old run: a corrected run is a run like any other.
        if run.withdrawn:
            reading_id = flow._store(reading, device, port, None, "")
            return {"type": "impulse", "device": device, "reading": reading_id,
                    "channel": reading.channel, "code": reading.code, "lane": None}
        return flow.take_run(reading, device, port, run)
    item = flow.measured.get(old["item"], flow.item)
    if run.withdrawn:
        reading_id = flow._store(reading, device, port, old["student"], "")
        flow.db.execute("UPDATE pe_attempts SET state = 'voided', decided_by = ?, decided_at = ?, "
                        "reason_zh = ?, reason_en = ? WHERE id = ?",
                        [WHO, _now(), *WITHDRAWN, attempt_id])
        flow._audit(WHO, "pe.attempt.timer_withdrawn", "pe_attempt", attempt_id,
                    {"value": old["rounded"], "state": old["state"]},
                    {"state": "voided", "reading": reading_id})
    else:
        reading_id = flow._store(reading, device, port, old["student"], "", run_time=run.seconds)
        value = rules.convert(run.seconds, reading.unit, item)
        if value is None:                   # a run is in seconds: the item's unit is too
            value = Decimal(run.seconds)
        student = flow.lookup_student(old["student"]) or {}
        check = rules.check(item, value, student.get("grade"), student.get("gender"))
        zh, en = (c.format(old=f"{old['rounded']} {old['unit']}") for c in CORRECTED)
        flow.db.execute("INSERT INTO pe_corrections (attempt, old_value, new_value, reason, who, at) "
                        "VALUES (?,?,?,?,?,?)",
                        [attempt_id, old["rounded"], format(check.value, "f"), REASON, WHO, _now()])
        state = "rejected" if check.verdict == "reject" else "pending"
        flow.db.execute("UPDATE pe_attempts SET value = ?, rounded = ?, verdict = ?, reason_zh = ?, "
                        "reason_en = ?, state = ?, decided_by = NULL, decided_at = NULL, reading = ? "
                        "WHERE id = ?",
                        [format(value, "f"), format(check.value, "f"), check.verdict,
                         " ".join(filter(None, (zh, check.zh))), " ".join(filter(None, (en, check.en))),
                         state, reading_id, attempt_id])
        flow._audit(WHO, "pe.attempt.timer_correct", "pe_attempt", attempt_id,
                    {"value": old["rounded"], "state": old["state"]},
                    {"value": format(check.value, "f"), "state": state, "reading": reading_id})
        flow.run_attempts[(device, run.id)] = attempt_id
    flow._refresh_result(old["student"], old["item"], WHO)
    return {"type": "decision", "device": device, "reading": reading_id,
            "attempt": flow.attempt(attempt_id), "by": WHO}


def _now() -> str:
    from pe_station.flow import _local_now      # flow imports this module: at call time
    return _local_now()
