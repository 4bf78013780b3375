"""The dashboard's live document: the overview, the incidents, and upload rates with ETAs.

One snapshot is computed at a time and shared by every open dashboard (a wall screen and ten
laptops cost what one does). A change the collector makes itself (an incident filed or
handled) wakes every stream at once; anything else (heartbeats, uploads, a USB import run in
another process) is picked up by the next tick.

Rates come from the bytes each station has received, sampled at each snapshot: over the last
RATE_WINDOW_S seconds, once at least MIN_RATE_SPAN_S of samples exist.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque

import sqlite_utils

from . import incidents, overview

RATE_WINDOW_S = 60.0
MIN_RATE_SPAN_S = 4.0
MAX_AGE_S = 1.0          # a snapshot younger than this is served as is
MAX_INCIDENTS = 500


class Live:
    def __init__(self, db: sqlite_utils.Database, silent_minutes: float, zone: str):
        self.db, self.silent_minutes, self.zone = db, silent_minutes, zone
        self._samples: deque[tuple[float, dict[str, int]]] = deque()
        self._snapshot: dict | None = None
        self._at = 0.0
        self._waiters: set[asyncio.Event] = set()

    def changed(self) -> None:
        self._snapshot = None
        for event in list(self._waiters):
            event.set()

    async def wait(self, timeout: float) -> None:
        """Until something changes here, or `timeout` seconds."""
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(event)

    def snapshot(self) -> dict:
        now = time.time()
        if self._snapshot is not None and now - self._at < MAX_AGE_S:
            return self._snapshot
        doc = overview.overview(self.db, self.silent_minutes, now)
        self._rates(doc, now)
        doc["timezone"] = self.zone
        doc["incidents"] = incidents.rows(self.db)[:MAX_INCIDENTS]
        self._snapshot, self._at = doc, now
        return doc

    def _rates(self, doc: dict, now: float) -> None:
        received = {st["id"]: st["bytes_received"] for school in doc["schools"]
                    for st in school["stations"]}
        self._samples.append((now, received))
        while self._samples and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        then, before = self._samples[0]
        span = now - then
        total_rate = 0.0
        for school in doc["schools"]:
            school_rate = 0.0
            for st in school["stations"]:
                rate = 0.0
                if span >= MIN_RATE_SPAN_S and st["id"] in before:
                    rate = max(0.0, (st["bytes_received"] - before[st["id"]]) / span)
                st["rate_bps"] = round(rate)
                st["eta_s"] = eta(st["bytes_expected"] - st["bytes_received"], rate)
                school_rate += rate
            school["rate_bps"] = round(school_rate)
            school["eta_s"] = eta(school["bytes_expected"] - school["bytes_received"], school_rate)
            total_rate += school_rate
        summary = doc["summary"]
        summary["rate_bps"] = round(total_rate)
        summary["eta_s"] = eta(summary["bytes_expected"] - summary["bytes_received"], total_rate)


def eta(left: int, rate: float) -> int | None:
    """Seconds until `left` bytes are in at `rate`; None when nothing is left or nothing moves."""
    if left <= 0 or rate <= 0:
        return None
    return round(left / rate)
