"""Heartbeats, pre-check reports, manifests and sitting completeness, GET /api/stations and the
dashboard page, against a real uvicorn."""
from __future__ import annotations

import hashlib
import hmac
import json
import os

import httpx
import pytest


def manifest_of(station: str, sitting: str, files: dict[str, bytes], **extra) -> dict:
    return {"format": "qm-bundle/2", "station": station, "sitting": sitting, "kind": "singing",
            "item": None, "opened_at": "2026-05-20T08:00:00+08:00",
            "closed_at": "2026-05-20T08:40:00+08:00", "sealed_at": "2026-05-20T08:40:05+08:00",
            "files": [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                      for p, d in files.items()], **extra}


def canonical(manifest: dict) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature_of(token: str, data: bytes) -> str:
    """As the contract says, written out here so the test does not trust the code under test."""
    key = hashlib.sha256(b"qm-manifest-key:" + token.encode()).digest()
    message = b"qm-bundle/2 manifest sha256 " + hashlib.sha256(data).hexdigest().encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_manifest(token: str, station: str, sitting: str, files: dict[str, bytes]) -> tuple[bytes, str]:
    data = canonical(manifest_of(station, sitting, files))
    return data, signature_of(token, data)


def seal_of(manifest: bytes) -> str:
    n = int.from_bytes(hashlib.sha256(manifest).digest()[:10], "big")
    chars = "".join("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[(n >> (75 - 5 * i)) & 31] for i in range(16))
    return "-".join(chars[i:i + 4] for i in (0, 4, 8, 12))


def seals(admin, station_id: str) -> dict:
    return {s["sitting"]: s for s in station_row(admin, station_id)["seals"]}


@pytest.fixture
def admin(collector):
    with httpx.Client(base_url=collector.url, timeout=30,
                      headers={"Authorization": f"Bearer {collector.admin}"}) as client:
        yield client


def station_row(admin, station_id: str) -> dict:
    answer = admin.get("/api/stations")
    assert answer.status_code == 200
    return next(s for s in answer.json()["stations"] if s["id"] == station_id)


def seal_row(admin, station_id: str, sitting: str) -> dict:
    return next(s for s in station_row(admin, station_id)["seals"] if s["sitting"] == sitting)


def test_sitting_is_complete_when_manifest_and_every_file_are_in(collector, tus_for, admin, sitting):
    tus = tus_for()
    files = {"recordings/0001-1.flac": os.urandom(30_000), "results.csv": "编号,成绩\n".encode()}
    manifest, signature = signed_manifest(collector.tokens["S01"], "S01", sitting, files)
    tus.upload(files["results.csv"], path="results.csv")
    tus.upload(manifest, path="manifest.json", signature=signature)   # one listed file is still missing
    row = seal_row(admin, "S01", sitting)
    assert row["seal_code"] == seal_of(manifest)
    assert row["signature_ok"] and not row["complete"]
    tus.upload(files["recordings/0001-1.flac"], path="recordings/0001-1.flac")
    row = seal_row(admin, "S01", sitting)
    assert row["complete"]
    assert collector.stored(sitting, "manifest.json").read_bytes() == manifest


@pytest.mark.parametrize("how", ["none", "tampered", "other_station", "empty_key"])
def test_a_manifest_without_its_signature_is_refused_before_any_byte(collector, tus_for, admin, sitting, how):
    tus = tus_for()
    files = {"results.csv": b"code,value\n0001,12.5\n"}
    manifest, signature = signed_manifest(collector.tokens["S01"], "S01", sitting, files)
    signature = {"none": None, "tampered": signature[:-1] + ("0" if signature[-1] != "0" else "1"),
                 "other_station": signature_of(collector.tokens["S02"], manifest),
                 "empty_key": hmac.new(b"", b"qm-bundle/2 manifest sha256 "
                                       + hashlib.sha256(manifest).hexdigest().encode(),
                                       hashlib.sha256).hexdigest()}[how]
    answer = tus.create(manifest, path="manifest.json", signature=signature)
    assert answer.status_code == 422 and answer.json()["error"] == "signature_bad"
    assert "token" in answer.json()["message_en"] and "令牌" in answer.json()["message_zh"]
    assert sitting not in seals(admin, "S01")
    assert not collector.stored(sitting, "manifest.json").exists()


@pytest.mark.parametrize("reformat", [
    lambda m: json.dumps(m, ensure_ascii=False, indent=1).encode(),
    lambda m: canonical(m).replace(b'","', b'", "', 1),
    lambda m: canonical(m) + b"\n",
    lambda m: json.dumps(m, sort_keys=True, separators=(",", ":")).encode(),  # \\u escapes
])
def test_a_signed_manifest_in_another_serialization_is_never_stored(collector, tus_for, admin, sitting, reformat):
    # A token holder grinding whitespace for a seal code that matches a written one: the
    # signature is good (made over these very bytes), but only the canonical bytes are taken.
    tus = tus_for()
    files = {"results.csv": b"x"}
    data = reformat(manifest_of("S01", sitting, files, school="测试实验小学"))
    assert data != canonical(json.loads(data))
    created = tus.create(data, path="manifest.json", signature=signature_of(collector.tokens["S01"], data))
    assert created.status_code == 201
    answer = tus.patch(created.headers["Location"], 0, data, checksum=data)
    assert answer.status_code == 422 and answer.json()["error"] == "manifest_not_canonical"
    assert sitting not in seals(admin, "S01")
    assert not collector.stored(sitting, "manifest.json").exists()
    assert tus.head(created.headers["Location"]).status_code in (404, 410)  # discarded


def test_stations_list_shows_progress_bytes_and_files(collector, tus_for, admin, sitting):
    tus = tus_for("S02")
    files = {"a.bin": os.urandom(1000), "b.bin": os.urandom(2000)}
    manifest, signature = signed_manifest(collector.tokens["S02"], "S02", sitting, files)
    before = station_row(admin, "S02")
    tus.upload(files["a.bin"], station="S02", path="a.bin")
    tus.upload(manifest, station="S02", path="manifest.json", signature=signature)
    row = station_row(admin, "S02")
    assert row["school"] == "学校S02" and row["room"] == "考场S02"
    assert row["sittings_closed"] == before["sittings_closed"] + 1
    assert row["files_listed"] - before["files_listed"] == 2
    assert row["files_arrived"] - before["files_arrived"] == 1
    assert row["bytes_listed"] - before["bytes_listed"] == 3000
    assert row["bytes_arrived"] - before["bytes_arrived"] == 1000


def test_heartbeat_is_recorded_for_the_tokens_own_station(collector, tus_for, admin):
    tus = tus_for()
    beat = {"version": "0.1.0", "at": "2026-05-20T08:00:00+08:00", "sittings_open": 1,
            "queue": {"pending": 3, "bytes_pending": 1234}}
    answer = tus.http.post("/api/stations/S01/heartbeat", json=beat)
    assert answer.status_code == 200
    hb = station_row(admin, "S01")["last_heartbeat"]
    assert hb["version"] == "0.1.0" and hb["sittings_open"] == 1
    assert hb["queue"] == {"pending": 3, "bytes_pending": 1234}


def test_heartbeat_for_another_station_is_403(collector, tus_for):
    answer = tus_for().http.post("/api/stations/S02/heartbeat", json={"version": "x"})
    assert answer.status_code == 403
    assert answer.json()["message_zh"]


def test_heartbeat_without_token_is_401(collector):
    assert httpx.post(collector.url + "/api/stations/S01/heartbeat", json={}).status_code == 401


def test_heartbeat_that_is_not_json_is_400(collector, tus_for):
    answer = tus_for().http.post("/api/stations/S01/heartbeat", content=b"{not json")
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_json"


def test_precheck_report_shows_its_failing_checks(collector, tus_for, admin):
    report = {"station_id": "S03", "started_at": "2026-05-19T09:00:00+08:00", "duration_s": 12.5,
              "overall": "fail", "checks": [
                  {"id": "audio.output", "status": "pass", "summary_zh": "耳机正常",
                   "summary_en": "Earphones work", "details": {}},
                  {"id": "serial./dev/ttyUSB0", "status": "fail", "summary_zh": "串口无响应",
                   "summary_en": "The serial port does not answer", "details": {}}]}
    answer = tus_for("S03").http.post("/api/stations/S03/precheck", json=report)
    assert answer.status_code == 200
    pc = station_row(admin, "S03")["precheck"]
    assert pc["overall"] == "fail"
    assert [c["id"] for c in pc["failing"]] == ["serial./dev/ttyUSB0"]


@pytest.mark.parametrize("report", [{"overall": "great", "checks": []},
                                    {"overall": "pass", "checks": [{"id": "x", "status": "?"}]},
                                    {"overall": "pass"}])
def test_malformed_precheck_is_422_and_not_recorded(collector, tus_for, admin, report):
    before = station_row(admin, "S01")["precheck"]
    answer = tus_for().http.post("/api/stations/S01/precheck", json=report)
    assert answer.status_code == 422
    assert answer.json()["error"] == "bad_precheck"
    assert station_row(admin, "S01")["precheck"] == before


def test_stations_list_needs_the_admin_token(collector):
    assert httpx.get(collector.url + "/api/stations").status_code == 401
    station = {"Authorization": f"Bearer {collector.tokens['S01']}"}
    assert httpx.get(collector.url + "/api/stations", headers=station).status_code == 401


def test_dashboard_login_then_rows_in_chinese_and_english(collector, tus_for, sitting):
    tus = tus_for()
    files = {"results.csv": b"0001,1\n"}
    manifest, signature = signed_manifest(collector.tokens["S01"], "S01", sitting, files)
    tus.upload(files["results.csv"])
    tus.upload(manifest, path="manifest.json", signature=signature)
    with httpx.Client(base_url=collector.url, timeout=30) as browser:
        login = browser.get("/")
        assert "登录" in login.text and "Log in" not in login.text.split("<form")[0]
        wrong = browser.post("/login", data={"token": "guess"})
        assert wrong.status_code == 401
        assert "管理令牌不正确" in wrong.text
        ok = browser.post("/login", data={"token": collector.admin})
        assert ok.status_code == 303
        page = browser.get("/")
        assert page.status_code == 200
        assert "区县汇集看板" in page.text and "应急事件" in page.text
        embedded = json.loads(page.text.split('<script type="application/json" id="doc">')[1]
                              .split("</script>")[0])
        school = next(s for s in embedded["schools"] if s["code"] == "学校S01")
        assert seal_of(manifest) in school["seal_codes"]
        assert "/api/dashboard/events" in page.text and "EventSource" in page.text  # live
        assert "http://" not in page.text and "https://" not in page.text  # nothing from the internet
        english = browser.get("/?lang=en")
        assert "District collector dashboard" in english.text and "Sittings and seal codes" in english.text
        assert browser.get("/api/stations").status_code == 200  # the session cookie works
