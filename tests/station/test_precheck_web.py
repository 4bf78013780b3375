"""The /precheck page under a real `station serve`, on the real virtual headset.

The runs here use no network: a test machine has no collector, and the network checks
have their own tests. Waits are generous and nothing is timed: the machine is shared.
"""
from __future__ import annotations

import json
import re
import subprocess
import threading

import httpx
import numpy as np
import pytest

from tests.helpers import chromium, needs_chromium, page_errors
from tests.station.servers import Server, free_port, station_serve, wait_for

AUDIO_AND_DISK = {"audio.output", "audio.input", "audio.loopback", "audio.sample_rate", "disk.free"}
RUN_TIMEOUT_S = 120


@pytest.fixture
def serve(headset, data_dir):
    """Start `station serve` with this station.toml; stopped at the end of the test."""
    servers: list[Server] = []

    def start(toml: str = 'station_id = "S01"\n') -> Server:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "station.toml").write_text(toml, encoding="utf-8")
        servers.append(station_serve())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def served(serve):
    return serve()


class Events:
    """The page's event stream, read in a thread so the test can act while it flows."""

    def __init__(self, server: Server):
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client = server.client(timeout=httpx.Timeout(30, read=60))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/api/precheck/events") as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        with self._lock:
                            self.events.append(json.loads(line[5:]))
                    if self._stop.is_set():
                        return
        except httpx.HTTPError:
            pass          # the server stopped first: the test's own asserts tell what was missed

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e["type"] == kind]

    def levels(self) -> list[float]:
        return [e["dbfs"] for e in self.of("level") if "dbfs" in e]

    def close(self) -> None:
        # Level readings or keep-alives arrive at least every 10 s, so the reader notices.
        self._stop.set()
        self._thread.join(30)
        self._client.close()


def test_a_run_without_network_streams_every_check_then_the_overall_and_is_kept(served):
    client = served.client(timeout=30)
    events = Events(served)
    try:
        wait_for(lambda: events.of("state"), what="the first state")
        started = client.post("/api/precheck/run", json={"network": False})
        assert started.status_code == 202, started.text
        again = client.post("/api/precheck/run", json={"network": False})
        assert again.status_code == 409
        assert "正在进行" in again.json()["zh"] and "already running" in again.json()["en"]

        (done,) = wait_for(lambda: events.of("done"), RUN_TIMEOUT_S, "the overall")
        checks = events.of("check")
        assert {c["id"] for c in checks} == AUDIO_AND_DISK         # no network.*: it was off
        for c in checks:
            assert c["status"] in ("pass", "warn", "fail", "skip") and c["summary_zh"] and c["summary_en"]
            assert c["title_zh"] and c["title_en"]
            if c["status"] in ("warn", "fail"):
                assert c["fix_zh"] and c["fix_en"]
        assert done["overall"] in ("pass", "warn", "fail") and done["overall_zh"] and done["overall_en"]
        # The microphone was handed to the checks: the meter said so before they ran.
        assert any(e.get("paused") for e in events.of("level"))
    finally:
        events.close()

    state = client.get("/api/precheck/state").json()
    assert state["running"] is False and state["last"]["report_id"] == done["report_id"]
    (listed,) = client.get("/api/precheck/reports").json()
    assert listed["id"] == done["report_id"] and listed["overall"] == done["overall"]
    assert listed["station_id"] == "S01" and sum(listed["counts"].values()) == 5
    page = client.get(listed["url"])
    assert page.status_code == 200 and "设备检查报告" in page.text and "S01" in page.text
    assert "麦克风录音" in page.text and "Microphone" in page.text
    # Once done, a new run may start.
    assert client.post("/api/precheck/run", json={"network": False}).status_code == 202
    wait_for(lambda: not client.get("/api/precheck/state").json()["running"], RUN_TIMEOUT_S, "the 2nd run")
    assert len(client.get("/api/precheck/reports").json()) == 2
    client.close()


def test_the_level_meter_hears_the_room_and_rises_when_someone_sings(served, sing_into_mic):
    events = Events(served)
    try:
        # The virtual room noise is about -70 dBFS; wait for a quiet moment (another test
        # on this machine may be singing into the same virtual microphone).
        wait_for(lambda: any(v < -45 for v in events.levels()), 30, "a quiet reading")
        assert all(isinstance(v, float) and -121 <= v <= 4 for v in events.levels())
        heard = len(events.levels())
        t = np.arange(int(48000 * 4)) / 48000
        sing_into_mic(0.3 * np.sin(2 * np.pi * 440 * t))          # about -10 dBFS
        wait_for(lambda: any(v > -30 for v in events.levels()[heard:]), 30, "a loud reading")
    finally:
        events.close()


def _recording_streams(pid: int) -> int:
    """How many recording streams the process has open on the sound server."""
    out = subprocess.run(["pactl", "list", "source-outputs"], capture_output=True, text=True,
                         timeout=10).stdout
    return out.count(f'application.process.id = "{pid}"')


def test_the_microphone_is_open_only_while_a_page_listens(served):
    pid = served.proc.pid
    assert _recording_streams(pid) == 0
    events = Events(served)
    try:
        wait_for(lambda: events.levels(), 30, "a level reading")
        wait_for(lambda: _recording_streams(pid) == 1, 30, "one recording stream")
    finally:
        events.close()
    wait_for(lambda: _recording_streams(pid) == 0, 30, "the microphone to close")


def test_the_page_in_chinese_and_english(served):
    with served.client(timeout=30) as client:
        zh = client.get("/precheck").text
        assert '<html lang="zh-CN">' in zh
        assert "设备检查" in zh and "开始检查" in zh and "麦克风音量" in zh and 'href="/precheck"' in zh
        assert "还没有检查报告" in zh and 'src="/static/precheck.js"' in zh
        en = client.get("/precheck?lang=en").text
        assert '<html lang="en">' in en
        assert "Equipment pre-check" in en and "Start the check" in en and "Microphone level" in en
        assert "开始检查" not in en
        assert client.get("/static/precheck.js").status_code == 200


def test_bad_requests_get_a_clear_refusal_and_start_nothing(served):
    with served.client(timeout=30) as client:
        r = client.post("/api/precheck/run", content=b"not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["zh"] and "JSON" in r.json()["en"]
        r = client.post("/api/precheck/run", json={"network": "yes"})
        assert r.status_code == 400 and "network" in r.json()["en"] and r.json()["zh"]
        r = client.post("/api/precheck/run", json=["network"])
        assert r.status_code == 400
        r = client.get("/api/precheck/reports", params={"limit": "lots"})
        assert r.status_code == 400 and "1 到 100" in r.json()["zh"] and "1 to 100" in r.json()["en"]
        for bad in ("99", "abc"):
            r = client.get(f"/precheck/reports/{bad}")
            assert r.status_code == 404 and "找不到这份检查报告" in r.text
        assert "was not found" in client.get("/precheck/reports/99?lang=en").text
        assert client.get("/api/precheck/state").json()["running"] is False
        assert client.get("/api/precheck/reports").json() == []


@needs_chromium
def test_the_page_shows_the_level_then_each_check_and_the_overall(served):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with chromium(sync_api) as browser:
        page = served.page(browser, viewport={"width": 1366, "height": 768})
        problems = page_errors(page)
        page.goto(served.url + "/precheck")
        expect(page.locator("#pc-level-value")).to_have_text(
            re.compile(r"^-?\d+\.\d$"), timeout=30_000)
        expect(page.locator("#pc-no-reports")).to_be_visible()
        page.locator("#pc-start").click()
        expect(page.locator("#pc-start")).to_be_disabled(timeout=10_000)
        overall = page.locator("#pc-overall")
        expect(overall).to_be_hidden()
        expect(overall).to_contain_text(re.compile("全部通过|可以使用|有项目未通过"),
                                        timeout=RUN_TIMEOUT_S * 1000)
        expect(overall).to_be_visible()
        for check_id in sorted(AUDIO_AND_DISK):
            line = page.locator(f'#pc-results li[data-id="{check_id}"]')
            expect(line).to_have_count(1)
            expect(line.locator(".pc-badge")).to_have_text(
                re.compile("通过|注意|未通过|跳过"))
        expect(page.locator("#pc-results li")).to_have_count(len(AUDIO_AND_DISK))
        expect(page.locator("#pc-start")).to_be_enabled()
        expect(page.locator("#pc-reports .pc-report")).to_have_count(1, timeout=20_000)
    assert problems == []  # any console error or failed request fails the test


def test_a_microphone_that_is_not_there_is_told_with_the_fix(serve):
    server = serve('station_id = "S01"\n[audio]\ninput = "NoSuchHeadset"\n')
    events = Events(server)
    try:
        error = wait_for(lambda: [e for e in events.of("level") if e.get("error")], 30, "the error")[0]
    finally:
        events.close()
    assert "没有找到耳机麦克风" in error["zh"] and "NoSuchHeadset" in error["en"]
    assert error["fix_zh"] and error["fix_en"]
    assert events.levels() == []


def test_a_report_the_collector_cannot_take_now_is_kept_to_send_later(serve):
    # A collector address where nothing listens: the school network is down today.
    server = serve(f'station_id = "S01"\n[upload]\ncollector_url = "http://127.0.0.1:{free_port()}"\n'
                   'token = "t"\n')
    with server.client(timeout=30) as client:
        assert 'id="pc-network" name="network" checked' in client.get("/precheck").text
        assert client.post("/api/precheck/run", json={}).status_code == 202   # network on by default
        state = wait_for(lambda: (lambda s: not s["running"] and s)(client.get("/api/precheck/state").json()),
                         RUN_TIMEOUT_S, "the run")
        ids = {c["id"] for c in state["checks"]}
        assert AUDIO_AND_DISK <= ids and any(i.startswith("network.") for i in ids)
        assert state["last"]["overall"] == "fail" and state["last"]["waiting"] >= 1   # heartbeats may wait too
        (listed,) = client.get("/api/precheck/reports").json()
        assert listed["id"] == state["last"]["report_id"]
