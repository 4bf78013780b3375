"""Fixtures for the recorder tests: the recorder's tables in a temp database."""
from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from recorder.schema import MIGRATIONS


@pytest.fixture
def db(tmp_path):
    """A station.db as the station opens it (WAL, synchronous=FULL), every migration applied."""
    conn = sqlite3.connect(str(tmp_path / "station.db"), isolation_level=None)
    database = sqlite_utils.Database(conn)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=FULL")
    for migrate in MIGRATIONS:
        migrate(database)
    return database
