"""The persistent upload queue: one row per sitting, one per file (tables in ``schema.py``).

Every change is one committed SQLite write, or one ``transaction`` where rows must appear
together (the station opens the db in WAL with synchronous=FULL), so after ``kill -9`` or a power cut the worker finds each file's upload
URL and resumes from the collector's offset. States: queued / uploading / done / failed
(failed = the last attempt failed, ``last_error`` says why; it is retried at
``next_attempt_at``, forever, until done).
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Mapping

import sqlite_utils

from qmbase.db import insert_row, transaction, update_row

from .bundle import (DEFAULT_CHUNK_SIZE, MANIFEST, BundleError, FileDigest, digest_file, read_manifest,
                     upgrade_legacy, utc_now)
from .contract import seal_code

STATES = ("queued", "uploading", "done", "failed")


def enqueue(db: sqlite_utils.Database, bundle_dir: Path | str, *,
            digests: Mapping[str, FileDigest] | None = None,
            chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict:
    """Queue a sealed bundle for upload; returns its sitting row. Idempotent for the same bundle.

    ``digests`` are the per-chunk digests ``write_bundle`` computed while sealing (so the
    bytes are not hashed again); without them, each file is read once here and checked
    against the manifest.
    """
    bundle_dir = Path(bundle_dir).resolve()
    upgrade_legacy(bundle_dir)  # sealed by an older version: queue it in today's form
    manifest, manifest_bytes = read_manifest(bundle_dir)
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    sitting = str(manifest.get("sitting") or "")
    station = str(manifest.get("station") or "")
    if not sitting or not station:
        raise BundleError("manifest.json 缺少考点机或场次编号，请重新封存。",
                          "manifest.json lacks the station or sitting id; seal the sitting again.")
    existing = _sitting(db, sitting)
    if existing is not None:
        if existing["manifest_sha256"] != manifest_sha:
            raise BundleError(f"场次 {sitting} 已用另一份封签排队上传，不能再次加入。请联系信息中心。",
                              f"Sitting {sitting} is already queued with a different seal; "
                              "it cannot be queued again. Contact the information center.")
        return existing
    digests = dict(digests or {})
    rows = []
    entries = sorted(manifest["files"], key=lambda e: e["path"]) + [
        {"path": MANIFEST, "size": len(manifest_bytes), "sha256": manifest_sha}]
    for seq, entry in enumerate(entries):
        rel = entry["path"]
        d = digests.get(rel)
        if d is None or d.chunk_size != chunk_size or d.sha256 != entry["sha256"]:
            try:
                d = digest_file(bundle_dir / rel, chunk_size, rel)
            except FileNotFoundError:
                raise BundleError(f"场次包中缺少文件：{rel}。请勿删除场次包中的文件。",
                                  f"File missing from the bundle: {rel}. Do not delete bundle files.") from None
        if d.size != entry["size"] or d.sha256 != entry["sha256"]:
            raise BundleError(f"文件与封签不符：{rel}（封存后被改动），未加入上传队列。",
                              f"File differs from the seal: {rel} (changed after sealing); not queued.")
        rows.append({"sitting": sitting, "seq": seq, "path": rel, "size": d.size, "sha256": d.sha256,
                     "chunk_size": d.chunk_size, "chunks": json.dumps(d.chunks), "state": "queued",
                     "upload_url": None, "offset": 0, "attempts": 0, "last_error": None,
                     "next_attempt_at": None, "updated_at": utc_now(), "done_at": None})
    now = utc_now()
    with transaction(db):  # the sitting and its files appear together or not at all
        insert_row(db, "upload_sittings", {
            "sitting": sitting, "station": station, "bundle_dir": str(bundle_dir),
            "seal_code": seal_code(manifest_bytes), "manifest_sha256": manifest_sha,
            "file_count": len(rows), "total_bytes": sum(r["size"] for r in rows),
            "state": "queued", "last_error": None, "enqueued_at": now, "updated_at": now, "done_at": None,
        })
        for row in rows:
            insert_row(db, "upload_files", row)
    return _sitting(db, sitting)


def upgrade_legacy_sitting(db: sqlite_utils.Database, sitting: dict) -> dict:
    """A sitting queued with a qm-bundle/1 manifest: re-seal it as qm-bundle/2 and requeue its
    manifest (files already sent stay sent). Idempotent; returns the (updated) sitting row."""
    bundle_dir = Path(sitting["bundle_dir"])
    manifest_row = next((f for f in files_of(db, sitting["sitting"]) if f["path"] == MANIFEST), None)
    if manifest_row is None or manifest_row["state"] == "done":
        return sitting
    upgrade_legacy(bundle_dir)
    data = (bundle_dir / MANIFEST).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha == sitting["manifest_sha256"]:
        return sitting
    d = digest_file(bundle_dir / MANIFEST, manifest_row["chunk_size"], MANIFEST)
    with transaction(db):
        update_row(db, "upload_files", {"id": manifest_row["id"]}, {
            "size": d.size, "sha256": d.sha256, "chunks": json.dumps(d.chunks), "state": "queued",
            "upload_url": None, "offset": 0, "last_error": None, "next_attempt_at": None,
            "updated_at": utc_now()})
        update_row(db, "upload_sittings", {"sitting": sitting["sitting"]}, {
            "seal_code": seal_code(data), "manifest_sha256": sha,
            "total_bytes": sitting["total_bytes"] - manifest_row["size"] + d.size,
            "updated_at": utc_now()})
    return _sitting(db, sitting["sitting"])


def _sitting(db: sqlite_utils.Database, sitting: str) -> dict | None:
    rows = list(db.query("select * from upload_sittings where sitting = ?", [sitting]))
    return rows[0] if rows else None


def files_of(db: sqlite_utils.Database, sitting: str) -> list[dict]:
    return list(db.query("select * from upload_files where sitting = ? order by seq", [sitting]))


def file_row(db: sqlite_utils.Database, file_id: int) -> dict:
    return db["upload_files"].get(file_id)


def pending_sittings(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("select * from upload_sittings where state != 'done' order by enqueued_at, sitting"))


def next_due_at(db: sqlite_utils.Database) -> float | None:
    """Epoch seconds at which the next unfinished file is due (0 = now), or None if all done."""
    row = list(db.query("select min(coalesce(next_attempt_at, 0)) as t, count(*) as n "
                        "from upload_files where state != 'done'"))[0]
    return None if not row["n"] else row["t"]


def update_file(db: sqlite_utils.Database, file_id: int, **fields) -> None:
    fields["updated_at"] = utc_now()
    with db.conn:
        db["upload_files"].update(file_id, fields)


def refresh_sitting(db: sqlite_utils.Database, sitting: str) -> str:
    """Derive the sitting's state from its files; returns it."""
    files = files_of(db, sitting)
    states = {f["state"] for f in files}
    if states == {"done"}:
        state = "done"
    elif "uploading" in states:
        state = "uploading"
    elif "failed" in states:
        state = "failed"
    elif "done" in states:
        state = "uploading"
    else:
        state = "queued"
    errors = [f["last_error"] for f in files if f["state"] == "failed" and f["last_error"]]
    now = utc_now()
    with db.conn:
        db["upload_sittings"].update(sitting, {
            "state": state, "last_error": errors[0] if errors else None, "updated_at": now,
            "done_at": now if state == "done" else None})
    return state


def hold_all(db: sqlite_utils.Database, why: str) -> None:
    """Nothing can be sent now (no token, a refused address): every unfinished file says why."""
    with transaction(db):
        db.execute("update upload_files set state = 'failed', last_error = ?, updated_at = ? "
                   "where state != 'done'", [why, utc_now()])
        db.execute("update upload_sittings set state = 'failed', last_error = ?, updated_at = ? "
                   "where state != 'done'", [why, utc_now()])


def requeue(db: sqlite_utils.Database, sitting: str) -> None:
    """Make every unfinished file of a sitting due now (``station upload enqueue`` on a queued sitting)."""
    with db.conn:
        db.execute("update upload_files set next_attempt_at = null where sitting = ? and state != 'done'",
                   [sitting])


def status(db: sqlite_utils.Database, now: float | None = None) -> list[dict]:
    """Every queued sitting with its files, bytes confirmed and state (for ``station upload status``)."""
    now = time.time() if now is None else now
    out = []
    for s in db.query("select * from upload_sittings order by enqueued_at, sitting"):
        files = []
        for f in files_of(db, s["sitting"]):
            done = f["size"] if f["state"] == "done" else min(f["offset"] or 0, f["size"])
            files.append({
                "path": f["path"], "size": f["size"], "bytes_done": done, "state": f["state"],
                "attempts": f["attempts"], "last_error": f["last_error"],
                "retry_in_s": (max(0.0, round(f["next_attempt_at"] - now, 1))
                               if f["next_attempt_at"] and f["state"] != "done" else None),
            })
        out.append({
            "sitting": s["sitting"], "station": s["station"], "seal_code": s["seal_code"],
            "state": s["state"], "last_error": s["last_error"], "enqueued_at": s["enqueued_at"],
            "done_at": s["done_at"], "bytes_total": s["total_bytes"],
            "bytes_done": sum(f["bytes_done"] for f in files),
            "files_total": len(files), "files_done": sum(f["state"] == "done" for f in files),
            "files": files,
        })
    return out


def summary(db: sqlite_utils.Database) -> dict:
    """A short account of the queue for the heartbeat to the collector (no paths, no codes)."""
    files = {s: 0 for s in STATES}
    for row in db.query("select state, count(*) as n from upload_files group by state"):
        files[row["state"]] = row["n"]
    row = list(db.query(
        "select count(*) as sittings, coalesce(sum(state = 'done'), 0) as done, "
        "coalesce(sum(total_bytes), 0) as total from upload_sittings"))[0]
    left = list(db.query(
        "select coalesce(sum(size - min(coalesce(offset, 0), size)), 0) as n "
        "from upload_files where state != 'done'"))[0]["n"]
    return {"sittings": row["sittings"], "sittings_done": row["done"], "files": files,
            "bytes_total": row["total"], "bytes_left": left}
