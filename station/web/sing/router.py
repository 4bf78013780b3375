"""The /sing page and its JSON API: scan, record, stop, verdict, retake, close.

Every refusal is ``{"error", "zh", "en"}`` (400 bad input, 409 what the station cannot do
now, e.g. a second take while one is recording). The take runs on the server
(``desk.Desk``); the page follows it over server-sent events on ``/api/sing/events``:
``level`` five times a second (meter and countdown), ``started``/``done``/``selected``/
``salvaged``/``closed`` for the rest, on which the page re-reads its fragment.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from station import sittings
from station.singing import TakeRefused, open_singing_sitting
from station.services.salvage import salvage_in_background
from station.web.api import Refused, json_body, who as _who
from station.web.events import stream as event_stream
from station.web.sealed import sealed
from station.web.sing.desk import Busy, Desk, sitting_state
from station.web.templating import render


@asynccontextmanager
async def lifespan(app: FastAPI):
    # Interrupted takes are repaired before the first student sings, and listed on the page.
    salvage_in_background(app.state.station, Desk.of(app).salvage_done)
    yield


router = APIRouter(lifespan=lifespan)

def _seconds(body: dict) -> float | None:
    raw = body.get("seconds")
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise Refused(f"录音时长“{raw}”不是数字。", f"The length \"{raw}\" is not a number.", 400)


def _state(desk: Desk) -> dict:
    try:
        sitting = open_singing_sitting(desk.station.db)
    except TakeRefused as exc:
        state: dict = {"sitting": None, "students": [], "progress": {"done": 0, "total": 0},
                       "problem": {"zh": exc.zh, "en": exc.en}}
    else:
        state = sitting_state(desk.station, sitting)
    live = desk.live
    state.update(recording=live.to_json() if live else None, last=desk.last, selected=desk.selected,
                 salvaged=desk.salvaged or [], retake_limit=int(desk.station.config["singing.retake_limit"]))
    return state


@router.get("/api/sing/state")
def state_json(request: Request):
    return _state(Desk.of(request.app))


@router.post("/api/sing/open")
async def open_sitting(request: Request, body: dict = Depends(json_body)):
    station = request.app.state.station
    s = await run_in_threadpool(sittings.open_sitting, station.db, "singing", None, _who(request))
    Desk.of(request.app).publish({"type": "opened", "sitting": s["id"]})
    return {"sitting": s}


@router.post("/api/sing/select")
async def select(request: Request, body: dict = Depends(json_body)):
    code = str(body.get("code") or "").strip()
    if not code:
        raise Refused("缺少学籍号/考号，请扫描条码。", "The student code is missing; scan the barcode.", 400)
    return {"student": await run_in_threadpool(Desk.of(request.app).select, code)}


@router.post("/api/sing/record")
async def record(request: Request, body: dict = Depends(json_body)):
    desk = Desk.of(request.app)
    code = str(body.get("code") or desk.selected or "").strip()
    if not code:
        raise Refused("请先扫描考生条码，再开始录音。", "Scan the student's barcode first, then record.", 400)
    seconds = _seconds(body)
    song = str(body["song"]).strip() if body.get("song") else None
    live = await run_in_threadpool(desk.start, code, song, seconds)
    return JSONResponse({"recording": live.to_json()}, status_code=202)


@router.post("/api/sing/stop")
async def stop(request: Request):
    if not Desk.of(request.app).stop():
        raise Refused("现在没有在录音。", "Nothing is being recorded now.", code="idle")
    return {"stopping": True}


@router.post("/api/sing/close")
async def close_sitting(request: Request, body: dict = Depends(json_body)):
    from station import sealing

    desk = Desk.of(request.app)
    if desk.live is not None:
        raise Busy()
    station = request.app.state.station
    who = _who(request)

    def close() -> dict:
        sitting_id = str(body.get("sitting") or "") or open_singing_sitting(station.db)["id"]
        return sealing.close_and_seal(station, sitting_id, who)

    closed = await run_in_threadpool(close)
    desk.selected = None
    desk.publish({"type": "closed", "sitting": closed["id"], "seal_code": closed["seal_code"]})
    return {"sitting": closed}


@router.get("/api/sing/events")
async def events(request: Request):
    desk = Desk.of(request.app)
    return event_stream(request, desk.subscribe(), desk.unsubscribe)


@router.get("/sing")
def sing_page(request: Request, closed: str | None = None):
    desk = Desk.of(request.app)
    fragment = bool(request.query_params.get("fragment"))
    state = _state(desk)
    selected = next((s for s in state["students"] if s["code"] == desk.selected), None)
    verdict = None
    if selected is not None:
        last = state["last"]
        # The take just recorded here, else the student's last take on record (after a restart).
        if last and last["code"] == selected["code"]:
            verdict = last
        elif selected["last_verdict"]:
            verdict = {"verdict": selected["last_verdict"], "reasons": selected["last_reasons"],
                       "error": None}
    return render(request, "sing_main.html" if fragment else "sing.html", page="sing", state=state,
                  selected=selected, verdict=verdict, sealed=sealed(desk.station, closed))
