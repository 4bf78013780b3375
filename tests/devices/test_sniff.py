"""`station pe sniff` over a real socat PTY: an unknown device set up with sniff and listen alone."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import serial

from devices import sniff
from devices.drivers import kern, mt_sics
from tests.helpers import holds_port

STATION = str(Path(sys.executable).with_name("station"))
pytestmark = pytest.mark.serial


def run_station(args: list[str], send: bytes, pair, every: float = 0.2):
    """Run a station command while the device end keeps sending ``send`` line by line."""
    proc = subprocess.Popen([STATION, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())
    try:
        holds_port(proc.pid, pair.station_end)
        with serial.Serial(pair.device_end, timeout=1) as device:
            for line in send.splitlines(keepends=True):
                if proc.poll() is not None:
                    break
                device.write(line)
                device.flush()
                time.sleep(every)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def test_sniff_recognises_a_known_scale_and_proposes_its_entry(pty_pair, data_dir):
    pair = pty_pair()
    frames = b"".join(mt_sics.format_line(f"{20 + n}.{n:02d}", "kg", n > 2) for n in range(6))
    code, out, err = run_station(["pe", "sniff", "--port", pair.station_end, "--seconds", "3",
                                  "--baud", "9600", "--json"], frames, pair)
    assert code == 0, err
    report = json.loads(out)
    assert report["framing"] == "CR LF" and report["driver"] == "mt-sics"
    # Each chunk with its time; together they are every byte the scale sent.
    assert all(line.startswith("+") and "s  " in line for line in report["dump"])
    assert "S S      23.03 kg\\r\\n" in "".join(line.split("s  ", 1)[1] for line in report["dump"])
    entry = tomllib.loads(report["toml"])["pe"]["devices"][0]
    assert entry["driver"] == "mt-sics" and entry["port"] == pair.station_end and entry["baud"] == 9600


def test_an_unknown_line_device_is_set_up_with_sniff_then_proved_with_listen(pty_pair, data_dir):
    # A stadiometer that prints "H:" a height and a stability word (generated lines).
    lines = b"".join(f"US H: {h} cm\r\n".encode() for h in ("150.2", "151.0", "151.3")) \
        + b"ST H: 151.4 cm\r\n" * 3
    pair = pty_pair()
    code, out, err = run_station(["pe", "sniff", "--port", pair.station_end, "--seconds", "3"],
                                 lines, pair)
    assert code == 0, err
    dump = [line for line in out.splitlines() if line.startswith("+")]
    assert "".join(line.split("s  ", 1)[1] for line in dump).endswith("ST H: 151.4 cm\\r\\n")
    assert "CR LF" in out
    proposed = out.split("proposed entry for station.toml:")[1].split("粘贴后")[0]
    entry = tomllib.loads(proposed)["pe"]["devices"][0]
    assert entry["driver"] == "line" and entry["stable_when"] == "ST"
    entry.update(item="height", name="stadiometer")
    pair2 = pty_pair()
    entry["port"] = pair2.station_end
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in entry.items())
    (data_dir).mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text(f"[[pe.devices]]\n{body}\n", encoding="utf-8")
    code, out, err = run_station(["pe", "listen", "--device", "stadiometer", "--seconds", "3",
                                  "--json"], lines, pair2)
    assert code == 0, err
    got = [(d["value_text"], d["unit"], d["stable"]) for d in map(json.loads, out.splitlines())]
    assert got == [("150.2", "cm", False), ("151.0", "cm", False), ("151.3", "cm", False),
                   ("151.4", "cm", True), ("151.4", "cm", True), ("151.4", "cm", True)]


def test_fixed_length_frames_without_terminators_are_seen_between_pauses():
    frame = b"AB123"
    report = sniff.analyse([(0.0, frame), (0.5, frame), (1.0, frame)])
    assert report.framing == "fixed 5 bytes" and report.driver is None


def test_a_kern_18_byte_scale_is_recognised():
    data = kern.format_kb("32.40", "kg", stable=False) + kern.format_kb("32.40", "kg")
    report = sniff.analyse([(0.0, data[:15]), (0.3, data[15:])])
    assert report.driver == "kern" and report.framing == "CR LF"
