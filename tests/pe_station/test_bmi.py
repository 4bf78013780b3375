"""The height/weight sitting (身高体重): one sitting measures both, and BMI follows."""
import csv
import io
from decimal import Decimal as D

import pytest

from devices import drivers
from devices.drivers import mt_sics, qm_frame
from pe_station import export
from pe_station.flow import FlowError

from .conftest import ROSTER


class Room:
    """A BMI sitting with its stadiometer and its scale, both sending SICS lines."""

    def __init__(self, flow):
        self.flow = flow
        self.stadiometer, self.scale = drivers.get("mt-sics"), drivers.get("mt-sics")
        flow.add_device("HT-1", "height")
        flow.add_device("scale-1", "weight")

    def height(self, cm: str) -> dict:
        (r,) = self.stadiometer.feed(mt_sics.format_line(cm, unit="cm"))
        return self.flow.on_reading(r, "HT-1", "COM3")

    def weight(self, kg: str) -> dict:
        (r,) = self.scale.feed(mt_sics.format_line(kg))
        return self.flow.on_reading(r, "scale-1", "COM4")

    def measure(self, code: str, cm: str, kg: str) -> None:
        self.flow.scan(code, "张老师")
        for event in (self.height(cm), self.weight(kg)):
            self.flow.confirm(event["attempt"]["id"], "张老师")


@pytest.fixture
def room(make_flow):
    return Room(make_flow("bmi"))


def test_height_and_weight_go_to_their_items_and_bmi_follows_both(room):
    flow = room.flow
    flow.scan("0001", "张老师")
    h = room.height("140.04")["attempt"]
    assert (h["item"], h["rounded"], h["unit"]) == ("height", "140.0", "cm")
    assert flow.current() == "0001"                      # the weight is still to come
    w = room.weight("35.5")["attempt"]
    assert (w["item"], w["rounded"], w["unit"]) == ("weight", "35.5", "kg")
    # Nothing left to measure; the card stays (to show the BMI) until the next scan.
    assert flow.current() == "0001" and flow.state()["current"][""]["student"]["code"] == "0001"
    flow.confirm(h["id"], "张老师")
    assert flow.result("0001")["value"] is None         # BMI waits for both
    assert flow.progress()["done"] == 0
    flow.confirm(w["id"], "张老师")
    bmi = flow.result("0001")
    # 35.5 / 1.40² = 18.112…, recorded to 0.1.
    assert (bmi["item"], bmi["status"], bmi["value"], bmi["verdict"]) == ("bmi", "done", "18.1", "ok")
    assert flow.progress() == {"pending": 0, "done": 1, "absent": 0, "exempt": 0}


def test_bmi_is_rounded_half_up_from_the_recorded_values(room):
    # 45.6 / 1.50² = 20.2666… -> 20.3; the unrounded 150.04 would not change it but is not used.
    room.measure("0001", "150.04", "45.6")
    assert room.flow.result("0001")["value"] == "20.3"


def test_a_correction_recomputes_bmi_and_a_void_clears_it(room):
    flow = room.flow
    room.measure("0001", "140.0", "35.5")
    weight = flow.attempts_of("0001", "weight")[0]
    flow.correct(weight["id"], "39.2", "秤未归零 scale not zeroed", "王主任")
    assert flow.result("0001")["value"] == "20.0"       # 39.2 / 1.96
    height = flow.attempts_of("0001", "height")[0]
    flow.void(height["id"], "张老师")
    bmi = flow.result("0001")
    assert (bmi["status"], bmi["value"]) == ("pending", None)
    assert flow.progress()["pending"] == 1
    # The height is to be measured again: the scan is accepted, the new height counts.
    flow.scan("0001", "张老师")
    flow.confirm(room.height("141.0")["attempt"]["id"], "张老师")
    assert flow.result("0001")["value"] == "19.7"       # 39.2 / 1.41² = 19.717…


def test_scan_is_refused_only_when_nothing_is_left_to_measure(room):
    flow = room.flow
    flow.scan("0001", "张老师")
    room.height("140.0")
    assert flow.scan("0001", "张老师")["code"] == "0001"  # weight still to come
    room.weight("35.0")
    with pytest.raises(FlowError) as err:
        flow.scan("0001", "张老师")
    assert "重测" in err.value.zh and "Retest" in err.value.en
    # A second weight for a student who has had theirs is nobody's, kept with the reason…
    (r,) = room.scale.feed(mt_sics.format_line("31.0"))
    event = flow.on_reading(r, "scale-1")
    assert event["type"] == "unassigned" and "0001" in event["zh"]
    # …until the next student is scanned.
    flow.scan("0002", "张老师")
    (r,) = room.scale.feed(mt_sics.format_line("31.0"))
    assert flow.on_reading(r, "scale-1")["attempt"]["student"] == "0002"


def test_retest_of_one_item_voids_only_that_item(room):
    flow = room.flow
    room.measure("0001", "140.0", "35.5")
    flow.retest("0001", "张老师", item="weight")
    assert [a["state"] for a in flow.attempts_of("0001", "height")] == ["confirmed"]
    assert [a["state"] for a in flow.attempts_of("0001", "weight")] == ["voided"]
    assert flow.result("0001")["value"] is None and flow.current() == "0001"
    with pytest.raises(FlowError) as err:
        flow.retest("0001", "张老师", item="run_50m")
    assert "run_50m" in err.value.en
    assert [a["state"] for a in flow.attempts_of("0001", "height")] == ["confirmed"]


def test_absent_and_exempt_mark_height_weight_and_bmi(room):
    flow = room.flow
    flow.absent("0001", "张老师")
    flow.exempt("0002", "张老师")
    rows = flow.db.execute("SELECT student, item, status FROM pe_results ORDER BY student, item").fetchall()
    assert rows == [("0001", "bmi", "absent"), ("0001", "height", "absent"), ("0001", "weight", "absent"),
                    ("0002", "bmi", "exempt"), ("0002", "height", "exempt"), ("0002", "weight", "exempt")]
    assert flow.progress() == {"pending": 0, "done": 0, "absent": 1, "exempt": 1}


def test_bmi_outside_the_usual_range_is_derived_but_flagged(room):
    flow = room.flow
    # Grade 4 boy: 120 cm and 58 kg are each within their usual ranges; BMI 40.3 is not.
    room.measure("0001", "120.0", "58.0")
    bmi = flow.result("0001")
    assert (bmi["status"], bmi["value"], bmi["verdict"]) == ("done", "40.3", "confirm")
    assert "常见范围" in bmi["reason_zh"] and "usual range" in bmi["reason_en"]
    doc = export.results(flow.db, flow.sitting, ROSTER.get)
    (row,) = [r for r in doc["results"] if r["item"] == "bmi"]
    assert row["verdict"] == "confirm" and "常见范围" in row["reason_zh"]


def test_the_device_names_the_item_or_its_unit_does(make_flow):
    flow = make_flow("bmi")
    meter = drivers.get("qm-frame")
    flow.scan("0001", "张老师")
    # A combined height-and-weight machine that names each item: no item in the config.
    (r,) = meter.feed(qm_frame.format_frame("HW-1", "weight", "", "35.0", "kg"))
    assert flow.on_reading(r, "HW-1")["attempt"]["item"] == "weight"
    # A device with no item that says nothing either: the unit decides (cm is height).
    line = drivers.get("line", repeat=1)   # a meter that sends final values only
    (r,) = line.feed(b"1402 mm\r\n")
    a = flow.on_reading(r, "HW-2")["attempt"]
    assert (a["item"], a["value"], a["rounded"]) == ("height", "140.2", "140.2")
    # Neither item nor unit: kept unassigned, saying what to configure.
    flow.scan("0002", "张老师")
    (r,) = line.feed(b"35.0\r\n")
    event = flow.on_reading(r, "HW-2")
    assert event["type"] == "unassigned" and "item" in event["zh"] and "[[pe.devices]]" in event["en"]
    # …and the proctor, who can tell, gives it to the student's weight.
    given = flow.assign(event["reading"], "0002", "张老师", item="weight")
    assert (given["item"], given["rounded"]) == ("weight", "35.0")


def test_a_reading_of_an_item_the_sitting_does_not_measure_is_unassigned(make_flow):
    flow = make_flow("bmi")
    flow.scan("0001", "张老师")
    (r,) = drivers.get("qm-frame").feed(qm_frame.format_frame("SR-1", "sit_and_reach", "", "5.0", "cm"))
    event = flow.on_reading(r, "SR-1")
    assert event["type"] == "unassigned" and "sit_and_reach" in event["en"]


def test_export_lists_height_weight_and_bmi_with_their_units(room, tmp_path):
    room.measure("0001", "140.0", "35.5")
    room.flow.absent("0002", "张老师")
    doc = export.results(room.flow.db, room.flow.sitting, ROSTER.get)
    got = [(r["student"]["code"], r["item"], r["unit"], r["value"], r["status"], len(r["attempts"]))
           for r in doc["results"]]
    assert got == [("0001", "height", "cm", "140.0", "done", 1), ("0001", "weight", "kg", "35.5", "done", 1),
                   ("0001", "bmi", "kg/m2", "18.1", "done", 0),
                   ("0002", "height", "cm", None, "absent", 0), ("0002", "weight", "kg", None, "absent", 0),
                   ("0002", "bmi", "kg/m2", None, "absent", 0)]
    rows = list(csv.DictReader(io.StringIO(export.to_csv(doc))))
    assert [(r["项目 item"], r["单位 unit"], r["有效成绩 value that counts"]) for r in rows[:3]] == [
        ("身高 height", "cm", "140.0"), ("体重 weight", "kg", "35.5"), ("体重指数（BMI） BMI", "kg/m2", "18.1")]


def test_a_bmi_sitting_needs_its_inputs(db, items):
    from pe_station.flow import Flow

    with pytest.raises(ValueError, match="measured"):
        Flow(db, "x", items["bmi"], lookup_student=ROSTER.get)


def test_bmi_rule_is_exact():
    from pe_station import rules

    items = rules.load()
    assert rules.derive(items["bmi"], {"height": D("140.0"), "weight": D("35.5")}) == D("18.1")
    assert list(rules.measured(items, "bmi")) == ["height", "weight"]
    assert list(rules.measured(items, "run_50m")) == ["run_50m"]
