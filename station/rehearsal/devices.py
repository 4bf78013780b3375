"""Simulated PE devices: each one a small TCP server on 127.0.0.1, which the station opens as
the pyserial URL ``socket://127.0.0.1:PORT`` (devices.ports opens URLs as it opens COM3).

No socat and no PTY: the rehearsal runs the same on Windows and Linux. Unplugging closes
the server and the station's connection, as a USB adapter pulled out (the station's reader
sees the port fail and keeps trying); plugging listens again on the same port. One program
at a time has the device, as a real port opened exclusively: a second connection is closed
at once. A measurement writes the frames of `frames.measurement` to the connected station;
with nobody connected they are lost, as a real device's are. An MT-SICS scale also answers
the "S" query, so the pre-check finds it as it finds a real scale.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from qmbase.refusal import Refusal
from station.rehearsal import frames


# name, driver, item: the devices of a rehearsal station (the bmi sitting reads height and weight).
DEVICES = (("timer-1", "alge-timy", "run_50m"), ("reach-1", "qm-frame", "sit_and_reach"),
           ("height-1", "mt-sics", "height"), ("weight-1", "mt-sics", "weight"))

HOST = "127.0.0.1"

# A timer or a meter sends only when it measures: the pre-check waits this long for the
# trainer to press 模拟测量, as a proctor presses the device's key during a real pre-check.
PRECHECK_WAIT_S = 20


class Unplugged(Refusal, RuntimeError):
    """The device is unplugged: plug it back in first."""

    code = "unplugged"

    def __init__(self, name: str):
        super().__init__(f"设备 {name} 已拔出，无法测量：请先点“插回”。",
                         f"Device {name} is unplugged and cannot measure: press Plug back in first.")


def url(port: int) -> str:
    return f"socket://{HOST}:{port}"


@dataclass
class SimulatedDevice:
    name: str
    driver: str
    item: str
    port: int = 0                      # chosen at the first plug, kept across unplugs
    measured: int = 0
    _server: socket.socket | None = field(default=None, repr=False)
    _conn: socket.socket | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last_stable: bytes | None = field(default=None, repr=False)

    @property
    def station_end(self) -> str:
        """What station.toml names as the device's port."""
        return url(self.port)

    @property
    def plugged(self) -> bool:
        return self._server is not None

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
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # The same port after an unplug, though the last connection may linger in TIME_WAIT.
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                server.bind((HOST, self.port))
            except OSError:
                server.close()
                raise RuntimeError(f"模拟设备 {self.name} 无法使用本机端口 {self.port}。\n"
                                   f"Simulated device {self.name} cannot listen on local port {self.port}.") from None
            server.listen(4)
            self.port = server.getsockname()[1]
            self._server = server
        threading.Thread(target=self._accept, args=(server,), name=f"sim {self.name}", daemon=True).start()
        return self

    def unplug(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            conn, self._conn = self._conn, None
        for s in (conn, server):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)      # wakes the threads blocked on it
            except OSError:
                pass
            s.close()

    def listened(self) -> bool:
        """Whether the station has the device open (a sitting's reader or the pre-check)."""
        return self._conn is not None

    def measure(self, code: str | None = None) -> dict:
        """Send one measurement; returns what the station should read (value, unit, code)
        and whether it was heard."""
        with self._lock:
            if not self.plugged:
                raise Unplugged(self.name)
            emits = frames.measurement(self.driver, self.item, frames.seed_for(self.name, self.measured), code)
            self.measured += 1
            heard = 0
            for emit in emits:
                if emit.delay:
                    time.sleep(emit.delay)
                if self._send(emit.data):
                    heard += 1
                if emit.kind == frames.FINAL and self.driver == "mt-sics":
                    self._last_stable = emit.data
        value = frames.final_value(emits)
        return {"device": self.name, "item": self.item, "code": code or None,
                "value": None if value is None else format(value, "f"), "heard": heard == len(emits)}

    def _send(self, data: bytes) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            conn.sendall(data)
            return True
        except OSError:           # the station went away mid-frame: lost, as on a real port
            return False

    def _accept(self, server: socket.socket) -> None:
        while self._server is server:
            try:
                conn, _ = server.accept()
            except OSError:
                return            # unplugged
            with self._lock:
                if self._server is not server or self._conn is not None:
                    conn.close()  # in use by another program: as a port opened exclusively
                    continue
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._conn = conn
            threading.Thread(target=self._serve, args=(conn,), name=f"sim {self.name} conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        """Read what the station sends (the scale's query) until it closes the port."""
        buffer = b""
        idle = frames.idle_answer(self.driver, self.item)
        try:
            while True:
                data = conn.recv(64)
                if not data:
                    break
                buffer = (buffer + data)[-64:]
                if idle and b"S\r\n" in buffer:
                    buffer = b""
                    with self._lock:
                        if self._conn is conn:
                            self._send(self._last_stable or idle)
        except OSError:
            pass
        finally:
            with self._lock:
                if self._conn is conn:
                    self._conn = None
            conn.close()


def make_all() -> list[SimulatedDevice]:
    return [SimulatedDevice(name, driver, item) for name, driver, item in DEVICES]
