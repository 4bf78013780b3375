"""Manifests, seal codes and sitting completeness (pure checks plus the tables they fill).

Writes are plain SQL inside ``qmbase.db.transaction``, so a caller's transaction (an upload
marked done and its sitting complete) takes them in as one.
"""
from __future__ import annotations

import hashlib
import json

import sqlite_utils

from qmbase.db import transaction, update_row, upsert_row

from .. import contract
from .store import now_iso


def record_manifest(db: sqlite_utils.Database, station: str, sitting: str, data: bytes,
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
    with transaction(db):  # the manifest and what it makes complete, together
        upsert_row(db, "sittings", row, pk=("station", "sitting"))
        update_completeness(db, station, sitting)


def arrived(db: sqlite_utils.Database, station: str, sitting: str, files: list[dict]) -> list[dict]:
    """The listed files that are in, verified, with the listed size and hash."""
    done = {(r["path"], r["sha256"], r["length"]) for r in db["uploads"].rows_where(
        "station = ? AND sitting = ? AND state = 'done'", [station, sitting],
        select="path, sha256, length")}
    return [f for f in files if (f["path"], f["sha256"], f["size"]) in done]


def update_completeness(db: sqlite_utils.Database, station: str, sitting: str) -> None:
    rows = list(db["sittings"].rows_where("station = ? AND sitting = ?", [station, sitting]))
    if not rows or not rows[0]["signature_ok"]:
        return
    manifest_in = db["uploads"].count_where(
        "station = ? AND sitting = ? AND path = ? AND sha256 = ? AND state = 'done'",
        [station, sitting, contract.MANIFEST, rows[0]["manifest_sha256"]]) > 0
    files = json.loads(rows[0]["files_json"])
    complete = manifest_in and len(arrived(db, station, sitting, files)) == len(files)
    if complete and not rows[0]["complete"]:
        with transaction(db):
            update_row(db, "sittings", {"station": station, "sitting": sitting},
                       {"complete": 1, "completed_at": now_iso()})
