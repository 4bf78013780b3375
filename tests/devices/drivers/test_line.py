from decimal import Decimal

import pytest

from devices import drivers


def test_default_pattern_reads_code_value_unit():
    [r] = drivers.get("line").feed(b"0012, 168.3 cm\r\n")
    assert (r.code, r.value, r.unit) == ("0012", Decimal("168.3"), "cm")


def test_configured_pattern_and_default_unit():
    d = drivers.get("line", pattern=r"LJ (?P<code>\d+) (?P<value>\d+)", unit="cm")
    [r] = d.feed(b"LJ 0005 187\n")
    assert (r.code, r.value, r.unit) == ("0005", Decimal("187"), "cm")


def test_a_line_that_does_not_match_is_dropped_whole():
    d = drivers.get("line")
    got = d.feed(b"12\x003.4 cm\nREADY\n\n7 kg\n")
    assert [r.value for r in got] == [Decimal("7")]
    assert d.counters.garbage_bytes == len(b"12\x003.4 cm\nREADY\n\n")


def test_an_overlong_line_is_dropped_to_its_end():
    d = drivers.get("line")
    assert d.feed(b"x" * 300) == []
    assert [r.value for r in d.feed(b"12\n5\n")] == [Decimal("5")]


def test_split_lines():
    d = drivers.get("line")
    stream = b"1,2.5 kg\r\n2,3.5 kg\r\n"
    assert [r.code for b in stream for r in d.feed(bytes([b]))] == ["1", "2"]


@pytest.mark.parametrize("pattern, words", [
    (r"(?P<value>\d+", "not a valid regex"),
    (r"(?P<v>\d+)", "no named group `value`"),
])
def test_a_bad_pattern_is_a_clear_bilingual_error(pattern, words):
    with pytest.raises(drivers.PatternError) as e:
        drivers.get("line", pattern=pattern)
    assert words in str(e.value) and "正则表达式" in str(e.value)


def test_without_a_stability_rule_a_value_is_stable_only_after_repeating():
    d = drivers.get("line")                      # repeat = 3 by default
    got = d.feed(b"151.0 cm\n151.3 cm\n151.3 cm\n151.3 cm\n151.3 cm\n150.9 cm\n")
    assert [r.stable for r in got] == [False, False, False, True, True, False]
    assert [r.stable for r in drivers.get("line", repeat=1).feed(b"7 kg\n")] == [True]


def test_a_stable_group_and_its_rule_decide():
    d = drivers.get("line", pattern=r"(?P<stable>ST|US),(?P<value>[-0-9.]+)(?P<unit>kg)",
                    stable_when="ST")
    assert [r.stable for r in d.feed(b"US,32.1kg\nST,32.4kg\n")] == [False, True]


@pytest.mark.parametrize("options, words", [
    ({"pattern": r"(?P<stable>S|D) (?P<value>\d+)"}, "stable_when"),
    ({"stable_when": "ST"}, "no named group `stable`"),
    ({"repeat": 0}, "repeat"),
])
def test_a_stability_rule_that_cannot_work_is_refused(options, words):
    with pytest.raises(drivers.PatternError) as e:
        drivers.get("line", **options)
    assert words in str(e.value)
