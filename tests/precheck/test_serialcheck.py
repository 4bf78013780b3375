"""serial.<port> over real socat PTYs: a device that answers passes; a pulled cable fails."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import serial

from devices.drivers import mt_sics, qm_frame
from precheck.context import Context
from precheck import registry
from precheck.runner import run
from precheck.serialcheck import check_serial_device

pytestmark = pytest.mark.serial
ROOT = Path(__file__).resolve().parents[2]


class Device(threading.Thread):
    """The device end of a PTY: answers probes like a scale, or streams frames like a meter."""

    def __init__(self, port: str, answer: bytes = b"", stream: bytes = b"", on_probe: bytes = b"S\r\n"):
        super().__init__(daemon=True)
        self.conn = serial.Serial(port, timeout=0.05)
        self.answer, self.stream, self.on_probe = answer, stream, on_probe
        self.stop = threading.Event()
        self.probes = 0

    def run(self):
        buffer = b""
        while not self.stop.is_set():
            try:
                buffer += self.conn.read(64)
                if self.answer and self.on_probe in buffer:
                    buffer = buffer.split(self.on_probe, 1)[1]
                    self.probes += 1
                    self.conn.write(self.answer)
                if self.stream:
                    self.conn.write(self.stream)
            except (OSError, serial.SerialException):
                return

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(5)
        self.conn.close()


def scale(port: str, **extra) -> dict:
    return {"name": "scale-1", "driver": "mt-sics", "port": port, "item": "weight",
            "baud": 9600, "wait_s": 3, **extra}


def test_scale_answering_its_probe_passes_with_the_reading(pty_pair):
    pty = pty_pair()
    with Device(pty.device_end, answer=mt_sics.format_line("42.15")) as device:
        result = check_serial_device(scale(pty.station_end), Context())
    assert result.status == "pass", result
    assert result.id == f"serial.{pty.station_end}"
    assert result.details["reading"]["value"] == 42.15
    assert result.details["reading"]["unit"] == "kg"
    assert "42.15 kg" in result.summary_zh and "mt-sics" in result.summary_en
    assert device.probes >= 1


def test_meter_streaming_frames_passes_without_a_probe(pty_pair):
    pty = pty_pair()
    frame = qm_frame.format_frame("SR01", "sit_and_reach", "0001", "-3.5", "cm")
    device = {"name": "reach-1", "driver": "qm-frame", "port": pty.station_end, "wait_s": 3}
    with Device(pty.device_end, stream=frame):
        result = check_serial_device(device, Context())
    assert result.status == "pass", result
    assert result.details["reading"]["value"] == -3.5


@pytest.fixture
def simulate_device():
    procs: list[subprocess.Popen] = []

    def start(driver: str, port: str) -> subprocess.Popen:
        procs.append(subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "simulate-device"), "--driver", driver,
             "--port", port, "--count", "0", "--seed", "7"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_simulated_scale_passes_then_fails_once_its_pty_is_gone(pty_pair, simulate_device):
    pty = pty_pair()
    simulate_device("mt-sics", pty.device_end)
    passed = check_serial_device(scale(pty.station_end, wait_s=8), Context())
    assert passed.status == "pass", passed
    assert passed.details["reading"]["unit"] == "kg" and passed.details["driver"] == "mt-sics"
    pty.unplug()
    result = check_serial_device(scale(pty.station_end), Context())
    assert result.status == "fail"
    assert result.details["problem"] == "missing"
    assert "找不到串口" in result.summary_zh and "not found" in result.summary_en
    assert "station.toml" in result.fix_zh and "Device Manager" in result.fix_en


def test_a_silent_device_fails(pty_pair):
    pty = pty_pair()
    result = check_serial_device(scale(pty.station_end, wait_s=0.5), Context())
    assert result.status == "fail"
    assert result.details["bytes_received"] == 0
    assert "没有应答" in result.summary_zh


def test_a_device_sending_the_wrong_protocol_fails_with_the_baud_hint(pty_pair):
    pty = pty_pair()
    with Device(pty.device_end, stream=b"\x00\xff#garbage#\r\n" * 4):
        result = check_serial_device(scale(pty.station_end, wait_s=2), Context())
    assert result.status == "fail"
    assert result.details["bytes_received"] > 0
    assert "baud" in result.fix_zh and "baud" in result.fix_en


def test_a_port_held_by_another_program_fails_as_busy(pty_pair):
    pty = pty_pair()
    holder = serial.Serial(pty.station_end, exclusive=True)
    try:
        result = check_serial_device(scale(pty.station_end), Context())
    finally:
        holder.close()
    assert result.status == "fail"
    assert result.details["problem"] == "busy"
    assert "占用" in result.summary_zh


def test_unknown_driver_fails_with_the_list_of_drivers(pty_pair):
    pty = pty_pair()
    result = check_serial_device({"name": "x", "driver": "no-such", "port": pty.station_end}, Context())
    assert result.status == "fail"
    assert "mt-sics" in result.fix_zh and "mt-sics" in result.fix_en


def test_each_device_is_its_own_check_under_the_runner(pty_pair):
    good, gone = pty_pair(), pty_pair()
    gone.unplug()
    devices = [scale(good.station_end), scale(gone.station_end)]
    with Device(good.device_end, answer=mt_sics.format_line("30.00")):
        ctx = Context(serial_devices=devices)
        report = run([[registry.serial(d, ctx)] for d in ctx.serial_devices], ctx)
    assert [c.id for c in report.checks] == [f"serial.{good.station_end}", f"serial.{gone.station_end}"]
    assert [c.status for c in report.checks] == ["pass", "fail"]


def test_bad_line_settings_fail_with_what_is_allowed(pty_pair):
    # Read by devices.ports.PortSettings, as the PE station reads them: one rule for both.
    pty = pty_pair()
    result = check_serial_device(scale(pty.station_end, parity="Q", baud=-1), Context())
    assert result.status == "fail" and result.details["problem"] == "settings"
    assert "parity='Q'" in result.fix_zh and "baud=-1" in result.fix_en
