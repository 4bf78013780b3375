"""Any device that prints one reading per text line: a regex from config.

The regex must have a named group ``value`` and may have ``unit``, ``code`` and
``stable``; it must match the whole line (CR and surrounding blanks removed). With a
``stable`` group, ``stable_when`` (a regex) says which of its texts means stable (``ST``,
``S``, ``OK`` …). Without one, a value is stable only once the device has sent the same
value (and unit and code) ``repeat`` times in a row: a line by itself says nothing about
whether the value has settled, and a wrong number is worse than a late one. ``repeat = 1``
is for a device that only ever sends final values (a meter that prints on a button press).

A line that does not match is dropped whole: sliding one byte, as the framed drivers do,
would let the tail of a damaged line ("1\\x0023.4") pass for a reading ("23.4").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from qmbase.refusal import Refusal

from .base import NEED_MORE, OK, SKIP, Driver, Reading, parse_decimal

DEFAULT_PATTERN = (r"(?:(?P<code>[0-9A-Za-z-]+)\s*[,;]\s*)?"
                   r"(?P<value>[-+]?[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z%]+)?")
DEFAULT_REPEAT = 3


class PatternError(Refusal, ValueError):
    """The configured pattern cannot read values."""

    status = 400


@dataclass
class Line(Driver):
    name = "line"
    max_frame = 256

    pattern: str = DEFAULT_PATTERN
    unit: str = ""                  # the unit when the line does not carry one
    encoding: str = "utf-8"
    stable_when: str | None = None  # regex on the ``stable`` group's text meaning stable
    repeat: int = DEFAULT_REPEAT    # without a stable group: equal values in a row to be stable
    _regex: re.Pattern = field(init=False, repr=False)
    _stable: re.Pattern | None = field(default=None, init=False, repr=False)
    _discarding: bool = field(default=False, init=False, repr=False)  # inside an overlong line
    _last: tuple | None = field(default=None, init=False, repr=False)
    _run: int = field(default=0, init=False, repr=False)

    def __post_init__(self):
        self._regex = _compile(self.pattern, "pattern")
        if "value" not in self._regex.groupindex:
            raise PatternError(
                "line 驱动的正则表达式缺少命名组 value，请在配置中加上 (?P<value>…)。",
                "The line driver's pattern has no named group `value`; add (?P<value>...) in the config.")
        if self.stable_when is not None:
            self._stable = _compile(self.stable_when, "stable_when")
        if "stable" in self._regex.groupindex and self._stable is None:
            raise PatternError(
                "line 驱动的 pattern 有 stable 组，但没有 stable_when 说明哪种文字表示稳定，"
                "请在配置中加上 stable_when（例如 \"ST\"）。",
                "The line driver's pattern has a `stable` group but no stable_when saying which "
                "text means stable; add stable_when (e.g. \"ST\") in the config.")
        if self._stable is not None and "stable" not in self._regex.groupindex:
            raise PatternError(
                "line 驱动设置了 stable_when，但 pattern 没有命名组 stable，请加上 (?P<stable>…)。",
                "The line driver has stable_when but its pattern has no named group `stable`; "
                "add (?P<stable>...).")
        if isinstance(self.repeat, bool) or not isinstance(self.repeat, int) or self.repeat < 1:
            raise PatternError(
                f"line 驱动的 repeat 必须是不小于 1 的整数，而不是 {self.repeat!r}。",
                f"The line driver's repeat is a whole number of at least 1, not {self.repeat!r}.")

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
        unit, code = groups.get("unit") or self.unit, groups.get("code") or None
        if self._stable is not None:
            stable = self._stable.fullmatch((groups.get("stable") or "").strip()) is not None
        else:
            key = (value, unit, code)
            self._run = self._run + 1 if key == self._last else 1
            self._last = key
            stable = self._run >= self.repeat
        return OK, end + 1, Reading(value=value, unit=unit, stable=stable, raw=raw, code=code,
                                    driver=self.name)

    def reset(self) -> int:
        self._last, self._run = None, 0
        return super().reset()


def _compile(text: str, key: str) -> re.Pattern:
    try:
        return re.compile(text)
    except (re.error, TypeError) as e:
        raise PatternError(
            f"line 驱动的正则表达式 {key} 无效（{e}），请检查配置中的 {key}。",
            f"The line driver's {key} is not a valid regex ({e}); fix `{key}` in the config.") from e
