"""The dashboard in Debian's Chromium (Playwright): log in, filter, sort, and see it refresh."""
from __future__ import annotations

import pytest

from tests.helpers import chromium, needs_chromium

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def page(tmp_path):
    with chromium(playwright) as browser:
        context = browser.new_context()
        yield context.new_page()
        context.close()


def test_log_in_filter_sort_and_refresh(collector, tus_for, page):
    expect = playwright.expect
    page.goto(collector.url + "/")
    expect(page.locator("h1")).to_have_text("登录区县汇集看板")
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("管理令牌不正确")
    page.fill("input[name=token]", collector.admin)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("区县汇集看板")
    page.goto(collector.url + "/?refresh=2")  # a faster pace than the default 15 s
    rows = page.locator("#stations tbody tr")
    expect(rows).to_have_count(3)

    page.fill("#filter", "学校S02")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", "S02")
    page.fill("#filter", "")
    expect(rows).to_have_count(3)

    page.click("th[data-key=id]")  # already sorted by station: a click reverses
    expect(rows.first).to_have_attribute("data-id", "S03")
    expect(page.locator("th[data-key=id]")).to_have_attribute("aria-sort", "descending")

    # A heartbeat arrives; the page shows it without a reload.
    tus_for("S01").http.post("/api/stations/S01/heartbeat",
                             json={"version": "9.9.9", "at": "2026-05-20T08:00:00+08:00"})
    expect(page.locator("tr[data-id=S01] td").nth(3)).not_to_have_text("从未", timeout=30_000)
