"""Mettler-Toledo MT-SICS weight lines (MT-SICS reference manual, level 0 commands).

``S S <value> <unit>`` is a stable weight, ``S D …`` a dynamic one (shown live, never
final). The value is normally right-aligned in 10 characters, but some devices send it
unpadded. Lines end CR LF, and some devices end them with CR or LF alone. ``S I`` (busy),
``S L`` (not executable), ``S +`` / ``S -`` (over/underload) and the error replies
``ES`` / ``ET`` / ``EL`` / ``EI`` are well-formed lines that are not readings.
``S`` CR LF asks the scale for the next stable weight.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .base import DROP, GARBAGE, NEED_MORE, OK, STATUS, Driver, Reading, parse_decimal

_WEIGHT = re.compile(rb"S ([SD]) +([+-]? *(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)) +([!-~]{1,6}) *")
_STATUS = re.compile(rb"(?:S [IL+-]|E[ISTL]) *")


@dataclass
class MtSics(Driver):
    name = "mt-sics"
    probe_command = b"S\r\n"
    max_frame = 40
    _after_cr: bool = field(default=False, init=False, repr=False)

    def scan(self, buf):
        if self._after_cr and buf[0] == 0x0A:       # the LF of a CR LF that came apart
            self._after_cr = False
            return DROP, 1, None
        self._after_cr = False
        if buf[0] not in b"SE":
            return GARBAGE, 0, None
        end = next((i for i in range(min(len(buf), self.max_frame)) if buf[i] in b"\r\n"), -1)
        if end < 0:
            return NEED_MORE, 0, None
        line = bytes(buf[:end])
        m = _WEIGHT.fullmatch(line)
        value = parse_decimal(m[2]) if m else None
        if value is None and not _STATUS.fullmatch(line):
            return GARBAGE, 0, None
        # The frame ends at its first CR or LF, wherever the reads split it; the LF of a
        # CR LF is dropped with the next scan, so a CR-only scale is read at once.
        self._after_cr = buf[end] == 0x0D
        if value is None:
            return STATUS, end + 1, None
        return OK, end + 1, Reading(value=value, unit=m[3].decode(), stable=m[1] == b"S",
                                    raw=bytes(buf[:end + 1]), driver=self.name)

    def reset(self) -> int:
        self._after_cr = False
        return super().reset()


def format_line(value, unit: str = "kg", stable: bool = True) -> bytes:
    return f"S {'S' if stable else 'D'} {value:>10} {unit}\r\n".encode()
