"""The PE page and API under a real `station serve`, a meter on a real socat PTY."""
import csv
import io
import json
import time

import httpx
import pytest
import serial

from devices.drivers import qm_frame
from tests.helpers import SEAL_CODE, chromium, needs_chromium
from tests.station.servers import import_roster, page_of, station_serve, wait_for


class Meter:
    """The far end of the PTY: a sit-and-reach meter sending qm-frames."""

    def __init__(self, path: str):
        self.port = serial.Serial(path)

    def send(self, value: str, code: str = "") -> None:
        self.port.write(qm_frame.format_frame("SR-1", "sit_and_reach", code, value, "cm"))
        self.port.flush()


@pytest.fixture
def pe(station, data_dir, tmp_path, pty_pair):
    pair = pty_pair()
    # What Excel writes on Chinese Windows: GBK. Generated names, not real people.
    import_roster(station, tmp_path / "roster.csv",
                  "学籍号,姓名,性别,年级,班级\n0001,王子涵,男,四年级,4(1)\n0002,李欣怡,女,四年级,4(1)\n",
                  encoding="gbk")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text(
        'station_id = "S01"\n[[pe.devices]]\nname = "SR-1"\ndriver = "qm-frame"\n'
        f'port = "{pair.station_end}"\nitem = "sit_and_reach"\n', encoding="utf-8")
    sitting = station("session", "open", "--kind", "pe", "--item", "sit_and_reach", "--by", "张老师",
                      check=True).stdout.strip().splitlines()[-1]
    server = station_serve()
    client = server.client(timeout=10)
    try:
        # The page starts the sitting's device readers; wait for the meter's green light.
        wait_for(lambda: client.get("/api/pe/state").json()["devices"][0]["status"] == "connected")
        meter = Meter(pair.device_end)
        yield client, meter, sitting, data_dir
        meter.port.close()
    finally:
        client.close()
        server.stop()


def _pending(client):
    return client.get("/api/pe/state").json()["pending"]


def test_scan_reading_confirm_export(pe):
    client, meter, sitting, _ = pe
    scanned = client.post("/api/pe/scan", json={"code": "0001", "by": "张老师"})
    assert scanned.status_code == 200, scanned.text
    meter.send("-3.45")                                   # a negative sit-and-reach is fine
    (attempt,) = wait_for(lambda: _pending(client))
    assert (attempt["student"], attempt["rounded"], attempt["verdict"]) == ("0001", "-3.5", "ok")
    done = client.post("/api/pe/confirm", json={"attempt": attempt["id"], "by": "张老师"}).json()
    assert done["done"]["state"] == "confirmed" and done["done"]["decided_by"] == "张老师"

    doc = client.get("/api/pe/export", params={"sitting": sitting, "format": "json"}).json()
    (result,) = doc["results"]
    assert result["student"]["name"] == "王子涵" and result["value"] == "-3.5"
    assert result["attempts"][0]["device"] == "SR-1"
    response = client.get("/api/pe/export", params={"sitting": sitting, "format": "csv"})
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0]["姓名 name"] == "王子涵" and rows[0]["有效成绩 value that counts"] == "-3.5"


def test_hard_limit_refused_with_reason_and_gbk_names_on_the_page(pe):
    client, meter, _, _ = pe
    client.post("/api/pe/scan", json={"code": "0002"}).raise_for_status()
    meter.send("75.0")
    current = wait_for(lambda: client.get("/api/pe/state").json()["current"].get("", {}).get("attempts"))
    assert current[0]["state"] == "rejected" and "超出可能范围" in current[0]["reason_zh"]
    page = client.get("/pe").text
    assert "李欣怡" in page and "超出可能范围" in page and 'id="pe-code"' in page
    assert "outside the possible range" in client.get("/pe?lang=en").text


def test_reading_without_a_scan_is_kept_announced_and_can_be_given(pe):
    client, meter, _, _ = pe
    with client.stream("GET", "/api/pe/events") as events:
        meter.send("12.0")
        deadline = time.monotonic() + 30
        for line in events.iter_lines():          # the page learns of it at once
            assert time.monotonic() < deadline, "no event"
            if line.startswith("data:") and '"unassigned"' in line:
                assert '"12.0"' in line
                break
    (reading,) = wait_for(lambda: client.get("/api/pe/state").json()["unassigned"])
    assert reading["value"] == "12.0"
    given = client.post("/api/pe/assign", json={"reading": reading["id"], "code": "0001"}).json()
    assert given["done"]["student"] == "0001" and given["state"]["unassigned"] == []


def test_bad_requests_get_a_clear_refusal_and_change_nothing(pe):
    client, _, sitting, _ = pe
    r = client.post("/api/pe/scan", json={"code": "9999"})
    assert r.status_code == 409 and "不在名册" in r.json()["zh"] and "not in the roster" in r.json()["en"]
    r = client.post("/api/pe/scan", json={"code": 1234})
    assert r.status_code == 409 and "1234" in r.json()["zh"]
    r = client.post("/api/pe/confirm", json={"attempt": "abc"})
    assert r.status_code == 400 and r.json()["zh"]
    r = client.post("/api/pe/scan", content=b"not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["en"]
    r = client.post("/api/pe/correct", json={"attempt": 1, "value": "1.0"})
    assert r.status_code == 400 and "reason" in r.json()["en"]
    r = client.get("/api/pe/export", params={"sitting": sitting, "format": "xls"})
    assert r.status_code == 400
    assert client.get("/api/pe/state").json()["current"] == {}
    r = client.post("/api/pe/open", json={"item": "swimming"})
    assert r.status_code == 409 and "未知的体育项目" in r.json()["zh"]


def test_two_open_sittings_must_be_chosen_between(pe):
    client, _, sitting, _ = pe
    other = client.post("/api/pe/open", json={"item": "long_jump", "by": "李老师"}).json()["sitting"]
    r = client.get("/api/pe/state")
    assert r.status_code == 409 and "Several PE sittings" in r.json()["en"]
    page = client.get("/pe").text
    assert f"/pe?sitting={other['id']}" in page and f"/pe?sitting={sitting}" in page
    state = client.get("/api/pe/state", params={"sitting": other["id"]}).json()
    assert state["item"] == "long_jump" and state["devices"] == []


def test_a_sitting_closed_from_the_command_line_stops_taking_readings(pe, station):
    client, _, sitting, _ = pe
    station("session", "close", sitting, "--by", "张老师", check=True)
    r = client.post("/api/pe/scan", json={"code": "0001", "sitting": sitting})
    assert r.status_code == 409 and "已关闭" in r.json()["zh"]


def test_closing_hands_the_results_over(pe):
    client, meter, sitting, data_dir = pe
    client.post("/api/pe/scan", json={"code": "0001"}).raise_for_status()
    meter.send("10.0")
    (attempt,) = wait_for(lambda: _pending(client))
    client.post("/api/pe/confirm", json={"attempt": attempt["id"]}).raise_for_status()
    closed = client.post("/api/pe/close", json={"sitting": sitting, "by": "张老师"}).json()["sitting"]
    assert closed["state"] == "closed" and SEAL_CODE.fullmatch(closed["seal_code"])
    bundle = data_dir / "bundles" / sitting  # sealed at once, and queued for upload
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    paths = {f["path"] for f in manifest["files"]}
    assert {"results.csv", "results.json"} <= paths and any(p.startswith("rawlogs/") for p in paths)
    # Names stay home unless the config says otherwise (children's personal data).
    assert "王子涵" not in (bundle / "results.json").read_text("utf-8")
    from uploader.queue import status
    from station.db import open_db
    assert [s["seal_code"] for s in status(open_db(data_dir))] == [closed["seal_code"]]
    r = client.post("/api/pe/scan", json={"code": "0002", "sitting": sitting})
    assert r.status_code == 409 and "已关闭" in r.json()["zh"]
    page = client.get("/pe", params={"sitting": sitting}).text
    assert "已关闭" in page and closed["seal_code"] in page


@needs_chromium
def test_the_page_works_from_the_keyboard_like_a_barcode_scanner(pe, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    client, meter, _, _ = pe
    with chromium(sync_api) as browser:
        page = page_of(browser, client)
        page.goto(str(client.base_url) + "/pe")
        expect = sync_api.expect
        expect(page.locator("#pe-no-student")).to_be_visible()
        # The scanner types into whatever has the focus: it must be the code input.
        page.keyboard.type("0002")
        page.keyboard.press("Enter")
        expect(page.locator(".pe-student .pe-name")).to_have_text("李欣怡", timeout=20_000)
        meter.send("31.0")                 # outside the usual range: needs confirmation
        row = page.locator(".pe-attempts tbody tr").first
        expect(row).to_contain_text("31.0 cm", timeout=20_000)
        expect(row).to_contain_text("常见范围")
        page.keyboard.press("F6")          # confirm, without touching the mouse
        expect(row).to_contain_text("已确认", timeout=20_000)
        page.keyboard.type("9999")
        page.keyboard.press("Enter")
        expect(page.locator("#pe-message")).to_contain_text("不在名册", timeout=20_000)
