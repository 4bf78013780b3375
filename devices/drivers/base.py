"""What every PE device driver shares: the `Reading`, the counters and the frame loop.

A driver is a sans-IO parser (as h11 is for HTTP, or sigrok's per-device parsers): bytes
go in through ``feed``, readings come out, and nothing here knows about ports, threads or
clocks. Each protocol file only says how to recognise one frame at the start of a buffer
(``scan``); the loop that waits for more bytes, slides one byte past garbage and counts
what it threw away is written once, here.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

# What ``Driver.scan`` can say about the bytes at the start of the buffer.
NEED_MORE = "need_more"      # could still become a frame: wait for the next chunk
GARBAGE = "garbage"          # cannot be the start of a frame: slide one byte
OK = "ok"                    # a frame that is a reading
CHECKSUM = "checksum"        # a whole frame whose checksum is wrong: dropped, counted
STATUS = "status"            # a well-formed frame that is not a reading (busy, overload)
SKIP = "skip"                # drop this many bytes as garbage at once (a line that did not match)
DROP = "drop"                # drop this many bytes silently (the LF of a CR LF split across reads)


@dataclass(frozen=True)
class Reading:
    """One value a device sent. ``value`` is exact (the PE rules round it later)."""

    value: Decimal
    unit: str
    stable: bool
    raw: bytes
    code: str | None = None        # student or bib code exactly as sent ("0001"), or None
    channel: str | None = None     # timing impulses only: "C0" start, "C1" finish, "C0M" keypad
    flag: str | None = None        # timing impulses: the timer's first column (? m c d i n)
    lane: str | None = None        # timing impulses of a parallel timer: its lane letter
    item: str | None = None        # item id, when the device says which item it measures
    device: str | None = None      # the device's own name, when it sends one
    driver: str = ""
    at: float | None = None        # Unix time the bytes arrived; set by whoever read them

    def to_json(self, port: str | None = None, item: str | None = None) -> dict[str, Any]:
        """The DESIGN.md reading shape. ``value`` is a JSON number; ``value_text`` keeps
        the exact digits the device sent, for anyone who must not go through a float."""
        at = None
        if self.at is not None:
            at = _dt.datetime.fromtimestamp(self.at, _dt.timezone.utc).isoformat(
                timespec="milliseconds")
        return {
            "at": at,
            "driver": self.driver,
            "port": port,
            "value": float(self.value),
            "value_text": format(self.value, "f"),
            "unit": self.unit,
            "stable": self.stable,
            "code": self.code,
            "item": self.item if self.item is not None else item,
            "channel": self.channel,
            "device": self.device,
            "flag": self.flag,
            "lane": self.lane,
            "raw": escape_raw(self.raw),
        }


    def to_text(self, port: str | None = None) -> str:
        """One line for a person watching ``station pe listen``."""
        when = (_dt.datetime.fromtimestamp(self.at).strftime("%H:%M:%S.%f")[:-3]
                if self.at is not None else "--:--:--")
        state = "稳定 stable" if self.stable else "未稳定 unstable"
        parts = [when, self.driver, port or "", f"{self.value} {self.unit}".strip(), state]
        if self.channel:
            parts.append(f"通道 channel {self.channel}")
        if self.code is not None:
            parts.append(f"编号 code {self.code}")
        if self.item:
            parts.append(f"项目 item {self.item}")
        return "  ".join(p for p in parts if p)


def escape_raw(raw: bytes) -> str:
    """The frame as readable text: printable ASCII as is, everything else escaped."""
    out = []
    for b in raw:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def parse_decimal(text: bytes | str) -> Decimal | None:
    """A device's number as an exact Decimal, or None when it is not a plain number."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    text = text.strip().replace(" ", "")
    # Decimal() also accepts "NaN", "Infinity" and exponents: no scale sends those.
    if not text or any(c not in "+-.0123456789" for c in text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


@dataclass
class Counters:
    frames_ok: int = 0
    checksum_failures: int = 0
    garbage_bytes: int = 0
    status_frames: int = 0       # busy / overload / underload lines: well-formed, not readings

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Driver:
    """Base of every driver: ``feed(bytes) -> list[Reading]``, incremental and pure."""

    name: ClassVar[str] = ""
    # Serial settings the device ships with; the port config may override them.
    baud: ClassVar[int] = 9600
    bytesize: ClassVar[int] = 8
    parity: ClassVar[str] = "N"
    stopbits: ClassVar[float] = 1
    # Bytes that ask the device for a reading (for the pre-check), or None.
    probe_command: ClassVar[bytes | None] = None
    # A buffer this long that is still NEED_MORE is garbage: bounds memory and latency.
    max_frame: ClassVar[int] = 64

    counters: Counters = field(default_factory=Counters, init=False)
    _buf: bytearray = field(default_factory=bytearray, init=False, repr=False)

    def scan(self, buf: bytearray) -> tuple[str, int, Reading | None]:
        """Look at the frame that may start at ``buf[0]``: (verdict, length, reading)."""
        raise NotImplementedError

    def feed(self, data: bytes, at: float | None = None) -> list[Reading]:
        """The readings completed by ``data`` (stamped ``at``); a partial frame waits."""
        buf = self._buf
        buf += data
        readings: list[Reading] = []
        while buf:
            verdict, length, reading = self.scan(buf)
            if verdict == NEED_MORE:
                if len(buf) < self.max_frame:
                    break
                verdict = GARBAGE
            if verdict == GARBAGE:
                del buf[:1]
                self.counters.garbage_bytes += 1
                continue
            del buf[:length]
            if verdict == SKIP:
                self.counters.garbage_bytes += length
            elif verdict == DROP:
                pass
            elif verdict == OK and reading is not None:
                self.counters.frames_ok += 1
                if at is not None:
                    reading = replace(reading, at=at)
                readings.append(reading)
            elif verdict == CHECKSUM:
                self.counters.checksum_failures += 1
            else:
                self.counters.status_frames += 1
        return readings

    def reset(self) -> int:
        """Forget a partial frame (the port was reopened); returns the bytes dropped."""
        dropped = len(self._buf)
        self.counters.garbage_bytes += dropped
        self._buf.clear()
        return dropped

    @property
    def pending(self) -> int:
        return len(self._buf)
