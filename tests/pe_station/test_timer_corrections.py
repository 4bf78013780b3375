"""A Timy's own corrections after the station took a run, and timers that number impulses."""
from decimal import Decimal as D

import pytest

from devices import drivers
from devices.drivers import alge_timy


@pytest.fixture
def gate(make_flow):
    def make(pairing: str = "bib"):
        flow = make_flow("run_50m")
        flow.add_device("gate", "run_50m", pairing=pairing)
        timer = drivers.get("alge-timy")

        def send(bib: str, channel: str, seconds: str, flag: str = " ") -> dict:
            (impulse,) = timer.feed(alge_timy.format_line(bib, channel, D(seconds), flag=flag),
                                    at=1763800000.0)
            return flow.on_reading(impulse, "gate", "COM5")

        flow.send = send
        return flow
    return make


def corrections(flow, attempt_id):
    return flow.db.execute("SELECT old_value, new_value, who FROM pe_corrections WHERE attempt = ?",
                           [attempt_id]).fetchall()


def test_a_time_re_entered_on_the_timer_after_confirmation_must_be_confirmed_again(gate):
    flow = gate()
    flow.send("0001", "C0", "36000.00")
    attempt = flow.send("0001", "C1", "36009.05")["attempt"]
    flow.confirm(attempt["id"], "张老师")
    assert flow.result("0001")["status"] == "done"
    event = flow.send("0001", "C1", "36008.91", flag="i")        # corrected on the timer
    assert event["type"] == "decision" and event["by"] == "timer"
    fixed = flow.attempt(attempt["id"])
    assert (fixed["value"], fixed["rounded"], fixed["state"]) == ("8.9100", "9.0", "pending")
    assert "9.1" in fixed["reason_zh"] and "confirm it again" in fixed["reason_en"]
    assert flow.result("0001")["status"] == "pending"           # not done until confirmed
    assert corrections(flow, attempt["id"]) == [("9.1", "9.0", "timer")]
    who, action, _, _, old, new = flow.audit_log[-1]
    assert (who, action, old["value"], old["state"], new["value"], new["state"]) == (
        "timer", "pe.attempt.timer_correct", "9.1", "confirmed", "9.0", "pending")
    flow.confirm(attempt["id"], "张老师")
    assert flow.result("0001")["value"] == "9.0"


def test_a_run_cleared_on_the_timer_is_voided_and_the_student_may_run_again(gate):
    flow = gate()
    flow.send("0002", "C0", "100")
    attempt = flow.send("0002", "C1", "108.5")["attempt"]
    flow.send("0002", "C1", "108.5", flag="c")
    assert flow.attempt(attempt["id"])["state"] == "voided"
    assert flow.audit_log[-1][1] == "pe.attempt.timer_withdrawn"
    again = flow.send("0002", "C1", "109.25")["attempt"]          # the start still stands
    assert (again["student"], again["value"]) == ("0002", "9.2500")


def test_a_time_without_valid_number_is_never_a_result(gate):
    flow = gate()
    flow.scan("0001", "张老师")
    flow.send("0001", "C0", "200")
    event = flow.send("", "C1", "207.7", flag="?")
    assert event["type"] == "impulse"
    assert flow.attempts_of("0001") == []


def test_a_timer_that_numbers_impulses_pairs_them_in_order_for_the_scanned_student(gate):
    flow = gate("sequence")
    flow.scan("0001", "张老师")
    flow.send("0051", "C0", "30000")
    attempt = flow.send("0052", "C1M", "30008.3")["attempt"]       # finish pressed by hand
    assert (attempt["student"], attempt["value"]) == ("0001", "8.3000")
