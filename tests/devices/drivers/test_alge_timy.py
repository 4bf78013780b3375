from decimal import Decimal

from hypothesis import given, settings, strategies as st

from devices import drivers
from devices.drivers.alge_timy import RunTimer, checksum, format_line

START = b" 0001 C0  09:15:02.1234 01"
FINISH = b" 0001 C1  09:15:10.5678 01"


def test_checksum_is_sum_of_the_26_characters_as_two_nibbles_plus_0x30():
    total = sum(START) & 0xFF
    assert checksum(START) == bytes([0x30 + total // 16, 0x30 + total % 16])


def test_an_impulse_is_the_time_of_day_with_its_channel_and_bib_as_sent():
    [r] = drivers.get("alge-timy").feed(START + checksum(START) + b"\r")
    assert (r.value, r.unit, r.channel, r.code, r.stable) == (
        Decimal("33302.1234"), "s", "C0", "0001", True)
    assert r.to_json(port="COM4")["value"] == 33302.1234


def test_lines_without_checksum_are_read_until_the_timer_shows_it_is_in_chk1_mode():
    d = drivers.get("alge-timy")
    assert len(d.feed(START + b"\r")) == 1
    assert len(d.feed(FINISH + checksum(FINISH) + b"\r")) == 1
    assert d.feed(START + b"\r") == []          # CHK1 mode now: a line without one is damaged
    assert d.counters.checksum_failures == 1


def test_wrong_checksum_gives_no_reading_and_is_counted():
    d = drivers.get("alge-timy")
    bad = FINISH.replace(b"5678", b"5679") + checksum(FINISH) + b"\r"
    good = START + checksum(START) + b"\r"
    assert [r.raw for r in d.feed(bad + good)] == [good]
    assert d.counters.checksum_failures == 1 and d.counters.frames_ok == 1


def test_frame_split_at_every_byte_and_several_in_one_read():
    frames = format_line("0007", "C0", Decimal("100")) + format_line("0007", "C1", Decimal("108.5"))
    d = drivers.get("alge-timy")
    got = [r for b in frames for r in d.feed(bytes([b]))]
    assert [r.value for r in got] == [Decimal("100.0000"), Decimal("108.5000")]
    assert [r.value for r in drivers.get("alge-timy").feed(frames)] == [r.value for r in got]


def test_garbage_before_a_line_is_skipped_and_counted():
    d = drivers.get("alge-timy")
    [r] = d.feed(b"\x00\xff 12" + START + b"\r")
    assert r.code == "0001" and d.counters.garbage_bytes == 5


def test_manual_impulse_and_short_fraction_keep_the_exact_time():
    line = b"    3 c0  23:59:59.12   01"
    [r] = drivers.get("alge-timy").feed(line + b"\r")
    assert (r.channel, r.code, r.value) == ("c0", "3", Decimal("86399.12"))


def test_run_time_pairs_finish_with_the_start_of_the_same_bib():
    timer = RunTimer(by_bib=True)
    d = drivers.get("alge-timy")
    readings = d.feed(format_line("0001", "C0", Decimal("36000"))
                      + format_line("0002", "C0", Decimal("36001"))
                      + format_line("0002", "C1", Decimal("36009.3456"))
                      + format_line("0001", "C1", Decimal("36008.0100")))
    runs = [run for r in readings if (run := timer.feed(r))]
    assert [(run.code, run.seconds) for run in runs] == [
        ("0002", Decimal("8.3456")), ("0001", Decimal("8.0100"))]


def test_one_lane_timer_pairs_a_start_with_the_next_finish_even_across_midnight():
    timer = RunTimer(by_bib=False)
    d = drivers.get("alge-timy")
    readings = d.feed(format_line("1", "c0", Decimal("86395")) + format_line("2", "C1", Decimal("3.5")))
    runs = [run for r in readings if (run := timer.feed(r))]
    assert [run.seconds for run in runs] == [Decimal("8.5000")]


def test_a_finish_without_a_start_is_no_run_time():
    timer = RunTimer()
    [r] = drivers.get("alge-timy").feed(FINISH + b"\r")
    assert timer.feed(r) is None


impulses = st.lists(st.tuples(st.sampled_from(["0001", "0002", "0003"]),
                              st.sampled_from(["C0", "C1", "c0", "c1"]),
                              st.decimals(min_value=0, max_value=Decimal("86399.9999"), places=4)),
                    max_size=30)


@settings(deadline=None)
@given(impulses, st.booleans())
def test_run_times_are_never_negative_nor_a_day_long(events, by_bib):
    timer = RunTimer(by_bib=by_bib)
    d = drivers.get("alge-timy")
    readings = d.feed(b"".join(format_line(b, c, t) for b, c, t in events))
    assert len(readings) == len(events)
    for r in readings:
        run = timer.feed(r)
        if run is not None:
            assert 0 <= run.seconds < 86400
