"""The /precheck page and its API: run the equipment pre-check from a browser, watch it live.

``POST /api/precheck/run`` starts one run (a second while one runs is refused, 409);
``/api/precheck/events`` streams each check as it finishes, the overall at the end, and
the microphone level between runs; the reports kept in the database are listed and each
opens as the same printable page ``station precheck --html`` writes.
"""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from station import precheck
from station.web.api import Refused, optional_json_body
from station.web.events import stream as event_stream
from station.web.precheck.live import Busy, Desk
from station.web.templating import render

router = APIRouter()


def summaries(station, limit: int = 10) -> list[dict]:
    """The last reports, newest first: enough to list them, not their measurements."""
    out = []
    for doc in precheck.latest(station, limit):
        counts: dict[str, int] = {}
        for c in doc.get("checks", []):
            counts[c["status"]] = counts.get(c["status"], 0) + 1
        out.append({"id": doc["id"], "station_id": doc.get("station_id"),
                    "started_at": doc["started_at"], "duration_s": doc.get("duration_s"),
                    "overall": doc["overall"], "counts": counts,
                    "url": f"/precheck/reports/{doc['id']}"})
    return out


@router.get("/precheck")
def precheck_page(request: Request):
    station = request.app.state.station
    reports = summaries(station)
    if request.query_params.get("fragment") == "reports":
        return render(request, "precheck_reports.html", page="precheck", reports=reports)
    return render(request, "precheck.html", page="precheck", reports=reports,
                  network_default=bool(station.config["upload.collector_url"]))


@router.post("/api/precheck/run")
async def start_run(request: Request, body: dict = Depends(optional_json_body)):
    network = body.get("network", True)
    if not isinstance(network, bool):
        raise Refused("“network”只能是 true 或 false。", "\"network\" must be true or false.", 400)
    desk = Desk.of(request.app)
    try:
        desk.start(network)
    except Busy:
        raise Refused("设备检查正在进行，请等本次检查结束后再开始。",
                      "A pre-check is already running; wait for it to finish, then start again.", 409) from None
    return JSONResponse({"running": True, "network": network}, status_code=202)


@router.get("/api/precheck/state")
def run_state(request: Request) -> dict:
    state = Desk.of(request.app).snapshot()
    state.pop("type")
    return state


@router.get("/api/precheck/events")
async def events(request: Request):
    desk = Desk.of(request.app)
    # Unsubscribing the last page closes the microphone.
    return event_stream(request, desk.subscribe(), desk.unsubscribe)


@router.get("/api/precheck/reports")
def reports_json(request: Request, limit: str = "10"):
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise Refused(f"limit 应为 1 到 100 之间的整数，而不是“{limit}”。",
                      f"limit must be a whole number from 1 to 100, not \"{limit}\".", 400)
    return summaries(request.app.state.station, int(limit))


@router.get("/precheck/reports/{report_id}")
async def report_page(request: Request, report_id: str):
    doc = None
    if report_id.isdigit():
        doc = await run_in_threadpool(_load, request.app.state.station, int(report_id))
    if doc is None:
        response = render(request, "precheck_missing.html", page="precheck", report_id=report_id)
        response.status_code = 404
        return response
    from precheck.report import from_json
    from precheck.report_html import to_html

    return HTMLResponse(to_html(from_json(doc)))


def _load(station, report_id: int) -> dict | None:
    row = station.db.execute("SELECT report FROM precheck_reports WHERE id = ?", [report_id]).fetchone()
    return json.loads(row[0]) if row else None
