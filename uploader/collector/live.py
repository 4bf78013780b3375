"""The dashboard's live document: the overview, the incidents, and upload rates with ETAs.

One snapshot is computed at a time and shared by every open dashboard (a wall screen and ten
laptops cost what one does). A change the collector makes itself (an incident filed or
handled) wakes every stream at once; anything else (heartbeats, uploads, a USB import run in
another process) is picked up by the next tick.

Rates come from the bytes each station has received, sampled into the index (``rate_samples``,
one sample per SAMPLE_EVERY_S whichever instance takes it): over the last RATE_WINDOW_S seconds,
once at least MIN_RATE_SPAN_S of samples exist. Computed from the shared samples alone, they
read the same on every collector instance behind one address.
"""
from __future__ import annotations

import asyncio
import json
import time

from . import incidents, overview
from .index import Index

RATE_WINDOW_S = 60.0
MIN_RATE_SPAN_S = 4.0
MAX_AGE_S = 1.0          # a snapshot younger than this is served as is
SAMPLE_EVERY_S = 1.0
MAX_INCIDENTS = 500


class Live:
    def __init__(self, db: Index, silent_minutes: float, zone: str):
        self.db, self.silent_minutes, self.zone = db, silent_minutes, zone
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
        (then, before), (last, after) = self._window(received, now)
        span = last - then
        total_rate = 0.0
        for school in doc["schools"]:
            school_rate = 0.0
            for st in school["stations"]:
                rate = 0.0
                if span >= MIN_RATE_SPAN_S and st["id"] in before and st["id"] in after:
                    rate = max(0.0, (after[st["id"]] - before[st["id"]]) / span)
                st["rate_bps"] = round(rate)
                st["eta_s"] = eta(st["bytes_expected"] - st["bytes_received"], rate)
                school_rate += rate
            school["rate_bps"] = round(school_rate)
            school["eta_s"] = eta(school["bytes_expected"] - school["bytes_received"], school_rate)
            total_rate += school_rate
        summary = doc["summary"]
        summary["rate_bps"] = round(total_rate)
        summary["eta_s"] = eta(summary["bytes_expected"] - summary["bytes_received"], total_rate)


    def _window(self, received: dict[str, int], now: float):
        """Add this sample when the newest is SAMPLE_EVERY_S old; the oldest and the newest
        samples of the window, as (seconds, {station: bytes})."""
        newest = self.db.value("SELECT max(at) FROM rate_samples")
        if newest is None or now - newest >= SAMPLE_EVERY_S:
            with self.db.transaction():
                self.db.insert("rate_samples", {"at": now, "received": json.dumps(received)},
                               ignore=True)
                self.db.execute("DELETE FROM rate_samples WHERE at < ?", [now - RATE_WINDOW_S])
        # The window ends at the newest sample, not at this instance's clock: two instances
        # asked at once read the same two samples.
        rows = self.db.query(
            "SELECT at, received FROM rate_samples WHERE at = (SELECT min(at) FROM rate_samples "
            "WHERE at >= (SELECT max(at) FROM rate_samples) - ?) "
            "OR at = (SELECT max(at) FROM rate_samples) ORDER BY at", [RATE_WINDOW_S])
        if not rows:
            return (now, received), (now, received)
        first, last = rows[0], rows[-1]
        return ((first["at"], json.loads(first["received"])),
                (last["at"], json.loads(last["received"])))


def eta(left: int, rate: float) -> int | None:
    """Seconds until `left` bytes are in at `rate`; None when nothing is left or nothing moves."""
    if left <= 0 or rate <= 0:
        return None
    return round(left / rate)
