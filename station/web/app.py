"""The station web app: routers composed in one place, assets served from the package."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from station import __version__
from station.context import Station
from station.services.devicescan import DeviceScan
from station.services.district import District
from station.services.warmup import warm_up_in_background
from station.web import pe, pin, status
from station.web import uploads
from station.web import precheck as precheck_web
from station.web import rehearsal as rehearsal_web
from station.web import setup as setup_web
from station.web import sing as sing_web

STATIC = Path(__file__).resolve().parent / "static"


def create_app(station: Station, rehearsal: bool = False, background: bool = True) -> FastAPI:
    """``background``: scan devices, talk to the district and warm the analysis up."""
    devices = DeviceScan()
    district = District(station)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if background:
            devices.start()
            district.start()
            warm_up_in_background()
        yield
        devices.stop()
        district.stop()
        watches = getattr(app.state, "setup_watches", None)
        if watches is not None:
            watches.stop_all()

    app = FastAPI(title="qm-station", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.station = station
    app.state.rehearsal = rehearsal or bool(station.config["rehearsal"])
    app.state.version = __version__
    app.state.devices = devices
    app.state.district = district
    pin.install(app, station.config["web.pin"])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(status.router)
    app.include_router(pe.router)
    app.include_router(sing_web.router)
    app.include_router(precheck_web.router)
    app.include_router(uploads.router)
    app.include_router(setup_web.router)
    if app.state.rehearsal:
        app.include_router(rehearsal_web.router)
    return app
