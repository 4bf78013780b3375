"""The station database: one SQLite file in the data dir, opened the same way everywhere.

WAL lets the web pages read while a take or a reading is being written; ``synchronous=FULL``
makes a committed row survive a power cut, since every row here is something a student
produced or a decision about it. Each package owns its tables and their upgrades
(``<package>.schema.MIGRATIONS``); this module only applies them in order and records
the version each package is at, in place, without losing rows.
"""
from __future__ import annotations

import datetime as dt
import importlib
import sqlite3
from pathlib import Path
from typing import Callable, Sequence

import sqlite_utils

from qmbase.db import transaction

FILE_NAME = "station.db"

# The order matters only for foreign keys: the station's own tables (roster, sittings)
# come first, since takes and readings hang on them.
PACKAGES = ("station", "recorder", "pe_station", "uploader")

Migration = Callable[[sqlite_utils.Database], None]


def connect(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False,
                           isolation_level=None)  # autocommit; explicit transactions below
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    return db


def _migrations(package: str) -> Sequence[Migration]:
    try:
        module = importlib.import_module(f"{package}.schema")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.schema":
            raise
        return ()
    return getattr(module, "MIGRATIONS", ())


def version_of(db: sqlite_utils.Database, package: str) -> int:
    if "schema_version" not in db.table_names():
        return 0
    row = db.execute("SELECT version FROM schema_version WHERE package = ?", [package]).fetchone()
    return row[0] if row else 0


def upgrade(db: sqlite_utils.Database, packages: Sequence[str] = PACKAGES,
            migrations: Callable[[str], Sequence[Migration]] = _migrations) -> dict[str, int]:
    """Bring every package's tables to its newest version; returns the versions."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version ("
               "package TEXT PRIMARY KEY, version INTEGER NOT NULL, upgraded_at TEXT NOT NULL)")
    versions = {}
    for package in packages:
        steps = migrations(package)
        current = version_of(db, package)
        for number in range(current, len(steps)):
            # One transaction per step: a crash mid-upgrade leaves the previous version whole.
            with transaction(db):
                steps[number](db)
                db.execute("INSERT INTO schema_version (package, version, upgraded_at) "
                           "VALUES (?, ?, ?) ON CONFLICT(package) DO UPDATE SET "
                           "version = excluded.version, upgraded_at = excluded.upgraded_at",
                           [package, number + 1, now()])
        versions[package] = max(current, len(steps))
    return versions


def open_db(data_dir: Path) -> sqlite_utils.Database:
    db = connect(Path(data_dir) / FILE_NAME)
    upgrade(db)
    return db


def now() -> str:
    """Local time with its offset: what a proctor reads on a sheet, unambiguous for the district."""
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")
