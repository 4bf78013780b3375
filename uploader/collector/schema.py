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



def m005_district(db: sqlite_utils.Database) -> None:
    # The schools the district expects on its test day (stations.school holds a school code).
    db["schools"].create({"code": str, "name": str, "stations_expected": int, "contact": str,
                          "phone": str, "imported_at": str}, pk="code")
    # Incidents (应急事件) as the stations file them; (station, uid) makes a resend harmless.
    db["incidents"].create({"station": str, "uid": str, "local_id": int, "category": str, "at": str,
                            "sitting": str, "students": str, "text": str, "action": str,
                            "filed_by": str, "received_at": str, "handled_at": str,
                            "handled_by": str, "handled_note": str},
                           pk=("station", "uid"))
    db["incidents"].create_index(["handled_at"])
    # How a file or a sitting came: 'network' (tus) or 'usb' (station collector import).
    db["uploads"].add_column("via", str)
    db["sittings"].add_column("via", str)
    db["uploads"].create_index(["state", "station"])
    # What has arrived, per file and per sitting, kept by the database itself whichever code
    # marks an upload done (tus, crash recovery, the USB import): the dashboard reads one row
    # per sitting instead of grouping every upload (scripts/bench/dashboard.py). A file that
    # came both ways counts once (the first way it came).
    db.execute("""CREATE TABLE arrived (station TEXT, sitting TEXT, path TEXT, length INTEGER,
                  via TEXT, PRIMARY KEY (station, sitting, path))""")
    db.execute("""CREATE TABLE arrivals (station TEXT, sitting TEXT, files INTEGER NOT NULL,
                  bytes INTEGER NOT NULL, via TEXT, PRIMARY KEY (station, sitting))""")
    db.execute("""CREATE TRIGGER arrived_counts AFTER INSERT ON arrived BEGIN
                  INSERT INTO arrivals (station, sitting, files, bytes, via)
                  VALUES (NEW.station, NEW.sitting, 1, NEW.length, NEW.via)
                  ON CONFLICT (station, sitting) DO UPDATE SET files = files + 1,
                  bytes = bytes + excluded.bytes,
                  via = CASE WHEN arrivals.via = excluded.via THEN via ELSE 'network,usb' END;
                  END""")
    for event, when in (("INSERT", "NEW.state = 'done'"),
                        ("UPDATE OF state", "NEW.state = 'done' AND OLD.state != 'done'")):
        name = "uploads_done_" + event.split()[0].lower()
        db.execute(f"""CREATE TRIGGER {name} AFTER {event} ON uploads WHEN {when} BEGIN
                       INSERT OR IGNORE INTO arrived (station, sitting, path, length, via)
                       VALUES (NEW.station, NEW.sitting, NEW.path, NEW.length,
                               coalesce(NEW.via, 'network'));
                       END""")
    db.execute("""INSERT OR IGNORE INTO arrived SELECT station, sitting, path, length, 'network'
                  FROM uploads WHERE state = 'done' ORDER BY finished_at""")
    # The sittings' columns the dashboard reads, in an index: the row itself carries the
    # manifest's file list, which would otherwise be read past for every sitting.
    db["sittings"].create_index(["station", "sealed_at", "sitting", "kind", "item", "closed_at",
                                 "seal_code", "signature_ok", "files_total", "bytes_total",
                                 "complete", "completed_at", "received_at", "via"],
                                index_name="sittings_dashboard")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [m001_initial, m002_manifest_signature,
                                                              m003_upload_metadata, m004_pairing,
                                                              m005_district]
