"""The database: WAL, full sync, per-package versions, upgrades in place; audit is append-only."""
import sqlite3

import pytest

from station import audit
from station.db import connect, open_db, upgrade, version_of


def test_wal_and_full_sync(tmp_path):
    db = open_db(tmp_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert version_of(db, "station") >= 1


def test_upgrade_in_place_keeps_rows(tmp_path):
    path = tmp_path / "t.db"

    def v1(db):
        db.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")

    def v2(db):
        db.execute("ALTER TABLE things ADD COLUMN colour TEXT NOT NULL DEFAULT 'red'")

    steps = {"demo": [v1]}
    db = connect(path)
    assert upgrade(db, ["demo"], steps.get) == {"demo": 1}
    db.execute("INSERT INTO things (name) VALUES ('kept')")
    db.conn.close()

    steps["demo"] = [v1, v2]
    db = connect(path)
    assert upgrade(db, ["demo"], steps.get) == {"demo": 2}
    assert db.execute("SELECT name, colour FROM things").fetchall() == [("kept", "red")]
    assert upgrade(db, ["demo"], steps.get) == {"demo": 2}  # nothing left to do


def test_failed_upgrade_leaves_the_previous_version(tmp_path):
    def v1(db):
        db.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")

    def broken(db):
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("bug in a migration")

    db = connect(tmp_path / "t.db")
    upgrade(db, ["demo"], {"demo": [v1]}.get)
    with pytest.raises(RuntimeError):
        upgrade(db, ["demo"], {"demo": [v1, broken]}.get)
    assert version_of(db, "demo") == 1
    assert "half" not in db.table_names()


def test_audit_log_refuses_update_and_delete(tmp_path):
    db = open_db(tmp_path)
    audit.record(db, "张老师", "sitting.open", "sitting", "20261122-01", None, {"state": "open"})
    raw = sqlite3.connect(tmp_path / "station.db")  # not our code: the database itself refuses
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE audit_log SET who = 'someone else'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM audit_log")
    raw.rollback()
    assert [e["who"] for e in audit.entries(db)] == ["张老师"]
