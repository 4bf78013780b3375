"""The running PE sittings of one station and the pages listening to them.

A sitting's `Flow` and device readers start the first time a page or API call names it
and stop when it is closed. Each flow has a database connection of its own (not the
request threads' ones), used only under the flow's lock. Events from the
reader threads reach the server-sent-event streams through each stream's event loop.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from dataclasses import dataclass, field

from pe_station import rules
from pe_station.flow import Flow, FlowError
from pe_station.service import Service, devices_for
from station import audit, roster, sittings
from station.context import Station
from station.db import FILE_NAME, connect
from station.web.events import Listeners

log = logging.getLogger(__name__)
CHECKPOINT_EVERY = 1.0       # seconds


@dataclass
class Hub:
    station: Station
    _services: dict[str, Service] = field(default_factory=dict)
    # Bounded: a stalled page loses its oldest events, never the readers' memory.
    _listeners: Listeners = field(default_factory=lambda: Listeners(maxsize=1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _items: dict | None = None
    _checkpointer: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def of(cls, app) -> "Hub":
        hub = getattr(app.state, "pe_hub", None)
        if hub is None:
            hub = app.state.pe_hub = cls(app.state.station)
            # On a normal stop (Ctrl-C, SIGTERM) the readings still queued are stored.
            atexit.register(hub.stop)
        return hub

    @property
    def items(self) -> dict[str, rules.Item]:
        if self._items is None:
            self._items = rules.load(self.station.config["pe.items_file"] or None)
        return self._items

    def open_pe_sittings(self) -> list[dict]:
        return [s for s in sittings.list_sittings(self.station.db, "open") if s["kind"] == "pe"]

    def pick(self, sitting_id: str | None) -> str:
        """The sitting a request means: the one named, or the only open PE sitting."""
        if sitting_id:
            return sitting_id
        open_ = self.open_pe_sittings()
        if len(open_) == 1:
            return open_[0]["id"]
        if not open_:
            raise FlowError("没有进行中的体育场次。请先打开场次（页面上的“打开场次”或 station session open --kind pe --item 项目）。",
                            "No PE sitting is open; open one first (Open sitting on this page, or "
                            "station session open --kind pe --item ITEM).")
        raise FlowError("有多个体育场次正在进行，请选择其中一个。",
                        "Several PE sittings are open; choose one.")

    def service(self, sitting_id: str | None) -> Service:
        sitting_id = self.pick(sitting_id)
        with self._lock:
            service = self._services.get(sitting_id)
            if service is not None:
                if sittings.get(self.station.db, sitting_id)["state"] == "open":
                    return service
                # Closed elsewhere (station session close): its devices stop feeding it.
                self._services.pop(sitting_id).stop()
            sitting = sittings.require_open(self.station.db, sitting_id)
            if sitting["kind"] != "pe":
                raise FlowError(f"场次 {sitting_id} 不是体育场次。", f"Sitting {sitting_id} is not a PE sitting.")
            # A connection per sitting: each flow's lock then guards its own transactions.
            db = connect(self.station.data_dir / FILE_NAME)
            # Its commits never stop to copy the WAL into the database file (that can take
            # hundreds of ms on a busy disk): the checkpointer thread does it beside them.
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._start_checkpointer()

            def publish(event: dict) -> None:
                self.publish({**event, "sitting": sitting_id})

            # A BMI sitting measures height and weight: their devices and their readings.
            measured = rules.measured(self.items, sitting["item"])
            flow = Flow(db, sitting_id, self.items[sitting["item"]],
                        lookup_student=lambda code: roster.lookup(db, code),
                        audit=audit.record, on_event=publish, measured=measured)
            service = Service(flow, devices_for(self.station.config["pe.devices"],
                                                [sitting["item"], *measured]),
                              self.station.path("pe", "rawlogs"), on_event=publish)
            self._services[sitting_id] = service.start()
            return service

    def running(self) -> dict[str, Service]:
        """The sittings whose device readers run now; starts nothing (the status strip polls it)."""
        with self._lock:
            return dict(self._services)

    def close(self, sitting_id: str, who: str) -> dict:
        """Close the sitting for good; it is sealed and queued for upload at once."""
        from station import sealing

        service = self._services.pop(sitting_id, None)
        if service is not None:
            service.stop()
        closed = sittings.close_sitting(self.station.db, sitting_id, who,
                                        on_closed=[sealing.on_closed(self.station, who)])
        closed["seal_code"] = sealing.seal_code(self.station, sitting_id)
        self.publish({"type": "closed", "sitting": sitting_id, "seal_code": closed["seal_code"]})
        return closed

    def stop(self) -> None:
        with self._lock:
            for service in self._services.values():
                service.stop()
            self._services.clear()
        self._stop.set()

    def _start_checkpointer(self) -> None:
        if self._checkpointer is not None:
            return

        def run() -> None:
            db = connect(self.station.data_dir / FILE_NAME)
            while not self._stop.wait(CHECKPOINT_EVERY):
                try:
                    # PASSIVE: copies what it can without waiting for, or blocking, a writer.
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except Exception:      # noqa: BLE001 - the next round tries again
                    log.exception("WAL checkpoint failed")
            db.conn.close()

        self._checkpointer = threading.Thread(target=run, name="pe checkpoint", daemon=True)
        self._checkpointer.start()

    # --- live updates ------------------------------------------------------------------
    def subscribe(self, sitting_id: str) -> asyncio.Queue:
        return self._listeners.add(topic=sitting_id)

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._listeners.remove(queue)

    def publish(self, event: dict) -> None:
        """Called from reader threads: a sitting's event goes to the pages watching it."""
        self._listeners.publish(event, topic=event.get("sitting"))
