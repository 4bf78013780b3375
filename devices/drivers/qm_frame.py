"""qm-frame: the monitoring's own frame for meters (sit-and-reach, rope skip, sit-ups,
vital capacity, grip, long jump).

    STX  DEVICE,ITEM,CODE,VALUE,UNIT  ETX  BCC

The payload is printable ASCII; BCC is the XOR of the payload bytes. CODE (the student
code) may be empty.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce

from .base import CHECKSUM, GARBAGE, NEED_MORE, OK, Driver, Reading, parse_decimal

STX, ETX = 0x02, 0x03
MAX_PAYLOAD = 80
_PAYLOAD = re.compile(rb"[\x20-\x7e]{0,%d}" % MAX_PAYLOAD)
_FIELDS = re.compile(rb"([!-~][ -~]*),([a-z0-9_]+),([0-9A-Za-z-]*),([ 0-9.+-]+),([ -~]*)")


def bcc(payload: bytes) -> int:
    return reduce(lambda a, b: a ^ b, payload, 0)


@dataclass
class QmFrame(Driver):
    name = "qm-frame"
    max_frame = MAX_PAYLOAD + 3

    def scan(self, buf):
        if buf[0] != STX:
            return GARBAGE, 0, None
        end = _PAYLOAD.match(buf, 1).end()
        if end == len(buf):
            return (NEED_MORE if end - 1 < MAX_PAYLOAD else GARBAGE), 0, None
        if buf[end] != ETX:
            return GARBAGE, 0, None
        if end + 1 == len(buf):
            return NEED_MORE, 0, None
        payload = bytes(buf[1:end])
        if bcc(payload) != buf[end + 1]:
            return CHECKSUM, end + 2, None
        m = _FIELDS.fullmatch(payload)
        value = parse_decimal(m[4]) if m else None
        if value is None:
            return GARBAGE, 0, None
        return OK, end + 2, Reading(
            value=value, unit=m[5].decode().strip(), stable=True, raw=bytes(buf[:end + 2]),
            code=m[3].decode() or None, item=m[2].decode(), device=m[1].decode(),
            driver=self.name)


def format_frame(device: str, item: str, code: str, value, unit: str) -> bytes:
    payload = f"{device},{item},{code},{value},{unit}".encode("ascii")
    return bytes([STX]) + payload + bytes([ETX, bcc(payload)])
