"""The incident form (/incidents), linked from every page's header: a proctor files an
incident (应急事件) in a few seconds; `POST /api/incidents` takes it as JSON, and
`GET /api/incidents` lists this station's incidents.

Filing keeps it (`station.incidents.add`) and answers at once; sending it to the district
runs in a thread of its own, so a slow or absent network never holds the proctor's page.
"""
from __future__ import annotations

import threading

from fastapi import APIRouter, Depends, Request

from station import incidents, sittings
from station.errors import UsageError
from station.sittings import SittingError
from station.web.api import json_body, who
from station.web.templating import render
from uploader.collector.incidents import CATEGORIES

router = APIRouter()


def _send_in_background(station) -> None:
    def send() -> None:
        try:
            incidents.send_now(station)
        finally:
            db = getattr(station._local, "db", None)   # this thread's own connection
            if db is not None:
                db.conn.close()
                station._local.db = None

    threading.Thread(target=send, name="incident-send", daemon=True).start()


@router.post("/api/incidents")
async def file_incident(request: Request, body: dict = Depends(json_body)):
    station = request.app.state.station

    def text(key: str) -> str:
        value = body.get(key)
        return value if isinstance(value, str) else ""

    try:
        doc = incidents.add(station, text("category"), text("text"), text("sitting") or None,
                            incidents.parse_students(text("students")), text("action"),
                            who(request))
    except SittingError as exc:      # the sitting named in the form: bad input here
        raise UsageError.of(exc) from None
    _send_in_background(station)
    return doc


@router.get("/api/incidents")
def list_incidents(request: Request) -> dict:
    return {"incidents": incidents.list_all(request.app.state.station)}


@router.get("/incidents")
def incidents_page(request: Request):
    station = request.app.state.station
    rows = incidents.list_all(station)
    recent = sittings.list_sittings(station.db)[-20:][::-1]
    open_ids = [s["id"] for s in recent if s["state"] == "open"]
    return render(request, "incidents.html", page="incidents", categories=CATEGORIES,
                  incidents=rows[::-1], sittings=recent,
                  chosen=open_ids[0] if len(open_ids) == 1 else "")
