"""Rehearsal mode's pure parts: the demo roster, one measurement's frames, the collector guard.

The frames are read back by the station's own drivers, so a value the rehearsal promises is
the value the station reads. The guard is exercised on a real `District` against a real
collector reachable on this machine's own (non-loopback) address.
"""
from __future__ import annotations

import re
import socket
import subprocess

import httpx
import pytest

from devices import drivers
from devices.drivers import RunTimer
from station import outbox, precheck, roster
from station.context import Station
from station.rehearsal import demo_roster, frames, guard
from station.rehearsal.rig import rehearsal_id
from station.services.district import District
from tests.station.servers import STATION, Server, free_port, last_line

HAN = re.compile(r"^[\u4e00-\u9fff]{2,3}$")


# --- the demo roster ---------------------------------------------------------------------

def test_demo_roster_is_three_classes_of_grades_4_and_8_with_chinese_names():
    students = demo_roster.students()
    classes = {(s.grade, s.cls) for s in students}
    assert sorted(g for g, _ in classes) == [4, 4, 8]
    assert len(students) == 3 * demo_roster.PER_CLASS
    assert all(HAN.match(s.name) for s in students), [s.name for s in students if not HAN.match(s.name)]
    assert len({s.code for s in students}) == len(students)
    assert all(s.code.isdigit() for s in students)
    for _, cls in classes:
        genders = {s.gender for s in students if s.cls == cls}
        assert genders == {"M", "F"}, cls


def test_demo_roster_is_the_same_on_every_computer():
    assert demo_roster.students() == demo_roster.students()


def test_demo_roster_csv_is_imported_by_the_station_roster_import(tmp_path):
    path = demo_roster.write_csv(tmp_path / "demo.csv")
    students, errors = roster.parse(path, grades=(4, 8))
    assert errors == []
    assert [s.code for s in students] == [s.code for s in demo_roster.students()]
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")      # Excel on Chinese Windows opens it


def test_rehearsal_station_id_is_ascii_and_marked():
    assert rehearsal_id("S01") == "S01-R"
    assert rehearsal_id("实验小学-机房1") == "1-R"
    assert rehearsal_id("") == "station-R"


# --- one measurement -----------------------------------------------------------------------

def _read(driver: str, emits) -> list:
    d = drivers.get(driver)
    return [r for e in emits for r in d.feed(e.data)]


@pytest.mark.parametrize("driver,item", [("qm-frame", "sit_and_reach"), ("mt-sics", "height"),
                                         ("mt-sics", "weight"), ("kern", "weight")])
def test_a_measurement_reads_as_one_stable_value_in_a_childs_range(driver, item):
    low, high = frames.RANGES[item]
    for n in range(40):
        emits = frames.measurement(driver, item, frames.seed_for("dev", n))
        readings = _read(driver, emits)
        stable = [r for r in readings if r.stable]
        assert len(stable) == 1, readings
        assert low <= stable[0].value <= high
        assert stable[0].value == frames.final_value(emits)
        assert all(r.unit == ("cm" if item in ("height", "sit_and_reach") else "kg") for r in readings)
        if driver != "qm-frame":
            assert readings[0].stable is False or len(readings) == 1    # a scale settles first


def test_a_50m_run_is_two_impulses_of_one_bib_with_the_run_time_in_range():
    low, high = frames.RANGES["run_50m"]
    for n in range(40):
        emits = frames.measurement("alge-timy", "run_50m", frames.seed_for("timer", n))
        readings = _read("alge-timy", emits)
        assert [r.channel for r in readings] == ["C0", "C1"]
        assert readings[0].code == readings[1].code == frames.LANE_BIB
        timer = RunTimer(by_bib=True)
        runs = [run for r in readings if (run := timer.feed(r)) is not None]
        assert len(runs) == 1 and low <= runs[0].seconds <= high
        assert sum(e.delay for e in emits) <= 1.5                    # about a second of wall time


def test_a_code_given_to_a_meter_is_in_its_frame_and_none_leaves_it_empty():
    (with_code,) = _read("qm-frame", frames.measurement("qm-frame", "sit_and_reach", 1, code="4010003"))
    (without,) = _read("qm-frame", frames.measurement("qm-frame", "sit_and_reach", 1))
    assert with_code.code == "4010003"
    assert without.code is None
    assert with_code.value == without.value


def test_measurements_differ_and_repeat_by_seed():
    values = [frames.final_value(frames.measurement("mt-sics", "weight", frames.seed_for("w", n)))
              for n in range(5)]
    assert len(set(values)) > 1
    assert values[0] == frames.final_value(frames.measurement("mt-sics", "weight", frames.seed_for("w", 0)))


def test_a_device_with_no_simulation_is_refused_clearly():
    with pytest.raises(frames.NoSimulation, match="line"):
        frames.measurement("line", "height", 1)


# --- never to a real collector -------------------------------------------------------------

@pytest.mark.parametrize("url,ok", [
    ("http://127.0.0.1:8443", True), ("http://localhost:1/", True), ("http://[::1]:8443", True),
    ("http://127.5.6.7", True), ("", True),
    ("https://collector.example:8443", False), ("http://192.0.2.2:8443", False),
    ("http://10.0.0.5", False), ("http://localhost.example.com", False), ("http://[fd00::2]:1", False)])
def test_only_a_collector_on_this_computer_is_allowed(url, ok):
    assert (guard.refusal(url) is None) is ok
    if not ok:
        zh, en = guard.refusal(url)
        assert "演练" in zh and url in zh and "rehearsal" in en.lower() and url in en


def _own_address() -> str | None:
    """This machine's address on its network (not loopback), as a real collector would have."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))         # no packet is sent: this only picks the route
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module")
def lan_collector(tmp_path_factory):
    """A real collector listening on every address, so it is reachable at a non-loopback URL."""
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    data = tmp_path_factory.mktemp("lan-collector")
    port = free_port()
    server = Server(["collector", "serve", "--host", "0.0.0.0", "--port", str(port), "--data", str(data)], port)
    token = last_line("collector", "add-station", "LAN-R", "--data", str(data))
    admin = last_line("collector", "admin-token", "--data", str(data))
    yield {"url": f"http://{address}:{port}", "token": token, "admin": admin, "local": server.url}
    server.stop()


def _heartbeat_arrived(collector) -> bool:
    rows = httpx.get(collector["local"] + "/api/stations", timeout=10,
                     headers={"Authorization": f"Bearer {collector['admin']}"}).json()["stations"]
    return any(r["id"] == "LAN-R" and r["last_heartbeat"] for r in rows)


def _station(tmp_path, collector, rehearsal: bool) -> Station:
    d = tmp_path / ("rehearsal" if rehearsal else "real")
    d.mkdir()
    (d / "station.toml").write_text(
        f'station_id = "LAN-R"\nrehearsal = {"true" if rehearsal else "false"}\n'
        f'[upload]\ncollector_url = "{collector["url"]}"\ntoken = "{collector["token"]}"\n'
        'allow_plain_http = true\n', encoding="utf-8")  # plain http on the LAN, as the district allows
    station = Station.open(str(d))
    station.db                          # as serve does: the schema exists before any thread uses it
    return station


def test_a_rehearsal_refuses_a_collector_that_is_not_on_this_computer(tmp_path, lan_collector, caplog):
    district = District(_station(tmp_path, lan_collector, rehearsal=True), every_s=3600)
    assert district.refused is not None and "演练" in district.refused[0]
    assert not district.configured
    with caplog.at_level("ERROR"):
        district.start()
    district.tick()                     # sends the heartbeat at once when a collector is allowed
    district.stop()
    assert district._upload_stop is None, "the upload worker must not start"
    assert any("Rehearsal mode never uploads" in r.getMessage() for r in caplog.records)
    assert not _heartbeat_arrived(lan_collector)


def test_the_same_collector_is_used_by_a_real_station(tmp_path, lan_collector):
    """The control: the address is reachable, so the refusal above is the guard's doing."""
    district = District(_station(tmp_path, lan_collector, rehearsal=False), every_s=3600)
    assert district.refused is None and district.configured
    district.tick()
    assert _heartbeat_arrived(lan_collector)



def test_a_rehearsal_neither_uploads_nor_reports_its_precheck_to_a_real_collector(tmp_path, lan_collector):
    station = _station(tmp_path, lan_collector, rehearsal=True)
    run = subprocess.run([*STATION, "--data-dir", str(station.data_dir), "upload", "run", "--once"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "演练模式不会上传到正式汇集服务器" in run.stderr
    assert "never uploads to a real collector" in run.stderr
    # A pre-check report waits in the outbox; sending it is refused, and the checks do not
    # probe the real server.
    assert precheck.context(station).link.url == ""
    outbox.put(station.db, "precheck", "/api/stations/LAN-R/precheck", {"overall": "pass"})
    assert precheck.send_pending(station) == (0, 1)
    assert len(outbox.pending(station.db)) == 1      # kept, not dropped


# --- a simulated device reached as a pyserial URL (no socat, the same on Windows) -----------

def test_a_simulated_device_is_read_unplugged_and_replugged_through_the_stations_port_reader():
    import queue

    from devices import ports
    from station.rehearsal.devices import SimulatedDevice, Unplugged
    from tests.helpers import wait_for

    device = SimulatedDevice("reach-1", "qm-frame", "sit_and_reach").plug()
    assert device.station_end.startswith("socket://127.0.0.1:")
    readings, statuses = queue.Queue(), []
    settings = ports.PortSettings(read_timeout=0.1, reopen_interval=0.1)
    reader = ports.PortReader(device.station_end, drivers.get("qm-frame"), readings.put,
                              lambda status, error: statuses.append(status), settings=settings).start()
    try:
        wait_for(device.listened, 10, "the station to open the simulated port")
        sent = device.measure("4010003")
        assert sent["heard"]
        got = readings.get(timeout=10)
        assert (format(got.value, "f"), got.code) == (sent["value"], "4010003")
        # A second program is turned away, as by a port opened exclusively: it reads nothing.
        with pytest.raises(Exception):
            other = ports.open_port(device.station_end, drivers.get("qm-frame"))
            try:
                other.timeout = 2
                other.read(1)
            finally:
                other.close()
        device.unplug()
        wait_for(lambda: reader.status == ports.DISCONNECTED, 10, "the reader to see the unplug")
        with pytest.raises(Unplugged):
            device.measure()
        port = device.port
        device.plug()
        assert device.port == port                       # the same URL after plugging back in
        wait_for(lambda: reader.status == ports.CONNECTED and device.listened(), 10, "the reconnect")
        assert device.measure()["heard"] and readings.get(timeout=10).value is not None
    finally:
        reader.stop()
        device.unplug()
    assert statuses[:3] == [ports.CONNECTED, ports.DISCONNECTED, ports.CONNECTED]


def test_nothing_listening_loses_the_measurement_as_a_real_device_does():
    from station.rehearsal.devices import SimulatedDevice

    device = SimulatedDevice("timer-1", "alge-timy", "run_50m").plug()
    try:
        assert device.measure()["heard"] is False
    finally:
        device.unplug()


def test_the_precheck_queries_a_simulated_scale_over_its_url():
    from precheck.context import Context
    from precheck.serialcheck import check_serial_device
    from station.rehearsal.devices import SimulatedDevice

    device = SimulatedDevice("weight-1", "mt-sics", "weight").plug()
    try:
        result = check_serial_device(device.config(), Context())
    finally:
        device.unplug()
    assert result.status == "pass", result
    assert result.details["reading"]["value"] == "0.00" or float(result.details["reading"]["value"]) == 0


def test_an_unplugged_simulated_device_fails_the_precheck_as_a_missing_port():
    from precheck.registry import title
    from precheck.context import Context
    from precheck.serialcheck import check_serial_device
    from station.rehearsal.devices import SimulatedDevice

    device = SimulatedDevice("weight-1", "mt-sics", "weight").plug()
    device.unplug()
    result = check_serial_device(device.config(), Context())
    assert result.status == "fail" and result.details["problem"] == "missing", result
    assert "找不到串口" in result.summary_zh and "USB" in result.fix_zh
    zh, en = title(result.id)
    assert device.station_end in zh and "网络地址" in zh and "network address" in en
