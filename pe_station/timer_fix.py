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
from pe_station import messages as msg, rules, states
from pe_station.store import local_now

WHO = msg.TIMER


def apply(flow, reading: Reading, device: str, port: str, run: RunTime) -> dict:
    """Store the correcting impulse and apply ``run`` (which replaces an earlier one)."""
    store = flow.store
    attempt_id = flow.run_attempts.pop((device, run.replaces), None)
    old = flow.attempt(attempt_id) if attempt_id is not None else None
    if old is None or not states.allows(old["state"], "timer_withdrawn"):
        # Nothing stands on the old run (none, or voided or refused): a run like any other.
        if run.withdrawn:
            reading_id = store.add_reading(reading, device, port, None, "")
            return {"type": "impulse", "device": device, "reading": reading_id,
                    "channel": reading.channel, "code": reading.code, "lane": None}
        return flow.take_run(reading, device, port, run)
    item = flow.measured.get(old["item"], flow.item)
    if run.withdrawn:
        reading_id = store.add_reading(reading, device, port, old["student"], "")
        state = store.decide(old, "timer_withdrawn", WHO, local_now(),
                             reason_zh=msg.TIMER_WITHDRAWN[0], reason_en=msg.TIMER_WITHDRAWN[1])
        flow._audit(WHO, "pe.attempt.timer_withdrawn", "pe_attempt", attempt_id,
                    {"value": old["rounded"], "state": old["state"]},
                    {"state": state, "reading": reading_id})
    else:
        reading_id = store.add_reading(reading, device, port, old["student"], "", run_time=run.seconds)
        value = rules.convert(run.seconds, reading.unit, item)
        if value is None:                   # a run is in seconds: the item's unit is too
            value = Decimal(run.seconds)
        student = flow.lookup_student(old["student"]) or {}
        check = rules.check(item, value, student.get("grade"), student.get("gender"))
        zh, en = msg.fmt(msg.TIMER_CORRECTED, old=f"{old['rounded']} {old['unit']}")
        store.add_correction(attempt_id, old["rounded"], format(check.value, "f"), msg.TIMER_REASON,
                             WHO, local_now())
        # Back to the proctor: nobody has decided on the corrected time yet.
        state = store.decide(old, states.timer_event(check.verdict), None, None,
                             value=format(value, "f"), rounded=format(check.value, "f"),
                             verdict=check.verdict, reason_zh=" ".join(filter(None, (zh, check.zh))),
                             reason_en=" ".join(filter(None, (en, check.en))), reading=reading_id)
        flow._audit(WHO, "pe.attempt.timer_correct", "pe_attempt", attempt_id,
                    {"value": old["rounded"], "state": old["state"]},
                    {"value": format(check.value, "f"), "state": state, "reading": reading_id})
        flow.run_attempts[(device, run.id)] = attempt_id
    flow.results.refresh(old["student"], old["item"], WHO)
    return {"type": "decision", "device": device, "reading": reading_id,
            "attempt": flow.attempt(attempt_id), "by": WHO}
