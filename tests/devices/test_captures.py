"""Every driver against real device output others published (tests/devices/captures/),
directly and through `station pe listen --json` over a real socat PTY."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
import serial

from devices import drivers
from devices.drivers.alge_timy import RunTimer
from tests.helpers import holds_port

CAPTURES = Path(__file__).with_name("captures")
SAMPLES = sorted(CAPTURES.glob("*.toml"))
STATION = str(Path(sys.executable).with_name("station"))
CLI_OPTION = {"pattern": "--pattern", "stable_when": "--stable-when", "repeat": "--repeat",
              "unit": "--unit"}


def load(path: Path) -> dict:
    sample = tomllib.loads(path.read_text(encoding="utf-8"))
    for key in ("source", "means", "driver", "data", "expect"):
        assert key in sample, f"{path.name} has no {key}"
    return sample


def shown(readings) -> list[dict]:
    """Readings as the samples describe them (only the keys each expectation gives)."""
    return [{"value": format(r.value, "f"), "unit": r.unit, "stable": r.stable, "code": r.code,
             "channel": r.channel, "flag": r.flag} for r in readings]


def matches(got: list[dict], expect: list[dict]) -> bool:
    return len(got) == len(expect) and all(
        all(g[k] == v for k, v in e.items()) for g, e in zip(got, expect))


def test_the_corpus_covers_every_driver_that_reads_third_party_devices():
    assert {load(p)["driver"] for p in SAMPLES} >= {"alge-timy", "kern", "mt-sics", "line"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_reads_as_its_source_says(path):
    sample = load(path)
    data = sample["data"].encode("latin-1")
    for chunks in ([data], [bytes([b]) for b in data]):     # whole, and byte by byte
        driver = drivers.get(sample["driver"], **sample.get("options", {}))
        readings = [r for chunk in chunks for r in driver.feed(chunk)]
        got = shown(readings)
        assert matches(got, sample["expect"]), (path.name, got)
        assert driver.counters.status_frames == sample.get("status", 0)
        assert driver.counters.checksum_failures == sample.get("checksum_failures", 0)
        if "runs" in sample:
            timer = RunTimer(sample["pairing"])
            runs = [run for r in readings if (run := timer.feed(r))]
            assert [format(run.seconds, "f") for run in runs] == sample["runs"]


@pytest.mark.serial
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_reads_the_same_through_pe_listen_over_a_pty(path, pty_pair, data_dir):
    sample = load(path)
    pair = pty_pair()
    args = [STATION, "pe", "listen", "--driver", sample["driver"], "--port", pair.station_end,
            "--seconds", "4", "--json"]
    for key, value in sample.get("options", {}).items():
        args += [CLI_OPTION[key], str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    try:
        holds_port(proc.pid, pair.station_end)
        with serial.Serial(pair.device_end, timeout=1) as device:
            device.write(sample["data"].encode("latin-1"))
            device.flush()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    got = [{"value": d["value_text"], "unit": d["unit"], "stable": d["stable"], "code": d["code"],
            "channel": d["channel"], "flag": d["flag"]} for d in docs]
    assert matches(got, sample["expect"]), (path.name, got)
    assert all(d["driver"] == sample["driver"] and d["port"] == pair.station_end for d in docs)
    assert all(Decimal(d["value_text"]) == Decimal(str(d["value"])) for d in docs)
