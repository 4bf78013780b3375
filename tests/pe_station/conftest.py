"""A bare database with the PE tables, a generated roster and a flow factory."""
from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from pe_station import rules, schema
from pe_station.flow import Flow

# Generated test students, not real people.
ROSTER = {
    "0001": {"code": "0001", "name": "测试甲", "gender": "M", "grade": 4, "class": "4(1)", "school": "实验小学"},
    "0002": {"code": "0002", "name": "测试乙", "gender": "F", "grade": 4, "class": "4(1)", "school": "实验小学"},
    "0003": {"code": "0003", "name": "测试丙", "gender": "M", "grade": 8, "class": "8(2)", "school": "实验中学"},
    "0004": {"code": "0004", "name": "测试丁", "gender": "F", "grade": 8, "class": "8(2)", "school": "实验中学"},
}


@pytest.fixture
def db(tmp_path):
    conn = sqlite3.connect(str(tmp_path / "pe.db"), isolation_level=None, check_same_thread=False)
    database = sqlite_utils.Database(conn)
    database.execute("PRAGMA journal_mode=WAL")
    for migration in schema.MIGRATIONS:
        migration(database)
    return database


@pytest.fixture
def items():
    return rules.load()


@pytest.fixture
def make_flow(db, items):
    audit_log: list[tuple] = []
    events: list[dict] = []

    def record(db_, who, action, entity, entity_id, old, new):
        audit_log.append((who, action, entity, entity_id, old, new))

    def make(item: str = "sit_and_reach", sitting: str = "20261122-01", **kw) -> Flow:
        flow = Flow(db, sitting, items[item], lookup_student=ROSTER.get, audit=record,
                    on_event=events.append, measured=rules.measured(items, item), **kw)
        flow.audit_log, flow.events = audit_log, events
        return flow

    return make
