"""An incident filed on a station's page (real `station serve`, real Chromium) appears on the
district's dashboard (real `station collector serve`) without a reload; it is also in the
station's database, its audit log (under the proctor signed in) and `station incident list`.
The route passes the station's guard: no session, a cross-site or a non-JSON write is refused
and files nothing."""
from __future__ import annotations

import json
import sqlite3

import httpx

import pytest

from tests.helpers import chromium, needs_chromium, page_errors
from tests.station.servers import PROCTOR, Collector, import_roster, last_line, station_serve

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, needs_chromium]


def test_incident_filed_on_a_station_page_appears_on_the_dashboard(station, data_dir, tmp_path):
    expect = playwright.expect
    collector = Collector(tmp_path / "collector")
    server = None
    try:
        token = collector.add_station("S01")
        admin = last_line("collector", "admin-token", "--data", str(collector.data))
        data_dir.mkdir()
        (data_dir / "station.toml").write_text(
            f'station_id = "S01"\nschool = "测试实验小学"\n'
            f'[upload]\ncollector_url = "{collector.url}"\ntoken = "{token}"\n', encoding="utf-8")
        import_roster(station, tmp_path / "r.csv", "学籍号,姓名,性别,年级\n0001,王子涵,男,四年级\n")
        sitting = last_line("session", "open", "--kind", "pe", "--item", "sit_and_reach")
        server = station_serve()
        with chromium(playwright) as browser:
            district = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            district.goto(collector.url + "/")
            district.fill("input[name=token]", admin)
            district.click("button[type=submit]")
            expect(district.locator("#incidents")).to_contain_text("暂无应急事件")

            proctor = server.page(browser)
            errors = page_errors(proctor)
            proctor.goto(server.url + "/pe")
            proctor.get_by_role("link", name="上报应急事件").click()      # in every page's header
            expect(proctor.locator("h1")).to_have_text("应急事件上报")
            proctor.click("#incident-form button[type=submit]")                           # nothing chosen yet
            expect(proctor.locator("#incident-message")).to_have_text("请选择事件类别。")
            proctor.get_by_label("设备故障").check()
            expect(proctor.locator("#incident-sitting")).to_have_value(sitting)   # the open sitting
            proctor.fill("#incident-students", "9999")
            proctor.fill("#incident-text", "计时门无读数")
            proctor.click("#incident-form button[type=submit]")
            expect(proctor.locator("#incident-message")).to_contain_text("9999")  # not in the roster
            proctor.fill("#incident-students", "0001")
            proctor.fill("#incident-action", "换用备用计时门")
            proctor.click("#incident-form button[type=submit]")
            expect(proctor.locator("#incident-message")).to_have_text("已记录：S01-1。")
            expect(proctor.locator("#incident-list")).to_contain_text("计时门无读数")
            assert errors == [f"400 {server.url}/api/incidents"]   # the refused unknown code only

            row = district.locator("#incidents tbody tr").first
            expect(row).to_contain_text("计时门无读数", timeout=30_000)    # pushed, no reload
            expect(row).to_contain_text("设备故障")
            expect(row).to_contain_text(sitting)
            expect(row).to_contain_text("0001")
            expect(district.locator("[data-key=incidents_open] .n")).to_have_text("! 1")

        [listed] = json.loads(station("incident", "list", "--json", check=True).stdout)
        assert (listed["category"], listed["sitting"], listed["students"]) == ("equipment", sitting, ["0001"])
        with sqlite3.connect(data_dir / "station.db") as db:
            audit = db.execute("SELECT action, entity_id, who FROM audit_log WHERE entity = 'incident'").fetchall()
            sent = db.execute("SELECT count(*) FROM outbox WHERE kind = 'incident' AND sent_at IS NOT NULL").fetchone()
        assert audit == [("incident.add", "1", PROCTOR)] and sent == (1,)
        assert listed["filed_by"] == PROCTOR
        # Closing the sitting seals the incident into its bundle.
        station("session", "close", sitting, check=True)
        sealed = json.loads((data_dir / "bundles" / sitting / "incidents.json").read_text("utf-8"))
        assert sealed[0]["uid"] == listed["uid"] and sealed[0]["text"] == "计时门无读数"
    finally:
        if server:
            server.stop()
        collector.stop()


def test_the_incident_route_passes_the_guard(station, data_dir):
    data_dir.mkdir()
    (data_dir / "station.toml").write_text('station_id = "S01"\nschool = "测试实验小学"\n', encoding="utf-8")
    server = station_serve()
    body = {"category": "power", "text": "停电", "by": "冒名者"}
    try:
        with httpx.Client(base_url=server.url) as stranger:
            assert stranger.post("/api/incidents", json=body).status_code in (401, 403)
            assert stranger.get("/incidents", follow_redirects=False).status_code in (302, 303, 401, 403)
        with server.client() as client:
            assert client.post("/api/incidents", json=body,
                               headers={"Origin": "http://evil.example"}).status_code == 403
            assert client.post("/api/incidents", content="category=power&text=x",
                               headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
            assert client.get("/api/incidents").json()["incidents"] == []    # nothing filed so far
            page = client.get("/incidents")
            assert page.status_code == 200 and "unsafe-inline" not in page.headers["content-security-policy"]
            assert "<script>" not in page.text and " style=" not in page.text   # nothing inline
            filed = client.post("/api/incidents", json=body)
            assert filed.status_code == 200, filed.text
            assert filed.json()["filed_by"] == PROCTOR          # the session's proctor, not "by"
        with server.client(proctor=None) as nameless:          # signed in, no proctor's name yet
            refused = nameless.post("/api/incidents", json=body)
            assert refused.status_code == 401 and refused.json()["error"] == "proctor_required"
    finally:
        server.stop()
