"""Simulated PE devices: each one a socat PTY pair, its station end named in station.toml.

Unplugging tears the pair down, as a USB adapter pulled out (the station's reader sees the
port vanish); plugging makes it again at the same paths. A measurement writes the frames of
`frames.measurement` into the device end. An MT-SICS scale also answers the "S" query, so
the pre-check finds it as it finds a real scale.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import serial

from station.rehearsal import frames, procs


# name, driver, item: the devices of a rehearsal station (the bmi sitting reads height and weight).
DEVICES = (("timer-1", "alge-timy", "run_50m"), ("reach-1", "qm-frame", "sit_and_reach"),
           ("height-1", "mt-sics", "height"), ("weight-1", "mt-sics", "weight"))


# A timer or a meter sends only when it measures: the pre-check waits this long for the
# trainer to press 模拟测量, as a proctor presses the device's key during a real pre-check.
PRECHECK_WAIT_S = 20


class Unplugged(RuntimeError):
    """The device is unplugged: plug it back in first."""


def socat_available() -> bool:
    return shutil.which("socat") is not None


@dataclass
class SimulatedDevice:
    name: str
    driver: str
    item: str
    folder: Path
    measured: int = 0
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _port: serial.Serial | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last_stable: bytes | None = field(default=None, repr=False)

    @property
    def station_end(self) -> str:
        return str(self.folder / self.name)

    @property
    def device_end(self) -> str:
        return str(self.folder / f"{self.name}.device")

    @property
    def plugged(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def config(self) -> dict:
        """Its ``[[pe.devices]]`` table."""
        table = {"name": self.name, "driver": self.driver, "port": self.station_end, "item": self.item}
        if not frames.idle_answer(self.driver, self.item):
            table["wait_s"] = PRECHECK_WAIT_S
        return table

    def describe(self) -> dict:
        return {"name": self.name, "driver": self.driver, "item": self.item,
                "port": self.station_end, "plugged": self.plugged}

    def plug(self) -> "SimulatedDevice":
        with self._lock:
            if self.plugged:
                return self
            for end in (self.station_end, self.device_end):
                Path(end).unlink(missing_ok=True)
            self._proc = procs.start(["socat", f"pty,raw,echo=0,link={self.station_end}",
                                      f"pty,raw,echo=0,link={self.device_end}"])
            deadline = time.monotonic() + 10
            while not (Path(self.station_end).exists() and Path(self.device_end).exists()):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    procs.stop(self._proc)
                    self._proc = None
                    raise RuntimeError(f"socat could not make the PTY pair for {self.name}")
                time.sleep(0.02)
            # Held open while plugged: the device end never closes under socat's feet.
            self._port = serial.Serial(self.device_end, timeout=0.2, write_timeout=2)
        if frames.idle_answer(self.driver, self.item):
            threading.Thread(target=self._answer_queries, args=(self._port,),
                             name=f"sim {self.name}", daemon=True).start()
        return self

    def unplug(self) -> None:
        with self._lock:
            port, self._port = self._port, None
            if port is not None:
                try:
                    port.cancel_read()
                except Exception:      # noqa: BLE001 - closing anyway
                    pass
                port.close()
            if self._proc is not None:
                procs.stop(self._proc)
                self._proc = None
            for end in (self.station_end, self.device_end):   # as /dev/ttyUSB0 vanishes
                Path(end).unlink(missing_ok=True)

    def listened(self) -> bool:
        """Whether the station has the port open (a sitting's reader or the pre-check).

        A real device's frames are lost when no program reads its port; a PTY would keep
        them and hand them to the next sitting, so a frame nobody listens for is not sent."""
        socat = self._proc.pid if self._proc else None
        return procs.port_is_open(self.station_end, besides=socat) is not False

    def measure(self, code: str | None = None) -> dict:
        """Send one measurement; returns what the station should read (value, unit, code)
        and whether it was heard."""
        with self._lock:
            if not self.plugged or self._port is None:
                raise Unplugged(self.name)
            emits = frames.measurement(self.driver, self.item, frames.seed_for(self.name, self.measured), code)
            self.measured += 1
            heard = 0
            for emit in emits:
                if emit.delay:
                    time.sleep(emit.delay)
                if not self.listened():
                    continue
                self._port.write(emit.data)
                self._port.flush()
                heard += 1
                if emit.kind == frames.FINAL and self.driver == "mt-sics":
                    self._last_stable = emit.data
        value = frames.final_value(emits)
        return {"device": self.name, "item": self.item, "code": code or None,
                "value": None if value is None else format(value, "f"), "heard": heard == len(emits)}

    def _answer_queries(self, port: serial.Serial) -> None:
        buffer = b""
        while self._port is port:
            try:
                buffer = (buffer + port.read(64))[-64:]
            except (serial.SerialException, OSError, TypeError):
                return          # unplugged
            if b"S\r\n" in buffer:
                buffer = b""
                with self._lock:
                    if self._port is port:
                        port.write(self._last_stable or frames.idle_answer(self.driver, self.item))


def make_all(folder: Path) -> list[SimulatedDevice]:
    folder.mkdir(parents=True, exist_ok=True)
    return [SimulatedDevice(name, driver, item, folder) for name, driver, item in DEVICES]
