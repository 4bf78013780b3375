"""Serial ports: the one place that opens them, reads them and survives unplugging.

Drivers know nothing of ports (see ``devices.drivers``); this module knows nothing of
protocols. A `PortReader` owns one port: a background thread opens it (exclusively),
blocks in ``read`` so a frame is parsed as soon as its last byte arrives (no polling
sleeps), writes every chunk to the raw log, feeds the driver and hands each reading to
a callback. When the port fails or disappears it reports "disconnected" and reopens it
by itself when the device is back.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import serial
import serial.tools.list_ports

from qmbase.platform import com_ports_present, port_name
from qmbase.refusal import Refusal

from . import drivers
from .drivers import Driver, Reading
from .rawlog import RawLog

log = logging.getLogger(__name__)

CONNECTING, CONNECTED, DISCONNECTED, STOPPED = "connecting", "connected", "disconnected", "stopped"

STATUS_TEXT = {
    CONNECTED: ("设备已连接。", "The device is connected."),
    DISCONNECTED: ("设备已断开：请检查串口线或 USB 转接头是否插好，插回后会自动重新连接。",
                   "The device is disconnected: check the serial cable or USB adapter; "
                   "it reconnects by itself once plugged back in."),
}


class PortError(Refusal, OSError):
    """A port could not be opened; the message says why and what to do, in both languages."""


PARITIES = ("N", "E", "O", "M", "S")
FLOW_CONTROLS = ("none", "rtscts", "xonxoff", "dsrdtr")


class SettingsError(Refusal, ValueError):
    """Bad serial settings; the message says which and what is allowed, in both languages."""

    status = 400


@dataclass
class PortSettings:
    """Line settings from config or the command line; None takes the driver's default."""

    baud: int | None = None
    bytesize: int | None = None
    parity: str | None = None          # "N", "E", "O", "M", "S"
    stopbits: float | None = None
    flow_control: str | None = None    # "none", "rtscts", "xonxoff", "dsrdtr"
    read_timeout: float = 0.25         # how often a silent port is checked for presence
    reopen_interval: float = 0.25      # how often a missing device is looked for

    @classmethod
    def from_config(cls, device: dict) -> "PortSettings":
        """From one ``[[pe.devices]]`` table or the command line's options (keys baud,
        bytesize, parity, stopbits, flow_control): checked here, once, for both."""
        name = device.get("name") or device.get("port") or "?"
        bad = []
        baud = device.get("baud")
        if baud is not None and (isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0):
            bad.append(f"baud={baud!r}")
        bytesize = device.get("bytesize")
        if bytesize is not None and bytesize not in (5, 6, 7, 8):
            bad.append(f"bytesize={bytesize!r}")
        parity = device.get("parity")
        if parity is not None:
            parity = str(parity).strip().upper()
            if parity not in PARITIES:
                bad.append(f"parity={device['parity']!r}")
        stopbits = device.get("stopbits")
        if stopbits is not None and (isinstance(stopbits, bool) or stopbits not in (1, 1.5, 2)):
            bad.append(f"stopbits={stopbits!r}")
        flow = device.get("flow_control")
        if flow is not None and str(flow).lower() not in FLOW_CONTROLS:
            bad.append(f"flow_control={flow!r}")
        if bad:
            raise SettingsError(
                f"设备 {name} 的串口参数有误：{', '.join(bad)}。baud 为正整数（如 9600），bytesize 为 5-8，"
                f"parity 为 N/E/O（无/偶/奇校验），stopbits 为 1、1.5 或 2，flow_control 为 "
                f"{'/'.join(FLOW_CONTROLS)}；请按设备说明书改正 station.toml 或命令参数。",
                f"Device {name} has bad serial settings: {', '.join(bad)}. baud is a positive whole "
                f"number (e.g. 9600), bytesize 5-8, parity N/E/O, stopbits 1, 1.5 or 2, flow_control "
                f"{'/'.join(FLOW_CONTROLS)}; correct station.toml or the command's options as the "
                f"device's manual says.")
        return cls(baud=baud, bytesize=bytesize, parity=parity,
                   stopbits=None if stopbits is None else float(stopbits),
                   flow_control=None if flow is None else str(flow).lower())

    def describe(self, driver: Driver | type[Driver] | None = None) -> str:
        """``9600 8N1`` (with the driver's defaults for what is not set)."""
        baud = self.baud or (driver.baud if driver else 9600)
        size = self.bytesize or (driver.bytesize if driver else 8)
        parity = self.parity or (driver.parity if driver else "N")
        stop = self.stopbits or (driver.stopbits if driver else 1)
        flow = f" {self.flow_control}" if self.flow_control not in (None, "none") else ""
        return f"{baud} {size}{parity}{stop:g}{flow}"


def is_url(name: str) -> bool:
    return "://" in name


def open_port(name: str, driver: Driver | type[Driver], settings: PortSettings | None = None) -> serial.Serial:
    """Open ``name`` (COM3, /dev/ttyUSB0, or a pyserial URL such as socket://host:port)
    with the driver's line settings unless the config overrides them."""
    s = settings or PortSettings()
    try:
        port = serial.serial_for_url(port_name(name), do_not_open=True)
        port.baudrate = s.baud or driver.baud
        port.bytesize = s.bytesize or driver.bytesize
        port.parity = s.parity or driver.parity
        port.stopbits = s.stopbits or driver.stopbits
        port.rtscts = s.flow_control == "rtscts"
        port.xonxoff = s.flow_control == "xonxoff"
        port.dsrdtr = s.flow_control == "dsrdtr"
        port.timeout = s.read_timeout
        port.write_timeout = 1.0
        if not is_url(name):
            port.exclusive = True      # a second program on the same scale steals frames
        port.open()
    except (serial.SerialException, OSError, ValueError) as e:
        raise PortError(
            f"打不开串口 {name}（{e}）：请确认设备已插好、端口名正确，且没有别的程序占用它。",
            f"Cannot open serial port {name} ({e}): check the device is plugged in, the port "
            f"name is right and no other program is using it.") from e
    return port


def port_present(name: str) -> bool:
    """Whether the port is still there: a USB adapter's /dev/ttyUSBn, a PTY pair's link or a
    Windows COM port vanish when unplugged."""
    if is_url(name):
        return True
    present = com_ports_present()
    if present is None:
        return os.path.exists(name)
    return port_name(name) in present or port_name(name) in {
        port_name(p.device) for p in serial.tools.list_ports.comports()}


def list_ports() -> list[dict]:
    """Serial ports the OS sees now, named as it names them (COM3, /dev/ttyUSB0). On Windows
    also the COM ports SetupAPI does not list (virtual pairs), with what is known of them."""
    out = []
    seen = set()
    for p in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device):
        seen.add(port_name(p.device))
        out.append({
            "port": port_name(p.device),
            "vid_pid": f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None else None,
            "description": p.description if p.description != "n/a" else None,
            "manufacturer": p.manufacturer,
            "serial_number": p.serial_number,
        })
    for name in sorted((com_ports_present() or set()) - seen, key=lambda n: int(n[3:])):
        out.append({"port": name, "vid_pid": None, "description": None, "manufacturer": None,
                    "serial_number": None})
    return out


@dataclass
class PortReader:
    """Reads one port in a background thread until ``stop()``."""

    port: str
    driver: Driver
    on_reading: Callable[[Reading], None]
    on_status: Callable[[str, str], None] | None = None     # (status, error text)
    raw_log: RawLog | None = None
    settings: PortSettings = field(default_factory=PortSettings)

    status: str = field(default=CONNECTING, init=False)
    last_error: str = field(default="", init=False)
    last_problem: Refusal | None = field(default=None, init=False)    # the same, as its fields
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _serial: serial.Serial | None = field(default=None, init=False, repr=False)

    def start(self) -> "PortReader":
        self._thread = threading.Thread(target=self._run, name=f"port {self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        ser = self._serial
        if ser is not None:
            try:
                ser.cancel_read()      # wake a blocking read (POSIX and Windows)
            except Exception:          # noqa: BLE001 - closing anyway
                pass
        if self._thread:
            self._thread.join(timeout)
        self._set_status(STOPPED, "")

    def write(self, data: bytes) -> None:
        """Send a command (a probe) to the device, if the port is open."""
        ser = self._serial
        try:
            if ser is None:
                raise serial.SerialException("not open")
            ser.write(data)
        except (serial.SerialException, OSError) as e:
            raise PortError(f"串口 {self.port} 未连接，命令没有发出：请检查设备连线。",
                            f"Port {self.port} is not connected, the command was not sent: "
                            f"check the device's cable.") from e

    def _set_status(self, status: str, error: str, problem: Refusal | None = None) -> None:
        if status == self.status:
            return
        self.status, self.last_error, self.last_problem = status, error, problem
        if self.raw_log and status in (CONNECTED, DISCONNECTED):
            self.raw_log.event(status)
        if self.on_status:
            try:
                self.on_status(status, error)
            except Exception:          # noqa: BLE001 - a UI fault must not stop reading
                log.exception("status callback failed for %s", self.port)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ser = open_port(self.port, self.driver, self.settings)
            except PortError as e:
                self._set_status(DISCONNECTED, str(e), e)
                self._stop.wait(self.settings.reopen_interval)
                continue
            self._serial = ser
            self.driver.reset()        # a partial frame from before the unplug is noise now
            self._set_status(CONNECTED, "")
            try:
                self._read(ser)
            except (serial.SerialException, OSError) as e:     # unplugged
                if not self._stop.is_set():
                    self._set_status(DISCONNECTED, f"{type(e).__name__}: {e}")
            finally:
                self._serial = None
                try:
                    ser.close()
                except Exception:      # noqa: BLE001 - the device is gone already
                    pass

    def _read(self, ser: serial.Serial) -> None:
        checked = time.monotonic()
        while not self._stop.is_set():
            # Blocks until at least one byte (or the timeout): a frame is handled when its
            # last byte arrives, not at the next tick of a poll.
            data = ser.read(ser.in_waiting or 1)
            if not data:
                # An unplug usually fails the read at once; a silent port is also checked
                # for presence, at most once a second (listing COM ports is slow on Windows).
                if time.monotonic() - checked >= 1.0:
                    checked = time.monotonic()
                    if not port_present(self.port):
                        raise serial.SerialException("the port is gone")
                continue
            at = time.time()
            if self.raw_log:
                self.raw_log.write(data, at)
            for reading in self.driver.feed(data, at=at):
                try:
                    self.on_reading(reading)
                except Exception:      # noqa: BLE001 - one bad consumer must not lose the rest
                    log.exception("reading callback failed for %s", self.port)


def listen(driver_name: str, port: str, seconds: float | None = None,
           on_reading: Callable[[Reading], None] | None = None, *,
           on_status: Callable[[str, str], None] | None = None,
           settings: PortSettings | None = None, driver_options: dict | None = None,
           raw_log: RawLog | None = None) -> Driver:
    """Read ``port`` with the driver for ``seconds`` (None: until Ctrl-C) and call
    ``on_reading`` for each reading; returns the driver (its ``counters``). Raises
    PortError when the port cannot be opened at the start (nothing to listen to)."""
    driver = drivers.get(driver_name, **(driver_options or {}))
    open_port(port, driver, settings).close()          # fail early, with a clear message
    reader = PortReader(port, driver, on_reading or (lambda r: None), on_status,
                        raw_log, settings or PortSettings()).start()
    try:
        if seconds is None:
            while True:
                time.sleep(3600)
        else:
            time.sleep(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        reader.stop()
    return driver
