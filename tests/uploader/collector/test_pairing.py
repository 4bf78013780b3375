"""One-time pairing codes against a real collector under uvicorn: the dashboard's admin makes
one, a station redeems it once for its token, and wrong guesses are slowed down."""
from __future__ import annotations

import time

import httpx
import pytest

from uploader.collector import pairing
from uploader.collector.store import open_db


def _make(collector, station: str, **body) -> dict:
    r = httpx.post(f"{collector.url}/api/stations/{station}/pairing", json=body, timeout=30,
                   headers={"Authorization": f"Bearer {collector.admin}"})
    assert r.status_code == 200, r.text
    return r.json()


def _redeem(collector, code: str) -> httpx.Response:
    return httpx.post(collector.url + "/api/pair", json={"code": code}, timeout=30)


def test_a_code_gives_the_station_its_token_once(collector):
    made = _make(collector, "P01", school="测试实验小学", room="音乐教室")
    assert len(made["code"]) == 9 and made["code"][4] == "-"
    assert set(made["code"].replace("-", "")) <= set(pairing.ALPHABET)
    assert made["valid_s"] == 600
    # Typed as a teacher might: lower case, no dash.
    got = _redeem(collector, made["code"].replace("-", "").lower())
    assert got.status_code == 200, got.text
    doc = got.json()
    assert (doc["station_id"], doc["school"], doc["room"]) == ("P01", "测试实验小学", "音乐教室")
    heartbeat = httpx.post(f"{collector.url}/api/stations/P01/heartbeat", json={"at": "now"}, timeout=30,
                           headers={"Authorization": f"Bearer {doc['token']}"})
    assert heartbeat.status_code == 200
    again = _redeem(collector, made["code"])
    assert again.status_code == 403 and "已经用过" in again.json()["message_zh"]


def test_a_new_code_ends_the_old_one_and_pairing_again_replaces_the_token(collector):
    first = _make(collector, "P02")
    second = _make(collector, "P02")
    assert _redeem(collector, first["code"]).status_code == 403
    token = _redeem(collector, second["code"]).json()["token"]
    token2 = _redeem(collector, _make(collector, "P02")["code"]).json()["token"]
    assert token2 != token
    old = httpx.post(f"{collector.url}/api/stations/P02/heartbeat", json={}, timeout=30,
                     headers={"Authorization": f"Bearer {token}"})
    assert old.status_code == 401


def test_an_expired_code_is_refused(collector):
    made = _make(collector, "P03")
    db = open_db(collector.data_dir, collector.db_url)
    db.execute("UPDATE pairings SET expires_at = ? WHERE station = 'P03'", [time.time() - 1])
    db.close()
    assert _redeem(collector, made["code"]).status_code == 403


def test_only_the_district_admin_makes_codes(collector):
    r = httpx.post(f"{collector.url}/api/stations/P04/pairing", json={}, timeout=30)
    assert r.status_code == 401
    r = httpx.post(f"{collector.url}/api/stations/P04/pairing", json={}, timeout=30,
                   headers={"Authorization": "Bearer not-the-admin"})
    assert r.status_code == 401
    r = httpx.post(f"{collector.url}/api/stations/bad%20id/pairing", json={}, timeout=30,
                   headers={"Authorization": f"Bearer {collector.admin}"})
    assert r.status_code == 400


def test_wrong_guesses_are_slowed_down_and_only_the_code_is_stored(collector_factory):
    server = collector_factory()
    made = _make(server, "P05")
    for n in range(pairing.MISSES_PER_CLIENT):
        assert _redeem(server, f"AAAA-AAA{pairing.ALPHABET[n]}").status_code == 403
    slowed = _redeem(server, made["code"])           # even the right code waits now
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) > 0
    assert "秒后再试" in slowed.json()["message_zh"]
    db = open_db(server.data_dir, server.db_url)
    stored = db.query("SELECT code_sha256 FROM pairings")
    db.close()
    assert made["code"] not in str(stored)
