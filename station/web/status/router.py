"""The status page (/) and the station's health and status JSON."""
from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request

from devices.platform import free_bytes
from station import roster, sittings
from station.web.templating import render

router = APIRouter()


def status_of(request: Request) -> dict:
    state = request.app.state
    station = state.station
    db = station.db
    return {
        "station_id": station.station_id,
        "school": station.config["school"],
        "room": station.config["room"],
        "version": state.version,
        "rehearsal": state.rehearsal,
        "open_sittings": sittings.list_sittings(db, "open"),
        "roster_size": roster.count(db),
        "devices": state.devices.snapshot(),
        "data_dir": str(station.data_dir),
        "free_disk_bytes": free_bytes(station.data_dir),
        "time": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


@router.get("/api/health")
def health(request: Request) -> dict:
    state = request.app.state
    return {"status": "ok", "station_id": state.station.station_id, "version": state.version,
            "rehearsal": state.rehearsal}


@router.get("/api/status")
def status_json(request: Request) -> dict:
    return status_of(request)


@router.get("/")
def status_page(request: Request):
    status = status_of(request)
    template = "status_main.html" if request.query_params.get("fragment") else "status.html"
    return render(request, template, page="status", status=status,
                  free_gb=f"{status['free_disk_bytes'] / 1e9:.1f}")
