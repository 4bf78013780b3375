"""The collector application: its state (db, spool, storage) and the routers composed."""
from __future__ import annotations

import contextlib
import logging
from importlib import metadata
from pathlib import Path

import sqlite_utils
from fastapi import FastAPI, Request

from .. import contract
from . import auth, dashboard, incidents, pairing, sittings, stations, tus
from .live import Live
from .locks import UploadLocks
from .overview import DEFAULT_SILENT_MINUTES, DEFAULT_TIMEZONE, local_zone
from .messages import CollectorError
from .spool import Spool, truncate
from .storage import LocalStorage, S3Storage, open_storage, safe_key
from .store import now_iso, open_db

log = logging.getLogger("qm.collector")
DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024 ** 3
# A PATCH whose body sends nothing this long is treated as a disconnect, freeing its upload for
# the station's retry. Long enough for a congested school link, short next to the OS's own
# detection of a dead TCP peer (minutes to hours).
DEFAULT_PATCH_IDLE_TIMEOUT = 20.0
# Unfinished uploads one station may have open at once. A station sends its files one by one
# and a re-created upload replaces the old one of the same path, so a real station stays far
# below; the cap stops one token (a buggy or stolen one) from filling the database and spool.
DEFAULT_MAX_OPEN_UPLOADS = 1000


def version() -> str:
    try:
        return metadata.version("qm-station")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class Collector:
    """Everything a request handler needs; one per app, used from the event loop thread
    (only `put_file` runs in a worker thread, and it touches storage alone)."""

    def __init__(self, db: sqlite_utils.Database, spool: Spool, storage: LocalStorage | S3Storage,
                 max_upload_bytes: int, expected_station_version: str | None = None,
                 patch_idle_timeout: float = DEFAULT_PATCH_IDLE_TIMEOUT,
                 max_open_uploads: int = DEFAULT_MAX_OPEN_UPLOADS,
                 silent_minutes: float = DEFAULT_SILENT_MINUTES, zone: str = DEFAULT_TIMEZONE):
        self.db, self.spool, self.storage = db, spool, storage
        self.max_open_uploads = max_open_uploads
        self.live = Live(db, silent_minutes, zone)
        self.max_upload_bytes = max_upload_bytes
        self.patch_idle_timeout = patch_idle_timeout
        self.expected_station_version = expected_station_version
        self.locks = UploadLocks()

    def station(self, request: Request) -> str:
        return auth.station_for(self.db, auth.bearer(request))

    def discard(self, upload_id: str) -> None:
        with self.db.conn:
            self.db["uploads"].update(upload_id, {"state": "discarded"})
        self.spool.remove(upload_id)

    def key(self, row: dict) -> str:
        return safe_key(row["station"], row["sitting"], row["path"])

    def manifest_key(self, station: str) -> bytes:
        return bytes.fromhex(self.db["stations"].get(station)["manifest_key"] or "")

    def check_manifest(self, row: dict) -> contract.ManifestCheck:
        """The finished manifest upload, checked as the contract says (``verify_manifest``)."""
        data = self.spool.path(row["id"]).read_bytes()
        return contract.verify_manifest(data, row.get("signature"), self.manifest_key(row["station"]),
                                        row["station"], row["sitting"])

    def record_manifest(self, row: dict, check: contract.ManifestCheck) -> None:
        data = self.spool.path(row["id"]).read_bytes()
        sittings.record_manifest(self.db, row["station"], row["sitting"], data, check)

    def put_file(self, row: dict) -> None:
        self.storage.put(self.spool.path(row["id"]), self.key(row))

    def mark_done(self, row: dict) -> None:
        with self.db.conn:
            self.db["uploads"].update(row["id"], {"state": "done", "offset": row["length"],
                                                  "finished_at": now_iso()})
        self.spool.forget(row["id"])
        sittings.update_completeness(self.db, row["station"], row["sitting"])

    def log_storage_error(self, row: dict, exc: BaseException) -> None:
        # Upload ids only: paths carry student codes, which stay out of logs.
        log.error("storing upload %s failed: %s", row["id"], type(exc).__name__)

    def recover(self) -> None:
        """After a crash: cut spool tails past the recorded offset, finish what was finishing,
        and remove spool files no upload owns (killed between creating one and recording it)."""
        receiving = list(self.db["uploads"].rows_where("state = 'receiving'"))
        owned = {row["id"] for row in receiving}
        for part in self.spool.root.glob("*.part"):
            if part.stem not in owned:
                part.unlink()
        for row in receiving:
            had_file = self.spool.path(row["id"]).exists()
            on_disk = self.spool.reconcile(row["id"], row["offset"])
            if row["offset"] == row["length"] and not had_file and self.storage.exists(self.key(row)):
                self.mark_done(row)  # killed between storing the file and recording it
            elif on_disk < row["offset"]:
                with self.db.conn:
                    self.db["uploads"].update(row["id"], {"offset": on_disk})
            elif row["offset"] == row["length"]:
                self.finish_recovered(row)

    def finish_recovered(self, row: dict) -> None:
        if not self.spool.path(row["id"]).exists():
            self.spool.create(row["id"])
        if self.spool.hasher(row["id"], row["length"]).hexdigest() != row["sha256"]:
            self.discard(row["id"])
            return
        check = None
        if row["path"] == sittings.MANIFEST_PATH:
            check = self.check_manifest(row)
            if not check.ok:  # never stored; the station's next creation sends it again
                self.discard(row["id"])
                return
        try:
            if check is not None:
                self.record_manifest(row, check)
            self.put_file(row)
        except Exception as exc:  # storage down at start-up
            self.log_storage_error(row, exc)
            if row["length"]:
                # Step back one byte, so the client's HEAD shows the file unfinished and its
                # resend of that byte finishes it once storage is back.
                truncate(self.spool.path(row["id"]), row["length"] - 1)
                self.spool.forget(row["id"])
                with self.db.conn:
                    self.db["uploads"].update(row["id"], {"offset": row["length"] - 1})
            return
        self.mark_done(row)


def create_app(data_dir: str | Path, storage: str | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               s3_endpoint_url: str | None = None,
               expected_station_version: str | None = None,
               patch_idle_timeout: float = DEFAULT_PATCH_IDLE_TIMEOUT,
               max_open_uploads: int = DEFAULT_MAX_OPEN_UPLOADS,
               silent_minutes: float = DEFAULT_SILENT_MINUTES,
               zone: str = DEFAULT_TIMEZONE) -> FastAPI:
    if patch_idle_timeout <= 0:
        raise ValueError("patch_idle_timeout must be positive")
    if silent_minutes <= 0:
        raise ValueError("silent_minutes must be positive")
    local_zone(zone)  # an unknown zone stops the start, not the first page
    data_dir = Path(data_dir)
    state = Collector(open_db(data_dir), Spool(data_dir / "incoming"),
                      open_storage(storage, data_dir, s3_endpoint_url), max_upload_bytes,
                      expected_station_version, patch_idle_timeout, max_open_uploads,
                      silent_minutes, zone)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        state.recover()
        yield

    app = FastAPI(title="qm-station collector", version=version(), lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.collector = state
    app.add_middleware(tus.MethodOverride)

    @app.exception_handler(CollectorError)
    async def collector_error(request: Request, exc: CollectorError):
        answer = exc.response()
        if tus.is_tus_path(request.url.path):  # tus: every answer says its version, errors too
            answer.headers.setdefault("Tus-Resumable", tus.TUS_VERSION)
        return answer

    @app.get("/api/health")
    async def health():
        return {"status": "ok", "version": version(),
                "expected_station_version": state.expected_station_version}

    app.include_router(tus.router)
    app.include_router(stations.router)
    app.include_router(pairing.router)
    app.include_router(incidents.router)
    app.include_router(dashboard.router)
    return app
