"""`station serve --simulate`, run as a trainer runs it: a real process with its simulated
devices (socket:// ports, no socat), its local collector and the virtual headset, driven over HTTP.

One rehearsal serves most of the module (starting it takes a few seconds); a late test stops
it with SIGTERM and checks nothing it started is left running, the next ones start it again.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from station.rehearsal import singer
from tests.helpers import chromium, needs_chromium, page_errors, station_command
from tests.station.servers import Server, free_port, station_serve, wait_for

pytestmark = [pytest.mark.serial, pytest.mark.audio]
PAGES = ("/", "/sing", "/pe", "/precheck", "/uploads")
STUDENT = "4010003"          # in the demo roster (grade 4, class 1)


def _children_of(folder: Path) -> list[int]:
    """Processes whose command line names ``folder``: the rehearsal's collector."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline and "serve --simulate" not in cmdline:
            pids.append(int(entry.name))
    return pids


def _announced(proc: subprocess.Popen) -> str:
    """What serve printed before it started serving (the lines end with the Ctrl-C hint)."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Ctrl-C to end" in line:
            return "".join(lines)
    raise AssertionError("serve --simulate did not announce what it started:\n" + "".join(lines))


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    if os.name != "posix":
        pytest.skip("PulseAudio's virtual headset: POSIX")
    real = tmp_path_factory.mktemp("real-station")
    (real / "station.toml").write_text('station_id = "T01"\nschool = "测试学校"\n', encoding="utf-8")
    port = free_port()
    server = Server(["--data-dir", str(real), "serve", "--simulate", "--port", str(port)], port)
    out = _announced(server.proc)
    admin = next(line.rsplit(" ", 1)[-1] for line in out.splitlines() if "admin token" in line)
    client = server.client(timeout=30)
    info = client.get("/api/rehearsal").json()
    yield SimpleNamespace(server=server, real=real, dir=real / "rehearsal", out=out, admin=admin,
                          info=info, client=client)
    server.stop()


def test_it_announces_what_it_started(rehearsal):
    out = rehearsal.out
    assert rehearsal.server.url in out
    assert f"{rehearsal.server.url}/login?token={rehearsal.server.token()}" in out   # the login link
    assert rehearsal.info["dashboard_url"] in out and rehearsal.admin in out
    for device in rehearsal.info["devices"]:
        assert device["name"] in out and device["port"] in out
    assert "演练模式" in out and "Rehearsal mode" in out and "虚拟耳机" in out


def test_four_plugged_devices_and_a_local_collector(rehearsal):
    info = rehearsal.info
    by_name = {d["name"]: d for d in info["devices"]}
    assert {n: (d["driver"], d["item"]) for n, d in by_name.items()} == {
        "timer-1": ("alge-timy", "run_50m"), "reach-1": ("qm-frame", "sit_and_reach"),
        "height-1": ("mt-sics", "height"), "weight-1": ("mt-sics", "weight")}
    assert all(d["plugged"] and re.fullmatch(r"socket://127\.0\.0\.1:\d+", d["port"]) for d in info["devices"])
    assert not (rehearsal.dir / "tty").exists(), "no PTYs: the rehearsal needs no socat"
    assert info["collector_url"].startswith("http://127.0.0.1:")
    assert info["headset"] is True and info["upload_refused"] is None
    assert info["song"]["id"] == "demo" and info["song"]["duration_s"] > 5
    assert httpx.get(info["collector_url"] + "/api/health", timeout=10).status_code == 200


def test_the_rehearsal_station_is_its_own(rehearsal):
    health = rehearsal.client.get("/api/health").json()
    assert health["station_id"] == "T01-R" and health["rehearsal"] is True
    status = rehearsal.client.get("/api/status").json()
    assert status["roster_size"] == 48 and Path(status["data_dir"]) == rehearsal.dir
    assert (rehearsal.dir / "demo-roster.csv").exists()


def test_every_page_shows_the_banner_and_the_controls(rehearsal):
    for page in PAGES:
        html = rehearsal.client.get(page, params={"lang": "zh"}).text
        assert "演练模式" in html, page
        assert "演练控制" in html, page
        for name in ("timer-1", "reach-1", "height-1", "weight-1"):
            for action in ("measure", "unplug", "plug"):
                assert f'data-device="{name}" data-action="{action}"' in html, (page, name, action)
        assert rehearsal.info["dashboard_url"] in html
    html = rehearsal.client.get("/pe", params={"lang": "en"}).text
    assert "Rehearsal controls" in html and "Simulate a measurement" in html
    assert rehearsal.client.get("/static/rehearsal.js").status_code == 200
    assert rehearsal.client.get("/static/rehearsal.css").status_code == 200


def _device(state: dict, name: str) -> dict:
    return next(d for d in state["devices"] if d["name"] == name)


def test_a_measurement_lands_on_the_scanned_student_and_unplugging_shows(rehearsal):
    c = rehearsal.client
    sitting = c.post("/api/pe/open", json={"item": "sit_and_reach"}).json()["sitting"]["id"]
    params = {"sitting": sitting}

    def state() -> dict:
        return c.get("/api/pe/state", params=params).json()

    wait_for(lambda: _device(state(), "reach-1")["status"] == "connected", 60, "reach-1 connected")
    assert c.post("/api/pe/scan", json={"code": STUDENT, "sitting": sitting}).status_code == 200
    sent = c.post("/api/rehearsal/devices/reach-1/measure").json()["reading"]
    assert Decimal("-5") <= Decimal(sent["value"]) <= Decimal("25")

    def attempt():
        return next((a for a in state()["pending"] if a["student"] == STUDENT), None)

    got = wait_for(attempt, 60, "the measurement on the scanned student")
    assert Decimal(got["value"]) == Decimal(sent["value"])

    assert c.post("/api/rehearsal/devices/reach-1/unplug").json()["device"]["plugged"] is False
    wait_for(lambda: _device(state(), "reach-1")["status"] == "disconnected", 60, "reach-1 disconnected")
    refused = c.post("/api/rehearsal/devices/reach-1/measure")
    assert refused.status_code == 409 and "插回" in refused.json()["zh"] and refused.json()["en"]
    assert c.post("/api/rehearsal/devices/reach-1/plug").json()["device"]["plugged"] is True
    wait_for(lambda: _device(state(), "reach-1")["status"] == "connected", 60, "reach-1 connected again")

    # A code typed on the meter names the student without a scan.
    other = "4010004"
    c.post("/api/rehearsal/devices/reach-1/measure", json={"code": other})
    wait_for(lambda: any(a["student"] == other for a in state()["pending"]), 60, "the coded measurement")

    for a in state()["pending"]:
        assert c.post("/api/pe/confirm", json={"attempt": a["id"], "sitting": sitting}).status_code == 200
    closed = c.post("/api/pe/close", json={"sitting": sitting})
    assert closed.status_code == 200, closed.text
    admin = httpx.Client(base_url=rehearsal.info["collector_url"], timeout=10,
                         headers={"Authorization": f"Bearer {rehearsal.admin}"})

    def uploaded():
        rows = admin.get("/api/stations").json()["stations"]
        row = next((r for r in rows if r["id"] == "T01-R"), None)
        return row and any(s["sitting"] == sitting and s["complete"] for s in row["seals"])

    wait_for(uploaded, 90, "the closed sitting to arrive at the rehearsal collector")


@pytest.mark.parametrize("item,device,student", [("run_50m", "timer-1", "4020001"), ("weight", "weight-1", "8010002")])
def test_the_timer_and_the_scale_give_the_scanned_student_one_result(rehearsal, item, device, student):
    """A run is a start and a finish impulse a second apart, timed by the frames; a weighing
    settles through unstable values: either way one attempt, of the value the device sent."""
    c = rehearsal.client
    # Before the sitting opens nothing reads the port: the value is lost, as a real device's is.
    assert c.post(f"/api/rehearsal/devices/{device}/measure").json()["reading"]["heard"] is False
    sitting = c.post("/api/pe/open", json={"item": item}).json()["sitting"]["id"]
    params = {"sitting": sitting}
    wait_for(lambda: _device(c.get("/api/pe/state", params=params).json(), device)["status"] == "connected",
             60, f"{device} connected")
    assert c.post("/api/pe/scan", json={"code": student, "sitting": sitting}).status_code == 200
    sent = c.post(f"/api/rehearsal/devices/{device}/measure").json()["reading"]
    assert sent["heard"] is True
    low, high = {"run_50m": ("7.5", "11.0"), "weight": ("20", "70")}[item]
    assert Decimal(low) <= Decimal(sent["value"]) <= Decimal(high)

    def attempts():
        pending = c.get("/api/pe/state", params=params).json()["pending"]
        return [a for a in pending if a["student"] == student]

    got = wait_for(attempts, 60, f"the {item} result")
    assert len(got) == 1 and Decimal(got[0]["value"]) == Decimal(sent["value"])
    c.post("/api/pe/void", json={"attempt": got[0]["id"], "sitting": sitting})
    assert c.post("/api/pe/close", json={"sitting": sitting}).status_code == 200


def test_the_precheck_finds_every_device_when_the_trainer_presses_measure(rehearsal):
    """Scales answer the pre-check's query; a timer or a meter sends only when it measures, so
    the trainer presses 模拟测量 while the check waits (as on test day)."""
    import threading
    import tomllib

    from precheck.context import Context
    from precheck.serialcheck import check_serial_device

    config = tomllib.loads((rehearsal.dir / "station.toml").read_text(encoding="utf-8"))
    for device in config["pe"]["devices"]:
        results = []
        check = threading.Thread(target=lambda d=device: results.append(check_serial_device(d, Context())))
        check.start()
        while check.is_alive():
            if device["driver"] in ("alge-timy", "qm-frame"):
                rehearsal.client.post(f"/api/rehearsal/devices/{device['name']}/measure")
            check.join(0.5)
        assert results[0].status == "pass", (device["name"], results[0])


def test_bad_requests_are_refused_in_both_languages(rehearsal):
    c = rehearsal.client
    for url, status in (("/api/rehearsal/devices/nope-1/measure", 404),
                        ("/api/rehearsal/devices/reach-1/explode", 404)):
        r = c.post(url)
        assert r.status_code == status and r.json()["zh"] and r.json()["en"], url
    r = c.post("/api/rehearsal/devices/reach-1/measure", json={"code": "张三"})
    assert r.status_code == 400 and "数字" in r.json()["zh"]
    r = c.post("/api/rehearsal/devices/reach-1/measure", content=b"[1,", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = c.post("/api/rehearsal/sing", json={"kind": "opera"})
    assert r.status_code == 400 and r.json()["en"]


def _record_mic(path: Path) -> subprocess.Popen:
    return subprocess.Popen(["parecord", "--device=qm_mic.monitor", "--rate=48000", "--channels=1",
                             "--format=s16le", "--file-format=wav", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_the_sung_demo_reaches_the_microphone_and_is_accepted_as_singing(rehearsal, tmp_path):
    wav = tmp_path / "mic.wav"
    recorder = _record_mic(wav)
    try:
        wait_for(lambda: wav.exists() and wav.stat().st_size > 48000, 30, "the microphone recording to start")
        played = rehearsal.client.post("/api/rehearsal/sing", json={}).json()
        assert played["seconds"] == singer.seconds() > 5

        def frames() -> int:
            return (wav.stat().st_size - 44) // 2
        start = frames()
        wait_for(lambda: frames() - start > (played["seconds"] + 2) * 48000, 60, "the demo to play out")
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(10)
    verdict = subprocess.run([*station_command(), "sing", "verify",
                              "--json", str(wav)], capture_output=True, text=True, timeout=120)
    result = json.loads(verdict.stdout)
    assert result["verdict"] == "accept", result["reasons"]
    assert result["voiced_ratio"] > 0.5
    assert rehearsal.client.post("/api/rehearsal/sing", json={"kind": "silence"}).json()["seconds"] == 0


@needs_chromium
@pytest.mark.browser
def test_the_panel_buttons_work_in_a_browser(rehearsal):
    from playwright import sync_api

    with chromium(sync_api) as browser:
        page = rehearsal.server.page(browser, viewport={"width": 1366, "height": 768})
        errors = page_errors(page)
        page.goto(rehearsal.server.url + "/pe?lang=en")
        state = '[data-device-row="height-1"] .plug-state'
        page.click('button[data-device="height-1"][data-action="unplug"]')
        # Locator waits, not wait_for_function: the station's CSP allows no eval, Playwright's included.
        sync_api.expect(page.locator(state)).to_have_attribute("data-plugged", "no", timeout=30000)
        assert page.text_content(state) == "unplugged"
        assert not rehearsal.client.get("/api/rehearsal").json()["devices"][2]["plugged"]
        page.click('button[data-device="height-1"][data-action="plug"]')
        sync_api.expect(page.locator(state)).to_have_attribute("data-plugged", "yes", timeout=30000)
        # No height sitting is open: the trainer is told the value went nowhere.
        page.click('button[data-device="height-1"][data-action="measure"]')
        sync_api.expect(page.locator(".rehearsal-message")).to_contain_text("measured", timeout=30000)
        message = page.text_content(".rehearsal-message")
        assert "nothing is reading the device" in message
        value = re.search(r"measured (\S+),", message).group(1)
        assert Decimal("120") <= Decimal(value) <= Decimal("175")
        assert errors == []


def test_the_real_data_dir_has_no_database(rehearsal):
    assert sorted(p.name for p in rehearsal.real.iterdir()) == ["rehearsal", "station.toml"]
    assert (rehearsal.dir / "station.db").exists()


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def test_sigterm_stops_every_child_even_when_one_died(rehearsal):
    children = _children_of(rehearsal.dir)
    assert len(children) >= 1, children          # the collector (the devices are threads)
    collector = next(p for p in children if "collector serve" in _cmdline(p))
    os.kill(collector, signal.SIGKILL)           # a child that died under the rehearsal
    rehearsal.server.proc.send_signal(signal.SIGTERM)
    assert rehearsal.server.proc.wait(30) == 0
    assert "Rehearsal ended" in rehearsal.server.proc.stdout.read()
    wait_for(lambda: not _children_of(rehearsal.dir), 30, "the rehearsal's children to stop")
    assert not any(p.name == "station.db" for p in rehearsal.real.iterdir())


def test_a_second_start_continues_the_rehearsal_and_reset_starts_afresh(rehearsal):
    """Runs after the first rehearsal stopped: the sitting it closed is still there, until --reset."""
    def start(*extra: str) -> Server:
        port = free_port()
        # `serve --data-dir D` as the issue writes it (the first start used `station --data-dir D serve`)
        return Server(["serve", "--simulate", "--data-dir", str(rehearsal.real), "--port", str(port), *extra], port)

    again = start()
    try:
        sittings = again.client().get("/api/uploads").json()["sittings"]
        assert sittings, "the closed sitting of the first start is kept"
    finally:
        again.stop()
    fresh = start("--reset")
    try:
        with fresh.client() as client:
            assert client.get("/api/uploads").json()["sittings"] == []
            assert client.get("/api/status").json()["roster_size"] == 48
    finally:
        fresh.stop()


def test_reset_without_simulate_is_refused(station):
    result = station("serve", "--reset")
    assert result.returncode == 2 and "--simulate" in result.stderr


def test_without_simulate_there_are_no_rehearsal_controls(data_dir):
    server = station_serve()
    try:
        with server.client() as client:
            assert client.get("/api/rehearsal").status_code == 404
            assert client.post("/api/rehearsal/devices/reach-1/unplug", json={}).status_code == 404
            assert "演练控制" not in client.get("/").text
    finally:
        server.stop()


def test_a_rehearsal_station_served_without_simulate_shows_the_refused_collector(data_dir):
    """A copied real config: rehearsal = true with the district's address. Nothing is sent, and
    every page says why."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text(
        'station_id = "X-R"\nrehearsal = true\n[upload]\ncollector_url = "https://collector.example:8443"\n'
        'token = "t"\n', encoding="utf-8")
    server = station_serve()
    try:
        with server.client() as client:
            html = client.get("/uploads", params={"lang": "zh"}).text
            assert "演练模式不会上传到正式汇集服务器（https://collector.example:8443）" in html
            html = client.get("/", params={"lang": "en"}).text
            assert "Rehearsal mode never uploads to a real collector" in html
            assert client.get("/api/rehearsal").status_code == 404
    finally:
        server.stop()
    assert "Rehearsal mode never uploads" in server.proc.stderr.read()


def test_a_broken_rehearsal_config_is_refused_and_kept(station, data_dir):
    folder = data_dir / "rehearsal"
    folder.mkdir(parents=True)
    broken = 'station_id = "X-R"\n[upload\ncollector_url = \n'
    (folder / "station.toml").write_text(broken, encoding="utf-8")
    result = station("serve", "--simulate", "--port", str(free_port()), timeout=60)
    assert result.returncode == 2
    assert "station.toml" in result.stderr and "--reset" in result.stderr and "TOML" in result.stderr
    assert (folder / "station.toml").read_text(encoding="utf-8") == broken
    assert not _children_of(folder)


def test_without_a_virtual_headset_the_page_says_the_computers_own_is_used(tmp_path):
    """As on Windows (no PulseAudio): nothing on PATH starts a virtual headset, and every page
    tells the trainer the computer's own headset and microphone are used. The simulated
    devices need nothing from PATH either (no socat)."""
    real = tmp_path / "real"
    port = free_port()
    server = Server(["--data-dir", str(real), "serve", "--simulate", "--port", str(port)], port,
                    env={"PATH": str(tmp_path / "empty")})
    try:
        client = server.client()
        info = client.get("/api/rehearsal").json()
        assert info["headset"] is False
        assert len(info["devices"]) == 4 and all(d["plugged"] for d in info["devices"])
        html = client.get("/sing", params={"lang": "zh"}).text
        assert "没有虚拟耳机" in html and "自带的耳机和麦克风" in html
        assert 'data-action="sing"' not in html
        html = client.get("/pe", params={"lang": "en"}).text
        assert "no virtual headset" in html and "own headset and microphone" in html
        r = client.post("/api/rehearsal/sing", json={})
        assert r.status_code == 409 and r.json()["error"] == "no_headset"
    finally:
        server.stop()
    out = server.proc.stdout.read()
    assert "没有虚拟耳机" in out and "no virtual headset" in out
