"""Two-lane 50 m: the timer sends the lane as its bib; the proctor scans a student per lane."""
from decimal import Decimal as D

import pytest

from devices import drivers
from devices.drivers import alge_timy
from pe_station.flow import FlowError


@pytest.fixture
def gate(make_flow):
    flow = make_flow("run_50m")
    flow.add_device("gate", "run_50m", lanes=2)
    timer = drivers.get("alge-timy")

    def send(bib: str, channel: str, seconds: str) -> dict:
        (impulse,) = timer.feed(alge_timy.format_line(bib, channel, D(seconds)), at=1763800000.0)
        return flow.on_reading(impulse, "gate", "COM5")

    flow.send = send
    return flow


def test_two_students_in_two_lanes_each_get_their_own_run_time(gate):
    gate.scan("0001", "张老师", lane=1)
    gate.scan("0002", "张老师", lane=2)
    assert gate.state()["lanes"] == 2
    assert {k: v["student"]["code"] for k, v in gate.state()["current"].items()} == \
        {"lane-1": "0001", "lane-2": "0002"}
    gate.send("1", "C0", "36000.00")
    gate.send("2", "C0", "36000.10")
    lane2 = gate.send("2", "C1", "36008.31")["attempt"]       # lane 2 finishes first
    lane1 = gate.send("1", "C1", "36009.05")["attempt"]
    assert (lane1["student"], lane1["value"], lane1["rounded"]) == ("0001", "9.0500", "9.1")
    assert (lane2["student"], lane2["value"], lane2["rounded"]) == ("0002", "8.2100", "8.3")
    # Both have run: their cards stay shown, finished, until the next scan; no reading is theirs.
    cards = gate.state()["current"]
    assert {k: (v["student"]["code"], v["finished"]) for k, v in cards.items()} == \
        {"lane-1": ("0001", True), "lane-2": ("0002", True)}
    assert gate.current("lane-1") is None and gate.current("lane-2") is None
    gate.scan("0003", "张老师", lane=1)                       # the next runner replaces lane 1's card
    assert {k: v["student"]["code"] for k, v in gate.state()["current"].items()} == \
        {"lane-1": "0003", "lane-2": "0002"}


def test_one_starting_gun_starts_both_lanes(gate):
    gate.scan("0001", "张老师", lane=1)
    gate.scan("0002", "张老师", lane=2)
    assert gate.send("", "C0", "36000.00")["type"] == "impulse"   # no lane number: every lane
    assert gate.send("0002", "C1", "36007.90")["attempt"]["student"] == "0002"
    a = gate.send("0001", "C1", "36008.40")["attempt"]
    assert (a["student"], a["rounded"]) == ("0001", "8.4")


def test_a_finish_in_a_lane_nobody_was_scanned_for_is_kept_unassigned(gate):
    gate.scan("0001", "张老师", lane=1)
    gate.send("1", "C0", "36000.0")
    gate.send("2", "C0", "36000.0")
    event = gate.send("2", "C1", "36008.0")
    assert event["type"] == "unassigned" and "第 2 道" in event["zh"] and "lane 2" in event["en"]
    assert event["value"] == "8.0000"
    assert gate.state()["current"]["lane-1"]["student"]["code"] == "0001"    # still waiting
    assert gate.send("1", "C1", "36009.0")["attempt"]["student"] == "0001"


def test_scanning_a_student_for_another_lane_moves_them(gate):
    gate.scan("0001", "张老师", lane=1)
    gate.scan("0001", "张老师", lane=2)
    assert list(gate.state()["current"]) == ["lane-2"]


def test_a_lane_outside_the_timer_is_refused(gate, make_flow):
    with pytest.raises(FlowError) as err:
        gate.scan("0001", "张老师", lane=3)
    assert "1～2" in err.value.zh and "1 to 2" in err.value.en
    assert gate.state()["current"] == {}
    plain = make_flow("sit_and_reach", sitting="other")
    with pytest.raises(FlowError) as err:
        plain.scan("0001", "张老师", lane=1)
    assert "没有设置分道" in err.value.zh and "no lanes" in err.value.en


def test_retest_puts_the_student_back_in_their_lane(gate):
    gate.scan("0001", "张老师", lane=1)
    gate.send("1", "C0", "36000.0")
    first = gate.send("1", "C1", "36012.0")["attempt"]
    gate.retest("0001", "张老师", lane=1)
    assert gate.attempt(first["id"])["state"] == "voided"
    assert list(gate.state()["current"]) == ["lane-1"]
    gate.send("1", "C0", "36100.0")
    assert gate.send("1", "C1", "36108.8")["attempt"]["rounded"] == "8.8"
