"""Manifests, seal codes and sitting completeness (pure checks plus the tables they fill).

Writes join a caller's transaction (an upload marked done and its sitting complete, as one).
Whatever changes a sitting's completeness holds ``lock(station, sitting)``: on PostgreSQL two
instances each marking one of its last two files done would otherwise each miss the other's.
"""
from __future__ import annotations

import hashlib
import json

from .. import contract
from .index import Index
from .store import now_iso


def lock(station: str, sitting: str) -> str:
    return f"sitting:{station}/{sitting}"


def record_manifest(db: Index, station: str, sitting: str, data: bytes,
                    check: contract.ManifestCheck) -> None:
    """Keep a manifest that passed ``contract.verify_manifest`` (no other is ever stored)."""
    if not check.ok:
        raise ValueError("only a verified manifest is recorded")
    manifest, files = check.manifest, check.files
    row = {"station": station, "sitting": sitting,
           "kind": manifest.get("kind"), "item": manifest.get("item"),
           "opened_at": manifest.get("opened_at"), "closed_at": manifest.get("closed_at"),
           "sealed_at": manifest.get("sealed_at"), "seal_code": check.seal_code,
           "manifest_sha256": hashlib.sha256(data).hexdigest(), "signature_ok": 1,
           "files_json": json.dumps(files), "files_total": len(files),
           "bytes_total": sum(f["size"] for f in files),
           "complete": 0, "received_at": now_iso(), "completed_at": None}
    with db.transaction(lock(station, sitting)):  # the manifest and what it makes complete
        db.upsert("sittings", row, pk=("station", "sitting"))
        update_completeness(db, station, sitting)


def arrived(db: Index, station: str, sitting: str, files: list[dict]) -> list[dict]:
    """The listed files that are in, verified, with the listed size and hash."""
    done = {(r["path"], r["sha256"], r["length"]) for r in db.query(
        "SELECT path, sha256, length FROM uploads WHERE station = ? AND sitting = ? "
        "AND state = 'done'", [station, sitting])}
    return [f for f in files if (f["path"], f["sha256"], f["size"]) in done]


def update_completeness(db: Index, station: str, sitting: str) -> None:
    """Mark the sitting complete when its manifest and every listed file are in (inside a
    transaction holding ``lock(station, sitting)``)."""
    row = db.one("SELECT * FROM sittings WHERE station = ? AND sitting = ?", [station, sitting])
    if row is None or not row["signature_ok"]:
        return
    manifest_in = db.count(
        "uploads", "station = ? AND sitting = ? AND path = ? AND sha256 = ? AND state = 'done'",
        [station, sitting, contract.MANIFEST, row["manifest_sha256"]]) > 0
    files = json.loads(row["files_json"])
    complete = manifest_in and len(arrived(db, station, sitting, files)) == len(files)
    if complete and not row["complete"]:
        db.update("sittings", {"station": station, "sitting": sitting},
                  {"complete": 1, "completed_at": now_iso()})
