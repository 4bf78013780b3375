"""`station pe …` as a proctor or a script runs it, with a meter on a real socat PTY."""
import json
import os
import subprocess
import threading
import time

import pytest
import serial

from devices import rawlog
from devices.drivers import qm_frame
from tests.helpers import station_command

STATION = station_command()


def frame(value, code=""):
    return qm_frame.format_frame("SR-1", "sit_and_reach", code, value, "cm")


class Lines:
    """A process's stdout read by a thread, so a test can wait for a line without hanging."""

    def __init__(self, proc):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait(self, needle: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if needle in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no line with {needle!r} in {self.lines}")


def roster(station, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("学籍号,姓名,性别,年级\n0001,王子涵,男,四年级\n0002,李欣怡,女,四年级\n", encoding="gbk")
    station("roster", "import", str(path), check=True)


def pe_run(item: str, port: str) -> tuple[subprocess.Popen, "Lines"]:
    """`station pe run` for ``item`` with a qm-frame meter on ``port``, as a proctor starts it."""
    proc = subprocess.Popen([*STATION, "pe", "run", "--item", item, "--driver", "qm-frame",
                             "--port", port, "--by", "张老师"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())
    return proc, Lines(proc)


def scan_first_student(proc: subprocess.Popen, out: "Lines") -> str:
    """Wait for the sitting and the device, scan student 0001; returns the sitting id."""
    sitting = out.wait("sitting").split()[-1]
    out.wait('"connected"')
    proc.stdin.write("0001\n")
    proc.stdin.flush()
    out.wait("当前学生 current: 0001")
    return sitting


def test_drivers_lists_every_driver(station, data_dir):
    names = [d["name"] for d in json.loads(station("pe", "drivers", "--json", check=True).stdout)]
    assert names == ["alge-timy", "mt-sics", "kern", "qm-frame", "line"]


def test_run_scan_reading_confirm_then_export_and_replay(station, data_dir, tmp_path, pty_pair):
    roster(station, tmp_path)
    pair = pty_pair()
    proc, out = pe_run("sit_and_reach", pair.station_end)
    try:
        sitting = scan_first_student(proc, out)
        with serial.Serial(pair.device_end) as meter:
            meter.write(frame("-2.5"))
            out.wait('"type": "attempt"')
        proc.stdin.write("+\nq\n")
        proc.stdin.flush()
        out.wait("已确认 confirmed: 0001 -2.5 cm")
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()

    doc = json.loads(station("pe", "export", "--session", sitting, "--json", check=True).stdout)
    (result,) = doc["results"]
    assert (result["student"]["name"], result["value"], result["attempts"][0]["decided_by"]) == \
        ("王子涵", "-2.5", "张老师")
    csv_path = tmp_path / "results.csv"
    station("pe", "export", "--session", sitting, "--csv", str(csv_path), check=True)
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf") and "王子涵" in csv_path.read_text("utf-8-sig")

    (log,) = (data_dir / "pe" / "rawlogs").glob("*.rawlog.jsonl")
    assert log == rawlog.path_for(data_dir / "pe" / "rawlogs", sitting, pair.station_end)
    replayed = station("pe", "replay", str(log), "--json", check=True).stdout.splitlines()
    assert [json.loads(line)["value_text"] for line in replayed] == ["-2.5"]


def test_export_refuses_an_unknown_sitting_and_a_missing_folder(station, data_dir, tmp_path):
    r = station("pe", "export", "--session", "20990101-01", "--json")
    assert r.returncode == 2 and "station session list" in r.stderr and r.stdout == ""
    sitting = station("session", "open", "--kind", "pe", "--item", "sit_and_reach",
                      check=True).stdout.split()[-1]
    r = station("pe", "export", "--session", sitting, "--csv", str(tmp_path / "nope" / "r.csv"))
    assert r.returncode == 2 and "不存在" in r.stderr and "does not exist" in r.stderr


def test_replay_refuses_a_file_that_is_not_a_raw_log(station, data_dir, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n", encoding="utf-8")
    r = station("pe", "replay", str(bad))
    assert r.returncode == 2 and "不是原始数据记录文件" in r.stderr


def test_listen_prints_each_reading_as_json(station, data_dir, pty_pair):
    pair = pty_pair()
    proc = subprocess.Popen([*STATION, "pe", "listen", "--driver", "qm-frame", "--port", pair.station_end,
                             "--seconds", "2", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())
    with serial.Serial(pair.device_end) as meter:
        while proc.poll() is None:          # keep sending until it has listened its time
            meter.write(frame("7.5", "0001"))
            time.sleep(0.1)
    lines = proc.stdout.read().splitlines()
    assert proc.returncode == 0 and lines
    first = json.loads(lines[0])
    assert (first["value"], first["code"], first["item"], first["port"]) == \
        (7.5, "0001", "sit_and_reach", pair.station_end)


def test_listen_on_a_missing_port_says_what_to_do(station, data_dir):
    r = station("pe", "listen", "--driver", "qm-frame", "--port", "/dev/ttyNOPE9", "--seconds", "1")
    assert r.returncode == 2 and "打不开串口" in r.stderr and "Cannot open serial port" in r.stderr


@pytest.fixture
def terminal(station, data_dir, tmp_path):
    """``station pe run``'s runtime on a real station (a roster, an open sitting), its one
    device on a port that is not there: the flow and service its terminal view shows."""
    from pe_station.service import Device
    from station import sittings
    from station.context import Station
    from station.pe import runtime_for

    roster(station, tmp_path)
    runtimes = []

    def start(item: str, device: str):
        here = Station.open(data_dir)
        sitting = sittings.open_sitting(here.db, "pe", item, "张老师")
        runtimes.append(runtime_for(here))
        service = runtimes[-1].start(sitting["id"], item,
                                     devices=[Device(device, "qm-frame", str(tmp_path / "none"))])
        return service.flow, service

    yield start
    for runtime in runtimes:
        runtime.stop()


def test_terminal_view_shows_student_reading_and_keys(terminal):
    from rich.console import Console

    from station.commands.pe_run import _command, _view

    flow, service = terminal("sit_and_reach", "SR-1")
    codes: list[str] = []
    assert "0001" in _command(flow, "0001", "张老师", codes)
    from devices import drivers
    (reading,) = drivers.get("qm-frame").feed(frame("30.0"))
    flow.on_reading(reading, "SR-1", "COM3")
    console = Console(record=True, width=120)
    console.print(_view(flow, service, ["hello"]))
    shown = console.export_text()
    assert "王子涵" in shown and "30.0 cm" in shown and "常见范围" in shown and "+ 确认" in shown
    assert "不在名册" in _command(flow, "9999", "张老师", codes)
    assert "confirmed" in _command(flow, "+", "张老师", codes)
    assert "absent" in _command(flow, "a", "张老师", codes)


def test_run_a_bmi_sitting_with_one_height_and_weight_machine(station, data_dir, tmp_path, pty_pair):
    roster(station, tmp_path)
    pair = pty_pair()
    proc, out = pe_run("bmi", pair.station_end)
    try:
        sitting = scan_first_student(proc, out)
        with serial.Serial(pair.device_end) as machine:   # names each item in its frame
            machine.write(qm_frame.format_frame("HW-1", "height", "", "1400", "mm"))
            machine.write(qm_frame.format_frame("HW-1", "weight", "", "35.5", "kg"))
            deadline = time.monotonic() + 30
            while sum('"type": "attempt"' in line for line in out.lines) < 2:
                assert time.monotonic() < deadline, out.lines
                time.sleep(0.05)
        proc.stdin.write("+\n+\nq\n")
        proc.stdin.flush()
        out.wait("已确认 confirmed: 0001 140.0 cm")
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = json.loads(station("pe", "export", "--session", sitting, "--json", check=True).stdout)
    assert [(r["item"], r["value"], r["unit"]) for r in doc["results"]] == \
        [("height", "140.0", "cm"), ("weight", "35.5", "kg"), ("bmi", "18.1", "kg/m2")]


def test_terminal_view_of_a_bmi_sitting_shows_both_items_and_the_bmi(terminal):
    from rich.console import Console

    from devices import drivers
    from station.commands.pe_run import _command, _view

    flow, service = terminal("bmi", "HW-1")
    codes: list[str] = []
    _command(flow, "0001", "张老师", codes)
    machine = drivers.get("qm-frame")
    for item, value, unit in (("height", "140.0", "cm"), ("weight", "35.5", "kg")):
        (reading,) = machine.feed(qm_frame.format_frame("HW-1", item, "", value, unit))
        flow.on_reading(reading, "HW-1", "COM3")
    assert "confirmed" in _command(flow, "+", "张老师", codes)
    assert "confirmed" in _command(flow, "+", "张老师", codes)
    console = Console(record=True, width=140)
    console.print(_view(flow, service, []))
    shown = console.export_text()
    assert "height" in shown and "140.0 cm" in shown and "35.5 kg" in shown
    assert "体重指数（BMI） / BMI: 18.1 kg/m2" in shown
