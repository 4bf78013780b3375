from decimal import Decimal

import pytest

from devices import drivers
from devices.drivers import kern


def test_14_byte_frame_as_sigrok_reads_it():
    # "+  12.34" value, "kg" unit, " " S1, "S" stable
    [r] = drivers.get("kern").feed(b"+  12.34kg S\r\n")
    assert (r.value, r.unit, r.stable) == (Decimal("12.34"), "kg", True)


def test_15_byte_frame_negative_grams_unstable():
    [r] = drivers.get("kern").feed(b"-   250.5 GGU\r\n")
    assert (r.value, r.unit, r.stable) == (Decimal("-250.5"), "g", False)


def test_over_or_under_limit_is_not_a_reading():
    d = drivers.get("kern")
    assert d.feed(b"+  99999kg E\r\n") == []
    assert d.counters.status_frames == 1


def test_garbage_split_and_several_frames():
    d = drivers.get("kern")
    stream = b"\x81\x00" + b"+  40.00kg U\r\n" + b"+  40.10kg S\r\n"
    got = [r for b in stream for r in d.feed(bytes([b]))]
    assert [(r.value, r.stable) for r in got] == [(Decimal("40.00"), False), (Decimal("40.10"), True)]
    assert d.counters.garbage_bytes == 2


def test_frame_length_is_learnt_from_two_agreeing_frames():
    d = drivers.get("kern")
    fifteen = b"+   40.00kg S\r\n"
    assert len(d.feed(fifteen + fifteen)) == 2 and d.form == "sigrok15"
    # Its sign byte lost, a 15-byte frame looks like a 14-byte one: not a reading now.
    assert d.feed(fifteen[1:]) == []


def test_a_frame_with_letters_in_the_value_is_garbage():
    d = drivers.get("kern")
    assert d.feed(b"+  4O.00kg S\r\n") == []


def test_a_frame_length_other_than_14_or_15_is_refused():
    with pytest.raises(ValueError) as e:
        drivers.get("kern", frame_length=16)
    assert "14 或 15" in str(e.value) and "14 or 15" in str(e.value)


def test_18_byte_kb_line_blank_padded_is_a_stable_weight():
    [r] = drivers.get("kern").feed(b"       32.40 kg \r\n")
    assert (r.value, r.unit, r.stable) == (Decimal("32.40"), "kg", True)


def test_the_sign_in_its_own_column_makes_the_value_negative():
    [r] = drivers.get("kern").feed(b" -    12.345 g  \r\n")
    assert (r.value, r.unit, r.stable) == (Decimal("-12.345"), "g", True)


def test_a_moving_value_comes_without_a_unit_and_is_never_stable():
    [r] = drivers.get("kern").feed(b"       32.10 \r\n")
    assert (r.value, r.unit, r.stable) == (Decimal("32.10"), "", False)


@pytest.mark.parametrize("unit", ["g", "kg", "gn", "ct", "lb", "oz", "pcs", "%"])
def test_every_kb_unit(unit):
    [r] = drivers.get("kern").feed(kern.format_kb("5.5", unit))
    assert (r.unit, r.stable) == (unit, True)


def test_error_lines_are_status_and_one_odd_line_does_not_fix_the_form():
    d = drivers.get("kern")
    assert d.feed(b"       Error\r\n") == [] and d.counters.status_frames == 1
    d.feed(b"+  40.00kg S\r\n")                     # one sigrok frame among KB lines
    assert d.form is None
    assert len(d.feed(kern.format_kb("31.2", "kg") + kern.format_kb("31.2", "kg"))) == 2
    assert d.form == "kb"
    assert d.feed(b"+  40.00kg S\r\n") == []        # now a foreign frame is noise
