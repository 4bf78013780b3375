"""The collector's own tables. Version N = the first N migrations applied; never edit a released one."""
from __future__ import annotations

from typing import Callable

import sqlite_utils


def m001_initial(db: sqlite_utils.Database) -> None:
    db["stations"].create({"id": str, "token_sha256": str, "manifest_key": str, "school": str,
                           "room": str, "created_at": str}, pk="id", not_null={"token_sha256"})
    db["stations"].create_index(["token_sha256"], unique=True)
    # Admin token hash and other single values.
    db["settings"].create({"key": str, "value": str}, pk="key")
    # Dashboard login sessions, stored as SHA-256 of the cookie value.
    db["sessions"].create({"id_sha256": str, "expires_at": float}, pk="id_sha256")
    db["uploads"].create({"id": str, "station": str, "sitting": str, "path": str, "sha256": str,
                          "length": int, "offset": int, "state": str, "created_at": str,
                          "finished_at": str}, pk="id")
    db["uploads"].create_index(["station", "sitting", "path"])
    db["sittings"].create({"station": str, "sitting": str, "kind": str, "item": str,
                           "opened_at": str, "closed_at": str, "sealed_at": str,
                           "seal_code": str, "manifest_sha256": str, "signature_ok": int,
                           "files_json": str, "files_total": int, "bytes_total": int,
                           "complete": int, "received_at": str, "completed_at": str},
                          pk=("station", "sitting"))
    db["heartbeats"].create({"station": str, "received_at": str, "at": str, "version": str,
                             "sittings_open": int, "body": str}, pk="station")
    db["prechecks"].create({"id": int, "station": str, "received_at": str, "overall": str,
                            "failing": str, "body": str}, pk="id")
    db["prechecks"].create_index(["station"])


def m002_manifest_signature(db: sqlite_utils.Database) -> None:
    # qm-bundle/2: a manifest's signature comes with its upload's creation (tus metadata),
    # checked then and again, with the bytes, when the last byte is in.
    db["uploads"].add_column("signature", str)


def m003_upload_metadata(db: sqlite_utils.Database) -> None:
    # tus creation: a HEAD MUST carry the Upload-Metadata the client created the upload with.
    db["uploads"].add_column("metadata", str)
    # Open uploads are counted per station at each creation (the per-station cap).
    db["uploads"].create_index(["station", "state"])


def m004_pairing(db: sqlite_utils.Database) -> None:
    # One-time pairing codes shown on the dashboard, stored as SHA-256 of the code.
    db["pairings"].create({"code_sha256": str, "station": str, "school": str, "room": str,
                           "created_at": str, "expires_at": float, "used_at": str}, pk="code_sha256")
    db["pairings"].create_index(["station"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [m001_initial, m002_manifest_signature,
                                                              m003_upload_metadata, m004_pairing]
