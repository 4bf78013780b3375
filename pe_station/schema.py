"""The PE field test's tables: readings, attempts, results and corrections.

Values are kept as exact decimal text ("-3.5", "8.11"), never as floats, so that the
standard's rounding (非0进1) and a later export give the very digits the device sent.
The sitting and student columns hold the ids of the station's tables without foreign
keys: this package is used on a bare database in its tests and never imports ``station``.
"""
from __future__ import annotations

import sqlite_utils


def v1_readings_attempts_results(db: sqlite_utils.Database) -> None:
    # Every reading that arrived, stable or not, assigned or not: nothing a device sent
    # is dropped, so a disputed result can be traced to its frame.
    db.execute("""
        CREATE TABLE pe_readings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sitting TEXT NOT NULL,
            device TEXT NOT NULL,           -- the configured device name (scale-1)
            port TEXT NOT NULL DEFAULT '',  -- COM3, /dev/ttyUSB0
            driver TEXT NOT NULL DEFAULT '',
            item TEXT,                      -- what the device said it measures, if it did
            at TEXT NOT NULL,               -- when its last byte arrived (local time, offset)
            value TEXT NOT NULL,            -- exact, as the device sent it
            unit TEXT NOT NULL DEFAULT '',
            stable INTEGER NOT NULL,
            code TEXT,                      -- student or bib code sent by the device
            channel TEXT,                   -- timing impulses: C0 start, C1 finish
            raw TEXT NOT NULL DEFAULT '',   -- the frame, control bytes escaped
            run_time TEXT,                  -- a finish impulse that closed a run: finish - start
            student TEXT,                   -- NULL: unassigned (kept, shown to the proctor)
            note TEXT NOT NULL DEFAULT ''   -- why it is unassigned, in both languages
        )""")
    db.execute("CREATE INDEX pe_readings_sitting ON pe_readings (sitting, student)")
    db.execute("""
        CREATE TABLE pe_attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sitting TEXT NOT NULL,
            student TEXT NOT NULL,
            item TEXT NOT NULL,
            reading INTEGER REFERENCES pe_readings (id),
            device TEXT NOT NULL DEFAULT '',
            value TEXT NOT NULL,            -- exact (a run time: finish minus start)
            rounded TEXT NOT NULL,          -- as the standard records it
            unit TEXT NOT NULL DEFAULT '',
            verdict TEXT NOT NULL CHECK (verdict IN ('ok', 'confirm', 'reject')),
            reason_zh TEXT NOT NULL DEFAULT '',
            reason_en TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'voided', 'rejected')),
            started_at TEXT,                -- timed runs: the start impulse's time
            created_at TEXT NOT NULL,
            decided_by TEXT,
            decided_at TEXT
        )""")
    db.execute("CREATE INDEX pe_attempts_student ON pe_attempts (sitting, student, item)")
    db.execute("""
        CREATE TABLE pe_results (
            sitting TEXT NOT NULL,
            student TEXT NOT NULL,
            item TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'absent', 'exempt')),
            value TEXT,                     -- the attempt that counts, rounded; NULL if none
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            PRIMARY KEY (sitting, student, item)
        )""")
    db.execute("""
        CREATE TABLE pe_corrections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            attempt INTEGER NOT NULL REFERENCES pe_attempts (id),
            old_value TEXT NOT NULL,
            new_value TEXT NOT NULL,
            reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
            who TEXT NOT NULL,
            at TEXT NOT NULL
        )""")
    # A correction is history: the database refuses to rewrite it.
    for verb in ("UPDATE", "DELETE"):
        db.execute(f"""
            CREATE TRIGGER pe_corrections_no_{verb.lower()} BEFORE {verb} ON pe_corrections
            BEGIN SELECT RAISE(ABORT, 'pe_corrections is append-only'); END""")


def v2_result_reasons(db: sqlite_utils.Database) -> None:
    # A derived result (BMI) has no attempt of its own to carry the "outside the usual
    # range" note; the result keeps its verdict and reason for the proctor to see.
    db.execute("ALTER TABLE pe_results ADD COLUMN verdict TEXT")
    db.execute("ALTER TABLE pe_results ADD COLUMN reason_zh TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE pe_results ADD COLUMN reason_en TEXT NOT NULL DEFAULT ''")


MIGRATIONS = [v1_readings_attempts_results, v2_result_reasons]
