"""Any device that prints one reading per text line: a regex from config.

The regex must have a named group ``value`` and may have ``unit`` and ``code``; it must
match the whole line (CR and surrounding blanks removed). A line that does not match is
dropped whole: sliding one byte, as the framed drivers do, would let the tail of a
damaged line ("1\\x0023.4") pass for a reading ("23.4").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .base import NEED_MORE, OK, SKIP, Driver, Reading, parse_decimal

DEFAULT_PATTERN = (r"(?:(?P<code>[0-9A-Za-z-]+)\s*[,;]\s*)?"
                   r"(?P<value>[-+]?[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z%]+)?")


class PatternError(ValueError):
    """The configured pattern cannot read values."""


@dataclass
class Line(Driver):
    name = "line"
    max_frame = 256

    pattern: str = DEFAULT_PATTERN
    unit: str = ""                  # the unit when the line does not carry one
    encoding: str = "utf-8"
    _regex: re.Pattern = field(init=False, repr=False)
    _discarding: bool = field(default=False, init=False, repr=False)  # inside an overlong line

    def __post_init__(self):
        try:
            self._regex = re.compile(self.pattern)
        except re.error as e:
            raise PatternError(
                f"line 驱动的正则表达式无效（{e}），请检查配置中的 pattern。/ "
                f"The line driver's pattern is not a valid regex ({e}); fix `pattern` in the config.") from e
        if "value" not in self._regex.groupindex:
            raise PatternError(
                "line 驱动的正则表达式缺少命名组 value，请在配置中加上 (?P<value>…)。/ "
                "The line driver's pattern has no named group `value`; add (?P<value>...) in the config.")

    def scan(self, buf):
        end = buf.find(b"\n", 0, self.max_frame)
        if self._discarding or (end < 0 and len(buf) >= self.max_frame):
            # An overlong line is noise to its end: its tail is not a line of its own.
            end = buf.find(b"\n")
            self._discarding = end < 0
            return SKIP, (len(buf) if end < 0 else end + 1), None
        if end < 0:
            return NEED_MORE, 0, None
        raw = bytes(buf[:end + 1])
        text = raw.strip(b"\r\n\t ")
        if not text:
            return SKIP, end + 1, None
        try:
            m = self._regex.fullmatch(text.decode(self.encoding))
        except UnicodeDecodeError:
            m = None
        value = parse_decimal(m["value"]) if m and m["value"] else None
        if value is None:
            return SKIP, end + 1, None
        groups = m.groupdict()
        return OK, end + 1, Reading(
            value=value, unit=groups.get("unit") or self.unit, stable=True, raw=raw,
            code=groups.get("code") or None, driver=self.name)
