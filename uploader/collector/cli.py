"""Plain functions behind `station collector serve | add-station | admin-token`.

`python -m uploader.collector.cli` runs them too (the tests start the server that way).
"""
from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from pathlib import Path
from typing import Iterator

from . import overview, reports, schools, usb
from .app import (DEFAULT_MAX_OPEN_UPLOADS, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_PATCH_IDLE_TIMEOUT,
                  create_app)
from .auth import new_admin_token, register_station
from .connections import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, guarded_protocol
from .storage import open_storage
from .index import Index
from .store import open_db


@contextlib.contextmanager
def opened(data_dir: str | Path, db_url: str | None) -> Iterator[Index]:
    db = open_db(data_dir, db_url)
    try:
        yield db
    finally:
        db.close()


def serve(host: str, port: int, data_dir: str | Path, storage: str | None = None,
          tls_cert: str | None = None, tls_key: str | None = None,
          max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, s3_endpoint_url: str | None = None,
          expected_station_version: str | None = None, fd: int | None = None,
          patch_idle_timeout: float = DEFAULT_PATCH_IDLE_TIMEOUT,
          header_timeout: float = DEFAULT_HEADER_TIMEOUT,
          max_connections: int = DEFAULT_MAX_CONNECTIONS,
          max_open_uploads: int = DEFAULT_MAX_OPEN_UPLOADS,
          silent_minutes: float = overview.DEFAULT_SILENT_MINUTES,
          zone: str = overview.DEFAULT_TIMEZONE, db_url: str | None = None) -> None:
    """Run the collector until interrupted. `fd`: an already-listening socket (tests)."""
    import uvicorn

    app = create_app(data_dir, storage=storage, max_upload_bytes=max_upload_bytes,
                     s3_endpoint_url=s3_endpoint_url,
                     expected_station_version=expected_station_version,
                     patch_idle_timeout=patch_idle_timeout, max_open_uploads=max_open_uploads,
                     silent_minutes=silent_minutes, zone=zone, db_url=db_url)
    options = dict(log_level="info", access_log=False, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                   timeout_keep_alive=30, http=guarded_protocol(header_timeout, max_connections),
                   # requests beyond this many at once get 503 (the station retries later)
                   limit_concurrency=max_connections)
    if fd is not None:
        # socket(fileno=) reads family and protocol from the fd; uvicorn's own fd= path labels it
        # AF_UNIX, so asyncio would skip TCP_NODELAY and each request would wait out a delayed ACK.
        sock = socket.socket(fileno=fd)
        uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
    else:
        uvicorn.run(app, host=host, port=port, **options)


def add_station(station_id: str, data_dir: str | Path, school: str | None = None,
                room: str | None = None, db_url: str | None = None) -> str:
    """Register a station (or give it a new token) and return the token; only its hash is kept.
    `school`: a code from the district's list of schools, once one is imported."""
    with opened(data_dir, db_url) as db:
        schools.check_school(db, school)
        return register_station(db, station_id, school=school, room=room)


def import_schools(path: str | Path, data_dir: str | Path,
                   db_url: str | None = None) -> tuple[int, int]:
    """The district's expected schools from CSV/XLSX; (added, updated). SchoolsError if bad."""
    with opened(data_dir, db_url) as db:
        return schools.import_file(db, path)


def report(form: str, fmt: str, path: str | Path, data_dir: str | Path,
           zone_name: str = overview.DEFAULT_TIMEZONE, db_url: str | None = None) -> Path:
    """Write the upload-status or incidents form as xlsx or csv."""
    with opened(data_dir, db_url) as db:
        return reports.write(db, form, fmt, path, zone_name)


def import_stick(folder: str | Path, data_dir: str | Path, storage: str | None = None,
                 s3_endpoint_url: str | None = None,
                 db_url: str | None = None) -> list[usb.Outcome]:
    """Store the sealed sittings on a USB stick, each checked as an upload is checked."""
    with opened(data_dir, db_url) as db:
        return usb.import_dir(db, open_storage(storage, data_dir, s3_endpoint_url),
                              Path(data_dir) / "incoming", folder)


def admin_token(data_dir: str | Path, db_url: str | None = None) -> str:
    """A new district admin token for the dashboard and GET /api/stations (replaces the old one)."""
    with opened(data_dir, db_url) as db:
        return new_admin_token(db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uploader.collector.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8443)
    run.add_argument("--fd", type=int)
    run.add_argument("--data", required=True)
    run.add_argument("--storage")
    run.add_argument("--db", help="postgresql://… (several instances) or sqlite:///FILE")
    run.add_argument("--s3-endpoint-url")
    run.add_argument("--max-upload-bytes", type=int, default=DEFAULT_MAX_UPLOAD_BYTES)
    run.add_argument("--tls-cert")
    run.add_argument("--tls-key")
    run.add_argument("--expected-station-version")
    run.add_argument("--patch-idle-timeout", type=float, default=DEFAULT_PATCH_IDLE_TIMEOUT,
                     help="seconds without body bytes after which a request counts as disconnected")
    run.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT,
                     help="seconds a connection has to send a request's headers")
    run.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS)
    run.add_argument("--max-open-uploads", type=int, default=DEFAULT_MAX_OPEN_UPLOADS,
                     help="unfinished uploads one station may have open at once")
    run.add_argument("--silent-minutes", type=float, default=overview.DEFAULT_SILENT_MINUTES)
    run.add_argument("--timezone", default=overview.DEFAULT_TIMEZONE)
    add = sub.add_parser("add-station")
    add.add_argument("station_id")
    add.add_argument("--data", required=True)
    add.add_argument("--school")
    add.add_argument("--room")
    add.add_argument("--db")
    admin = sub.add_parser("admin-token")
    admin.add_argument("--data", required=True)
    admin.add_argument("--db")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.host, args.port, args.data, args.storage, args.tls_cert, args.tls_key,
              args.max_upload_bytes, args.s3_endpoint_url, args.expected_station_version,
              fd=args.fd, patch_idle_timeout=args.patch_idle_timeout,
              header_timeout=args.header_timeout, max_connections=args.max_connections,
              max_open_uploads=args.max_open_uploads,
              silent_minutes=args.silent_minutes, zone=args.timezone, db_url=args.db)
    elif args.command == "add-station":
        try:
            print(add_station(args.station_id, args.data, args.school, args.room, args.db))
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    else:
        print(admin_token(args.data, args.db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
