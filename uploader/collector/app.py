"""The collector application: its state (db, the upload store) and the routers composed."""
from __future__ import annotations

import contextlib
from importlib import metadata
from pathlib import Path

from fastapi import FastAPI, Request

from qmbase.platform import make_private_dir

from .. import contract
from . import auth, dashboard, incidents, pairing, stations, tus
from .index import POSTGRESQL, Index, unavailable_errors
from .live import Live
from .local_uploads import LocalUploadStore
from .shared_locks import SharedLocks
from .s3_uploads import S3UploadStore
from .overview import DEFAULT_SILENT_MINUTES, DEFAULT_TIMEZONE, local_zone
from .messages import CollectorError
from .spool import Spool
from .storage import S3Storage, open_storage
from .store import open_db
from .uploads import UploadRefused, UploadStore

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
    """Everything a request handler needs; one per app, used from the event loop thread."""

    def __init__(self, db: Index, uploads: UploadStore,
                 expected_station_version: str | None = None,
                 patch_idle_timeout: float = DEFAULT_PATCH_IDLE_TIMEOUT,
                 silent_minutes: float = DEFAULT_SILENT_MINUTES, zone: str = DEFAULT_TIMEZONE):
        self.db, self.uploads = db, uploads
        self.live = Live(db, silent_minutes, zone)
        self.patch_idle_timeout = patch_idle_timeout  # for every request body, uploads' too
        self.expected_station_version = expected_station_version

    def station(self, request: Request) -> str:
        return auth.station_for(self.db, auth.bearer(request))


def create_app(data_dir: str | Path, storage: str | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               s3_endpoint_url: str | None = None,
               expected_station_version: str | None = None,
               patch_idle_timeout: float = DEFAULT_PATCH_IDLE_TIMEOUT,
               max_open_uploads: int = DEFAULT_MAX_OPEN_UPLOADS,
               silent_minutes: float = DEFAULT_SILENT_MINUTES,
               zone: str = DEFAULT_TIMEZONE, db_url: str | None = None) -> FastAPI:
    if patch_idle_timeout <= 0:
        raise ValueError("patch_idle_timeout must be positive")
    if silent_minutes <= 0:
        raise ValueError("silent_minutes must be positive")
    local_zone(zone)  # an unknown zone stops the start, not the first page
    # Private whatever the index: TLS keys, PATCH buffers, the SQLite index if there is one.
    data_dir = make_private_dir(Path(data_dir))
    db = open_db(data_dir, db_url)
    stored = open_storage(storage, data_dir, s3_endpoint_url)
    uploads: UploadStore
    if db.dialect == POSTGRESQL and isinstance(stored, S3Storage):
        # Several instances: bytes so far in S3, one writer per upload across instances.
        uploads = S3UploadStore(db, stored, data_dir / "buffers", max_upload_bytes,
                                max_open_uploads, patch_idle_timeout, SharedLocks(db))
    else:
        uploads = LocalUploadStore(db, Spool(data_dir / "incoming"), stored, max_upload_bytes,
                                   max_open_uploads, patch_idle_timeout)
    state = Collector(db, uploads, expected_station_version, patch_idle_timeout,
                      silent_minutes, zone)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        uploads.recover()
        yield
        if isinstance(uploads.locks, SharedLocks):
            await uploads.locks.close()  # this instance's holds let go now, not at lease end
        db.close()

    app = FastAPI(title="qm-station collector", version=version(), lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.collector = state
    app.add_middleware(tus.MethodOverride)

    @app.exception_handler(CollectorError)
    async def collector_error(request: Request, exc: CollectorError):
        if isinstance(exc, UploadRefused):
            exc = tus.refusal(exc)
        answer = exc.response()
        if tus.is_tus_path(request.url.path):  # tus: every answer says its version, errors too
            answer.headers.setdefault("Tus-Resumable", contract.TUS_VERSION)
        return answer

    async def index_unavailable(request: Request, exc: Exception):
        # The database restarting or out of reach: nothing was done, and the station retries.
        return await collector_error(request, CollectorError(503, "index_unavailable",
                                                             headers={"Retry-After": "5"}))

    for error in unavailable_errors():
        app.add_exception_handler(error, index_unavailable)

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
