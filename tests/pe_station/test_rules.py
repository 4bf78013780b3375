"""The standard's rounding, attempts and limits, as a PE proctor would check them by hand."""
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pe_station import rules

ITEMS = rules.load()


def item(name):
    return ITEMS[name]


@pytest.mark.parametrize("raw,recorded", [("8.10", "8.1"), ("8.11", "8.2"), ("8.19", "8.2"),
                                          ("8.2", "8.2"), ("9.999", "10.0"), ("7.001", "7.1")])
def test_50m_any_nonzero_hundredth_rounds_up(raw, recorded):
    assert rules.round_value(item("run_50m"), D(raw)) == D(recorded)


@pytest.mark.parametrize("raw,shown", [("205.0", "3'25\""), ("205.1", "3'26\""), ("239.99", "4'00\"")])
def test_middle_distance_rounds_up_to_the_second(raw, shown):
    run = item("run_1000m")
    assert rules.format_value(run, rules.round_value(run, D(raw))) == shown


@pytest.mark.parametrize("raw,recorded", [("12.34", "12.3"), ("12.35", "12.4"), ("-3.45", "-3.5"),
                                          ("-3.44", "-3.4"), ("-0.04", "0.0")])
def test_sit_and_reach_to_a_tenth_and_may_be_negative(raw, recorded):
    sr = item("sit_and_reach")
    value = rules.round_value(sr, D(raw))
    assert value == D(recorded)
    assert rules.check(sr, D(raw), 4, "F").verdict == "ok"
    assert rules.format_value(sr, value) == recorded


def test_whole_units():
    assert rules.round_value(item("long_jump"), D("187.6")) == D("188")
    assert rules.format_value(item("long_jump"), D("188")) == "188"
    assert rules.round_value(item("vital_capacity"), D("2345.4")) == D("2345")


def test_best_attempt_counts():
    assert rules.best(item("sit_and_reach"), [D("-2.1"), D("3.4")]) == D("3.4")
    assert rules.best(item("run_50m"), [D("9.2"), D("8.9")]) == D("8.9")
    assert rules.best(item("vital_capacity"), []) is None
    assert (item("sit_and_reach").attempts, item("vital_capacity").attempts, item("long_jump").attempts) == (2, 3, 2)


def test_hard_limit_refused_with_reason():
    result = rules.check(item("run_50m"), D("3.2"), 4, "M")
    assert result.verdict == "reject"
    assert "超出可能范围" in result.zh and "possible range" in result.en


def test_unusual_value_needs_confirmation():
    result = rules.check(item("run_50m"), D("16.0"), 4, "M")
    assert result.verdict == "confirm" and "确认" in result.zh and "confirm" in result.en
    assert rules.check(item("run_50m"), D("9.3"), 4, "M").verdict == "ok"


def test_bmi_from_height_and_weight():
    assert rules.bmi(D("140.0"), D("35.0"), item("bmi")) == D("17.9")


def test_which_items_apply():
    assert item("pullups").applies_to(8, "M") and not item("pullups").applies_to(8, "F")
    assert item("run_800m").applies_to(8, "F") and not item("run_800m").applies_to(4, "F")
    assert item("rope_skip_1min").applies_to(4, "M")


def test_a_school_file_with_a_mistake_is_named(tmp_path):
    bad = tmp_path / "items.toml"
    bad.write_text('[run_50m]\nunit = "s"\nprecision = 0.1\nrounding = "sideways"\nbetter = "lower"\n'
                   'attempts = 1\nlimits = [5, 30]\n', encoding="utf-8")
    with pytest.raises(rules.RulesError, match=r"run_50m.*rounding"):
        rules.load(bad)
    bad.write_text('[run_50m]\nunit = "s"\n', encoding="utf-8")
    with pytest.raises(rules.RulesError, match="rounding is missing"):
        rules.load(bad)


@given(st.decimals(min_value=-1000, max_value=1000, places=4))
def test_rounding_is_on_the_grid_and_close(value):
    for it in ITEMS.values():
        r = rules.round_value(it, value)
        assert r % it.precision == 0
        assert abs(r - value) <= it.precision
        if it.rounding == "up":
            assert r >= value
