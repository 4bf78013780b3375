"""Fixtures for the station's upload side: a migrated queue db and generated bundles.

Test data is generated: codes like 0001, names like 测试学生1, random bytes as recordings.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlite_utils

from uploader import schema
from uploader.bundle import write_bundle

TOKEN = "test-token-station-S01"


def open_db(path: Path) -> sqlite_utils.Database:
    """The station's convention: one SQLite file, WAL, synchronous=FULL, migrations applied."""
    db = sqlite_utils.Database(path)
    db.enable_wal()
    db.execute("pragma synchronous=FULL")
    schema.apply(db)
    return db


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "station.db"


@pytest.fixture
def db(db_path):
    d = open_db(db_path)
    yield d
    d.close()


def rows(n: int = 3) -> list[dict]:
    return [{"code": f"{i:04d}", "name": f"测试学生{i}", "item": "sit_and_reach",
             "value": round(-2.5 + i, 1), "unit": "cm"} for i in range(1, n + 1)]


@pytest.fixture
def make_bundle(tmp_path):
    """Write a bundle of generated recordings: sizes in bytes; returns the Bundle."""
    made = []

    def make(sizes=(300_000, 1_000), sitting: str | None = None, chunk_size: int = 64 * 1024,
             station: str = "S01", **kw):
        n = len(made)
        src = tmp_path / f"src{n}"
        src.mkdir()
        files = {}
        for i, size in enumerate(sizes):
            p = src / f"take{i}.flac"
            p.write_bytes(os.urandom(size))
            files[f"recordings/{i + 1:04d}-1.flac"] = p
        b = write_bundle(tmp_path / f"bundle{n}", station=station, sitting=sitting or f"SIT-{n + 1}",
                         kind="singing", opened_at="2026-11-22T08:00:00Z",
                         closed_at="2026-11-22T08:40:00Z", files=files, results=rows(),
                         chunk_size=chunk_size, **kw)
        made.append(b)
        return b

    return make


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    """The real collector on 127.0.0.1, one per test module; station S01 registered."""
    from .collector_harness import Collector, add_station

    root = tmp_path_factory.mktemp("collector")
    c = Collector(root)
    c.token = add_station(c.data, "S01")
    c.start()
    yield c
    c.stop()
