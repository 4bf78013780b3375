"""ALGE Timy "PC-timer" lines: one timing impulse per line, plus run-time pairing.

Frame (26 characters, then CR; in CHK1 mode two checksum characters before the CR):

    ' NNNN CX  HH:MM:SS.FFFF GG'

NNNN bib or impulse number, C0 start / C1 finish (lower-case c = manual impulse), time of
day, GG group. Checksum: the sum of the 26 characters & 0xFF, each nibble + 0x30, high
nibble first. A reading is an impulse: value = time of day in seconds since midnight.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from .base import CHECKSUM, GARBAGE, NEED_MORE, OK, Driver, Reading

FRAME_LEN = 26
_LINE = re.compile(
    rb" ([0-9 ]{4}) ([Cc][0-9])  ([0-2][0-9]):([0-5][0-9]):([0-5][0-9])"
    rb"\.([0-9]{4}|[0-9]{3} |[0-9]{2}  |[0-9]   ) ([0-9 ]{2})")


def checksum(line: bytes) -> bytes:
    total = sum(line) & 0xFF
    return bytes((0x30 + (total >> 4), 0x30 + (total & 0x0F)))


@dataclass
class AlgeTimy(Driver):
    name = "alge-timy"
    baud = 38400
    max_frame = FRAME_LEN + 3

    # Once a line with a checksum has been seen the timer is in CHK1 mode, and a line
    # without one is a corrupted line; ``require_checksum`` says so from the start.
    require_checksum: bool = False

    def scan(self, buf):
        if buf[0] != 0x20:
            return GARBAGE, 0, None
        end = buf.find(b"\r", 0, FRAME_LEN + 3)
        if end < 0:
            return NEED_MORE, 0, None
        if end not in (FRAME_LEN, FRAME_LEN + 2):
            return GARBAGE, 0, None
        line = bytes(buf[:FRAME_LEN])
        m = _LINE.fullmatch(line)
        if m is None or int(m[3]) > 23:
            return GARBAGE, 0, None
        if end == FRAME_LEN + 2:
            if buf[FRAME_LEN:end] != checksum(line):
                return CHECKSUM, end + 1, None
            self.require_checksum = True
        elif self.require_checksum:
            return CHECKSUM, end + 1, None
        whole = int(m[3]) * 3600 + int(m[4]) * 60 + int(m[5])
        seconds = Decimal(f"{whole}.{m[6].rstrip().decode()}")  # exact, as printed
        bib = m[1].decode().strip() or None
        return OK, end + 1, Reading(
            value=seconds, unit="s", stable=True, raw=bytes(buf[:end + 1]),
            code=bib, channel=m[2].decode(), driver=self.name)


def format_line(bib: str, channel: str, seconds: Decimal, group: str = "01",
                with_checksum: bool = True) -> bytes:
    """The line a Timy prints for an impulse (used by the simulator and the tests)."""
    tenths = int((Decimal(seconds) * 10000).to_integral_value()) % (86400 * 10000)
    whole, frac = divmod(tenths, 10000)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    line = f" {bib:>4} {channel}  {h:02d}:{m:02d}:{s:02d}.{frac:04d} {group:>2}".encode()
    assert len(line) == FRAME_LEN, line
    return line + (checksum(line) if with_checksum else b"") + b"\r"


@dataclass(frozen=True)
class RunTime:
    code: str | None
    start: Decimal          # time of day, seconds since midnight
    finish: Decimal
    seconds: Decimal        # finish - start, across midnight if need be


@dataclass
class RunTimer:
    """Turns impulses into run times.

    ``by_bib``: a finish pairs with the start of the same bib (two-channel timers that
    print the bib). Otherwise (one-lane timer): a finish pairs with the latest start.
    Manual impulses (lower-case c) count like the channel they stand in for.
    """

    by_bib: bool = True
    _starts: dict[str | None, Decimal] = field(default_factory=dict)

    def feed(self, reading: Reading) -> RunTime | None:
        if reading.channel is None:
            return None
        channel = reading.channel.upper()
        key = reading.code if self.by_bib else None
        if channel == "C0":
            self._starts[key] = reading.value
            return None
        if channel != "C1" or key not in self._starts:
            return None
        start = self._starts.pop(key)
        seconds = reading.value - start
        if seconds < 0:                     # the run crossed midnight
            seconds += 86400
        return RunTime(code=reading.code, start=start, finish=reading.value, seconds=seconds)
