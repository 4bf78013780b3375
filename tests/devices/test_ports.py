"""The port reader over real socat PTYs: unplug, replug, raw log, replay, listen."""
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import serial

from devices import drivers, rawlog, simulators
from devices.drivers.mt_sics import format_line
from devices.ports import (CONNECTED, DISCONNECTED, PortError, PortReader, PortSettings, SettingsError, list_ports,
                           listen, open_port)

pytestmark = pytest.mark.serial


def wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def weight(n: int) -> bytes:
    return format_line(f"{20 + n}.{n:02d}")


def values(readings):
    return [r.value for r in readings]


class Device:
    """The device end of a pair, as the scale would write to its cable."""

    def __init__(self, pair):
        self.pair = pair
        self.port = serial.Serial(pair.device_end, timeout=1)

    def send(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()


def test_unplug_and_replug_recover_with_no_complete_frame_lost(pty_pair, tmp_path):
    pair = pty_pair()
    readings, statuses = [], []
    log_path = rawlog.path_for(tmp_path, "PE-0001", pair.station_end)
    log = rawlog.RawLog(log_path, port=pair.station_end, driver="mt-sics")
    reader = PortReader(pair.station_end, drivers.get("mt-sics"), readings.append,
                        on_status=lambda s, e: statuses.append((s, time.monotonic())),
                        raw_log=log).start()
    try:
        assert wait_for(lambda: reader.status == CONNECTED)
        device = Device(pair)
        device.send(weight(1) + weight(2) + weight(3) + weight(4)[:9])   # 4 is cut by the unplug
        assert wait_for(lambda: len(readings) == 3)
        unplugged = time.monotonic()
        pair.unplug()
        assert wait_for(lambda: reader.status == DISCONNECTED)
        noticed = next(t for s, t in statuses if s == DISCONNECTED)
        # Noticed as the read fails, not at a poll; the bound is loose for a busy machine.
        assert noticed - unplugged < 5
        pair.plug()                                           # same link paths
        assert wait_for(lambda: reader.status == CONNECTED)
        device = Device(pair)
        device.send(weight(5) + weight(6))
        assert wait_for(lambda: len(readings) == 5)
    finally:
        reader.stop()
        log.close()
    assert values(readings) == [Decimal("21.01"), Decimal("22.02"), Decimal("23.03"),
                                Decimal("25.05"), Decimal("26.06")]
    assert [s for s, _ in statuses] == [CONNECTED, DISCONNECTED, CONNECTED, "stopped"]
    # The raw log reads back to the same readings, at the same times.
    replayed = rawlog.replay(log_path)
    assert [(r.value, r.at) for r in replayed] == [(r.value, round(r.at, 6)) for r in readings]


def test_a_device_plugged_in_after_the_station_started_is_picked_up(pty_pair, tmp_path):
    pair = pty_pair()
    pair.unplug()                     # the cable is not in yet when the station starts
    readings, statuses = [], []
    reader = PortReader(pair.station_end, drivers.get("mt-sics"), readings.append,
                        on_status=lambda s, e: statuses.append((s, e))).start()
    try:
        assert wait_for(lambda: reader.status == DISCONNECTED)
        assert "请确认设备已插好" in statuses[0][1] and "plugged in" in statuses[0][1]
        pair.plug()
        assert wait_for(lambda: reader.status == CONNECTED)
        Device(pair).send(weight(7))
        assert wait_for(lambda: len(readings) == 1)
    finally:
        reader.stop()
    assert values(readings) == [Decimal("27.07")]


def test_a_failing_consumer_does_not_stop_the_reading(pty_pair):
    pair = pty_pair()
    readings = []

    def consumer(reading):
        readings.append(reading)
        if len(readings) == 1:
            raise RuntimeError("the consumer broke")

    reader = PortReader(pair.station_end, drivers.get("mt-sics"), consumer).start()
    try:
        assert wait_for(lambda: reader.status == CONNECTED)
        Device(pair).send(weight(1) + weight(2))
        assert wait_for(lambda: len(readings) == 2)
    finally:
        reader.stop()


def test_a_port_is_opened_exclusively(pty_pair):
    pair = pty_pair()
    first = open_port(pair.station_end, drivers.driver_class("kern"))
    try:
        with pytest.raises(PortError) as e:
            open_port(pair.station_end, drivers.driver_class("kern"))
        assert "没有别的程序占用" in str(e.value) and "no other program" in str(e.value)
    finally:
        first.close()


def test_listen_prints_each_reading_and_fails_clearly_on_a_missing_port(pty_pair, tmp_path):
    with pytest.raises(PortError) as e:
        listen("mt-sics", str(tmp_path / "ttyNONE"), seconds=0.1)
    assert "打不开串口" in str(e.value)

    pair = pty_pair()
    readings = []

    def on_status(status, error):
        if status == CONNECTED:       # the scale sends once the station listens
            threading.Thread(target=Device(pair).send, args=(weight(3) + b"S I\r\n",)).start()

    driver = listen("mt-sics", pair.station_end, seconds=1.5, on_reading=readings.append,
                    on_status=on_status)
    assert values(readings) == [Decimal("23.03")]
    assert driver.counters.status_frames == 1
    assert readings[0].to_json(port=pair.station_end)["port"] == pair.station_end


def test_list_ports_names_ports_as_the_os_does():
    for p in list_ports():
        assert set(p) == {"port", "vid_pid", "description", "manufacturer", "serial_number"}
        assert p["port"].startswith(("/dev/", "COM"))


# --- raw log files -------------------------------------------------------------------

def test_raw_log_paths_are_one_per_sitting_and_port(tmp_path):
    assert rawlog.path_for(tmp_path, "PE-7", "/dev/ttyUSB0").name == "PE-7_dev-ttyUSB0.rawlog.jsonl"
    assert rawlog.path_for(tmp_path, "PE-7", "COM3").name == "PE-7_COM3.rawlog.jsonl"


def test_a_torn_last_line_is_skipped_but_a_damaged_middle_line_is_named(tmp_path):
    path = tmp_path / "s.rawlog.jsonl"
    with rawlog.RawLog(path, port="COM3", driver="mt-sics") as log:
        log.write(weight(1), 1.0)
        log.write(weight(2), 2.0)
    with open(path, "ab") as f:
        f.write(b'{"at":3.0,"hex":"5320')               # the power went mid-write
    assert values(rawlog.replay(path)) == [Decimal("21.01"), Decimal("22.02")]

    lines = path.read_bytes().split(b"\n")
    lines[1] = b"{not json"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(rawlog.RawLogError) as e:
        rawlog.replay(path)
    assert "第 2 行" in str(e.value) and "line 2" in str(e.value)


def test_replaying_a_file_that_is_not_a_raw_log_is_a_clear_error(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("code,value\n0001,23.4\n")
    with pytest.raises(rawlog.RawLogError) as e:
        rawlog.replay(path, "mt-sics")
    assert "不是原始数据记录文件" in str(e.value) and "is not a raw log" in str(e.value)


def test_port_settings_come_from_the_config_and_bad_ones_are_named():
    s = PortSettings.from_config({"name": "scale-1", "driver": "mt-sics", "port": "COM3",
                                  "baud": 9600, "parity": "e"})
    assert (s.baud, s.parity, s.stopbits) == (9600, "E", None)
    for bad in ({"baud": "fast"}, {"parity": "X"}, {"parity": "NE"}, {"stopbits": 3}, {"baud": 0}):
        with pytest.raises(ValueError) as e:
            PortSettings.from_config({"name": "scale-1", **bad})
        assert "scale-1" in str(e.value) and "station.toml" in str(e.value)


def test_configured_line_settings_are_applied_to_the_port(pty_pair):
    pair = pty_pair()
    ser = open_port(pair.station_end, drivers.driver_class("mt-sics"),
                    PortSettings(baud=4800, parity="E", bytesize=7))
    try:
        assert (ser.baudrate, ser.parity, ser.bytesize, ser.stopbits) == (4800, "E", 7, 1)
    finally:
        ser.close()
    default = open_port(pair.station_end, drivers.driver_class("alge-timy"))
    try:
        assert default.baudrate == 9600          # a Timy3 as it ships
    finally:
        default.close()
    flow = open_port(pair.station_end, drivers.driver_class("kern"),
                     PortSettings.from_config({"baud": 1200, "stopbits": 2, "flow_control": "rtscts"}))
    try:
        assert (flow.baudrate, flow.stopbits, flow.rtscts, flow.xonxoff) == (1200, 2, True, False)
    finally:
        flow.close()


def test_every_bad_setting_is_named_once_with_what_is_allowed():
    with pytest.raises(SettingsError) as e:
        PortSettings.from_config({"name": "timer", "baud": 0, "parity": "X", "flow_control": "cts"})
    text = str(e.value)
    assert all(w in text for w in ("baud=0", "parity='X'", "flow_control='cts'", "串口参数", "rtscts"))
    s = PortSettings.from_config({"parity": "e", "stopbits": 1.5, "flow_control": "XONXOFF"})
    assert (s.parity, s.stopbits, s.flow_control) == ("E", 1.5, "xonxoff")


# --- with the simulator and scripts/virtual-serial, as a rehearsal would run -------------

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def simulator(port: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPTS / "simulate-device"), "--driver",
                             "mt-sics", "--port", port, "--count", "0", "--seed", "9",
                             "--rate", "50", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def expected_finals() -> list:
    script = simulators.script("mt-sics", count=100, seed=9, rate=50, garbage=0.05,
                               bad_checksum=0.02)
    return [e.value for e in script if e.kind == simulators.FINAL]


def is_subsequence(part: list, whole: list) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


def test_the_simulated_scale_and_the_station_both_survive_a_pulled_cable(pty_pair):
    pair = pty_pair()
    readings, statuses = [], []
    reader = PortReader(pair.station_end, drivers.get("mt-sics"), readings.append,
                        on_status=lambda s, e: statuses.append(s)).start()
    sim = simulator(pair.device_end)
    try:
        assert wait_for(lambda: len([r for r in readings if r.stable]) >= 2, 20)
        pair.unplug()
        assert wait_for(lambda: reader.status == DISCONNECTED)
        before = len([r for r in readings if r.stable])
        pair.plug()
        assert wait_for(lambda: len([r for r in readings if r.stable]) >= before + 2, 20)
        assert sim.poll() is None, sim.stderr.read().decode()
    finally:
        sim.terminate()
        sim.wait(10)
        reader.stop()
    assert statuses[:3] == [CONNECTED, DISCONNECTED, CONNECTED]
    # Frames in flight at the pull are lost, but nothing false was read: the weights are
    # the simulator's own, in its order.
    assert is_subsequence([r.value for r in readings if r.stable], expected_finals())


def test_virtual_serial_replug_is_recovered_by_itself(tmp_path):
    vs = subprocess.Popen([str(SCRIPTS / "virtual-serial"), "--dir", str(tmp_path),
                           "--replug", "2"], stdout=subprocess.PIPE, text=True)
    try:
        station_end, device_end, _ = vs.stdout.readline().split()
        readings, statuses = [], []
        reader = PortReader(station_end, drivers.get("mt-sics"), readings.append,
                            on_status=lambda s, e: statuses.append(s)).start()
        sim = simulator(device_end)
        try:
            assert wait_for(lambda: statuses[:3] == [CONNECTED, DISCONNECTED, CONNECTED], 20)
            after = len(readings)
            assert wait_for(lambda: len(readings) > after, 20)
        finally:
            sim.terminate()
            sim.wait(10)
            reader.stop()
    finally:
        vs.terminate()
        vs.wait(10)
    assert is_subsequence([r.value for r in readings if r.stable], expected_finals())


def test_writing_to_an_unplugged_port_is_a_clear_error(pty_pair):
    pair = pty_pair()
    pair.unplug()
    reader = PortReader(pair.station_end, drivers.get("mt-sics"), lambda r: None).start()
    try:
        with pytest.raises(PortError) as e:
            reader.write(b"S\r\n")
        assert "未连接" in str(e.value) and "not connected" in str(e.value)
    finally:
        reader.stop()
