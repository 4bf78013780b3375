"""Mettler-Toledo MT-SICS weight lines, ending CR LF.

``S S <value right-aligned in 10> <unit>`` is a stable weight, ``S D …`` a dynamic one
(shown live, never final). ``S I`` (busy), ``S +`` / ``S -`` (over/underload) and the
error replies ``ES``/``ET``/``EL`` are well-formed lines that are not readings.
``S`` CR LF asks the scale for the next stable weight.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .base import GARBAGE, NEED_MORE, OK, STATUS, Driver, Reading, parse_decimal

_WEIGHT = re.compile(rb"S ([SD]) ([ 0-9.+-]{10}) ([!-~]{1,5}) *\r\n")
_STATUS = re.compile(rb"(?:S [I+-]|E[STL])\r\n")


@dataclass
class MtSics(Driver):
    name = "mt-sics"
    probe_command = b"S\r\n"
    max_frame = 40

    def scan(self, buf):
        if buf[0] not in b"SE":
            return GARBAGE, 0, None
        end = buf.find(b"\n", 0, self.max_frame)
        if end < 0:
            return NEED_MORE, 0, None
        line = bytes(buf[:end + 1])
        m = _WEIGHT.fullmatch(line)
        if m is None:
            return (STATUS, end + 1, None) if _STATUS.fullmatch(line) else (GARBAGE, 0, None)
        value = parse_decimal(m[2])
        if value is None:
            return GARBAGE, 0, None
        return OK, end + 1, Reading(value=value, unit=m[3].decode(), stable=m[1] == b"S",
                                    raw=line, driver=self.name)


def format_line(value, unit: str = "kg", stable: bool = True) -> bytes:
    return f"S {'S' if stable else 'D'} {value:>10} {unit}\r\n".encode()
