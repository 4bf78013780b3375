"""ALGE Timy / Timy2 / Timy3 "PC-timer" lines: one timing impulse per line, and run pairing.

The manuals (Timy "PC-Timer" manual 5.2.1, Timy2 manual 3.1, Timy3 manual 12.1) give

    yNNNNxCCCxHH:MM:SS.zhtqxGG[RRRR](CR)

y   blank, or a flag: ``?`` time without a valid number, ``m`` time from memory,
    ``c`` cleared (e.g. the CLEAR key), ``d`` disqualified, ``i`` manual time input
    (a corrected time), ``n`` a new number given to a time;
NNNN  bib, or a running impulse number (a device setting); leading zeros may be blank;
CCC   channel ``C0``..``C9`` (the manuals also print ``c0``), ``M`` appended for a keypad
      impulse (``C0M`` = START key), or a lane letter on a parallel timer;
HH:MM:SS.zhtq  time of day at 1/10 .. 1/100000 s (the PC program prints ``,``);
GG  group; RRRR what a Timy3 appends (kept in the raw frame only).
In CHK1 mode two checksum characters come just before the CR: the sum of the
characters before them & 0xFF, each nibble + 0x30, high nibble first.

A reading is an impulse: value = time of day in seconds since midnight, unit ``s``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal

from .base import CHECKSUM, DROP, GARBAGE, NEED_MORE, OK, Driver, Reading

FRAME_LEN = 26           # the classic line without checksum: " NNNN CX  HH:MM:SS.FFFF GG"
MAX_LINE = 44
# The manuals name ? m c d i n; a Timy3 example also shows "C". A letter we do not know
# is kept as the flag (the impulse is shown, never paired), not slid past: what follows
# it would read as a plain impulse and might pair.
FLAGS = b" ?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LINE = re.compile(
    rb"(?P<flag>[ ?A-Za-z])(?P<num>[0-9 ]{4}) (?P<ch>[Cc][0-9])(?P<mod>[ M]|[A-L])"
    rb" (?P<h>[0-2][0-9]):(?P<m>[0-5][0-9]):(?P<s>[0-5][0-9])[.,](?P<frac>[0-9]{1,5}) *"
    rb"(?: (?P<group>[0-9 ]{2})(?P<rest>[0-9 ]{4})?(?P<chk>[0-?]{2})?)?")


def checksum(line: bytes) -> bytes:
    total = sum(line) & 0xFF
    return bytes((0x30 + (total >> 4), 0x30 + (total & 0x0F)))


@dataclass
class AlgeTimy(Driver):
    name = "alge-timy"
    baud = 9600          # Timy3 factory setting (Timy3 manual 12.1); a Timy2 is fixed at 38400
    max_frame = MAX_LINE

    # ``require_checksum`` says from the start that the timer is in CHK1 mode. Otherwise
    # a line with a good checksum shows it is; until the port is reopened, a line without
    # one is then a damaged line. A timer that comes back after a reconnect without CHK1
    # starts afresh (``reset``), so none of its lines is dropped.
    require_checksum: bool = False
    _seen_checksum: bool = field(default=False, init=False, repr=False)

    def scan(self, buf):
        if buf[0] == 0x0A:              # a converter that ends lines CR LF: the LF is no noise
            return DROP, 1, None
        if buf[0] not in FLAGS:
            return GARBAGE, 0, None
        end = buf.find(b"\r", 0, MAX_LINE)
        if end < 0:
            return NEED_MORE, 0, None
        line = bytes(buf[:end])
        m = _LINE.fullmatch(line)
        if m is None or int(m["h"]) > 23:
            return GARBAGE, 0, None
        frame = bytes(buf[:end + 1])
        if m["chk"] is not None:
            # Two characters after the group (or after a Timy3's four) are a checksum.
            if m["chk"] != checksum(line[:-2]):
                return CHECKSUM, end + 1, None
            self._seen_checksum = True
        elif self.require_checksum or self._seen_checksum:
            return CHECKSUM, end + 1, None
        whole = int(m["h"]) * 3600 + int(m["m"]) * 60 + int(m["s"])
        seconds = Decimal(f"{whole}.{m['frac'].decode()}")  # exact, as printed
        number = m["num"].decode().strip() or None
        mod = m["mod"].decode()
        channel = "C" + m["ch"][1:].decode() + ("M" if mod == "M" else "")
        flag = m["flag"].decode().strip() or None
        return OK, end + 1, Reading(
            value=seconds, unit="s", stable=True, raw=frame, code=number, channel=channel,
            flag=flag, lane=mod if mod not in " M" else None, driver=self.name)

    def reset(self) -> int:
        self._seen_checksum = False
        return super().reset()


def format_line(bib: str, channel: str, seconds: Decimal, group: str = "01",
                with_checksum: bool = True, flag: str = " ", places: int = 4) -> bytes:
    """The line a Timy prints for an impulse (used by the simulator and the tests)."""
    scale = 10 ** places
    ticks = int((Decimal(seconds) * scale).to_integral_value()) % (86400 * scale)
    whole, frac = divmod(ticks, scale)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    line = (f"{flag}{bib:>4} {channel:<3} {h:02d}:{m:02d}:{s:02d}.{frac:0{places}d}"
            f"{' ' * (4 - places)} {group:>2}").encode()
    return line + (checksum(line) if with_checksum else b"") + b"\r"


# --- run times ---------------------------------------------------------------------------
BIB, SEQUENCE = "bib", "sequence"
PAIRINGS = (BIB, SEQUENCE)


@dataclass(frozen=True)
class RunTime:
    code: str | None
    start: Decimal          # time of day, seconds since midnight
    finish: Decimal
    seconds: Decimal        # finish - start, across midnight if need be
    id: int = 0             # this run, within its timer
    replaces: int | None = None   # the run this one corrects (a re-entered time)
    withdrawn: bool = False       # the run ``replaces`` names no longer stands (a cleared time)


@dataclass
class _Impulse:
    number: str | None
    finish: bool
    time: Decimal
    valid: bool = True           # False: "?" (no valid number), never paired by itself
    run: int | None = None       # the run it is part of


class RunTimer:
    """Turns impulses into run times.

    ``pairing="bib"``: a finish pairs with the latest start of the same number (a timer
    that prints bibs). ``"sequence"``: the next finish pairs with the oldest unpaired start
    (a timer that numbers impulses; its numbers are not bibs, so the run has no code).
    Keypad impulses (``C0M``) count like the channel they stand in for. The manuals'
    first-column flags: a cleared (``c``) or disqualified (``d``) impulse is withdrawn, a
    re-entered one (``i``) replaces the time of the impulse it corrects, a renumbered time
    (``n``) takes its new number, a time without a valid number (``?``) is never paired by
    itself, and a time from memory (``m``) already seen is not counted twice. A flag
    the manuals do not explain is treated as ``?``.
    """

    def __init__(self, pairing: str = BIB, *, by_bib: bool | None = None):
        if by_bib is not None:
            pairing = BIB if by_bib else SEQUENCE
        if pairing not in PAIRINGS:
            raise ValueError(f"计时配对方式只能是 bib 或 sequence，而不是 {pairing!r}。/ "
                             f"The timer pairing is bib or sequence, not {pairing!r}.")
        self.pairing = pairing
        self._impulses: list[_Impulse] = []
        self._runs: dict[int, tuple[_Impulse, _Impulse]] = {}
        self._next_id = 1

    def feed(self, reading: Reading) -> RunTime | None:
        """The run this impulse makes, corrects or withdraws, or None."""
        if reading.channel is None or reading.channel.upper()[:2] not in ("C0", "C1"):
            return None
        finish = reading.channel.upper().startswith("C1")
        flag, number, time = reading.flag, reading.code, reading.value
        if flag in ("c", "d"):
            imp = self._find(finish, number, time)
            return self._withdraw(imp) if imp else None
        if flag == "i":
            imp = self._find(finish, number, None)
            if imp is not None:
                return self._retime(imp, time)
        if flag == "n":
            imp = self._find(finish, None, time, any_number=True)
            if imp is not None and imp.run is None:
                imp.number, imp.valid = number, True
                return self._pair()
        if flag == "m" and self._find(finish, number, time) is not None:
            return None
        valid = flag is None or flag in ("m", "i", "n")     # "?" and unknown flags: shown only
        self._impulses.append(_Impulse(number, finish, time, valid=valid))
        return self._pair()

    def _find(self, finish: bool, number: str | None, time: Decimal | None,
              any_number: bool = False) -> _Impulse | None:
        for imp in reversed(self._impulses):
            if imp.finish == finish and (any_number or imp.number == number) \
                    and (time is None or imp.time == time):
                return imp
        return None

    def _pairable(self, imp: _Impulse) -> bool:
        return imp.run is None and imp.valid and (self.pairing == SEQUENCE or imp.number is not None)

    def _pair(self) -> RunTime | None:
        """Pair the first finish still alone that has a start before it."""
        for n, fin in enumerate(self._impulses):
            if not fin.finish or not self._pairable(fin):
                continue
            starts = [i for i in self._impulses[:n] if not i.finish and self._pairable(i)]
            if self.pairing == BIB:
                starts = [i for i in starts if i.number == fin.number][-1:]
            if starts:
                return self._make(starts[0], fin)
        return None

    def _run(self, start: _Impulse, fin: _Impulse, run_id: int, **extra) -> RunTime:
        seconds = fin.time - start.time
        if seconds < 0:                     # the run crossed midnight
            seconds += 86400
        return RunTime(code=fin.number if self.pairing == BIB else None, start=start.time,
                       finish=fin.time, seconds=seconds, id=run_id, **extra)

    def _make(self, start: _Impulse, fin: _Impulse, replaces: int | None = None) -> RunTime:
        run_id, self._next_id = self._next_id, self._next_id + 1
        start.run = fin.run = run_id
        self._runs[run_id] = (start, fin)
        return self._run(start, fin, run_id, replaces=replaces)

    def _withdraw(self, imp: _Impulse) -> RunTime | None:
        self._impulses.remove(imp)
        if imp.run is None:
            return None
        old = imp.run
        start, fin = self._runs.pop(old)
        start.run = fin.run = None          # the other impulse may pair again
        return replace(self._run(start, fin, old), replaces=old, withdrawn=True)

    def _retime(self, imp: _Impulse, time: Decimal) -> RunTime | None:
        imp.time = time
        if imp.run is None:
            return self._pair()
        old = imp.run
        start, fin = self._runs.pop(old)
        return self._make(start, fin, replaces=old)
