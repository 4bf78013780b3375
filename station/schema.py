"""The station's own tables: the roster, the sittings, the audit log, the outbox, incidents."""
from __future__ import annotations

import sqlite_utils


def v1_roster_sittings_audit(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE students (
            code TEXT PRIMARY KEY,          -- 学籍号/考号/条码: what the barcode scanner types
            name TEXT NOT NULL,
            gender TEXT NOT NULL CHECK (gender IN ('M', 'F')),
            grade INTEGER NOT NULL,
            class TEXT NOT NULL DEFAULT '',
            school TEXT NOT NULL DEFAULT '',
            imported_at TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT ''
        )""")
    db.execute("""
        CREATE TABLE sittings (
            id TEXT PRIMARY KEY,            -- YYYYMMDD-NN, unique on this station
            kind TEXT NOT NULL CHECK (kind IN ('singing', 'pe')),
            item TEXT,
            state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT,
            note TEXT NOT NULL DEFAULT ''
        )""")
    db.execute("""
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            who TEXT NOT NULL,
            action TEXT NOT NULL,           -- roster.add, sitting.close, reading.correct …
            entity TEXT NOT NULL,           -- student, sitting, take, reading …
            entity_id TEXT NOT NULL,
            old TEXT,                       -- JSON, null for a creation
            new TEXT                        -- JSON, null for a removal
        )""")
    # History cannot be rewritten, not even by a bug in this program: the database refuses.
    for verb in ("UPDATE", "DELETE"):
        db.execute(f"""
            CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""")
    db.execute("CREATE INDEX audit_log_entity ON audit_log (entity, entity_id)")


def v2_precheck_reports_outbox(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE precheck_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            overall TEXT NOT NULL,
            report TEXT NOT NULL            -- the pre-check JSON of DESIGN.md
        )""")
    # Messages for the district collector (pre-check reports, heartbeats) wait here until
    # it answers: a school network that is down on pre-check day loses nothing.
    db.execute("""
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,             -- precheck, heartbeat
            path TEXT NOT NULL,             -- collector path, e.g. /api/stations/S01/precheck
            body TEXT NOT NULL,             -- JSON
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT,
            sent_at TEXT
        )""")
    db.execute("CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at)")


def v3_incidents(db: sqlite_utils.Database) -> None:
    # Incidents (应急事件) a proctor files: evidence, so kept as filed, like the audit log.
    db.execute("""
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,   -- shown as <station>-<id>
            uid TEXT NOT NULL UNIQUE,               -- the collector's key: survives a reinstall
            category TEXT NOT NULL,                 -- equipment, power, network, unwell, absent, disturbance, other
            at TEXT NOT NULL,
            sitting TEXT REFERENCES sittings (id),
            students TEXT NOT NULL DEFAULT '[]',    -- JSON list of student codes
            text TEXT NOT NULL,
            action TEXT NOT NULL DEFAULT '',
            filed_by TEXT NOT NULL
        )""")
    for verb in ("UPDATE", "DELETE"):
        db.execute(f"""
            CREATE TRIGGER incidents_no_{verb.lower()} BEFORE {verb} ON incidents
            BEGIN SELECT RAISE(ABORT, 'incidents are kept as filed'); END""")
    db.execute("CREATE INDEX incidents_sitting ON incidents (sitting)")


MIGRATIONS = [v1_roster_sittings_audit, v2_precheck_reports_outbox, v3_incidents]
