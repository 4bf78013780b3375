"""The status page (/) and the station's health and status JSON."""
from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request

from qmbase.platform import free_bytes
from station import config as config_mod
from station import roster, sittings
from station.web.status import strip
from station.web.i18n import translator
from station.web.templating import render, templates

router = APIRouter()


def status_of(request: Request) -> dict:
    state = request.app.state
    station = state.station
    db = station.db
    config = station.config
    devices = state.devices.snapshot()
    open_sittings = [_titled(s) for s in sittings.list_sittings(db, "open")]
    return {
        "station_id": station.station_id,
        "school": station.config["school"],
        "room": station.config["room"],
        "version": state.version,
        "rehearsal": state.rehearsal,
        "set_up": config_mod.is_set_up(config),
        "open_sittings": open_sittings,
        "roster_size": roster.count(db),
        "devices": devices,
        "headset": strip.headset(devices, config["audio.input"], config["audio.output"]),
        "pe_devices": strip.pe_devices(request.app, open_sittings, config["pe.devices"]),
        "uploads": strip.uploads(db, bool(config["upload.collector_url"])),
        "data_dir": str(station.data_dir),
        "free_disk_bytes": free_bytes(station.data_dir),
        "time": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _titled(sitting: dict) -> dict:
    """A sitting with what it is in both languages ("体育现场测试 · 身高"), for the strip's script."""
    title = {}
    for lang in ("zh", "en"):
        t = translator(lang)
        words = [t(f"kind.{sitting['kind']}")] + ([t(f"item.{sitting['item']}")] if sitting["item"] else [])
        title[lang] = " · ".join(words)
    return {**sitting, "title": title}


# Every page extends base.html, which embeds the status for the strip's first paint (before
# its first poll of /api/status); the shared template environment is where base.html can
# reach it without each router passing it.
templates.env.globals["strip_status"] = status_of


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
