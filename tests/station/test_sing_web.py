"""The /sing page and API under a real `station serve`, recording from the virtual headset.

Roster names and codes are generated, never real people. Takes are a few seconds long
(``seconds`` in the record request, or Stop); every wait is generous for a loaded machine.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import httpx
import pytest
import sqlite_utils

from recorder.journal import Journal, JournalHeader, journal_dir
from tests.helpers import chromium, needs_chromium, page_errors
from tests.station.servers import import_roster, page_of, station_serve, wait_for
from tests.station.singing import RATE, demo_voice


@pytest.fixture
def roster_only(station, tmp_path):
    import_roster(station, tmp_path / "roster.csv",
                  "学籍号,姓名,性别,年级,班级\n5001,测试丙,男,四年级,4(2)\n5002,测试丁,女,四年级,4(2)\n")


@pytest.fixture
def served(roster_only, station, data_dir):
    """`station serve` over a roster and an open singing sitting."""
    sitting = json.loads(station("session", "open", "--kind", "singing", "--json", check=True).stdout)["id"]
    server = station_serve()
    client = server.client(timeout=20)
    try:
        yield client, sitting
    finally:
        client.close()
        server.stop()


def finished(client, code: str):
    state = client.get("/api/sing/state").json()
    last = state["last"]
    return state if state["recording"] is None and last and last["code"] == code else None


@pytest.mark.audio
def test_scan_record_verdict_through_the_api(served, sing_into_mic, data_dir):
    client, sitting = served
    picked = client.post("/api/sing/select", json={"code": "5001"})
    assert picked.status_code == 200, picked.text
    assert picked.json()["student"]["state"] == "pending"
    singer = sing_into_mic(demo_voice(40.0), RATE)
    started = client.post("/api/sing/record", json={"seconds": 6})
    assert started.status_code == 202, started.text
    assert started.json()["recording"]["code"] == "5001"
    # One take at a time per station: a second request is refused in both languages.
    second = client.post("/api/sing/record", json={"code": "5002", "seconds": 6})
    assert second.status_code == 409
    assert "正在为另一名考生录音" in second.json()["zh"] and "being recorded" in second.json()["en"]
    state = wait_for(lambda: finished(client, "5001"))
    assert singer.poll() is None, "the singing stopped before the take ended"
    last = state["last"]
    assert last["error"] is None and last["attempt"] == 1
    student = next(s for s in state["students"] if s["code"] == "5001")
    assert student["attempts_used"] == 1 and student["attempts_allowed"] == 3
    if last["dropouts"]:   # PortAudio on a loaded host can lose audio: flagged, never accepted
        assert last["verdict"] == "retake" and student["state"] == "retake"
    else:
        assert last["verdict"] == "accept", last["reasons"]
        assert student["state"] == "accepted"
        assert state["progress"] == {"done": 1, "total": 2}
    db = sqlite_utils.Database(sqlite3.connect(str(data_dir / "station.db")))
    row = db["takes"].get(last["take_id"])
    assert row["sitting_id"] == sitting and Path(row["path"]).exists() and row["sha256"]


@pytest.mark.audio
def test_a_silent_take_shows_its_verdict_and_reasons_in_both_languages(served, headset):
    client, _ = served
    assert client.post("/api/sing/select", json={"code": "5002"}).status_code == 200
    assert client.post("/api/sing/record", json={"seconds": 5}).status_code == 202
    state = wait_for(lambda: finished(client, "5002"))
    last = state["last"]
    assert last["verdict"] in ("retake", "reject") and "silent" in [r["code"] for r in last["reasons"]]
    silent = next(r for r in last["reasons"] if r["code"] == "silent")
    zh = client.get("/sing?lang=zh").text
    assert "需要重录" in zh or "录音不合格" in zh
    assert silent["zh"] in zh and silent["en"] in zh          # Chinese first, English second
    assert "重录（还可重录 2 次）" in zh
    en = client.get("/sing?lang=en").text
    assert "Retake needed" in en or "Take rejected" in en
    assert silent["en"] in en and "Retake (2 left)" in en


def test_bad_requests_are_refused_in_both_languages_and_change_nothing(served):
    client, _ = served
    for path, body, status, zh in [
        ("/api/sing/select", {"code": "9999"}, 400, "不在名册"),
        ("/api/sing/record", {"code": "9999", "seconds": 5}, 400, "不在名册"),
        ("/api/sing/record", {"code": "5001", "seconds": "abc"}, 400, "不是数字"),
        ("/api/sing/record", {"code": "5001", "song": "no-such-song"}, 400, "找不到歌曲"),
        ("/api/sing/record", {}, 400, "请先扫描"),
        ("/api/sing/stop", {}, 409, "现在没有在录音"),
    ]:
        answer = client.post(path, json=body)
        assert answer.status_code == status, (path, body, answer.text)
        doc = answer.json()
        assert zh in doc["zh"] and doc["en"], (path, body, doc)
    assert client.post("/api/sing/record", content=b"not json",
                       headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/api/sing/record", content=b"not json").status_code == 415   # not even JSON
    state = client.get("/api/sing/state").json()
    assert state["recording"] is None and state["last"] is None
    assert all(s["attempts_used"] == 0 for s in state["students"])


def test_without_a_sitting_the_page_offers_to_open_one(roster_only, data_dir):
    server = station_serve()
    try:
        with server.client(timeout=20) as client:
            page = client.get("/sing?lang=zh").text
            assert "没有进行中的演唱场次" in page and 'id="sing-open"' in page
            refused = client.post("/api/sing/record", json={"code": "5001", "seconds": 5})
            assert refused.status_code == 409 and "没有进行中的演唱场次" in refused.json()["zh"]
            opened = client.post("/api/sing/open", json={})
            assert opened.status_code == 200
            page = client.get("/sing?lang=en").text
            assert "0 of 2 students done" in page and "测试丙" in page
            closed = client.post("/api/sing/close", json={}).json()["sitting"]
            assert closed["state"] == "closed" and closed["seal_code"]
            page = client.get(f"/sing?closed={closed['id']}&lang=zh").text
            assert closed["seal_code"] in page and "电子封签" in page
    finally:
        server.stop()


def test_an_interrupted_take_is_salvaged_at_start_up_and_shown(roster_only, station, data_dir):
    import numpy as np

    sitting = json.loads(station("session", "open", "--kind", "singing", "--json", check=True).stdout)["id"]
    # What a power cut leaves: a journal with 2 s of singing and its row still `recording`.
    target = data_dir / "recordings" / sitting / "5001-1.flac"
    header = JournalHeader(take_id="cut2", rate=RATE, target=str(target), student="5001",
                           sitting=sitting, attempt=1, device="test")
    journal = Journal(journal_dir(data_dir), header)
    journal.directory.mkdir(parents=True, exist_ok=True)
    journal.header_path.write_text(json.dumps(header.to_json()), encoding="utf-8")
    journal.pcm_path.write_bytes((demo_voice(2.0) * 32767).astype("<i2").tobytes())
    from recorder import takes

    db = sqlite_utils.Database(sqlite3.connect(str(data_dir / "station.db")))
    takes.begin(db, take_id="cut2", sitting_id=sitting, student_code="5001", attempt=1,
                started_at=header.started_at)
    server = station_serve()
    try:
        with server.client(timeout=20) as client:
            wait_for(lambda: client.get("/api/sing/state").json()["salvaged"])
            state = client.get("/api/sing/state").json()
            [result] = state["salvaged"]
            assert result["status"] == "repaired" and result["student"] == "5001"
            student = next(s for s in state["students"] if s["code"] == "5001")
            assert student["interrupted"] and student["attempts_used"] == 0   # costs no retake
            page = client.get("/sing?lang=zh").text
            assert "启动时修复的中断录音" in page and result["zh"] in page
    finally:
        server.stop()
    assert target.exists() and not list(journal_dir(data_dir).glob("*.pcm"))
    assert np.isfinite(db["takes"].get("cut2")["duration_s"])


@pytest.mark.audio
@pytest.mark.browser
@needs_chromium
def test_the_page_records_a_scanned_student_from_the_keyboard(served, sing_into_mic):
    sync_api = pytest.importorskip("playwright.sync_api")
    client, _ = served
    sing_into_mic(demo_voice(60.0), RATE)
    with chromium(sync_api) as browser:
        page = page_of(browser, client)
        errors = page_errors(page)
        page.goto(str(client.base_url) + "/sing")
        expect = sync_api.expect
        expect(page.locator("#sing-no-student")).to_be_visible()
        # The scanner types into whatever has the focus: it must be the code input.
        page.keyboard.type("5001")
        page.keyboard.press("Enter")
        expect(page.locator("#sing-now .sing-name")).to_have_text("测试丙", timeout=20_000)
        page.click("#sing-record")
        # The meter and countdown move while the take runs …
        expect(page.locator("#sing-level-value")).to_contain_text("dBFS", timeout=20_000)
        expect(page.locator("#sing-remaining")).not_to_have_text("–")
        # … until the proctor stops it (after enough singing for a verdict).
        wait_for(lambda: (client.get("/api/sing/state").json()["recording"] or {}).get("elapsed_s", 0) >= 6)
        page.click("#sing-stop")
        verdict = page.locator("#sing-verdict")
        expect(verdict).to_be_visible(timeout=60_000)
        expect(verdict.locator(".sing-verdict-word")).to_have_text(re.compile("录音合格|需要重录"))
        expect(page.locator("#sing-record")).to_be_enabled()
        expect(page.locator("#sing-progress")).to_contain_text("/ 2")
    assert errors == []
