"""KERN scale frames, as sigrok's src/scale/kern.c reads them.

14 bytes: value with its sign in 0-7, unit in 8-9, S1 in 10 (L/G/H/space: checkweighing
result), S2 in 11 (S stable, U unstable, E over/under limit, space), CR LF. The 15-byte
variant has a 9-byte value. ``E`` is not a reading; ``U`` is shown live, never final.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .base import GARBAGE, NEED_MORE, OK, STATUS, Driver, Reading, parse_decimal

_VALUE = re.compile(rb"[+\- ] *(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_UNITS = {b" G": "g", b"kg": "kg", b"LB": "lb", b"OZ": "oz", b"CT": "ct", b"OT": "ozt",
          b"DW": "dwt", b"GR": "gr", b"TL": "tael", b"MO": "momme", b"to": "tola",
          b" %": "%", b"PC": "pcs"}


@dataclass
class Kern(Driver):
    name = "kern"
    max_frame = 15

    # 14 or 15; None learns it. A 15-byte frame that lost its sign byte is a valid-looking
    # 14-byte frame, so once two frames in a row agree the length is fixed: a scale never
    # switches, and one frame cut short (the port opened mid-frame) cannot fix it wrongly.
    frame_length: int | None = None
    _last_size: int = field(default=0, init=False, repr=False)

    def __post_init__(self):
        if self.frame_length not in (None, 14, 15):
            raise ValueError(f"kern 驱动的 frame_length 只能是 14 或 15，而不是 {self.frame_length}。/ "
                             f"The kern driver's frame_length is 14 or 15, not {self.frame_length}.")

    def scan(self, buf):
        if buf[0] not in b"+- ":
            return GARBAGE, 0, None
        end = buf.find(b"\n", 0, 15)
        if end < 0:
            return NEED_MORE, 0, None
        size = end + 1
        if size not in ((self.frame_length,) if self.frame_length else (14, 15)) \
                or buf[end - 1] != 0x0D:
            return GARBAGE, 0, None
        frame = bytes(buf[:size])
        width = size - 6
        s1, s2 = frame[width + 2], frame[width + 3]
        unit = frame[width:width + 2]
        if s1 not in b"LGH " or s2 not in b"USE " or not all(0x20 <= b < 0x7F for b in unit):
            return GARBAGE, 0, None
        if s2 == ord("E"):
            self._learn(size)
            return STATUS, size, None
        digits = frame[:width]
        value = parse_decimal(digits) if _VALUE.fullmatch(digits) else None
        if value is None:
            return GARBAGE, 0, None
        self._learn(size)
        return OK, size, Reading(
            value=value, unit=_UNITS.get(unit, unit.decode().strip()),
            stable=s2 != ord("U"), raw=frame, driver=self.name)

    def _learn(self, size: int) -> None:
        if self.frame_length is None:
            if size == self._last_size:
                self.frame_length = size
            self._last_size = size


def format_frame(value, unit: bytes = b"kg", stable: bool = True, width: int = 8,
                 s1: bytes = b" ") -> bytes:
    text = f"{value:+}" if not isinstance(value, str) else value
    sign, digits = (text[0], text[1:]) if text[0] in "+-" else ("+", text)
    value_field = (sign + digits.rjust(width - 1)).encode()
    assert len(value_field) == width, value_field
    return value_field + unit + s1 + (b"S" if stable else b"U") + b"\r\n"
