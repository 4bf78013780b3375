"""Whose reading is it, and for which item: the pure rules, without a database."""
from __future__ import annotations

import re
from decimal import Decimal as D
from pathlib import Path

import pytest

from devices.drivers import Reading
from pe_station import assign, messages, rules


@pytest.fixture(scope="module")
def items():
    return rules.load()


def reading(code=None, channel=None, unit="cm", item=None) -> Reading:
    return Reading(value=D("12.5"), unit=unit, stable=True, code=code, channel=channel, item=item,
                   at=1763800000.0, raw=b"", driver="test")


@pytest.mark.parametrize("said,configured,unit,expected,why", [
    ("weight", None, "kg", "weight", None),                   # the device names it
    ("run_50m", "height", "kg", None, "OTHER_ITEM"),          # names another: never guessed
    (None, "height", "kg", "height", None),                   # the device's configured item
    (None, None, "kg", "weight", None),                       # the unit fits one
    (None, None, " G", "weight", None),                       # g converts to kg
    (None, None, "mm", "height", None),
    (None, None, "", None, "WHICH_ITEM"),                     # no unit: cannot tell
    (None, None, "lb", None, "WHICH_ITEM"),
])
def test_which_item_of_a_bmi_sitting(items, said, configured, unit, expected, why):
    measured = rules.measured(items, "bmi")
    item, reason = assign.item_for(measured, said, configured, unit)
    assert (item.id if item else None) == expected
    if why is None:
        assert reason is None
    else:
        assert reason[0].startswith(getattr(messages, why)[0][:6])


def test_a_sitting_of_one_item_takes_any_unit_to_that_item(items):
    measured = rules.measured(items, "sit_and_reach")
    assert assign.item_for(measured, None, None, "kg")[0].id == "sit_and_reach"


ROSTER = {"0001", "0002"}


@pytest.mark.parametrize("code,channel,lanes,current,expected,why", [
    (None, None, 0, {None: "0001"}, "0001", None),             # the scanned student
    (None, None, 0, {"meter-2": "0002"}, None, "NO_STUDENT"),  # scanned at another device
    (None, None, 0, {}, None, "NO_STUDENT"),
    ("0002", None, 0, {None: "0001"}, "0002", None),           # a device's code wins over the scan
    ("9999", None, 0, {None: "0001"}, "9999", None),           # unknown code: the caller refuses it
    ("7", "C1", 0, {None: "0001"}, "0001", None),              # a gate's bib that is no student
    ("0002", "C1", 0, {None: "0001"}, "0002", None),           # a gate's bib that is a student
    ("2", "C1", 2, {"lane-2": "0002", "lane-1": "0001"}, "0002", None),   # the lane's student
    ("0002", "C1", 2, {"lane-2": "0001"}, "0001", None),       # "0002" is lane 2
    ("2", "C1", 2, {"lane-1": "0001"}, None, "NO_LANE_STUDENT"),
    ("3", "C1", 2, {"meter": "0001"}, "0001", None),           # no lane 3: a bib
])
def test_whose_reading(code, channel, lanes, current, expected, why):
    slots = assign.Slots(current=dict(current))
    got, reason = assign.whose(reading(code, channel), "meter", lanes, slots, ROSTER.__contains__)
    assert got == expected
    if why is None:
        assert reason is None
    else:
        assert reason[1][:12] == messages.fmt(getattr(messages, why), lane=2)[1][:12]


@pytest.mark.parametrize("code,channel,lanes,lane,fed,counts", [
    ("1", "C0", 2, 1, ["1"], True),
    ("0002", "C1", 2, 2, ["2"], True),           # "0002" and "2" are the same lane
    ("", "C0", 3, None, ["1", "2", "3"], False),  # one gun starts every lane
    ("", "C1", 2, None, [""], True),
    ("17", "C1", 0, None, ["17"], True),          # no lanes: the bib as sent
])
def test_what_the_run_timer_is_fed(code, channel, lanes, lane, fed, counts):
    got_lane, feeds, got_counts = assign.timer_feed(reading(code, channel), lanes)
    assert (got_lane, [r.code for r in feeds], got_counts) == (lane, fed, counts)


def test_slots_scan_finish_and_move_lanes():
    slots = assign.Slots()
    slots.put("lane-1", "0001", lane=1)
    slots.put("lane-2", "0001", lane=2)                 # a student runs in one lane
    assert slots.current == {"lane-2": "0001"}
    slots.finish("0001")
    assert slots.of("lane-2") is None and slots.shown() == [("lane-2", "0001", True)]
    slots.again("lane-2", "0001", lane=2)                # a retest: current again
    assert slots.shown() == [("lane-2", "0001", False)]
    slots.put(None, "0002")                             # a scan for every device
    assert slots.of("anything") == "0002"
    slots.leave("0002")
    assert slots.of("anything") is None


def test_items_left_counts_turns_per_item(items):
    measured = rules.measured(items, "bmi")
    used = {"height": 1, "weight": 0}
    assert assign.items_left(measured, used.__getitem__) == ["weight"]


def test_the_rules_do_no_io():
    source = Path(assign.__file__).read_text(encoding="utf-8")
    assert not re.search(r"\bimport (sqlite3|sqlite_utils|serial|threading|os)\b|execute\(|open\(", source)


def test_no_state_word_in_sql_outside_the_store():
    """States are parameters decided by ``states.py``; the SQL never spells one."""
    root = Path(assign.__file__).parent
    for path in root.glob("*.py"):
        if path.name in ("schema.py", "states.py"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"state\s*(=|IN|!=)\s*\(?'", text), path.name
        assert not re.search(r"'(pending|confirmed|voided|rejected|done|absent|exempt)'", text), path.name
