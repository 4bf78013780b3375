"""The PE runtime: a sitting's flow on its own connection, the checkpointer, the shutdown."""
import sqlite3

import pytest
import serial
import sqlite_utils

from devices.drivers import qm_frame
from pe_station import rules, schema
from pe_station.runtime import Runtime
from tests.pe_station.conftest import ROSTER
from tests.pe_station.test_service import wait_for


@pytest.fixture
def runtime(tmp_path, pty_pair):
    path = tmp_path / "station.db"
    connections = []

    def connect():
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        connections.append(conn)
        return sqlite_utils.Database(conn)

    for migration in schema.MIGRATIONS:
        migration(connect())
    pair = pty_pair()
    made = Runtime(connect=connect, items=rules.load(), rawlog_dir=tmp_path / "raw",
                   devices=[{"name": "SR-1", "driver": "qm-frame", "port": pair.station_end,
                             "item": "sit_and_reach"},
                            {"name": "scale-1", "driver": "mt-sics", "port": "/dev/nonexistent",
                             "item": "weight"}],
                   lookup=lambda db: ROSTER.get)
    made.pair, made.connect, made.connections = pair, connect, connections
    yield made
    made.stop()


def test_a_sitting_runs_once_on_its_own_connection_until_stopped(runtime):
    events = []
    service = runtime.start("20261122-01", "sit_and_reach", on_event=events.append)
    assert runtime.start("20261122-01", "sit_and_reach") is service       # started once
    assert [d.name for d in service.devices] == ["SR-1"]                 # its item's devices
    assert service.flow.db.conn not in runtime.connections[:1]
    # Its commits never stop to checkpoint: the checkpointer does it beside them.
    assert service.flow.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    wait_for(lambda: service.status()[0]["status"] == "connected")
    service.flow.scan("0001", "张老师")
    other = runtime.connect()
    with serial.Serial(runtime.pair.device_end) as meter:
        meter.write(qm_frame.format_frame("SR-1", "sit_and_reach", "", "12.5", "cm"))
        wait_for(lambda: [r["rounded"] for r in other.query("SELECT rounded FROM pe_attempts")] == ["12.5"])
    assert [e["type"] for e in events if e["type"] in ("scan", "attempt")] == ["scan", "attempt"]
    runtime.stop_sitting("20261122-01")
    assert runtime.get("20261122-01") is None and runtime.running() == {}
    assert service.status()[0]["status"] == "stopped" or not service._readers


def test_the_checkpointer_copies_commits_into_the_database_file(runtime, tmp_path):
    service = runtime.start("20261122-01", "sit_and_reach")
    service.flow.scan("0001", "张老师")      # a commit, in the WAL only: its connection never checkpoints

    def in_the_file() -> int:
        # immutable=1 reads the database file alone, without the WAL.
        conn = sqlite3.connect(f"file:{tmp_path / 'station.db'}?immutable=1", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM pe_results").fetchone()[0]
        except sqlite3.OperationalError:          # not even the tables are in the file yet
            return 0
        finally:
            conn.close()

    wait_for(lambda: in_the_file() == 1, timeout=10)
    runtime.stop()
    runtime.stop()                            # a second stop (atexit after Ctrl-C) is harmless
    assert not runtime._checkpointer.is_alive()


def test_a_bmi_sitting_reads_the_height_and_weight_devices(runtime):
    service = runtime.start("20261122-02", "bmi")
    assert sorted(d.name for d in service.devices) == ["scale-1"]       # SR-1 measures another item
    assert set(service.flow.measured) == {"height", "weight"}
