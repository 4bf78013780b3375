"""The PE sittings running on this station: their flows, device readers and connections.

Used alike by the /pe page (through the station's hub) and by ``station pe run``. Each
sitting's flow gets a database connection of its own (not the request threads' ones),
used only under the flow's lock. Its commits never stop to copy the WAL into the
database file (that can take hundreds of ms on a busy disk): one checkpointer thread does
it beside them. On a normal stop (Ctrl-C, SIGTERM) the readings still queued are stored.
"""
from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sqlite_utils

from pe_station import rules
from pe_station.flow import Audit, Flow, LookupStudent, OnEvent
from pe_station.service import Device, Service, devices_for

log = logging.getLogger(__name__)
CHECKPOINT_EVERY = 1.0       # seconds


@dataclass
class Runtime:
    connect: Callable[[], sqlite_utils.Database]      # a new connection to the station's database
    items: dict[str, rules.Item]
    rawlog_dir: Path
    devices: list[dict] = field(default_factory=list)  # station.toml's [[pe.devices]]
    # The roster, read on the sitting's own connection.
    lookup: Callable[[sqlite_utils.Database], LookupStudent] = lambda db: (lambda code: None)
    audit: Audit | None = None

    _services: dict[str, Service] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _checkpointer: threading.Thread | None = field(default=None, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _exit_hook: bool = field(default=False, init=False, repr=False)

    def start(self, sitting: str, item: str, on_event: OnEvent | None = None,
              devices: list[Device] | None = None) -> Service:
        """The sitting's running service, started once: its flow on a connection of its own
        and the readers of ``devices`` (default: the configured ones that measure its items)."""
        with self._lock:
            if sitting in self._services:
                return self._services[sitting]
            # A BMI sitting measures height and weight: their devices and their readings.
            measured = rules.measured(self.items, item)
            db = self.connect()
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._start_checkpointer()
            flow = Flow(db, sitting, self.items[item], lookup_student=self.lookup(db),
                        audit=self.audit, on_event=on_event, measured=measured)
            if devices is None:
                devices = devices_for(self.devices, [item, *measured])
            service = Service(flow, devices, self.rawlog_dir, on_event=on_event)
            self._services[sitting] = service.start()
            if not self._exit_hook:
                atexit.register(self.stop)
                self._exit_hook = True
            return service

    def get(self, sitting: str) -> Service | None:
        with self._lock:
            return self._services.get(sitting)

    def running(self) -> dict[str, Service]:
        """The sittings whose device readers run now; starts nothing."""
        with self._lock:
            return dict(self._services)

    def stop_sitting(self, sitting: str) -> None:
        """Stop reading the sitting's devices (what they sent is stored first)."""
        with self._lock:
            service = self._services.pop(sitting, None)
        if service is not None:
            # Its connection stays open: a request may still be reading the sitting's state.
            service.stop()

    def stop(self) -> None:
        """Stop every sitting and the checkpointer (at shutdown); safe to call again."""
        with self._lock:
            services = list(self._services.values())
            self._services.clear()
        for service in services:
            _shut(service)
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(CHECKPOINT_EVERY * 3)

    def _start_checkpointer(self) -> None:
        if self._checkpointer is not None:
            return

        def run() -> None:
            db = self.connect()
            try:
                while not self._stop.wait(CHECKPOINT_EVERY):
                    try:
                        # PASSIVE: copies what it can without waiting for, or blocking, a writer.
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    except Exception:      # noqa: BLE001 - the next round tries again
                        log.exception("WAL checkpoint failed")
            finally:
                db.conn.close()

        self._checkpointer = threading.Thread(target=run, name="pe checkpoint", daemon=True)
        self._checkpointer.start()


def _shut(service: Service) -> None:
    service.stop()
    try:
        service.flow.db.conn.close()
    except Exception:  # noqa: BLE001 - closing at shutdown: nothing is left to store
        log.exception("closing the connection of PE sitting %s", service.flow.sitting)
