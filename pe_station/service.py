"""One PE sitting running: its configured devices' port readers wired to its `Flow`.

Each device gets its own driver (a driver holds the partial frame), its own port reader
thread and its own raw log (``<rawlog_dir>/<sitting>_<port>.rawlog.jsonl``), so that any
result can be read again from the very bytes. As in python-sounddevice, the reader's
callback does the minimum: it puts the reading on a queue. One writer thread takes all
that is waiting and hands it to the flow as one batch (one commit), so a slow disk never
holds up reading a port, and frames from eight devices share each fsync.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from devices import drivers, rawlog
from devices.ports import PortReader, PortSettings
from pe_station.flow import Flow

OnEvent = Callable[[dict], None]
log = logging.getLogger(__name__)
_STOP = object()
# [[pe.devices]] keys that are driver options (the line driver's pattern and its rule).
DRIVER_KEYS = ("pattern", "unit", "stable_when", "repeat", "encoding", "require_checksum")
MAX_BATCH = 200

# A status light: green connected, amber connecting, red disconnected, grey stopped.
LIGHT = {"connected": "ok", "connecting": "warn", "disconnected": "fail", "stopped": "off"}


@dataclass
class Device:
    """One ``[[pe.devices]]`` entry of station.toml."""

    name: str
    driver: str
    port: str
    item: str | None = None
    settings: PortSettings = field(default_factory=PortSettings)
    options: dict = field(default_factory=dict)
    lanes: int = 0                  # a timing gate set up for lanes sends the lane as its bib
    pairing: str | None = None      # a timing gate: "bib" or "sequence" (see RunTimer)

    @classmethod
    def from_config(cls, entry: dict) -> "Device":
        settings = PortSettings.from_config(entry)
        if entry.get("timeout"):
            settings.read_timeout = float(entry["timeout"])
        # The line driver's keys sit in the device's own table, as a technician writes them.
        options = {k: entry[k] for k in DRIVER_KEYS if entry.get(k) is not None}
        options.update(entry.get("options") or {})
        return cls(name=entry.get("name") or entry["port"], driver=entry["driver"],
                   port=entry["port"], item=entry.get("item"), settings=settings,
                   options=options, lanes=int(entry.get("lanes") or 0),
                   pairing=entry.get("pairing"))


def devices_for(config_devices: list[dict], items: str | Iterable[str]) -> list[Device]:
    """The configured devices that measure one of ``items`` (a device with no item serves
    any): a BMI sitting takes the height and the weight devices."""
    wanted = {items} if isinstance(items, str) else set(items)
    return [Device.from_config(d) for d in config_devices if d.get("item") in (None, "", *wanted)]


@dataclass
class Service:
    flow: Flow
    devices: list[Device]
    rawlog_dir: Path
    on_event: OnEvent | None = None

    _readers: dict[str, PortReader] = field(default_factory=dict, init=False)
    _logs: list[rawlog.RawLog] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _queue: queue.SimpleQueue = field(default_factory=queue.SimpleQueue, init=False, repr=False)
    _writer: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # The flow gives each reading to the item of the device that sent it.
        for device in self.devices:
            self.flow.add_device(device.name, device.item, device.lanes, device.pairing)

    def start(self) -> "Service":
        """Start every device's reader; a device that is not plugged in shows a red light
        and is picked up when it appears (the reader keeps looking)."""
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name=f"pe {self.flow.sitting}",
                                                daemon=True)
                self._writer.start()
            for device in self.devices:
                if device.name in self._readers:
                    continue
                driver = drivers.get(device.driver, **device.options)
                raw = rawlog.RawLog(rawlog.path_for(self.rawlog_dir, self.flow.sitting, device.port),
                                    port=device.port, driver=device.driver)
                self._logs.append(raw)
                reader = PortReader(device.port, driver, self._reading_for(device),
                                    self._status_for(device), raw, device.settings)
                self._readers[device.name] = reader.start()
        return self

    def stop(self) -> None:
        with self._lock:
            for reader in self._readers.values():
                reader.stop()
            if self._writer is not None:
                self._queue.put(_STOP)           # after the readers: what they read is stored
                self._writer.join(30)
                self._writer = None
            for raw in self._logs:
                raw.close()
            self._readers.clear()
            self._logs.clear()

    def _write(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            batch = [item for item in batch if item is not _STOP]
            if batch:
                try:
                    self.flow.on_readings(batch)
                except Exception:          # noqa: BLE001 - the raw log still holds the bytes
                    log.exception("PE readings could not be stored for sitting %s", self.flow.sitting)
            if stop:
                return

    def _reading_for(self, device: Device):
        def on_reading(reading) -> None:
            self._queue.put((reading, device.name, device.port))
        return on_reading

    def _status_for(self, device: Device):
        def on_status(status: str, error: str) -> None:
            if self.on_event:
                self.on_event({"type": "device", "device": device.name, "status": status,
                               "light": LIGHT.get(status, "warn"), "error": error})
        return on_status

    def status(self) -> list[dict]:
        """Each device's light for the page: name, driver, port, status, counters."""
        out = []
        for device in self.devices:
            reader = self._readers.get(device.name)
            status = reader.status if reader else "stopped"
            out.append({"name": device.name, "driver": device.driver, "port": device.port,
                        "item": device.item, "lanes": device.lanes, "status": status,
                        "light": LIGHT.get(status, "warn"),
                        "error": reader.last_error if reader else "",
                        "counters": reader.driver.counters.as_dict() if reader else {}})
        return out
