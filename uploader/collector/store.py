"""The collector's SQLite database (sqlite-utils, WAL, synchronous=FULL)."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from qmbase.platform import make_private_dir

from .schema import MIGRATIONS

DB_NAME = "collector.db"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def open_db(data_dir: str | Path) -> sqlite_utils.Database:
    """Open (creating and migrating) the collector database in `data_dir`."""
    data_dir = make_private_dir(Path(data_dir))  # tokens' hashes, names of schools and sittings
    # check_same_thread=False: the app is built in one thread and served from uvicorn's loop,
    # which in tests may be another thread; all use stays on one thread at a time.
    conn = sqlite3.connect(str(data_dir / DB_NAME), check_same_thread=False, timeout=30)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with db.conn:
            step(db)
            db.execute(f"PRAGMA user_version={number}")
