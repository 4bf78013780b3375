from decimal import Decimal

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
