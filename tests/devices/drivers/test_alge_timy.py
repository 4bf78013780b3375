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


def test_lower_case_channel_is_the_manuals_spelling_and_short_fraction_keeps_the_exact_time():
    # The Timy manuals print "c0"; a keypad impulse is "C0M", not the lower-case c.
    line = b"    3 c0  23:59:59.12   01"
    [r] = drivers.get("alge-timy").feed(line + b"\r")
    assert (r.channel, r.code, r.value) == ("C0", "3", Decimal("86399.12"))


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
    readings = d.feed(format_line("1", "C0M", Decimal("86395")) + format_line("2", "C1", Decimal("3.5")))
    runs = [run for r in readings if (run := timer.feed(r))]
    assert [run.seconds for run in runs] == [Decimal("8.5000")]


def test_a_finish_without_a_start_is_no_run_time():
    timer = RunTimer()
    [r] = drivers.get("alge-timy").feed(FINISH + b"\r")
    assert timer.feed(r) is None


impulses = st.lists(st.tuples(st.sampled_from(["0001", "0002", "0003"]),
                              st.sampled_from(["C0", "C1", "C0M", "C1M"]),
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


def impulses_of(*lines: bytes):
    return drivers.get("alge-timy").feed(b"".join(lines))


def runs_of(timer, readings):
    return [run for r in readings if (run := timer.feed(r))]


def test_keypad_impulses_are_read_and_pair_like_the_gate_they_stand_in_for():
    readings = impulses_of(format_line("0005", "C0M", Decimal("36000.12"), places=2),
                           format_line("0005", "C1M", Decimal("36009.87"), places=2))
    assert [r.channel for r in readings] == ["C0M", "C1M"]
    [run] = runs_of(RunTimer("bib"), readings)
    assert (run.code, run.seconds) == ("0005", Decimal("9.75"))


def test_every_precision_from_tenths_to_hundred_thousandths():
    for places, text in [(1, "5"), (2, "52"), (3, "523"), (4, "5234"), (5, "52345")]:
        [r] = impulses_of(b" 0001 C1  10:00:00." + text.encode() + b" 00\r")
        assert r.value == Decimal(f"36000.{text}")


def test_a_cleared_impulse_withdraws_its_run_and_the_start_may_pair_again():
    timer = RunTimer("bib")
    start = format_line("0003", "C0", Decimal("100"))
    finish = format_line("0003", "C1", Decimal("108.25"))
    [run] = runs_of(timer, impulses_of(start, finish))
    [gone] = runs_of(timer, impulses_of(format_line("0003", "C1", Decimal("108.25"), flag="c")))
    assert gone.withdrawn and gone.replaces == run.id
    [again] = runs_of(timer, impulses_of(format_line("0003", "C1", Decimal("109.5"))))
    assert again.seconds == Decimal("9.5") and not again.withdrawn


def test_a_re_entered_time_replaces_the_time_it_corrects():
    timer = RunTimer("bib")
    [run] = runs_of(timer, impulses_of(format_line("0004", "C0", Decimal("200")),
                                       format_line("0004", "C1", Decimal("208.1"))))
    [fixed] = runs_of(timer, impulses_of(format_line("0004", "C1", Decimal("207.9"), flag="i")))
    assert fixed.replaces == run.id and fixed.seconds == Decimal("7.9") and fixed.id != run.id


def test_a_time_without_valid_number_is_shown_but_never_paired_until_renumbered():
    timer = RunTimer("bib")
    readings = impulses_of(format_line("0006", "C0", Decimal("300")),
                           format_line("", "C1", Decimal("310"), flag="?"))
    assert readings[1].flag == "?" and runs_of(timer, readings) == []
    [run] = runs_of(timer, impulses_of(format_line("0006", "C1", Decimal("310"), flag="n")))
    assert (run.code, run.seconds) == ("0006", Decimal("10"))


def test_a_time_from_memory_already_seen_is_not_counted_twice():
    timer = RunTimer("sequence")
    first = [format_line(n, c, t) for n, c, t in
             [("0001", "C0", Decimal(10)), ("0002", "C1", Decimal(20))]]
    assert len(runs_of(timer, impulses_of(*first))) == 1
    again = [format_line(n, c, t, flag="m") for n, c, t in
             [("0001", "C0", Decimal(10)), ("0002", "C1", Decimal(20))]]
    assert runs_of(timer, impulses_of(*again)) == []


def test_sequence_pairing_takes_the_next_start_for_the_next_finish_and_has_no_bib():
    timer = RunTimer("sequence")
    readings = impulses_of(format_line("0051", "C0", Decimal(10)), format_line("0052", "C0", Decimal(20)),
                           format_line("0053", "C1", Decimal(31)), format_line("0054", "C1", Decimal(45)))
    assert [(r.code, r.seconds) for r in runs_of(timer, readings)] == [
        (None, Decimal(21)), (None, Decimal(25))]


def test_a_reconnect_without_checksums_does_not_drop_lines():
    d = drivers.get("alge-timy")
    assert len(d.feed(START + checksum(START) + b"\r")) == 1
    assert d.feed(FINISH + b"\r") == []            # CHK1 mode: a bare line is damaged
    d.reset()                                         # the port was reopened
    assert len(d.feed(FINISH + b"\r")) == 1


def test_timy3_line_with_rank_columns_and_checksum():
    line = b" 0012 C1  10:11:12.3456 00  12"
    [r] = impulses_of(line + checksum(line) + b"\r")
    assert (r.code, r.value) == ("0012", Decimal("36672.3456"))
    assert impulses_of(line + b"00\r") == []      # a wrong checksum


def test_lines_ended_cr_lf_by_a_converter_read_the_same_without_noise():
    d = drivers.get("alge-timy")
    assert len(d.feed(START + b"\r\n" + FINISH + b"\r\n")) == 2
    assert d.counters.garbage_bytes == 0


def test_an_unexplained_flag_is_kept_and_its_impulse_never_paired():
    timer = RunTimer("bib")
    readings = impulses_of(format_line("0011", "C0", Decimal(100)),
                           format_line("0011", "C1", Decimal(109), flag="C"))
    assert readings[1].flag == "C" and readings[1].code == "0011"
    assert runs_of(timer, readings) == []
