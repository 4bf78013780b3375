"""Manifests, seal codes and sitting completeness (pure checks plus the tables they fill)."""
from __future__ import annotations

import hashlib
import hmac
import json

import sqlite_utils

from .store import now_iso

MANIFEST_PATH = "manifest.json"
FORMAT = "qm-bundle/1"


def seal_code(manifest_bytes: bytes) -> str:
    """电子封签: first 8 hex digits, upper case, of SHA-256 of the exact manifest bytes."""
    head = hashlib.sha256(manifest_bytes).hexdigest()[:8].upper()
    return f"{head[:4]}-{head[4:]}"


def canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature_ok(manifest: dict, key: bytes) -> bool:
    signature = manifest.get("signature")
    if not isinstance(signature, str):
        return False
    expected = hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def parse_manifest(data: bytes, station: str, sitting: str, key: bytes) -> tuple[dict, list[dict], bool]:
    """(manifest, its files, whether it is valid: right format, station, sitting and signature)."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}, [], False
    if not isinstance(manifest, dict):
        return {}, [], False
    files = manifest.get("files")
    files_ok = isinstance(files, list) and all(
        isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("size"), int)
        and isinstance(f.get("sha256"), str) for f in files)
    valid = (files_ok and manifest.get("format") == FORMAT and manifest.get("station") == station
             and str(manifest.get("sitting")) == sitting and signature_ok(manifest, key))
    return manifest, (files if files_ok else []), valid


def record_manifest(db: sqlite_utils.Database, station: str, sitting: str, data: bytes,
                    key: bytes) -> None:
    manifest, files, valid = parse_manifest(data, station, sitting, key)
    row = {"station": station, "sitting": sitting,
           "kind": manifest.get("kind"), "item": manifest.get("item"),
           "opened_at": manifest.get("opened_at"), "closed_at": manifest.get("closed_at"),
           "sealed_at": manifest.get("sealed_at"), "seal_code": seal_code(data),
           "manifest_sha256": hashlib.sha256(data).hexdigest(), "signature_ok": int(valid),
           "files_json": json.dumps([{"path": f["path"], "size": f["size"],
                                      "sha256": f["sha256"].lower()} for f in files]),
           "files_total": len(files), "bytes_total": sum(f["size"] for f in files),
           "complete": 0, "received_at": now_iso(), "completed_at": None}
    with db.conn:
        db["sittings"].upsert(row, pk=("station", "sitting"))
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
        [station, sitting, MANIFEST_PATH, rows[0]["manifest_sha256"]]) > 0
    files = json.loads(rows[0]["files_json"])
    complete = manifest_in and len(arrived(db, station, sitting, files)) == len(files)
    if complete and not rows[0]["complete"]:
        with db.conn:
            db["sittings"].update((station, sitting), {"complete": 1, "completed_at": now_iso()})
