"""The collector's index on SQLite and on PostgreSQL (Debian's, tests/services.py): the same
migrations make the same tables, a district's existing database moves on, a write is all or
nothing, and named locks keep two collector processes' check-then-write apart."""
from __future__ import annotations

import subprocess
import threading
import types
from pathlib import Path

import pytest
import sqlite_utils

from uploader.collector.index import redact, to_format_style
from uploader.collector.schema import MIGRATIONS
from uploader.collector.store import open_db, schema_version

ROOT = Path(__file__).resolve().parents[3]
# The last release whose migrations were written with sqlite-utils (user_version 5).
SQLITE_UTILS_RELEASE = "d88963c"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index' / 'collector.db'}"
    return request.getfixturevalue("postgres_url")


def columns(index) -> dict[str, set[str]]:
    if index.dialect == "sqlite":
        tables = [r["name"] for r in index.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: {c["name"] for c in index.query(f'PRAGMA table_info("{t}")')} for t in tables}
    out: dict[str, set[str]] = {}
    for row in index.query("SELECT table_name, column_name FROM information_schema.columns "
                           "WHERE table_schema = 'public'"):
        out.setdefault(row["table_name"], set()).add(row["column_name"])
    return out


def test_placeholders_are_rewritten_outside_string_literals_only():
    assert to_format_style("SELECT a FROM t WHERE b = ? AND c LIKE 'x%?' AND d = '%'") == \
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%?' AND d = '%%'"
    assert to_format_style("SELECT 'it''s ?' , ?") == "SELECT 'it''s ?' , %s"


def test_a_password_never_reaches_a_log_line():
    assert redact("postgresql://qm:s3cret@db:5432/qm") == "postgresql://qm:***@db:5432/qm"
    assert redact("postgresql://qm@db/qm") == "postgresql://qm@db/qm"


def test_both_databases_get_the_same_tables_and_version(tmp_path, postgres_url):
    lite = open_db(tmp_path / "lite")
    pg = open_db(tmp_path / "pg", postgres_url)
    try:
        assert schema_version(lite) == schema_version(pg) == len(MIGRATIONS)
        assert columns(lite) == columns(pg)
        # The arrival triggers work alike: a file done counts once, however often it is marked.
        for index in (lite, pg):
            index.insert("uploads", {"id": "u1", "station": "S01", "sitting": "A", "path": "p",
                                     "length": 5 * 1024 ** 3, "offset": 0, "state": "receiving"})
            index.update("uploads", {"id": "u1"}, {"state": "done"})
            index.update("uploads", {"id": "u1"}, {"state": "done"})
            assert index.query("SELECT files, bytes, via FROM arrivals") == \
                [{"files": 1, "bytes": 5 * 1024 ** 3, "via": "network"}]
    finally:
        lite.close()
        pg.close()


def test_a_districts_existing_database_moves_on_with_its_data(tmp_path):
    """A collector.db made by the release whose migrations used sqlite-utils (user_version 5)."""
    source = subprocess.run(["git", "show", f"{SQLITE_UTILS_RELEASE}:uploader/collector/schema.py"],
                            cwd=ROOT, capture_output=True, text=True)
    if source.returncode != 0:
        pytest.skip("the old release is not in this clone's history")
    old = types.ModuleType("old_schema")
    exec(compile(source.stdout, "old_schema.py", "exec"), old.__dict__)
    path = tmp_path / "collector.db"
    legacy = sqlite_utils.Database(path)
    for number, step in enumerate(old.MIGRATIONS, start=1):
        step(legacy)
        legacy.execute(f"PRAGMA user_version={number}")
    legacy["stations"].insert({"id": "S01", "token_sha256": "ab" * 32, "school": "4401001"})
    legacy.conn.commit()
    legacy.close()

    index = open_db(tmp_path)
    try:
        assert schema_version(index) == len(MIGRATIONS)
        assert index.value("SELECT school FROM stations WHERE id = 'S01'") == "4401001"
        assert index.count("upload_holds") == 0  # the new tables are there
    finally:
        index.close()


def test_a_newer_schema_than_the_program_stops_the_start(tmp_path):
    index = open_db(tmp_path)
    index.insert("schema_version", {"version": len(MIGRATIONS) + 1, "applied_at": "later"})
    index.close()
    with pytest.raises(RuntimeError, match="upgrade the collector"):
        open_db(tmp_path)


def test_a_failed_write_leaves_nothing(db_url, tmp_path):
    index = open_db(tmp_path / "data", db_url)
    try:
        with pytest.raises(ZeroDivisionError):
            with index.transaction("station:S01"):
                index.insert("stations", {"id": "S01", "token_sha256": "x"})
                1 / 0
        assert index.count("stations") == 0
    finally:
        index.close()


def test_named_locks_keep_two_processes_check_then_write_apart(db_url, tmp_path):
    """Two indexes (two collector processes) each counting, then writing the count + 1: with
    the lock every number is written once."""
    indexes = [open_db(tmp_path / f"data{n}", db_url) for n in range(2)]
    errors: list[BaseException] = []

    def work(index, who: str) -> None:
        try:
            for n in range(25):
                with index.transaction("numbers"):
                    count = index.count("settings")
                    index.insert("settings", {"key": f"n{count}", "value": f"{who}{n}"})
        except BaseException as exc:  # a duplicate key: the lock did not hold
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(index, str(k))) for k, index in enumerate(indexes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == []
        assert indexes[0].count("settings") == 50
    finally:
        for index in indexes:
            index.close()


def test_two_processes_starting_at_once_migrate_once(postgres_url, tmp_path):
    opened, errors = [], []

    def start(n: int) -> None:
        try:
            opened.append(open_db(tmp_path / f"i{n}", postgres_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == [] and len(opened) == 3
        assert opened[0].value("SELECT count(*) FROM schema_version") == len(MIGRATIONS)
    finally:
        for index in opened:
            index.close()
