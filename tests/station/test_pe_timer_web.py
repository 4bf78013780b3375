"""A Timy that numbers impulses, under a real `station serve`: a hand-timed run, then a time
corrected on the timer after the proctor confirmed it, which the page shows for a new
confirmation, both values on record."""
from decimal import Decimal as D

import pytest

from devices.drivers import alge_timy
from tests.helpers import chromium, needs_chromium, page_errors
from tests.station.servers import page_of, pe_pending, timer_station, wait_for


@pytest.fixture
def timer(station, data_dir, tmp_path, pty_pair):
    # Generated names, not real people.
    with timer_station(station, data_dir, tmp_path / "roster.csv",
                       "学籍号,姓名,性别,年级,班级\n0001,王子涵,男,四年级,4(1)\n",
                       pty_pair("timy"), 'pairing = "sequence"') as (client, timy):
        def impulse(number: str, channel: str, seconds: str, flag: str = " ") -> None:
            timy.write(alge_timy.format_line(number, channel, D(seconds), flag=flag, places=2))
            timy.flush()

        yield client, impulse


def test_a_hand_timed_run_then_a_correction_on_the_timer_needs_a_new_confirmation(timer):
    client, impulse = timer
    assert client.post("/api/pe/scan", json={"code": "0001", "by": "张老师"}).status_code == 200
    impulse("0041", "C0M", "36000.00")             # START key, FINISH key: a hand-timed run
    impulse("0042", "C1M", "36009.12")
    [attempt] = wait_for(lambda: pe_pending(client, 1), what="the hand-timed run")
    assert (attempt["student"], attempt["value"], attempt["rounded"]) == ("0001", "9.12", "9.2")
    r = client.post("/api/pe/confirm", json={"attempt": attempt["id"], "by": "张老师"})
    assert r.status_code == 200, r.text
    assert pe_pending(client, 0) == []
    impulse("0042", "C1M", "36008.95", flag="i")   # the timekeeper corrects the finish
    [again] = wait_for(lambda: pe_pending(client, 1), what="the corrected run back for confirmation")
    assert (again["id"], again["value"], again["rounded"]) == (attempt["id"], "8.95", "9.0")
    assert "9.2" in again["reason_zh"] and "confirm it again" in again["reason_en"]


@needs_chromium
def test_the_page_shows_the_corrected_time_waiting_for_the_proctor(timer):
    sync_api = pytest.importorskip("playwright.sync_api")
    client, impulse = timer
    client.post("/api/pe/scan", json={"code": "0001", "by": "张老师"})
    impulse("0001", "C0", "36000.00")
    impulse("0002", "C1", "36009.12")
    [attempt] = wait_for(lambda: pe_pending(client, 1), what="the run")
    client.post("/api/pe/confirm", json={"attempt": attempt["id"], "by": "张老师"})
    with chromium(sync_api) as browser:
        page = page_of(browser, client)
        errors = page_errors(page)
        page.goto(str(client.base_url) + "/pe")
        impulse("0002", "C1", "36008.95", flag="i")
        expect = sync_api.expect
        expect(page.locator(".pe-pending")).to_contain_text("9.0", timeout=20_000)
        expect(page.locator(".pe-pending")).to_contain_text("计时器上更正了时间", timeout=20_000)
        assert errors == []
