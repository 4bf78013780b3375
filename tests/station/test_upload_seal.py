"""Sealing and signing as an attacker and an unlucky district would try them: a sitting closed
before the token was set, a station given a new token with bundles still unsent. Each sitting
reaches the collector whole, signed, under the seal code the proctor copied."""
import json

import pytest

from tests.helpers import SEAL_CODE
from tests.station.servers import Collector, close_pe_sitting, district_row, write_upload_config


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path / "collector")
    yield c
    c.stop()


def test_a_sitting_closed_before_the_token_was_set_uploads_once_it_is(station, data_dir, tmp_path, collector):
    token = collector.add_station("S01")
    write_upload_config(data_dir, collector.url, "")
    closed = close_pe_sitting(station, tmp_path)
    assert SEAL_CODE.fullmatch(closed["seal_code"])  # sealed: no key is needed to seal
    refused = station("upload", "run", "--once")
    assert refused.returncode == 2
    assert "令牌" in refused.stderr and "token" in refused.stderr and "add-station" in refused.stderr
    status = json.loads(station("upload", "status", "--json", check=True).stdout)["sittings"]
    assert status[0]["state"] != "done"

    write_upload_config(data_dir, collector.url, token)
    station("upload", "run", "--once", check=True)
    row = district_row(collector)
    assert row["sittings_complete"] == 1 and row["files_arrived"] == row["files_listed"] >= 2
    assert row["seals"][0]["signature_ok"] and row["seals"][0]["seal_code"] == closed["seal_code"]
    status = json.loads(station("upload", "status", "--json", check=True).stdout)["sittings"]
    assert status[0]["state"] == "done" and status[0]["seal_code"] == closed["seal_code"]


def test_a_re_keyed_station_still_uploads_what_it_sealed_under_the_old_token(station, data_dir, tmp_path,
                                                                            collector):
    old = collector.add_station("S01")
    write_upload_config(data_dir, collector.url, old)
    closed = close_pe_sitting(station, tmp_path)
    new = collector.add_station("S01")   # the district gives the station a new token
    assert new != old
    write_upload_config(data_dir, collector.url, new)
    station("upload", "run", "--once", check=True)
    row = district_row(collector)
    assert row["sittings_complete"] == 1
    assert row["seals"][0]["signature_ok"] and row["seals"][0]["seal_code"] == closed["seal_code"]


def test_the_sheet_carries_the_long_seal_code(station, data_dir, tmp_path):
    write_upload_config(data_dir, "", "")
    closed = close_pe_sitting(station, tmp_path)
    sheet = station("session", "sheet", closed["id"], check=True).stdout
    assert closed["seal_code"] in sheet and len(closed["seal_code"]) == 19


def test_two_sealers_at_once_make_one_bundle(station, data_dir):
    """The page closing a sitting and the background pass sealing what a crash left unsealed
    can meet: they must not build the same bundle together."""
    import threading

    from station import sealing, sittings
    from station.context import Station
    from uploader.bundle import read_manifest

    opened = json.loads(station("session", "open", "--kind", "singing", "--json", check=True).stdout)
    sittings.close_sitting(Station.open(str(data_dir)).db, opened["id"], "张老师")  # closed, not sealed
    start, rows, errors = threading.Barrier(6), [], []

    def seal():
        s = Station.open(str(data_dir))
        start.wait()
        try:
            rows.append(sealing.seal_and_queue(s, opened["id"]))
        except Exception as e:  # noqa: BLE001 - every failure is the finding
            errors.append(e)

    threads = [threading.Thread(target=seal) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(rows) == 6
    manifest, data = read_manifest(data_dir / "bundles" / opened["id"])
    assert {r["manifest_sha256"] for r in rows} == {__import__("hashlib").sha256(data).hexdigest()}
    assert not (data_dir / "bundles" / (opened["id"] + ".partial")).exists()
    status = json.loads(station("upload", "status", "--json", check=True).stdout)["sittings"]
    assert len(status) == 1
