"""Two-lane 50 m under a real `station serve`: an ALGE Timy on a socat PTY sends the lane as
its bib; the proctor scans one student per lane, from the API and from the page."""
import pytest
from decimal import Decimal as D

from devices.drivers import alge_timy
from station import config
from tests.helpers import chromium, needs_chromium, page_errors
from tests.station.servers import page_of, pe_pending, timer_station, wait_for

pytestmark = pytest.mark.skipif(
    "lanes" not in config.DEVICE_KEYS,
    reason="station/config.py does not accept `lanes` in [[pe.devices]] yet (DEVICE_KEYS)")


@pytest.fixture
def track(station, data_dir, tmp_path, pty_pair):
    # Generated names, not real people.
    with timer_station(station, data_dir, tmp_path / "roster.csv",
                       "学籍号,姓名,性别,年级,班级\n0001,王子涵,男,四年级,4(1)\n0002,李欣怡,女,四年级,4(1)\n",
                       pty_pair("timy"), "lanes = 2") as (client, timy):
        def impulse(lane: str, channel: str, seconds: str) -> None:
            timy.write(alge_timy.format_line(lane, channel, D(seconds)))
            timy.flush()

        yield client, impulse


def test_two_students_in_two_lanes_each_get_their_own_run_time(track):
    client, impulse = track
    assert client.get("/api/pe/state").json()["lanes"] == 2
    for code, lane in (("0001", 1), ("0002", 2)):
        r = client.post("/api/pe/scan", json={"code": code, "lane": lane, "by": "张老师"})
        assert r.status_code == 200, r.text
    current = client.get("/api/pe/state").json()["current"]
    assert {k: (v["lane"], v["student"]["code"]) for k, v in current.items()} == \
        {"lane-1": (1, "0001"), "lane-2": (2, "0002")}
    impulse("1", "C0", "36000.0000")
    impulse("2", "C0", "36000.0500")
    impulse("2", "C1", "36008.3100")           # lane 2 crosses the line first
    impulse("1", "C1", "36009.0400")
    pending = wait_for(lambda: pe_pending(client, 2), what="two run times")
    assert sorted((a["student"], a["value"], a["rounded"]) for a in pending) == \
        [("0001", "9.0400", "9.1"), ("0002", "8.2600", "8.3")]


def test_a_bad_lane_is_refused_and_changes_nothing(track):
    client, _ = track
    r = client.post("/api/pe/scan", json={"code": "0001", "lane": "abc"})
    assert r.status_code == 400 and "道次" in r.json()["zh"] and "lane" in r.json()["en"]
    r = client.post("/api/pe/scan", json={"code": "0001", "lane": 3})
    assert r.status_code == 409 and "1～2" in r.json()["zh"] and "1 to 2" in r.json()["en"]
    assert client.get("/api/pe/state").json()["current"] == {}


@needs_chromium
def test_the_page_scans_lane_1_then_lane_2(track):
    sync_api = pytest.importorskip("playwright.sync_api")
    client, impulse = track
    with chromium(sync_api) as browser:
        page = page_of(browser, client)
        errors = page_errors(page)
        page.goto(str(client.base_url) + "/pe")
        expect = sync_api.expect
        expect(page.locator("#pe-lanes")).to_contain_text("第 1 道")
        expect(page.locator("#pe-lanes")).to_contain_text("第 2 道")
        expect(page.locator('#pe-lanes input[data-lane="1"]')).to_be_checked()
        # Two scans in a row, as the runners line up: the lane moves on by itself.
        page.keyboard.type("0001")
        page.keyboard.press("Enter")
        expect(page.locator('.pe-student[data-lane="1"] .pe-name')).to_have_text("王子涵", timeout=20_000)
        expect(page.locator('#pe-lanes input[data-lane="2"]')).to_be_checked()
        page.keyboard.type("0002")
        page.keyboard.press("Enter")
        expect(page.locator('.pe-student[data-lane="2"] .pe-name')).to_have_text("李欣怡", timeout=20_000)
        impulse("", "C0", "36000.0000")          # one starting gun for both lanes
        impulse("2", "C1", "36008.7000")
        expect(page.locator(".pe-pending")).to_contain_text("8.7", timeout=20_000)
        assert errors == []
