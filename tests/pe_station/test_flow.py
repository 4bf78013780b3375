"""The sitting's logic on a temp database, fed with frames through the real drivers."""
from decimal import Decimal as D

import pytest

from devices import drivers
from devices.drivers import alge_timy, mt_sics, qm_frame
from pe_station.flow import FlowError


def qm(driver, item, code, value, unit="cm", at=1763800000.0):
    """One qm-frame as the meter sends it, parsed by the real driver."""
    (reading,) = driver.feed(qm_frame.format_frame("SR-1", item, code, value, unit), at=at)
    return reading


@pytest.fixture
def meter():
    return drivers.get("qm-frame")


def test_next_stable_reading_goes_to_the_scanned_student(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师", device="SR-1")
    event = flow.on_reading(qm(meter, "sit_and_reach", "", "12.34"), "SR-1", "/dev/ttyUSB0")
    assert event["type"] == "attempt"
    a = event["attempt"]
    assert (a["student"], a["value"], a["rounded"], a["state"]) == ("0001", "12.34", "12.3", "pending")
    row = flow.db.execute("SELECT student, raw, port FROM pe_readings WHERE id = ?",
                          [event["reading"]]).fetchone()
    assert row[0] == "0001" and "12.34" in row[1] and row[2] == "/dev/ttyUSB0"


def test_unstable_weight_is_shown_live_never_taken(make_flow):
    flow = make_flow("weight")
    scale = drivers.get("mt-sics")
    flow.scan("0001", "张老师")
    (moving,) = scale.feed(mt_sics.format_line("31.7", stable=False))
    event = flow.on_reading(moving, "scale-1")
    assert event["type"] == "live" and event["stable"] is False
    assert flow.attempts_of("0001") == []
    assert flow.state()["live"]["scale-1"]["value"] == "31.7"
    (still,) = scale.feed(mt_sics.format_line("31.4"))
    assert flow.on_reading(still, "scale-1")["attempt"]["rounded"] == "31.4"
    # Both frames are stored: nothing a device sent is lost.
    assert flow.db.execute("SELECT count(*) FROM pe_readings").fetchone()[0] == 2


def test_the_code_in_a_frame_names_the_student(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    event = flow.on_reading(qm(meter, "sit_and_reach", "0002", "15.0"), "SR-1")
    assert event["attempt"]["student"] == "0002"
    assert flow.attempts_of("0001") == []


def test_reading_with_no_student_is_kept_unassigned_with_the_reason(make_flow, meter):
    flow = make_flow("sit_and_reach")
    event = flow.on_reading(qm(meter, "sit_and_reach", "", "9.9"), "SR-1")
    assert event["type"] == "unassigned" and "扫描" in event["zh"] and "scan" in event["en"]
    (kept,) = flow.unassigned()
    assert kept["value"] == "9.9" and kept["device"] == "SR-1"
    # The proctor gives it to the student afterwards.
    attempt = flow.assign(kept["id"], "0002", "张老师")
    assert attempt["student"] == "0002" and attempt["rounded"] == "9.9"
    assert flow.unassigned() == []
    assert ("张老师", "pe.reading.assign") == flow.audit_log[-1][:2]


def test_unknown_code_from_a_device_is_unassigned_not_dropped(make_flow, meter):
    flow = make_flow("sit_and_reach")
    event = flow.on_reading(qm(meter, "sit_and_reach", "9999", "5.0"), "SR-1")
    assert event["type"] == "unassigned" and "9999" in event["zh"]
    assert len(flow.unassigned()) == 1


def test_reading_of_another_item_is_unassigned(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    event = flow.on_reading(qm(meter, "long_jump", "", "150", "cm"), "SR-1")
    assert event["type"] == "unassigned" and "long_jump" in event["en"]


def test_value_outside_hard_limits_is_refused_with_the_reason(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    a = flow.on_reading(qm(meter, "sit_and_reach", "", "75.0"), "SR-1")["attempt"]
    assert a["verdict"] == "reject" and a["state"] == "rejected"
    assert "超出可能范围" in a["reason_zh"] and "outside the possible range" in a["reason_en"]
    with pytest.raises(FlowError):
        flow.confirm(a["id"], "张老师")
    # A refused value takes no turn: the student's next reading is still theirs.
    assert flow.current("SR-1") == "0001"


def test_value_outside_usual_range_needs_confirmation(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    a = flow.on_reading(qm(meter, "sit_and_reach", "", "30.0"), "SR-1")["attempt"]
    assert a["verdict"] == "confirm" and a["state"] == "pending" and "确认" in a["reason_zh"]
    confirmed = flow.confirm(a["id"], "张老师")
    assert confirmed["state"] == "confirmed" and confirmed["decided_by"] == "张老师"


def test_negative_sit_and_reach_is_accepted(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0002", "张老师")
    a = flow.on_reading(qm(meter, "sit_and_reach", "", "-3.45"), "SR-1")["attempt"]
    assert a["verdict"] == "ok" and a["rounded"] == "-3.5"
    flow.confirm(a["id"], "张老师")
    assert flow.result("0002")["value"] == "-3.5"


def test_attempts_and_the_best_counts(make_flow, meter):
    flow = make_flow("sit_and_reach")   # best of 2
    flow.scan("0001", "张老师", device="SR-1")
    first = flow.on_reading(qm(meter, "sit_and_reach", "", "8.2"), "SR-1")["attempt"]
    second = flow.on_reading(qm(meter, "sit_and_reach", "", "10.4"), "SR-1")["attempt"]
    assert first["student"] == second["student"] == "0001"
    # Two attempts taken: the student is done on this device, a third reading is nobody's.
    assert flow.current("SR-1") is None
    third = flow.on_reading(qm(meter, "sit_and_reach", "", "11.0"), "SR-1")
    assert third["type"] == "unassigned"
    flow.confirm(first["id"], "张老师")
    assert flow.result("0001")["status"] == "pending"
    flow.confirm(second["id"], "张老师")
    result = flow.result("0001")
    assert (result["status"], result["value"]) == ("done", "10.4")
    with pytest.raises(FlowError) as err:
        flow.scan("0001", "张老师")
    assert "重测" in err.value.zh


def test_lowest_time_counts_for_a_run_and_retest_voids(make_flow):
    flow = make_flow("run_50m")
    timer = drivers.get("alge-timy")
    flow.scan("0001", "张老师", device="gate")
    shown = []
    for channel, t in (("C0", "36000.0000"), ("C1", "36009.1100")):
        (impulse,) = timer.feed(alge_timy.format_line("1", channel, D(t)), at=1763800000.0)
        event = flow.on_reading(impulse, "gate")
        live = flow.state()["live"]["gate"]
        shown.append((live["timing"], live["value"]))
    # The page shows "timing" after the start and then the run, never a time of day.
    assert shown == [(True, ""), (False, "9.1100")]
    a = event["attempt"]          # bib 1 is not a student code: the scanned student ran
    assert (a["student"], a["value"], a["rounded"]) == ("0001", "9.1100", "9.2")
    flow.retest("0001", "张老师", device="gate")
    assert flow.attempt(a["id"])["state"] == "voided" and flow.current("gate") == "0001"
    for channel, t in (("C0", "36100.0"), ("C1", "36108.7")):
        (impulse,) = timer.feed(alge_timy.format_line("1", channel, D(t)), at=1763800100.0)
        event = flow.on_reading(impulse, "gate")
    assert event["attempt"]["rounded"] == "8.7"
    flow.confirm(event["attempt"]["id"], "张老师")
    assert flow.result("0001")["value"] == "8.7"


def test_run_time_is_finish_minus_start_of_the_same_bib(make_flow):
    flow = make_flow("run_50m")
    timer = drivers.get("alge-timy")
    frames = [("0001", "C0", "36000.0"), ("0002", "C0", "36000.5"),
              ("0002", "C1", "36009.0"), ("0001", "C1", "36009.4")]
    got = {}
    for bib, channel, t in frames:
        (impulse,) = timer.feed(alge_timy.format_line(bib, channel, D(t)))
        event = flow.on_reading(impulse, "gate")
        if event["type"] == "attempt":
            got[event["attempt"]["student"]] = event["attempt"]["value"]
    assert got == {"0002": "8.5000", "0001": "9.4000"}


def test_absent_and_exempt(make_flow):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    assert flow.absent("0001", "张老师")["status"] == "absent"
    assert flow.current() is None
    assert flow.exempt("0002", "李老师")["status"] == "exempt"
    assert flow.progress() == {"pending": 0, "done": 0, "absent": 1, "exempt": 1}
    actions = [entry[1] for entry in flow.audit_log]
    assert "pe.result.absent" in actions and "pe.result.exempt" in actions


def test_correction_keeps_old_value_reason_and_who(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    a = flow.on_reading(qm(meter, "sit_and_reach", "", "12.3"), "SR-1")["attempt"]
    flow.confirm(a["id"], "张老师")
    fixed = flow.correct(a["id"], "13.2", "读数抄错 misread", "王主任")
    assert fixed["rounded"] == "13.2" and fixed["state"] == "confirmed"
    row = flow.db.execute("SELECT old_value, new_value, reason, who FROM pe_corrections").fetchone()
    assert row == ("12.3", "13.2", "读数抄错 misread", "王主任")
    assert flow.result("0001")["value"] == "13.2"
    who, action, _, _, old, new = flow.audit_log[-1]
    assert (who, action, old["value"], new["value"]) == ("王主任", "pe.attempt.correct", "12.3", "13.2")
    # History cannot be rewritten.
    with pytest.raises(Exception, match="append-only"):
        flow.db.execute("UPDATE pe_corrections SET old_value = '1'")


@pytest.mark.parametrize("value,reason,says", [
    ("13.2", "  ", "原因"), ("abc", "typo", "不是数字"), ("99", "typo", "超出可能范围")])
def test_bad_correction_is_refused_and_changes_nothing(make_flow, meter, value, reason, says):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    a = flow.on_reading(qm(meter, "sit_and_reach", "", "12.3"), "SR-1")["attempt"]
    with pytest.raises(FlowError) as err:
        flow.correct(a["id"], value, reason, "王主任")
    assert says in err.value.zh and err.value.en
    assert flow.attempt(a["id"])["rounded"] == "12.3"
    assert flow.db.execute("SELECT count(*) FROM pe_corrections").fetchone()[0] == 0


def test_scan_refuses_an_unknown_code_and_a_student_who_does_not_take_the_item(make_flow):
    flow = make_flow("pullups")
    with pytest.raises(FlowError) as err:
        flow.scan("12345", "张老师")
    assert "不在名册" in err.value.zh and "not in the roster" in err.value.en
    with pytest.raises(FlowError) as err:
        flow.scan("0004", "张老师")        # grade 8 girls do sit-ups, not pull-ups
    assert "不测" in err.value.zh
    assert flow.scan("0003", "张老师")["code"] == "0003"


def test_events_reach_the_page(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    flow.on_reading(qm(meter, "sit_and_reach", "", "12.3"), "SR-1")
    assert [e["type"] for e in flow.events] == ["scan", "attempt"]


def test_an_unassigned_run_keeps_its_run_time_for_the_proctor(make_flow):
    flow = make_flow("run_50m")
    timer = drivers.get("alge-timy")
    for channel, t in (("C0", "36000.0"), ("C1", "36008.5")):
        (impulse,) = timer.feed(alge_timy.format_line("7", channel, D(t)))
        event = flow.on_reading(impulse, "gate")
    assert event["type"] == "unassigned" and event["value"] == "8.5000"
    (kept,) = flow.unassigned()
    assert kept["value"] == "8.5000"            # the run time, not the time of day
    assert flow.assign(kept["id"], "0001", "张老师")["rounded"] == "8.5"


def test_a_batch_of_readings_is_one_commit_and_each_gets_its_event(make_flow, meter):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师", device="SR-1")
    batch = [(qm(meter, "sit_and_reach", "", v), "SR-1", "COM3") for v in ("5.0", "6.0", "7.0")]
    events = flow.on_readings(batch)
    assert [e["type"] for e in events] == ["attempt", "attempt", "unassigned"]
    assert [e["type"] for e in flow.events][-3:] == ["attempt", "attempt", "unassigned"]


def test_a_student_with_every_attempt_made_stays_shown_but_gets_no_further_reading(make_flow):
    flow = make_flow("run_50m")
    timer = drivers.get("alge-timy")
    flow.scan("0001", "张老师", device="gate")

    def run(start, finish):
        for channel, t in (("C0", start), ("C1", finish)):
            (impulse,) = timer.feed(alge_timy.format_line("1", channel, D(t)))
            event = flow.on_reading(impulse, "gate")
        return event

    attempt = run("36000.0", "36009.0")["attempt"]
    card = flow.state()["current"]["gate"]
    # The proctor confirms the time on the card where it appeared …
    assert card["student"]["code"] == "0001" and card["finished"]
    assert [a["id"] for a in card["attempts"]] == [attempt["id"]]
    # … but a run nobody was scanned for is not theirs: it waits, unassigned.
    assert flow.current("gate") is None
    assert run("36100.0", "36108.0")["type"] == "unassigned"
    flow.scan("0002", "张老师", device="gate")
    assert [c["student"]["code"] for c in flow.state()["current"].values()] == ["0002"]
