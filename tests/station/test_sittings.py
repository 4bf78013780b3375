"""Sittings: opened, closed for good, listed; every change in the audit log."""
import json

from tests.helpers import SEAL_CODE


def open_(station, *args):
    return station("session", "open", *args, "--json")


def test_open_close_list(station, data_dir):
    s = json.loads(open_(station, "--kind", "singing", "--by", "张老师").stdout)
    assert s["state"] == "open" and s["opened_by"] == "张老师"
    pe = json.loads(open_(station, "--kind", "pe", "--item", "run_50m").stdout)
    assert pe["item"] == "run_50m" and pe["id"] != s["id"]
    listed = json.loads(station("session", "list", "--json", check=True).stdout)
    assert [x["id"] for x in listed] == [s["id"], pe["id"]]

    closed = json.loads(station("session", "close", s["id"], "--by", "李老师", "--json", check=True).stdout)
    assert closed["state"] == "closed" and closed["closed_by"] == "李老师" and closed["closed_at"]
    assert SEAL_CODE.fullmatch(closed["seal_code"])  # sealed at once
    queued = json.loads(station("upload", "status", "--json", check=True).stdout)["sittings"]
    assert [q["seal_code"] for q in queued] == [closed["seal_code"]]
    still_open = json.loads(station("session", "list", "--open", "--json", check=True).stdout)
    assert [x["id"] for x in still_open] == [pe["id"]]

    from station.audit import entries
    from station.db import open_db
    log = entries(open_db(data_dir), "sitting", s["id"])
    assert [(e["action"], e["who"]) for e in log] == [
        ("sitting.open", "张老师"), ("sitting.close", "李老师"), ("sitting.seal", "李老师")]


def test_closing_is_final(station):
    s = json.loads(open_(station, "--kind", "singing").stdout)
    station("session", "close", s["id"], check=True)
    again = station("session", "close", s["id"])
    assert again.returncode == 2 and "已" in again.stderr and "final" in again.stderr


def test_one_open_sitting_per_kind_and_item(station):
    first = json.loads(open_(station, "--kind", "pe", "--item", "weight").stdout)
    clash = open_(station, "--kind", "pe", "--item", "weight")
    assert clash.returncode == 2 and first["id"] in clash.stderr
    assert open_(station, "--kind", "pe", "--item", "height").returncode == 0


def test_bad_requests_are_explained(station):
    assert "--item" in open_(station, "--kind", "pe").stderr
    unknown = open_(station, "--kind", "pe", "--item", "swimming")
    assert unknown.returncode == 2 and "swimming" in unknown.stderr
    missing = station("session", "close", "20990101-01")
    assert missing.returncode == 2 and "20990101-01" in missing.stderr


def test_id_is_printed_last_for_scripts(station):
    result = station("session", "open", "--kind", "singing", check=True)
    sitting_id = result.stdout.strip().splitlines()[-1]
    listed = json.loads(station("session", "list", "--json", check=True).stdout)
    assert listed[0]["id"] == sitting_id
