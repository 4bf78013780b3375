"""The recorder's tables: one row per take (every take is kept, the counting one is flagged).

No foreign keys to the station's ``students``/``sittings``: those tables belong to the
station package, and the recorder must work on a database that only has its own tables
(tests, salvage of a copied data dir). The station checks roster and sitting before a take.
"""
from __future__ import annotations

import sqlite_utils


def v1_takes(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE takes (
            id TEXT PRIMARY KEY,              -- uuid hex; also the journal's file name
            student_code TEXT NOT NULL,
            sitting_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,         -- 1, 2, 3 … per student and sitting
            song_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('recording', 'kept', 'interrupted', 'failed')),
            path TEXT,                        -- the kept FLAC/WAV, null until kept
            sha256 TEXT,
            format TEXT,                      -- flac | wav
            sample_rate INTEGER,
            channels INTEGER,
            frames INTEGER,
            duration_s REAL,
            device TEXT,
            accompaniment_rate INTEGER,
            offset_latency_s REAL,            -- playback-to-capture offset from PortAudio's times
            offset_xcorr_s REAL,              -- … from cross-correlation, when measurable
            offset_method TEXT,               -- which of the two graders should trust
            overflow_count INTEGER NOT NULL DEFAULT 0,  -- PortAudio input overflows
            stream_restarts INTEGER NOT NULL DEFAULT 0, -- streams the host dropped, reopened
            lost_s REAL NOT NULL DEFAULT 0,   -- wall time the stream ran without delivering audio
            dropouts INTEGER NOT NULL DEFAULT 0,    -- 1 when any of the three above (lost_s > 0.25 s)
            interrupted INTEGER NOT NULL DEFAULT 0, -- 1 when rebuilt by salvage
            verdict TEXT CHECK (verdict IN ('accept', 'retake', 'reject')),
            reasons TEXT NOT NULL DEFAULT '[]',     -- JSON list of {code, zh, en}
            counts INTEGER NOT NULL DEFAULT 0,      -- 1 for the take that counts
            counts_by TEXT,                   -- 'rule' or 'proctor'
            started_at TEXT NOT NULL,
            ended_at TEXT,
            UNIQUE (student_code, sitting_id, attempt)
        )""")
    db.execute("CREATE INDEX takes_student ON takes (sitting_id, student_code)")
    db.execute("CREATE INDEX takes_state ON takes (state)")


MIGRATIONS = [v1_takes]
