from decimal import Decimal

import pytest

from devices import drivers


def test_stable_weight_with_exact_digits():
    [r] = drivers.get("mt-sics").feed(b"S S      32.40 kg\r\n")
    assert (r.value, str(r.value), r.unit, r.stable) == (Decimal("32.40"), "32.40", "kg", True)
    assert r.to_json()["value_text"] == "32.40"


def test_dynamic_weight_is_a_live_reading_never_a_stable_one():
    [r] = drivers.get("mt-sics").feed(b"S D      31.95 kg\r\n")
    assert r.stable is False


def test_busy_overload_underload_and_errors_are_not_readings():
    d = drivers.get("mt-sics")
    assert d.feed(b"S I\r\nS +\r\nS -\r\nES\r\nEL\r\n") == []
    assert d.counters.status_frames == 5 and d.counters.garbage_bytes == 0


def test_split_garbage_and_several_lines_in_one_read():
    d = drivers.get("mt-sics")
    stream = b"\xfe\x00S S      10.00 kg\r\nS D      10.10 kg\r\nS S      -0.05 kg\r\n"
    got = []
    for i in range(0, len(stream), 7):
        got += d.feed(stream[i:i + 7])
    assert [(r.value, r.stable) for r in got] == [
        (Decimal("10.00"), True), (Decimal("10.10"), False), (Decimal("-0.05"), True)]
    assert d.counters.garbage_bytes == 2


def test_a_line_cut_short_by_noise_is_dropped_and_the_next_one_read():
    d = drivers.get("mt-sics")
    [r] = d.feed(b"S S     1S S      45.10 kg\r\n")
    assert r.value == Decimal("45.10")


def test_the_probe_asks_for_a_stable_weight():
    assert drivers.get("mt-sics").probe_command == b"S\r\n"


@pytest.mark.parametrize("end", [b"\r\n", b"\r", b"\n"])
def test_cr_lf_or_either_alone_ends_a_line_and_a_cr_only_scale_is_read_at_once(end):
    d = drivers.get("mt-sics")
    [r] = d.feed(b"S S 12.3 kg" + end)                  # unpadded value
    assert (r.value, r.unit, r.stable) == (Decimal("12.3"), "kg", True)
    assert [x.value for x in d.feed(b"S D     -0.4 kg" + end)] == [Decimal("-0.4")]
    assert d.counters.garbage_bytes == 0


def test_a_cr_lf_split_between_reads_reads_the_same():
    d = drivers.get("mt-sics")
    assert len(d.feed(b"S S      1.00 kg\r")) == 1
    assert len(d.feed(b"\nS S      2.00 kg\r\n")) == 1
    assert d.counters.garbage_bytes == 0


@pytest.mark.parametrize("line", [b"S I", b"S L", b"S +", b"S -", b"ES", b"ET", b"EL", b"EI"])
def test_every_status_of_the_basic_set_is_status_not_a_reading(line):
    d = drivers.get("mt-sics")
    assert d.feed(line + b"\r\n") == [] and d.counters.status_frames == 1
