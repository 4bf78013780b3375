"""What an unknown device sends, and a first ``[[pe.devices]]`` entry for it.

Pure analysis of what ``station pe sniff`` read: the chunks with their arrival times in,
a report out. It guesses the framing (line endings, STX/ETX, or a fixed length between
pauses), tries every known driver on the bytes, and when none reads them proposes a
``line`` driver pattern built from the lines themselves. The technician pastes the entry
into station.toml and proves it with ``station pe listen --device NAME``.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from devices import drivers
from devices.drivers.base import escape_raw

PAUSE_S = 0.05              # a gap this long between chunks ends a burst (a frame)
_NUMBER = re.compile(r"[-+]?\s*[0-9]+(?:\.[0-9]+)?")
_STABLE_WORDS = {"ST", "S", "OK", "STABLE", "STA", "G"}
_UNSTABLE_WORDS = {"US", "D", "U", "UNSTABLE", "DYN", "M"}


@dataclass
class Report:
    data: bytes
    dump: list[str]                         # "+0.123s  S S      12.34 kg\r\n"
    framing: str                            # "CR LF", "CR", "LF", "STX/ETX", "fixed 14 bytes", "unknown"
    framing_zh: str
    driver: str | None                      # the known driver that reads it, if one does
    options: dict = field(default_factory=dict)
    readings: int = 0
    sample_lines: list[str] = field(default_factory=list)

    def toml(self, port: str, settings: dict) -> str:
        """The ``[[pe.devices]]`` entry to paste into station.toml."""
        driver = self.driver or "line"
        lines = ["[[pe.devices]]", 'name = "device-1"            # 起一个名字 / give it a name',
                 f'driver = "{driver}"', f'port = "{port}"',
                 'item = ""                     # 测什么：weight / height / sit_and_reach …']
        for key in ("baud", "bytesize", "parity", "stopbits", "flow_control"):
            value = settings.get(key)
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        for key, value in self.options.items():
            lines.append(f"{key} = {_toml_value(value)}")
        if driver == "line" and "stable_when" not in self.options:
            lines.append("repeat = 3                    # 同一读数连续 3 次才算稳定 / "
                         "the same value 3 times in a row is stable")
        return "\n".join(lines)

    def as_json(self, port: str, settings: dict) -> dict:
        return {"port": port, "bytes": len(self.data), "framing": self.framing,
                "framing_zh": self.framing_zh, "driver": self.driver, "options": self.options,
                "readings": self.readings, "dump": self.dump, "sample_lines": self.sample_lines,
                "toml": self.toml(port, settings)}


def _toml_value(value) -> str:
    if isinstance(value, str):
        return "'" + value + "'" if "'" not in value and "\\" in value else f'"{value}"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def analyse(chunks: list[tuple[float, bytes]]) -> Report:
    """``chunks``: (seconds since the start, bytes) as they arrived."""
    data = b"".join(c for _, c in chunks)
    dump = [f"+{t:7.3f}s  {escape_raw(c)}" for t, c in chunks]
    framing, framing_zh, frames = _framing(chunks, data)
    driver, readings = _best_driver(data)
    options: dict = {}
    lines = [f.decode("utf-8", "replace").strip() for f in frames if f.strip()]
    if driver is None and framing in ("CR LF", "CR", "LF") and lines:
        options = propose_line(lines)
        if options:
            d = drivers.get("line", **options)
            readings = len(d.feed(_as_lf_lines(frames)))
            driver = "line" if readings else None
    return Report(data, dump, framing, framing_zh, driver, options, readings, lines[:5])


def _framing(chunks, data: bytes) -> tuple[str, str, list[bytes]]:
    if b"\x02" in data and b"\x03" in data:
        return "STX/ETX", "STX/ETX 帧（0x02 开头，0x03 结尾）", [
            f for f in re.findall(rb"\x02[^\x02\x03]*\x03", data)]
    crlf, cr, lf = data.count(b"\r\n"), data.count(b"\r"), data.count(b"\n")
    if crlf and crlf >= max(cr, lf) * 0.8:
        return "CR LF", "每行以 CR LF 结尾", data.split(b"\r\n")
    if cr and cr > lf:
        return "CR", "每行以 CR 结尾", data.split(b"\r")
    if lf:
        return "LF", "每行以 LF 结尾", data.split(b"\n")
    bursts: list[bytes] = []
    last = None
    for t, c in chunks:
        if last is None or t - last >= PAUSE_S:
            bursts.append(b"")
        bursts[-1] += c
        last = t
    sizes = Counter(len(b) for b in bursts if b)
    if sizes:
        size, n = sizes.most_common(1)[0]
        if n >= 2 and n >= 0.8 * sum(sizes.values()):
            return f"fixed {size} bytes", f"定长帧，每帧 {size} 字节", bursts
    return "unknown", "看不出分帧方式", []


def _best_driver(data: bytes) -> tuple[str | None, int]:
    """The known driver that reads the most of the bytes, if one reads them cleanly."""
    best, best_score = None, 0
    for name in drivers.NAMES:
        if name == "line":              # reads any number: only as a proposal, below
            continue
        d = drivers.get(name)
        got = len(d.feed(data)) + d.counters.status_frames
        garbage = d.counters.garbage_bytes
        # Most of the bytes must be frames: one lucky match in noise is not a guess.
        if got and garbage <= len(data) // 4 and got > best_score:
            best, best_score = name, got
    return best, best_score


def _as_lf_lines(frames: list[bytes]) -> bytes:
    return b"".join(f.strip(b"\r\n") + b"\n" for f in frames if f.strip())


def propose_line(lines: list[str]) -> dict:
    """A ``line`` driver pattern that reads these lines: the last number is the value,
    letters right after it the unit; a leading word that varies between a stable and an
    unstable marker (ST/US, S/D …) becomes the ``stable`` group."""
    shapes = Counter(_shape(line) for line in lines)
    shape, _ = shapes.most_common(1)[0]
    sample = next(line for line in lines if _shape(line) == shape)
    numbers = list(_NUMBER.finditer(sample))
    if not numbers:
        return {}
    value = numbers[-1]
    first_words = {line.split(",")[0].split()[0] for line in lines if line.split()}
    stable_words = first_words & _STABLE_WORDS
    marker = sorted(first_words) if stable_words and first_words & _UNSTABLE_WORDS else None
    parts, pos = [], 0
    if marker and sample.split(",")[0].split()[0] in first_words:
        word = sample.split(",")[0].split()[0]
        start = sample.index(word)
        parts.append(_literal(sample[:start]))
        parts.append("(?P<stable>" + "|".join(re.escape(w) for w in marker) + ")")
        pos = start + len(word)
    for m in numbers[:-1]:
        if m.start() < pos:
            continue
        parts.append(_literal(sample[pos:m.start()]))
        parts.append(r"[-+]?\s*[0-9]+(?:\.[0-9]+)?")
        pos = m.end()
    parts.append(_literal(sample[pos:value.start()]))
    parts.append(r"(?P<value>[-+]?\s*[0-9]+(?:\.[0-9]+)?)")
    rest = sample[value.end():]
    unit = re.match(r"(\s*)([A-Za-z%]+)", rest)
    if unit:
        parts.append(_literal(unit.group(1)) + r"(?P<unit>[A-Za-z%]+)")
        rest = rest[unit.end():]
    parts.append(_literal(rest))
    options = {"pattern": "".join(parts)}
    if marker:
        options["stable_when"] = next(iter(sorted(stable_words)))
    return options


def _shape(line: str) -> str:
    return re.sub(r"[0-9]+", "9", re.sub(r"\s+", " ", line))


def _literal(text: str) -> str:
    """Text as the pattern must find it, blanks counted loosely (padding varies)."""
    return r"\s*".join(re.escape(part) for part in re.split(r"\s+", text)) if text.strip() \
        else (r"\s*" if text else "")
