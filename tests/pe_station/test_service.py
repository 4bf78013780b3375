"""Devices over real socat PTYs into the flow, with raw logs to replay."""
import time

import serial

from devices import rawlog
from devices.drivers import qm_frame
from pe_station.service import Service, devices_for


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_frames_on_a_pty_become_attempts_and_are_logged_raw(make_flow, pty_pair, tmp_path):
    pair = pty_pair()
    flow = make_flow("sit_and_reach")
    config = [{"name": "SR-1", "driver": "qm-frame", "port": pair.station_end, "item": "sit_and_reach"},
              {"name": "scale-1", "driver": "mt-sics", "port": "/dev/nonexistent", "item": "weight"}]
    events = []
    service = Service(flow, devices_for(config, "sit_and_reach"), tmp_path / "raw", events.append).start()
    try:
        wait_for(lambda: service.status()[0]["status"] == "connected")
        flow.scan("0001", "张老师", device="SR-1")
        with serial.Serial(pair.device_end) as dev:
            dev.write(b"\x00\xff" + qm_frame.format_frame("SR-1", "sit_and_reach", "", "-4.2", "cm"))
            dev.write(qm_frame.format_frame("SR-1", "sit_and_reach", "0002", "11.0", "cm"))
            wait_for(lambda: flow.db.execute("SELECT count(*) FROM pe_attempts").fetchone()[0] == 2)
        assert [a["rounded"] for a in flow.attempts_of("0001")] == ["-4.2"]
        assert [a["rounded"] for a in flow.attempts_of("0002")] == ["11.0"]
        assert [d["name"] for d in service.status()] == ["SR-1"]      # only this item's devices
        assert service.status()[0]["light"] == "ok"
        assert any(e["type"] == "device" and e["status"] == "connected" for e in events)
    finally:
        service.stop()
    log = rawlog.path_for(tmp_path / "raw", flow.sitting, pair.station_end)
    assert [format(r.value, "f") for r in rawlog.replay(log)] == ["-4.2", "11.0"]


def test_an_unplugged_device_shows_a_red_light(make_flow, pty_pair, tmp_path):
    pair = pty_pair()
    flow = make_flow("sit_and_reach")
    config = [{"name": "SR-1", "driver": "qm-frame", "port": pair.station_end}]
    service = Service(flow, devices_for(config, "sit_and_reach"), tmp_path / "raw").start()
    try:
        wait_for(lambda: service.status()[0]["light"] == "ok")
        pair.unplug()
        wait_for(lambda: service.status()[0]["light"] == "fail")
    finally:
        service.stop()
