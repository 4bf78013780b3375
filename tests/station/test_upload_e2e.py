"""A station and a collector, started as the README says: a closed sitting uploads by itself
and the district sees the station's heartbeat and every file arrived."""
import json

from tests.station.servers import Collector, import_roster, station_serve, wait_for


def test_a_closed_sitting_uploads_by_itself(station, data_dir, tmp_path):
    collector = Collector(tmp_path / "collector")
    server = None
    try:
        token = collector.add_station("S01")
        data_dir.mkdir()
        (data_dir / "station.toml").write_text(
            f'station_id = "S01"\nschool = "测试实验小学"\n'
            f'[upload]\ncollector_url = "{collector.url}"\ntoken = "{token}"\n', encoding="utf-8")
        import_roster(station, tmp_path / "r.csv", "学籍号,姓名,性别,年级\n0001,王子涵,男,四年级\n")
        server = station_serve()
        sitting = station("session", "open", "--kind", "pe", "--item", "sit_and_reach",
                          check=True).stdout.strip().splitlines()[-1]
        closed = json.loads(station("session", "close", sitting, "--json", check=True).stdout)

        with collector.admin() as admin:
            def arrived():
                rows = admin.get("/api/stations").json()["stations"]
                row = next(r for r in rows if r["id"] == "S01")
                return row if row["sittings_complete"] == 1 and row["last_heartbeat"] else None

            row = wait_for(arrived)
        assert row["files_arrived"] == row["files_listed"] >= 2  # results.csv, results.json
        assert row["seals"][0]["seal_code"] == closed["seal_code"] and row["seals"][0]["signature_ok"]
        status = json.loads(station("upload", "status", "--json", check=True).stdout)["sittings"]
        assert wait_for(lambda: json.loads(station("upload", "status", "--json").stdout)
                        ["sittings"][0]["state"] == "done")
        assert status[0]["seal_code"] == closed["seal_code"]
        stored = collector.data / "files" / "S01" / sitting / "results.csv"
        assert stored.read_bytes() == (data_dir / "bundles" / sitting / "results.csv").read_bytes()
    finally:
        if server:
            server.stop()
        collector.stop()
