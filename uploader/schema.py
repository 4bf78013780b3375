"""The upload queue's tables in the station database (version N = the first N migrations)."""
from __future__ import annotations

from typing import Callable

import sqlite_utils


def _v1_queue(db: sqlite_utils.Database) -> None:
    db["upload_sittings"].create({
        "sitting": str,          # the sitting (场次) id, unique on this station
        "station": str,
        "bundle_dir": str,
        "seal_code": str,
        "manifest_sha256": str,  # hex SHA-256 of the exact manifest.json bytes
        "file_count": int,       # manifest.json included
        "total_bytes": int,
        "state": str,            # queued | uploading | done | failed
        "last_error": str,
        "enqueued_at": str,
        "updated_at": str,
        "done_at": str,
    }, pk="sitting", not_null={"station", "bundle_dir", "state"}, if_not_exists=True)
    db["upload_files"].create({
        "id": int,
        "sitting": str,
        "seq": int,              # send order; manifest.json is last, after every file it lists
        "path": str,             # bundle-relative, '/'-separated
        "size": int,
        "sha256": str,
        "chunk_size": int,
        "chunks": str,           # JSON list of hex SHA-256 per chunk, computed at seal time
        "state": str,            # queued | uploading | done | failed
        "upload_url": str,       # the tus upload's URL once created
        "offset": int,           # bytes the collector confirmed
        "attempts": int,
        "last_error": str,
        "next_attempt_at": float,  # epoch seconds; NULL = now
        "updated_at": str,
        "done_at": str,
    }, pk="id", not_null={"sitting", "path", "state"},
       foreign_keys=[("sitting", "upload_sittings", "sitting")], if_not_exists=True)
    db["upload_files"].create_index(["sitting", "path"], unique=True, if_not_exists=True)
    db["upload_files"].create_index(["state", "next_attempt_at"], if_not_exists=True)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1_queue]


def apply(db: sqlite_utils.Database, have: int = 0) -> int:
    """Apply the migrations after the first ``have``; returns the new version (for tests and tools)."""
    for migrate in MIGRATIONS[have:]:
        migrate(db)
    return len(MIGRATIONS)
