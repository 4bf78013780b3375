"""The device-unit check: convertible units are converted exactly, others are unassigned."""
from decimal import Decimal as D

import pytest

from devices import drivers
from devices.drivers import kern, qm_frame
from pe_station import rules
from pe_station.flow import FlowError

ITEMS = rules.load()


@pytest.mark.parametrize("value,unit,item,want", [
    ("31450", "g", "weight", "31.450"),         # KERN in grams
    ("31450", " G", "weight", "31.450"),
    ("1402", "mm", "height", "140.2"),
    ("1.855", "m", "long_jump", "185.500"),
    ("2.35", "l", "vital_capacity", "2350.00"),
    ("8123", "ms", "run_50m", "8.123"),
    ("35.0", "KG", "weight", "35.0"),           # the item's own unit, in capitals
    ("12", "", "rope_skip_1min", "12"),         # no unit: the item's unit
    ("12", "次", "rope_skip_1min", "12"),
])
def test_convertible_units_are_converted_exactly(value, unit, item, want):
    got = rules.convert(D(value), unit, ITEMS[item])
    assert format(got, "f") == want


@pytest.mark.parametrize("unit,item", [("lb", "weight"), ("oz", "weight"), ("kg", "height"),
                                       ("furlongs", "long_jump"), ("cm", "run_50m")])
def test_other_units_cannot_be_converted(unit, item):
    assert rules.convert(D("1"), unit, ITEMS[item]) is None


def test_grams_from_a_kern_scale_become_kilograms_and_the_raw_value_stays(make_flow):
    flow = make_flow("weight")
    flow.scan("0001", "张老师")
    (r,) = drivers.get("kern").feed(kern.format_frame("31450", b" G"))
    event = flow.on_reading(r, "scale-1", "COM3")
    a = event["attempt"]
    assert (a["value"], a["rounded"], a["unit"]) == ("31.450", "31.5", "kg")
    raw = flow.db.execute("SELECT value, unit, raw FROM pe_readings WHERE id = ?", [event["reading"]]).fetchone()
    assert raw == ("31450", "g", "+  31450 G S\\r\\n")


def test_pounds_are_unassigned_with_what_to_do(make_flow):
    flow = make_flow("weight")
    flow.scan("0001", "张老师")
    (r,) = drivers.get("kern").feed(kern.format_frame("69.3", b"LB"))
    event = flow.on_reading(r, "scale-1")
    assert event["type"] == "unassigned"
    assert event["zh"] == "设备发送的单位是 lb，本项目的单位是 kg，读数未分配。请把设备设置为 kg。"
    assert "unit lb" in event["en"] and "Set the device to kg" in event["en"]
    assert flow.attempts_of("0001") == [] and flow.current() == "0001"   # still their turn
    (kept,) = flow.unassigned()
    assert (kept["value"], kept["unit"]) == ("69.3", "lb")
    # Giving it to the student by hand cannot turn pounds into kilograms either.
    with pytest.raises(FlowError) as err:
        flow.assign(kept["id"], "0001", "张老师")
    assert "lb" in err.value.zh and "kg" in err.value.en
    assert flow.unassigned()[0]["id"] == kept["id"]


def test_an_unknown_unit_text_is_unassigned(make_flow):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    (r,) = drivers.get("qm-frame").feed(qm_frame.format_frame("SR-1", "sit_and_reach", "", "12.0", "in"))
    event = flow.on_reading(r, "SR-1")
    assert event["type"] == "unassigned" and "单位是 in" in event["zh"] and "cm" in event["zh"]


@pytest.mark.parametrize("item,value,unit,rounded", [
    ("height", "1402", "mm", "140.2"), ("long_jump", "1.855", "m", "186"),
    ("vital_capacity", "2.35", "l", "2350"), ("run_50m", "8123", "ms", "8.2")])
def test_a_qm_frame_in_another_unit_is_converted_then_rounded(make_flow, item, value, unit, rounded):
    flow = make_flow(item)
    code = "0003"            # grade 8 boy: takes every one of these items
    flow.scan(code, "张老师")
    (r,) = drivers.get("qm-frame").feed(qm_frame.format_frame("QM-1", item, "", value, unit))
    a = flow.on_reading(r, "QM-1")["attempt"]
    assert (a["rounded"], a["unit"]) == (rounded, ITEMS[item].unit)


def test_a_reading_with_no_unit_is_taken_in_the_items_unit(make_flow):
    flow = make_flow("rope_skip_1min")
    flow.scan("0001", "张老师")
    (r,) = drivers.get("qm-frame").feed(qm_frame.format_frame("QM-RS", "rope_skip_1min", "", "132", ""))
    a = flow.on_reading(r, "QM-RS")["attempt"]
    assert (a["rounded"], a["unit"]) == ("132", "count")


def test_an_unassigned_reading_in_grams_is_converted_when_given(make_flow):
    flow = make_flow("weight")
    (r,) = drivers.get("kern").feed(kern.format_frame("28700", b" G"))
    assert flow.on_reading(r, "scale-1")["type"] == "unassigned"      # nobody scanned
    (kept,) = flow.unassigned()
    a = flow.assign(kept["id"], "0002", "张老师")
    assert (a["value"], a["rounded"], a["unit"]) == ("28.700", "28.7", "kg")
