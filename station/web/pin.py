"""The proctor PIN: the way in for computers other than this one, and what guards guessing.

A station bound to another address than loopback must have ``web.pin`` set, at least
``MIN_LENGTH`` characters (``serve`` refuses to start otherwise). The sign-in form takes the
PIN or the install's secret (see ``session``); wrong answers from one client make it wait
longer and longer, then lock it out for a while: a guesser gets a handful of tries an hour
instead of thousands a second.
"""
from __future__ import annotations

import threading
import time

from station.errors import UsageError

MIN_LENGTH = 6
FREE_TRIES = 3          # typing mistakes cost nothing
LOCK_AFTER = 10         # failures in a row before the lockout
LOCK_S = 15 * 60
MAX_DELAY_S = 60.0


def check_setting(pin: str) -> None:
    """At start: a PIN that is set must be long enough to resist guessing."""
    if pin and len(pin) < MIN_LENGTH:
        raise UsageError(
            f"监测员口令 [web] pin 太短（{len(pin)} 个字符），至少需要 {MIN_LENGTH} 个字符。"
            f"请在 station.toml 中改为更长的口令后再启动。",
            f"The proctor PIN ([web] pin) is too short ({len(pin)} characters); it needs at least "
            f"{MIN_LENGTH}. Set a longer one in station.toml and start again.")


class Throttle:
    """Failures per client (its address): a growing wait after ``FREE_TRIES``, a lockout
    after ``LOCK_AFTER``. A success clears the client's count."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}   # client -> (count, not before)

    def wait_s(self, client: str) -> float:
        """Seconds this client must wait before its next try (0: it may try now)."""
        with self._lock:
            _, not_before = self._failures.get(client, (0, 0.0))
            return max(0.0, not_before - self._clock())

    def failed(self, client: str) -> float:
        with self._lock:
            count, _ = self._failures.get(client, (0, 0.0))
            count += 1
            if count >= LOCK_AFTER:
                delay = float(LOCK_S)
            elif count > FREE_TRIES:
                delay = min(MAX_DELAY_S, 2.0 ** (count - FREE_TRIES))
            else:
                delay = 0.0
            self._failures[client] = (count, self._clock() + delay)
            if len(self._failures) > 10_000:   # a flood of addresses must not grow memory for ever
                self._failures.pop(next(iter(self._failures)))
            return delay

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
