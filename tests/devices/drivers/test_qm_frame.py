from decimal import Decimal

from devices import drivers
from devices.drivers.qm_frame import ETX, STX, bcc, format_frame


def test_frame_carries_device_item_code_and_a_negative_value():
    frame = format_frame("SR-01", "sit_and_reach", "0001", "-3.5", "cm")
    [r] = drivers.get("qm-frame").feed(frame)
    assert (r.device, r.item, r.code, r.value, r.unit) == (
        "SR-01", "sit_and_reach", "0001", Decimal("-3.5"), "cm")
    j = r.to_json(port="/dev/ttyUSB0", item="ignored")
    assert j["item"] == "sit_and_reach" and j["raw"].startswith("\\x02SR-01")


def test_bcc_is_the_xor_of_the_payload():
    payload = b"RS,rope_skip_1min,,153,"
    frame = bytes([STX]) + payload + bytes([ETX, bcc(payload)])
    [r] = drivers.get("qm-frame").feed(frame)
    assert r.code is None and r.value == 153 and r.unit == ""


def test_bad_bcc_is_no_reading_and_is_counted():
    good = format_frame("VC", "vital_capacity", "0002", 2150, "ml")
    bad = good[:-1] + bytes([good[-1] ^ 0x20])
    d = drivers.get("qm-frame")
    assert [r.value for r in d.feed(bad + good)] == [2150]
    assert d.counters.checksum_failures == 1


def test_split_and_garbage_with_a_stray_stx():
    frames = format_frame("G1", "grip", "0003", "21.4", "kg") + b"\x02\x02junk" + \
        format_frame("G1", "grip", "0004", "19.0", "kg")
    d = drivers.get("qm-frame")
    got = [r for b in frames for r in d.feed(bytes([b]))]
    assert [r.code for r in got] == ["0003", "0004"]
    assert d.counters.garbage_bytes == 6


def test_a_payload_that_is_not_five_fields_is_garbage_even_with_a_good_bcc():
    payload = b"G1,grip,0003,21.4"
    d = drivers.get("qm-frame")
    assert d.feed(bytes([STX]) + payload + bytes([ETX, bcc(payload)])) == []
