"""The set-up page's live reading of one PE device before it is saved to station.toml.

A `Watch` is a port reader (devices.ports, the one place ports are opened) on the port,
driver and line settings the teacher chose, which keeps the last readings for the page to
poll. A scale is asked for its weight (its driver's probe) every second, as the pre-check
does. A watch nobody polls for a while stops by itself, so a closed tab never keeps a
port from the PE sitting that needs it.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from devices import drivers, ports

IDLE_S = 20.0          # stop a watch nobody asked about for this long
PROBE_EVERY_S = 1.0
KEEP = 5               # readings shown


@dataclass
class Watch:
    port: str
    driver: str
    reader: ports.PortReader
    readings: deque = field(default_factory=lambda: deque(maxlen=KEEP))
    polled: float = field(default_factory=time.monotonic)
    stopped: threading.Event = field(default_factory=threading.Event)

    def view(self) -> dict:
        self.polled = time.monotonic()
        zh, en = ports.STATUS_TEXT.get(self.reader.status, ("正在打开串口……", "Opening the port…"))
        if self.reader.status == ports.DISCONNECTED and self.reader.last_error:
            problem = self.reader.last_problem
            zh, en = (problem.text_zh, problem.text_en) if problem else (self.reader.last_error, "")
        return {"port": self.port, "driver": self.driver, "status": self.reader.status,
                "zh": zh, "en": en or zh, "readings": list(self.readings)}


class Watches:
    """At most one watch per port (the port is opened exclusively)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_port: dict[str, Watch] = {}

    def start(self, device: dict) -> Watch:
        """``device``: a [[pe.devices]] table (port, driver, optional line settings).
        Raises drivers.UnknownDriver or ValueError (bad line settings)."""
        driver = drivers.get(device["driver"], **(device.get("options") or {}))
        settings = ports.PortSettings.from_config(device)
        self.stop(device["port"])
        watch: Watch

        def on_reading(reading) -> None:
            watch.readings.appendleft(reading.to_json(port=device["port"], item=device.get("item")))

        reader = ports.PortReader(device["port"], driver, on_reading, settings=settings)
        watch = Watch(device["port"], device["driver"], reader)
        with self._lock:
            self._by_port[watch.port] = watch
        reader.start()
        threading.Thread(target=self._tend, args=(watch, driver.probe_command), daemon=True,
                         name=f"setup watch {watch.port}").start()
        return watch

    def get(self, port: str) -> Watch | None:
        with self._lock:
            return self._by_port.get(port)

    def stop(self, port: str) -> None:
        with self._lock:
            watch = self._by_port.pop(port, None)
        if watch is not None:
            watch.stopped.set()
            watch.reader.stop()

    def stop_all(self) -> None:
        for port in list(self._by_port):
            self.stop(port)

    def _tend(self, watch: Watch, probe: bytes | None) -> None:
        while not watch.stopped.wait(PROBE_EVERY_S):
            if time.monotonic() - watch.polled > IDLE_S:
                if self.get(watch.port) is watch:
                    self.stop(watch.port)
                return
            if probe and watch.reader.status == ports.CONNECTED:
                try:
                    watch.reader.write(probe)
                except ports.PortError:
                    pass           # unplugged meanwhile: the reader says so
