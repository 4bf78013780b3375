"""KERN scale lines, in the forms KERN balances send them.

(a) sigrok's ``src/scale/kern.c`` (EW/EG series): 14 bytes, the value with its sign in
    0-7, unit in 8-9, S1 in 10 (L/G/H/space: checkweighing), S2 in 11 (``S`` stable,
    ``U`` unstable, ``E`` over/under limit, space), CR LF; the 15-byte variant has a
    9-byte value. Only ``S`` is stable; ``E`` is not a reading.
(b) The 18-byte KB/DS/FKB/PCB form (FKB manual, "Format for stable values"): blank or
    ``M``, a sign column (blank or ``-``), a 10-character blank-padded value, blank, a
    3-character unit (``g``, ``kg``, ``pcs``, ``%`` ...), CR LF. An unstable value comes
    with **no unit** (15 bytes): never stable. ``       Error`` is a status line.
(c) The "ST,GS" printout (KXS/GAB manuals): ``ST|US|OL , GS|NT|TR , sign value unit``;
    ``ST`` stable, ``US`` unstable, ``OL`` overload (a status).

The form is learnt only once two frames in a row agree (a 15-byte sigrok frame that lost
its sign byte looks like a 14-byte one; one odd line must not decide the form).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .base import GARBAGE, NEED_MORE, OK, STATUS, Driver, Reading, parse_decimal

_VALUE = re.compile(rb"[+\- ] *(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_UNITS = {b" G": "g", b"kg": "kg", b"LB": "lb", b"OZ": "oz", b"CT": "ct", b"OT": "ozt",
          b"DW": "dwt", b"GR": "gr", b"TL": "tael", b"MO": "momme", b"to": "tola",
          b" %": "%", b"PC": "pcs"}
# Flag, sign, the value right-aligned in 10 columns, one blank, a 3-column KERN unit (lower
# case, as KB scales print it: sigrok's upper-case " G"/"LB" frames are not this form), CR LF:
# 18 bytes, or 15 without a unit. Exact widths, so a line that lost a byte is not a line.
_KB = re.compile(rb"[ M](?P<sign>[ -])(?P<value> *-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                 rb"(?: (?P<unit>g|kg|mg|t|gn|ct|lb|oz|ozt|dwt|tl|mo|pcs|%))? *\r\n")
_KB_ERROR = re.compile(rb" *(?:Error|Err[ 0-9]*|o-Err|OL) *\r\n")
_PRINT = re.compile(rb"(?P<st>ST|US|OL),(?P<kind>GS|NT|TR|G |N ),(?P<sign>[+\- ]?)"
                    rb"(?P<value>[ 0-9.]{1,10})[ ,]*(?P<unit>[A-Za-z%]{1,4}|) *\r?\n")
FORMS = ("sigrok14", "sigrok15", "kb", "print")


@dataclass
class Kern(Driver):
    name = "kern"
    max_frame = 24

    # 14 or 15 fixes the sigrok form's length; ``form`` fixes any form; None learns it.
    frame_length: int | None = None
    form: str | None = None
    _last_form: str = field(default="", init=False, repr=False)

    def __post_init__(self):
        if self.frame_length not in (None, 14, 15):
            raise ValueError(f"kern 驱动的 frame_length 只能是 14 或 15，而不是 {self.frame_length}。/ "
                             f"The kern driver's frame_length is 14 or 15, not {self.frame_length}.")
        if self.frame_length:
            self.form = f"sigrok{self.frame_length}"
        if self.form not in (None, *FORMS):
            raise ValueError(f"kern 驱动的 form 只能是 {', '.join(FORMS)}，而不是 {self.form!r}。/ "
                             f"The kern driver's form is one of {', '.join(FORMS)}, not {self.form!r}.")

    def scan(self, buf):
        if buf[0] not in b"+- MSUO":
            return GARBAGE, 0, None
        end = buf.find(b"\n", 0, self.max_frame)
        if end < 0:
            return NEED_MORE, 0, None
        frame = bytes(buf[:end + 1])
        # sigrok's frames first: their S2 column says stable or not, and a blank-S2 frame
        # must not pass for a KB line (whose unit would make it stable).
        for form, parse in (("sigrok14", self._sigrok), ("sigrok15", self._sigrok),
                            ("kb", self._kb), ("print", self._print)):
            if self.form not in (None, form) or (form.startswith("sigrok")
                                                 and len(frame) != int(form[-2:])):
                continue
            verdict, reading = parse(frame)
            if verdict != GARBAGE:
                self._learn(form)
                return verdict, len(frame), reading
        return GARBAGE, 0, None

    def _learn(self, form: str) -> None:
        if self.form is None:
            if form == self._last_form:
                self.form = form
            self._last_form = form

    def _reading(self, value, unit: str, stable: bool, frame: bytes) -> Reading:
        return Reading(value=value, unit=unit, stable=stable, raw=frame, driver=self.name)

    def _sigrok(self, frame: bytes):
        width = len(frame) - 6
        s1, s2 = frame[width + 2], frame[width + 3]
        unit = frame[width:width + 2]
        if frame[-2] != 0x0D or frame[0] not in b"+- " or s1 not in b"LGH " \
                or s2 not in b"USE " or not all(0x20 <= b < 0x7F for b in unit):
            return GARBAGE, None
        if s2 == ord("E"):
            return STATUS, None
        digits = frame[:width]
        value = parse_decimal(digits) if _VALUE.fullmatch(digits) else None
        if value is None:
            return GARBAGE, None
        # A blank S2 says nothing about stability: not stable.
        return OK, self._reading(value, _UNITS.get(unit, unit.decode().strip()), s2 == ord("S"),
                                 frame)

    def _kb(self, frame: bytes):
        if _KB_ERROR.fullmatch(frame) and len(frame) <= 18:
            return STATUS, None
        m = _KB.fullmatch(frame)
        if m is None or len(m["value"]) != 10 or len(frame) != (18 if m["unit"] else 15):
            return GARBAGE, None
        value = parse_decimal(m["value"])
        if value is None or (m["sign"] == b"-" and b"-" in m["value"]):
            return GARBAGE, None
        if m["sign"] == b"-":
            value = -value
        unit = (m["unit"] or b"").decode()
        # No unit: the scale is still settling (FKB manual, "unstable values").
        return OK, self._reading(value, unit, bool(unit), frame)

    def _print(self, frame: bytes):
        m = _PRINT.fullmatch(frame)
        if m is None:
            return GARBAGE, None
        if m["st"] == b"OL" or m["kind"] == b"TR":     # overload; a tare is not a load
            return STATUS, None
        value = parse_decimal(m["value"])
        if value is None:
            return GARBAGE, None
        if m["sign"] == b"-":
            value = -value
        unit = m["unit"].decode().lower()
        return OK, self._reading(value, unit, m["st"] == b"ST" and bool(unit), frame)


def format_frame(value, unit: bytes = b"kg", stable: bool = True, width: int = 8,
                 s1: bytes = b" ") -> bytes:
    """A sigrok-form frame (14 bytes with width 8, 15 with width 9)."""
    text = f"{value:+}" if not isinstance(value, str) else value
    sign, digits = (text[0], text[1:]) if text[0] in "+-" else ("+", text)
    value_field = (sign + digits.rjust(width - 1)).encode()
    assert len(value_field) == width, value_field
    return value_field + unit + s1 + (b"S" if stable else b"U") + b"\r\n"


def format_kb(value, unit: str = "kg", stable: bool = True) -> bytes:
    """An 18-byte KB/DS/FKB/PCB line (15 bytes and no unit while unstable)."""
    text = str(value)
    sign, digits = ("-", text[1:]) if text.startswith("-") else (" ", text)
    line = f" {sign}{digits:>10} "
    return (line + (f"{unit:<3}" if stable else "")).encode() + b"\r\n"
