"""The /pe page's view of the PE runtime: which sitting a request means, and the pages
listening to it.

A sitting's flow and device readers (``pe_station.runtime``) start the first time a page
or API call names it and stop when it is closed. Events from the reader threads reach the
server-sent-event streams through each stream's event loop.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from pe_station import messages as msg, rules
from pe_station.messages import FlowError
from pe_station.runtime import Runtime
from pe_station.service import Service
from station import sealing, sittings
from station.context import Station
from station.pe import runtime_for
from station.web.events import Listeners


@dataclass
class Hub:
    station: Station
    # Bounded: a stalled page loses its oldest events, never the readers' memory.
    _listeners: Listeners = field(default_factory=lambda: Listeners(maxsize=1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _runtime: Runtime | None = None

    @classmethod
    def of(cls, app) -> "Hub":
        hub = getattr(app.state, "pe_hub", None)
        if hub is None:
            hub = app.state.pe_hub = cls(app.state.station)
        return hub

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = runtime_for(self.station)
        return self._runtime

    @property
    def items(self) -> dict[str, rules.Item]:
        return self.runtime.items

    def open_pe_sittings(self) -> list[dict]:
        return [s for s in sittings.list_sittings(self.station.db, "open") if s["kind"] == "pe"]

    def pick(self, sitting_id: str | None) -> str:
        """The sitting a request means: the one named, or the only open PE sitting."""
        if sitting_id:
            return sitting_id
        open_ = self.open_pe_sittings()
        if len(open_) == 1:
            return open_[0]["id"]
        raise FlowError(*(msg.SEVERAL_OPEN if open_ else msg.NO_OPEN_SITTING))

    def service(self, sitting_id: str | None) -> Service:
        sitting_id = self.pick(sitting_id)
        with self._lock:
            service = self.runtime.get(sitting_id)
            if service is not None:
                if sittings.get(self.station.db, sitting_id)["state"] == "open":
                    return service
                # Closed elsewhere (station session close): its devices stop feeding it.
                self.runtime.stop_sitting(sitting_id)
            sitting = sittings.require_open(self.station.db, sitting_id)
            if sitting["kind"] != "pe":
                raise msg.refuse(msg.NOT_PE, sitting=sitting_id)

            def publish(event: dict) -> None:
                self.publish({**event, "sitting": sitting_id})

            return self.runtime.start(sitting_id, sitting["item"], on_event=publish)

    def running(self) -> dict[str, Service]:
        """The sittings whose device readers run now; starts nothing (the status strip polls it)."""
        return self.runtime.running() if self._runtime is not None else {}

    def close(self, sitting_id: str, who: str) -> dict:
        """Close the sitting for good; it is sealed and queued for upload at once."""
        closed = sealing.close_and_seal(self.station, sitting_id, who,
                                        before=lambda: self.runtime.stop_sitting(sitting_id))
        self.publish({"type": "closed", "sitting": sitting_id, "seal_code": closed["seal_code"]})
        return closed

    def stop(self) -> None:
        if self._runtime is not None:
            self._runtime.stop()

    # --- live updates ------------------------------------------------------------------
    def subscribe(self, sitting_id: str) -> asyncio.Queue:
        return self._listeners.add(topic=sitting_id)

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._listeners.remove(queue)

    def publish(self, event: dict) -> None:
        """Called from reader threads: a sitting's event goes to the pages watching it."""
        self._listeners.publish(event, topic=event.get("sitting"))
