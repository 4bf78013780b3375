"""A school without a network: `station upload export --to STICK` and, at the district,
`station collector import STICK` with the checks an upload gets. A tampered stick is refused
with the reason and nothing of it stored; a sitting that comes by hand and by network (either
first) is stored once."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.station.servers import Collector, import_roster, last_line, wait_for


def collector_cmd(station, *args: str):
    return station("collector", *args)


def stored_rows(collector_data: Path, sitting: str) -> list[tuple]:
    with sqlite3.connect(collector_data / "collector.db") as db:
        return db.execute("SELECT path, state, via FROM uploads WHERE sitting = ? ORDER BY path, via",
                          [sitting]).fetchall()


def write_config(data_dir: Path, token: str, url: str = "") -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    upload = f'collector_url = "{url}"\n' if url else ""
    (data_dir / "station.toml").write_text(
        f'station_id = "S01"\nschool = "山区小学"\n[upload]\n{upload}token = "{token}"\n', encoding="utf-8")


@pytest.fixture
def district(tmp_path, station):
    """The district's collector data dir with S01 registered to school 4401003 (not serving)."""
    data = tmp_path / "collector"
    schools = tmp_path / "schools.csv"
    schools.write_text("学校代码,学校名称,工作站数\n4401003,山区小学,1\n", encoding="utf-8")
    station("collector", "schools", "import", str(schools), "--data", str(data), check=True)
    token = last_line("collector", "add-station", "S01", "--school", "4401003", "--data", str(data))
    return data, token


@pytest.fixture
def sealed(station, data_dir, tmp_path, district):
    """A closed PE sitting on an offline station, with an incident filed while it was open."""
    _, token = district
    write_config(data_dir, token)
    import_roster(station, tmp_path / "r.csv", "学籍号,姓名,性别,年级\n0001,王子涵,男,四年级\n")
    sitting = last_line("session", "open", "--kind", "pe", "--item", "sit_and_reach")
    filed = json.loads(station("incident", "add", "--category", "unwell", "--text", "学生头晕",
                               "--sitting", sitting, "--students", "0001", "--action", "送医务室",
                               "--json", check=True).stdout)
    assert filed["delivered"] is False and filed["sealed_already"] is False
    closed = json.loads(station("session", "close", sitting, "--json", check=True).stdout)
    return sitting, closed["seal_code"]


def export(station, stick: Path, *sittings: str):
    return station("upload", "export", "--to", str(stick), *sittings)


def test_usb_round_trip(station, data_dir, tmp_path, district, sealed):
    data, _ = district
    sitting, seal = sealed
    stick = tmp_path / "stick"
    out = export(station, stick, sitting)
    assert out.returncode == 0, out.stderr
    bundle = stick / "S01" / sitting
    names = sorted(p.name for p in bundle.iterdir())
    assert names == ["incidents.json", "manifest.json", "manifest.sig", "results.csv", "results.json"]
    assert json.loads((bundle / "incidents.json").read_text("utf-8"))[0]["students"] == ["0001"]
    seal_list = (stick / "S01" / "封签清单-S01.html").read_text("utf-8")
    assert seal in seal_list and sitting in seal_list and "签字" in seal_list
    assert seal in out.stdout

    imported = station("collector", "import", str(stick), "--data", str(data), "--json")
    assert imported.returncode == 0, imported.stderr
    [row] = json.loads(imported.stdout)["sittings"]
    assert (row["station"], row["sitting"], row["status"], row["seal_code"]) == ("S01", sitting, "stored", seal)
    for name in names:
        if name != "manifest.sig":   # the signature is checked, not stored as a file
            assert (data / "files" / "S01" / sitting / name).read_bytes() == (bundle / name).read_bytes()
    assert not (data / "files" / "S01" / sitting / "manifest.sig").exists()
    assert {r[2] for r in stored_rows(data, sitting)} == {"usb"}

    again = station("collector", "import", str(stick), "--data", str(data), "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["sittings"][0]["status"] == "already"
    assert len(stored_rows(data, sitting)) == 4  # nothing stored twice

    # The district's form says it came by hand, complete.
    form = tmp_path / "form.csv"
    station("collector", "report", "upload-status", "--data", str(data), "--csv", str(form), check=True)
    lines = form.read_text("utf-8-sig").splitlines()
    assert lines[1].split(",")[1:3] == ["4401003", "山区小学"]
    assert ",已收齐," in lines[1] and ",U盘," in lines[1] and seal in lines[1]


@pytest.mark.parametrize("tamper, path, reason", [
    ("file", "results.csv", "SHA-256"),
    ("size", "results.json", "大小"),
    ("manifest", "manifest.json", "签名"),
    ("missing", "results.json", "缺少"),
    ("signature", "manifest.sig", "签名"),
    ("unsigned", "manifest.sig", "签名"),
])
def test_a_tampered_stick_is_refused_and_nothing_stored(station, tmp_path, district, sealed,
                                                         tamper, path, reason):
    data, _ = district
    sitting, _ = sealed
    stick = tmp_path / "stick"
    assert export(station, stick).returncode == 0
    target = stick / "S01" / sitting / path
    if tamper == "file":      # same size, one digit changed
        text = target.read_bytes()
        target.write_bytes(text[:-3] + bytes([text[-3] ^ 1]) + text[-2:])
    elif tamper == "size":
        target.write_bytes(target.read_bytes() + b" ")
    elif tamper == "manifest":  # a listed hash rewritten to match an altered file: the signature fails
        manifest = json.loads(target.read_text("utf-8"))
        manifest["closed_at"] = "2026-01-01T00:00:00+08:00"
        target.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    elif tamper == "signature":  # signed under another key (a token not this station's)
        from uploader import contract
        data_bytes = (target.parent / "manifest.json").read_bytes()
        target.write_text(contract.sign(data_bytes, contract.signing_key("another-token")), encoding="ascii")
    else:
        target.unlink()
    out = station("collector", "import", str(stick), "--data", str(data))
    assert out.returncode == 1
    refused = [line for line in out.stdout.splitlines() if "拒收" in line]
    shown = "manifest.json" if tamper == "signature" else path   # the manifest is what it fails to vouch for
    assert refused and sitting in refused[0] and shown in refused[0] and reason in refused[0]
    assert sitting in out.stdout and "sitting" in out.stdout  # English too
    assert stored_rows(data, sitting) == []
    assert not (data / "files" / "S01" / sitting).exists()
    assert not list((data / "incoming").glob("usb-*"))    # nothing left half-way either


def test_same_sitting_by_usb_then_by_network_is_stored_once(station, data_dir, tmp_path, district, sealed):
    data, token = district
    sitting, seal = sealed
    stick = tmp_path / "stick"
    assert export(station, stick).returncode == 0
    assert station("collector", "import", str(stick), "--data", str(data)).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in (data / "files").rglob("*") if p.is_file()}

    collector = Collector(data)
    try:
        write_config(data_dir, token, collector.url)
        station("upload", "run", "--once", check=True)
        status = json.loads(station("upload", "status", "--json", check=True).stdout)["sittings"]
        assert status[0]["state"] == "done" and status[0]["seal_code"] == seal
        rows = stored_rows(data, sitting)
        assert sorted(r[0] for r in rows) == ["incidents.json", "manifest.json", "results.csv", "results.json"]
        assert {r[2] for r in rows} == {"usb"}   # the network sent nothing again
        after = {p: p.stat().st_mtime_ns for p in (data / "files").rglob("*") if p.is_file()}
        assert after == before                   # nothing rewritten
        # The incident came sealed in the bundle and again through the outbox: filed once.
        with collector.admin() as admin:
            doc = admin.get("/api/dashboard").json()
        [incident] = doc["incidents"]
        assert incident["station"] == "S01" and incident["sitting"] == sitting
        school = next(s for s in doc["schools"] if s["code"] == "4401003")
        assert school["complete"] and school["via"] == ["usb"] and school["sittings_by_hand"] == 1
    finally:
        collector.stop()


def test_same_sitting_by_network_then_by_usb_is_already_there(station, data_dir, tmp_path, district, sealed):
    data, token = district
    sitting, _ = sealed
    collector = Collector(data)
    try:
        write_config(data_dir, token, collector.url)
        station("upload", "run", "--once", check=True)
        with collector.admin() as admin:
            wait_for(lambda: admin.get("/api/dashboard").json()["summary"]["sittings_complete"] == 1)
    finally:
        collector.stop()
    stick = tmp_path / "stick"
    assert export(station, stick).returncode == 0
    out = station("collector", "import", str(stick), "--data", str(data), "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["sittings"][0]["status"] == "already"
    rows = stored_rows(data, sitting)
    assert len(rows) == 4 and {r[2] for r in rows} == {None}   # by network, each once
