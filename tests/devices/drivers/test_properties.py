"""Properties every driver keeps, whatever the bytes: never raise, chunking changes
nothing, and a damaged frame never becomes a reading (and costs its neighbours nothing)."""
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from devices import drivers
from devices.drivers import alge_timy, kern, mt_sics, qm_frame


# Parsers are fast but the machine is shared: no per-example deadline. Set here, not in a
# conftest profile, so other folders' hypothesis settings stay their own.
examples = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def raws(readings) -> list[bytes]:
    """The frames read; MT-SICS ends a frame at its CR (its LF is a separate terminator)."""
    return [r.raw.rstrip(b"\n") for r in readings]


def expected(*sent: bytes) -> list[bytes]:
    return [f.rstrip(b"\n") for f in sent]


def feed_in_pieces(driver, data: bytes, cuts: list[int]) -> list:
    out, last = [], 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        out += driver.feed(data[last:cut])
        last = cut
    return out


@pytest.mark.parametrize("name", drivers.NAMES)
@examples
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_random_bytes_never_raise_and_split_points_change_nothing(name, data, cuts):
    whole = drivers.get(name)
    pieces = drivers.get(name)
    assert feed_in_pieces(pieces, data, cuts) == whole.feed(data)
    assert pieces.counters == whole.counters


# Valid frames built from random fields, one strategy per driver.
values = st.decimals(min_value=Decimal("-999.99"), max_value=Decimal("9999.99"), places=2)
codes = st.from_regex(r"[0-9]{4}", fullmatch=True)

alge_frames = st.builds(
    lambda bib, ch, t: alge_timy.format_line(bib, ch, t),
    codes, st.sampled_from(["C0", "C1", "c0", "c1"]),
    st.decimals(min_value=0, max_value=Decimal("86399.9999"), places=4))
sics_frames = st.builds(lambda v, s: mt_sics.format_line(v, "kg", s), values, st.booleans())
kern_frames = st.builds(lambda v, s: kern.format_frame(v, b"kg", s, width=9),
                        values, st.booleans())
qm_frames = st.builds(lambda item, code, v: qm_frame.format_frame("QM-1", item, code, v, "cm"),
                      st.sampled_from(["sit_and_reach", "long_jump", "grip"]),
                      st.one_of(st.just(""), codes), values)
line_frames = st.builds(lambda c, v: f"{c},{v} cm\r\n".encode(), codes, values)

# Drivers whose frames carry a checksum: any change to any byte must be caught.
CHECKSUMMED = {
    "alge-timy": (alge_frames, {"require_checksum": True}),
    "qm-frame": (qm_frames, {}),
}
# Drivers without one can only catch bytes their grammar forbids: bytes >= 0x80 stand
# for line noise on an ASCII link.
UNCHECKED = {
    "mt-sics": (sics_frames, {}),
    # A 15-byte frame minus its sign byte is a valid 14-byte frame: the length is
    # configured here (or learnt from two frames, see test_kern).
    "kern": (kern_frames, {"frame_length": 15}),
    "line": (line_frames, {}),
}


def corrupt(frame: bytes, index: int, new: int) -> bytes:
    index %= len(frame)
    if frame[index] == new:
        new ^= 0x01
    return frame[:index] + bytes([new]) + frame[index + 1:]


@pytest.mark.parametrize("name", sorted(CHECKSUMMED))
@examples
@given(data=st.data(), index=st.integers(min_value=0), new=st.integers(0, 255))
def test_any_changed_byte_never_yields_a_reading_and_neighbours_survive(name, data, index, new):
    frames, options = CHECKSUMMED[name]
    before, damaged, after = (data.draw(frames) for _ in range(3))
    driver = drivers.get(name, **options)
    readings = driver.feed(before + corrupt(damaged, index, new) + after)
    assert raws(readings) == expected(before, after)


@pytest.mark.parametrize("name", sorted(UNCHECKED))
@examples
@given(data=st.data(), index=st.integers(min_value=0), new=st.integers(0x80, 0xFF))
def test_a_noise_byte_never_yields_a_reading_and_neighbours_survive(name, data, index, new):
    frames, options = UNCHECKED[name]
    before, damaged, after = (data.draw(frames) for _ in range(3))
    driver = drivers.get(name, **options)
    readings = driver.feed(before + corrupt(damaged, index, new) + after)
    if name == "line" and index % len(damaged) == len(damaged) - 1:
        # The damaged line lost its end, so it runs into the next line: the line
        # driver drops both rather than guess where one ended.
        assert raws(readings) == expected(before)
    elif name == "mt-sics" and index % len(damaged) == len(damaged) - 1:
        # Only its LF was hit: a line ended by CR alone is whole (some scales send that).
        assert raws(readings) == expected(before, damaged, after)
    else:
        assert raws(readings) == expected(before, after)


@pytest.mark.parametrize("name", sorted(CHECKSUMMED) + sorted(UNCHECKED))
@examples
@given(data=st.data(), garbage=st.binary(max_size=40).filter(
    lambda g: not any(b in g for b in b"\r\n\x02")))
def test_garbage_between_frames_is_skipped(name, data, garbage):
    # Garbage without terminators or STX cannot complete a frame of its own; line
    # noise runs into the next line, so the line driver gets its own line of it.
    frames, options = {**CHECKSUMMED, **UNCHECKED}[name]
    first, second = data.draw(frames), data.draw(frames)
    if name == "line":
        garbage = b"\x80" + garbage + b"\n"   # noise: a line that does not read
    driver = drivers.get(name, **options)
    readings = driver.feed(first + garbage + second)
    assert raws(readings) == expected(first, second)


# --- a line that says nothing about stability is never stable -------------------------
# Only a protocol that marks every frame final (a timer's impulse, a qm-frame meter's
# result) or carries a stable marker (MT-SICS S S, KERN S, a KB unit) may say stable.
kern_blank_s2 = st.builds(lambda v: kern.format_frame(v, b"kg", True, width=9)[:-3] + b" \r\n", values)
kern_kb_moving = st.builds(lambda v: kern.format_kb(v, "kg", stable=False), values)
kern_print_moving = st.builds(lambda v: f"US,GS,{'-' if v < 0 else '+'}{abs(v):>9}  kg\r\n".encode(),
                              values)
sics_dynamic = st.builds(lambda v: mt_sics.format_line(v, "kg", False), values)

UNMARKED = {
    "kern": st.one_of(kern_blank_s2, kern_kb_moving, kern_print_moving),
    "mt-sics": sics_dynamic,
}


@pytest.mark.parametrize("name", sorted(UNMARKED))
@examples
@given(data=st.data())
def test_a_frame_without_a_stable_mark_is_never_stable(name, data):
    frames = data.draw(st.lists(UNMARKED[name], min_size=1, max_size=6))
    readings = drivers.get(name).feed(b"".join(frames))
    assert readings and not any(r.stable for r in readings)


@examples
@given(st.lists(values, min_size=1, max_size=12), st.integers(min_value=2, max_value=5))
def test_a_line_is_stable_only_once_the_same_value_has_come_repeat_times(sent, repeat):
    d = drivers.get("line", repeat=repeat)
    readings = d.feed(b"".join(f"{v} kg\r\n".encode() for v in sent))
    run = 0
    for i, r in enumerate(readings):
        run = run + 1 if i and sent[i] == sent[i - 1] else 1
        assert r.stable == (run >= repeat)


@examples
@given(data=st.data(), index=st.integers(min_value=0), new=st.integers(0x80, 0xFF))
def test_a_noise_byte_in_a_kern_18_byte_line_never_yields_a_reading(data, index, new):
    kb = st.builds(lambda v: kern.format_kb(v, "kg"), values)
    before, damaged, after = (data.draw(kb) for _ in range(3))
    readings = drivers.get("kern").feed(before + corrupt(damaged, index, new) + after)
    assert raws(readings) == expected(before, after)
