"""`station precheck` as information-center staff run it: on the virtual headset, with the
sound server gone, and with a collector that is down on pre-check day and up later."""
import json
import os
import subprocess

import pytest

from tests.station.servers import STATION, Collector, free_port


def precheck(*args, env=None):
    return subprocess.run([*STATION, "precheck", "--json", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def by_id(report):
    return {c["id"]: c for c in report["checks"]}


@pytest.fixture
def loopback(headset):
    """The earphones reach the microphone (an earpiece held to the mic, or a loopback cable)."""
    module = subprocess.run(["pactl", "load-module", "module-loopback", "source=qm_ear.monitor",
                             "sink=qm_mic", "latency_msec=20"], capture_output=True, text=True, check=True)
    yield
    subprocess.run(["pactl", "unload-module", module.stdout.strip()], check=False)


def test_the_virtual_headset_is_ready(loopback, data_dir, tmp_path):
    result = precheck("--no-network", "--html", str(tmp_path / "report.html"))
    report = json.loads(result.stdout)
    checks = by_id(report)
    audio = ("audio.output", "audio.input", "audio.loopback", "audio.sample_rate")
    assert set(audio) | {"disk.free"} <= checks.keys()
    # A busy test machine may make the virtual sound server miss a deadline during the tone;
    # the output check then warns, rightly. Every other audio check must pass.
    assert [(i, checks[i]["status"]) for i in audio[1:]] == [(i, "pass") for i in audio[1:]], \
        [checks[i] for i in audio]
    assert checks["audio.output"]["status"] == "pass" or checks["audio.output"]["details"]["underflows_in_tone"]
    assert checks["audio.loopback"]["details"]["latency_ms"] > 0
    assert report["overall"] != "fail" and result.returncode == 0, result.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert report["station_id"] in page and "audio.input" in page and "data:image/png;base64," in page


def test_without_a_loopback_the_loopback_check_is_skipped_not_failed(headset, data_dir):
    result = precheck("--no-network")
    checks = by_id(json.loads(result.stdout))
    assert checks["audio.loopback"]["status"] == "skip" and checks["audio.input"]["status"] == "pass"
    assert result.returncode == 0


def test_no_sound_server_fails_the_audio_checks_clearly(data_dir, tmp_path):
    gone = {"PULSE_SERVER": f"unix:{tmp_path}/no-such-server", "PULSE_RUNTIME_PATH": str(tmp_path)}
    result = precheck("--no-network", env=gone)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    checks = by_id(json.loads(result.stdout))
    for check_id in ("audio.output", "audio.input"):
        assert checks[check_id]["status"] == "fail"
        assert checks[check_id]["summary_zh"] and checks[check_id]["fix_zh"] and checks[check_id]["fix_en"]


def test_report_waits_for_the_collector_and_arrives_later(data_dir, tmp_path, station):
    port = free_port()
    data_dir.mkdir()
    collector_data = tmp_path / "collector"
    (data_dir / "station.toml").write_text(
        f'station_id = "S07"\n[upload]\ncollector_url = "http://127.0.0.1:{port}"\ntoken = "pending"\n',
        encoding="utf-8")
    down = precheck(env={"QM_ROOM_NOISE": "off"})
    report = json.loads(down.stdout)
    assert down.returncode == 1 and by_id(report)["network.collector"]["status"] == "fail"
    assert "稍后自动发送" not in down.stdout  # --json: stdout is the document only

    from station.db import open_db
    from station.outbox import pending
    assert [m["kind"] for m in pending(open_db(data_dir), due_only=False)] == ["precheck"]

    collector = Collector(collector_data, port)
    try:
        token = collector.add_station("S07")
        toml = (data_dir / "station.toml").read_text(encoding="utf-8").replace("pending", token)
        (data_dir / "station.toml").write_text(toml, encoding="utf-8")
        import station.outbox as outbox
        from station.context import Station
        from station.precheck import send_pending
        db = open_db(data_dir)
        db.execute("UPDATE outbox SET next_attempt_at = 0")  # don't wait for the backoff
        assert send_pending(Station.open(str(data_dir))) == (1, 0)
        with collector.admin() as admin:
            stations = admin.get("/api/stations").json()
        row = next(s for s in stations["stations"] if s["id"] == "S07")
        assert row["precheck"]["overall"] == "fail"  # the report from the day the collector was down
        assert "network.collector" in json.dumps(row["precheck"]["failing"])
        assert outbox.pending(db, due_only=False) == []
    finally:
        collector.stop()
