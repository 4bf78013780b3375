"""The district dashboard in Debian's Chromium (Playwright), on a real uvicorn: three expected
schools — one ready, one failing its pre-check, one silent — a live incident marked handled,
local times, 1366×768 and print."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.helpers import chromium, needs_chromium, page_errors
from uploader.collector.cli import add_station, import_schools

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, needs_chromium]

SCHOOLS = "学校代码,学校名称,工作站数,联系人\n4401001,第一实验小学,1,张老师\n4401002,第二中学,1,李老师\n4401003,山区小学,1,王老师\n"


def report(status: str, failing: bool = False) -> dict:
    checks = [{"id": "audio.output", "status": "pass", "summary_zh": "耳机正常", "summary_en": "earphones ok"}]
    if failing:
        checks.append({"id": "audio.input", "status": "fail", "summary_zh": "没有找到麦克风",
                       "summary_en": "no microphone found"})
    return {"station_id": "x", "started_at": "2026-05-19T08:00:00+08:00", "duration_s": 3,
            "overall": status, "checks": checks}


@pytest.fixture
def district(collector_factory, tmp_path):
    data = tmp_path / "district"
    data.mkdir()
    (tmp_path / "schools.csv").write_text(SCHOOLS, encoding="utf-8")
    server = collector_factory(data_dir=data, stations=(), start=False)
    import_schools(tmp_path / "schools.csv", data, server.db_url)
    server.tokens = {sid: add_station(sid, data, school=school, room="201", db_url=server.db_url)
                     for sid, school in (("S01", "4401001"), ("S02", "4401002"), ("S03", "4401003"))}
    server.start()
    for sid, status in (("S01", "pass"), ("S02", "fail")):
        headers = {"Authorization": f"Bearer {server.tokens[sid]}"}
        httpx.post(f"{server.url}/api/stations/{sid}/precheck", json=report(status, status == "fail"),
                   headers=headers).raise_for_status()
        httpx.post(f"{server.url}/api/stations/{sid}/heartbeat", headers=headers,
                   json={"version": "1.0", "at": "2026-05-20T08:00:00+08:00", "sittings_open": 0,
                         "queue": {"files": {"done": 0}, "bytes_total": 0}}).raise_for_status()
    return server


@pytest.fixture
def page():
    with chromium(playwright) as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        yield context.new_page()
        context.close()


def log_in(page, server) -> None:
    expect = playwright.expect
    page.goto(server.url + "/")
    expect(page.locator("h1")).to_have_text("登录区县汇集看板")
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("管理令牌不正确")
    page.fill("input[name=token]", server.admin)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("区县汇集看板")


def test_three_schools_ready_failing_and_silent(district, page):
    expect = playwright.expect
    log_in(page, district)          # its wrong token's 401 is expected
    errors = page_errors(page)
    summary = page.locator("#summary")
    expect(summary.locator("[data-key=schools_ready] .n")).to_have_text("✔ 1")
    expect(summary.locator("[data-key=schools_not_ready] .n")).to_have_text("✖ 1")
    expect(summary.locator("[data-key=schools_silent] .n")).to_have_text("○ 1")
    expect(summary.locator("[data-key=schools_ready]")).to_contain_text("学校就绪")

    rows = page.locator("tr.school")
    expect(rows).to_have_count(3)
    ready, failing, silent = (page.locator(f"tr.school[data-code='{c}']") for c in ("4401001", "4401002", "4401003"))
    expect(ready).to_have_attribute("data-status", "ready")
    expect(ready.locator(".badge").first).to_have_text("✔ 就绪")      # a word and a sign, not colour alone
    expect(failing).to_have_attribute("data-status", "not_ready")
    expect(failing.locator(".badge").first).to_have_text("✖ 未就绪")
    expect(failing).to_contain_text("设备检查未通过: S02")
    expect(silent).to_have_attribute("data-status", "silent")
    expect(silent.locator(".badge").first).to_have_text("○ 失联")
    expect(silent).to_contain_text("从未做设备检查: S03")
    expect(silent).to_contain_text("无心跳: S03")

    # A school's row opens to its stations: S02 says which check failed, in Chinese.
    detail = page.locator("tr.stations:has(tr[data-station=S02])")
    expect(detail).to_be_hidden()
    failing.locator("button.toggle").click()
    expect(failing.locator("button.toggle")).to_have_attribute("aria-expanded", "true")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("audio.input: 没有找到麦克风")
    # The heartbeat in the district's time (Asia/Shanghai), not UTC.
    shown = detail.locator("tr[data-station=S02] td").nth(1).inner_text()
    stamp = re.search(r"(\d{4}-\d\d-\d\d) (\d\d):\d\d:\d\d", shown)
    assert stamp, shown
    beijing = datetime.now(timezone.utc) + timedelta(hours=8)
    assert int(stamp.group(2)) in (beijing.hour, (beijing.hour - 1) % 24)
    assert "+00:00" not in page.content().split("<script")[0]

    # Filter and "only problems".
    page.fill("#filter", "山区")
    expect(rows).to_have_count(1)
    page.fill("#filter", "")
    page.check("#problems")
    expect(rows).to_have_count(3)        # none of the three is all in yet
    page.uncheck("#problems")

    # 1366×768: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366

    # Printed, every school shows its stations and no buttons.
    page.emulate_media(media="print")
    expect(page.locator("tr.stations:has(tr[data-station=S03])")).to_be_visible()
    expect(page.locator("#expand-all")).to_be_hidden()
    page.emulate_media(media="screen")

    english = page.goto(district.url + "/?lang=en")
    assert english.status == 200
    expect(page.locator("[data-key=schools_silent]")).to_contain_text("schools silent")
    expect(page.locator("tr.school[data-code='4401003'] .badge").first).to_have_text("○ silent")
    assert errors == []


def test_incidents_arrive_live_and_are_marked_handled(district, page):
    expect = playwright.expect
    log_in(page, district)          # its wrong token's 401 is expected
    errors = page_errors(page)
    expect(page.locator("#incidents")).to_contain_text("暂无应急事件")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    uid = uuid.uuid4().hex
    httpx.post(f"{district.url}/api/stations/S01/incidents",
               headers={"Authorization": f"Bearer {district.tokens['S01']}"},
               json={"id": 1, "uid": uid, "category": "power", "at": "2026-05-20T01:05:00+00:00",
                     "students": ["0001"], "text": "停电，全场中断", "action": "启用备用电源"}).raise_for_status()
    row = page.locator(f"#incidents tr[data-uid='{uid}']")
    expect(row).to_contain_text("停电，全场中断", timeout=15_000)      # no reload: pushed
    expect(row).to_contain_text("2026-05-20 09:05:00")                 # local time
    expect(row).to_contain_text("第一实验小学")
    expect(page.locator("[data-key=incidents_open] .n")).to_have_text("! 1")
    expect(page.locator("tr.school[data-code='4401001']")).to_contain_text("! 1")
    row.get_by_role("button", name="标记为已处理").click()
    expect(row).to_contain_text("✔ 已处理", timeout=15_000)
    expect(page.locator("[data-key=incidents_open] .n")).to_have_text("0")
    assert errors == []
