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
from station.web import login, pe, pin, status
from station.web import api
from station.web.guard import Guard, allowed_hosts
from station.web.session import Sessions, install_token
from station.web import incidents as incidents_web
from station.web import uploads
from station.web import precheck as precheck_web
from station.web import rehearsal as rehearsal_web
from station.web import setup as setup_web
from station.web import sing as sing_web

STATIC = Path(__file__).resolve().parent / "static"


def create_app(station: Station, rehearsal: bool = False, background: bool = True,
               host: str | None = None) -> FastAPI:
    """``background``: scan devices, talk to the district and warm the analysis up;
    ``host``: the address served (default ``web.host``), answered to beside loopback."""
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

    # No /openapi.json or docs: the station's API is for its own pages.
    app = FastAPI(title="qm-station", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.station = station
    app.state.rehearsal = rehearsal or bool(station.config["rehearsal"])
    app.state.version = __version__
    app.state.devices = devices
    app.state.district = district
    app.state.pin = station.config["web.pin"]
    pin.check_setting(app.state.pin)
    app.state.login_throttle = pin.Throttle()
    app.state.sessions = Sessions(install_token(station.data_dir))
    hosts = allowed_hosts(host or station.config["web.host"], [str(h) for h in station.config["web.allowed_hosts"]])
    app.add_middleware(Guard, sessions=app.state.sessions, hosts=hosts)
    api.install(app)
    app.include_router(login.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(status.router)
    app.include_router(pe.router)
    app.include_router(sing_web.router)
    app.include_router(precheck_web.router)
    app.include_router(uploads.router)
    app.include_router(incidents_web.router)
    app.include_router(setup_web.router)
    if app.state.rehearsal:
        app.include_router(rehearsal_web.router)
    return app
