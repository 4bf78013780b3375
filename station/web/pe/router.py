"""The /pe page and its JSON API: scan, decide, watch the devices, export, close.

Every write answers with the sitting's new state, or with a bilingual refusal
(``{"error", "zh", "en"}``, status 400 for bad input, 409 for a request the sitting
cannot take now). Live updates come as server-sent events on ``/api/pe/events``; the page
re-reads its fragment on each one, and shows an unstable reading as it moves.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from pe_station import export
from pe_station.items import ITEMS
from station import roster, sittings
from qmbase.refusal import Refusal
from station.web.api import Refused, json_body, who as _who
from station.web.events import stream as event_stream
from station.web.pe.hub import Hub
from station.web.sealed import sealed
from station.web.templating import render

router = APIRouter()

ACTIONS = {
    # action: (fields it needs, how the flow does it)
    "scan": (("code",), lambda f, b, who: f.scan(b["code"], who, b.get("device") or None,
                                                 lane=_lane(b))),
    "confirm": (("attempt",), lambda f, b, who: f.confirm(int(b["attempt"]), who)),
    "void": (("attempt",), lambda f, b, who: f.void(int(b["attempt"]), who)),
    "retest": (("code",), lambda f, b, who: f.retest(b["code"], who, b.get("device") or None,
                                                     item=b.get("item") or None, lane=_lane(b))),
    "absent": (("code",), lambda f, b, who: f.absent(b["code"], who)),
    "exempt": (("code",), lambda f, b, who: f.exempt(b["code"], who)),
    "correct": (("attempt", "value", "reason"),
                lambda f, b, who: f.correct(int(b["attempt"]), str(b["value"]), str(b["reason"]), who)),
    "assign": (("reading", "code"), lambda f, b, who: f.assign(int(b["reading"]), b["code"], who,
                                                               item=b.get("item") or None)),
}


def _lane(body: dict) -> int | None:
    """The lane a scan is for (a two-lane 50 m timer), or None; checked by ``_missing``."""
    lane = "" if body.get("lane") is None else str(body["lane"]).strip()
    return int(lane) if lane else None


FIELD_ZH = {"code": "学籍号/考号", "attempt": "成绩编号", "value": "成绩", "reason": "原因",
            "reading": "读数编号", "item": "项目", "lane": "道次"}


def _require(body: dict, fields: tuple[str, ...]) -> None:
    for name in fields:
        if str(body.get(name, "")).strip() == "":
            raise Refused(f"缺少{FIELD_ZH.get(name, name)}，请填写后重试。",
                          f"The {name} is missing; fill it in and try again.", 400)
        if name in ("attempt", "reading") and not str(body[name]).strip().isdigit():
            raise Refused(f"{FIELD_ZH[name]}“{body[name]}”不是编号。", f"{name} \"{body[name]}\" is not a number.", 400)
    lane = "" if body.get("lane") is None else str(body["lane"]).strip()
    if lane and not lane.isdigit():
        raise Refused(f"道次“{lane}”不是数字，请选择第 1 道或第 2 道。",
                      f"The lane \"{lane}\" is not a number; choose lane 1 or lane 2.", 400)


def _state(hub: Hub, sitting_id: str) -> dict:
    service = hub.service(sitting_id)
    state = service.flow.state()
    state["devices"] = service.status()
    return state


@router.get("/api/pe/state")
def state_json(request: Request, sitting: str | None = None):
    return _state(Hub.of(request.app), sitting)


@router.post("/api/pe/open")
async def open_sitting(request: Request, body: dict = Depends(json_body)):
    _require(body, ("item",))
    station = request.app.state.station
    s = await run_in_threadpool(sittings.open_sitting, station.db, "pe", str(body["item"]),
                                _who(request))
    return {"sitting": s}


@router.post("/api/pe/close")
async def close_sitting(request: Request, body: dict = Depends(json_body)):
    hub = Hub.of(request.app)
    sitting_id = hub.pick(body.get("sitting"))
    closed = await run_in_threadpool(hub.close, sitting_id, _who(request))
    return {"sitting": closed}


@router.post("/api/pe/{action}")
async def act(action: str, request: Request, body: dict = Depends(json_body)):
    if action not in ACTIONS:
        raise Refused(f"没有“{action}”这个操作。", f"There is no action \"{action}\".", 404)
    fields, do = ACTIONS[action]
    _require(body, fields)
    body = {k: str(v).strip() if k in ("code", "device") and v is not None else v for k, v in body.items()}
    hub = Hub.of(request.app)

    who = _who(request)

    def run() -> dict:
        service = hub.service(body.get("sitting"))
        done = do(service.flow, body, who)
        return {"done": done, "state": _state(hub, service.flow.sitting)}

    return await run_in_threadpool(run)


@router.get("/api/pe/export")
def export_results(request: Request, sitting: str | None = None, format: str = "json"):
    hub = Hub.of(request.app)
    db = request.app.state.station.db
    sitting_id = sitting or hub.pick(None)
    sittings.get(db, sitting_id)
    document = export.results(db, sitting_id, lambda code: roster.lookup(db, code), items=hub.items)
    if format == "csv":
        return Response(b"\xef\xbb\xbf" + export.to_csv(document).encode("utf-8"),
                        media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="pe-{sitting_id}.csv"'})
    if format != "json":
        raise Refused(f"导出格式只能是 csv 或 json，而不是“{format}”。",
                      f"The export format is csv or json, not \"{format}\".", 400)
    return document


@router.get("/api/pe/events")
async def events(request: Request, sitting: str | None = None):
    hub = Hub.of(request.app)
    sitting_id = await run_in_threadpool(lambda: hub.service(sitting).flow.sitting)
    return event_stream(request, hub.subscribe(sitting_id), hub.unsubscribe)


@router.get("/pe")
def pe_page(request: Request, sitting: str | None = None, closed: str | None = None):
    hub = Hub.of(request.app)
    fragment = bool(request.query_params.get("fragment"))
    open_ = hub.open_pe_sittings()
    state, problem = None, None
    try:
        state = _state(hub, sitting) if (sitting or open_) else None
    except Refusal as exc:   # the page shows it in place of the sitting
        problem = {"zh": exc.text_zh, "en": exc.text_en}
    context = dict(page="pe", state=state, open_sittings=open_, items=ITEMS,
                   problem=problem, rules=hub.items,
                   # Just closed here (?closed=ID) or named after it closed: its seal code.
                   sealed=sealed(hub.station, closed or (sitting if problem else None)))
    return render(request, "pe_main.html" if fragment else "pe.html", **context)
