"""Stations: heartbeat, pre-check reports, the throughput probe and `GET /api/stations`
(the dashboard itself is `dashboard.py`)."""
from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect

from . import auth, sittings
from .messages import CollectorError
from .store import now_iso

router = APIRouter()
MAX_JSON_BYTES = 1024 * 1024
STATUSES = ("pass", "warn", "fail", "skip")


def collector(request: Request):
    return request.app.state.collector


async def json_object(request: Request) -> dict:
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_JSON_BYTES:
            raise CollectorError(413, "bad_json", detail="over 1 MiB")
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CollectorError(400, "bad_json", detail=type(exc).__name__)
    if not isinstance(value, dict):
        raise CollectorError(400, "bad_json", detail="not an object")
    return value


def own_station(request: Request, station_id: str) -> str:
    station = collector(request).station(request)
    if station != station_id:
        raise CollectorError(403, "wrong_station")
    return station


@router.post("/api/stations/{station_id}/heartbeat")
async def heartbeat(station_id: str, request: Request):
    own_station(request, station_id)
    body = await json_object(request)
    state = collector(request)
    open_count = body.get("sittings_open")
    with state.db.conn:
        state.db["heartbeats"].upsert({
            "station": station_id, "received_at": now_iso(), "at": str(body.get("at") or ""),
            "version": str(body.get("version") or ""),
            "sittings_open": open_count if isinstance(open_count, int) else None,
            "body": json.dumps(body, ensure_ascii=False)}, pk="station")
    return {"status": "ok", "expected_station_version": state.expected_station_version}


def failing_checks(report: dict) -> list[dict]:
    return [{"id": c["id"], "status": c["status"], "summary_zh": c.get("summary_zh", ""),
             "summary_en": c.get("summary_en", "")}
            for c in report["checks"] if c["status"] in ("fail", "warn")]


def check_precheck(report: dict) -> None:
    if report.get("overall") not in ("pass", "warn", "fail"):
        raise CollectorError(422, "bad_precheck", detail="overall must be pass, warn or fail")
    checks = report.get("checks")
    if not isinstance(checks, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) and c.get("status") in STATUSES
            for c in checks):
        raise CollectorError(422, "bad_precheck", detail="checks must be a list of {id, status}")


@router.post("/api/stations/{station_id}/precheck")
async def precheck(station_id: str, request: Request):
    own_station(request, station_id)
    report = await json_object(request)
    check_precheck(report)
    state = collector(request)
    with state.db.conn:
        state.db["prechecks"].insert({
            "station": station_id, "received_at": now_iso(), "overall": report["overall"],
            "failing": json.dumps(failing_checks(report), ensure_ascii=False),
            "body": json.dumps(report, ensure_ascii=False)})
    return {"status": "ok"}


@router.put("/api/probe")
async def probe(request: Request):
    """Throughput probe for the pre-check: read, count, discard."""
    collector(request).station(request)
    count = 0
    try:
        async for piece in request.stream():
            count += len(piece)
    except ClientDisconnect:
        pass
    return {"bytes": count}


def station_rows(db) -> list[dict]:
    heartbeats = {r["station"]: r for r in db["heartbeats"].rows}
    prechecks = {r["station"]: r for r in db.query(
        "SELECT * FROM prechecks WHERE id IN (SELECT max(id) FROM prechecks GROUP BY station)")}
    rows = []
    for station in db["stations"].rows_where(order_by="id"):
        sid = station["id"]
        hb, pc = heartbeats.get(sid), prechecks.get(sid)
        seals, files_listed, files_arrived, bytes_listed, bytes_arrived = [], 0, 0, 0, 0
        for s in db["sittings"].rows_where("station = ?", [sid], order_by="sealed_at, sitting"):
            listed = json.loads(s["files_json"])
            have = sittings.arrived(db, sid, s["sitting"], listed)
            files_listed += len(listed)
            files_arrived += len(have)
            bytes_listed += sum(f["size"] for f in listed)
            bytes_arrived += sum(f["size"] for f in have)
            seals.append({"sitting": s["sitting"], "seal_code": s["seal_code"], "kind": s["kind"],
                          "item": s["item"], "closed_at": s["closed_at"],
                          "signature_ok": bool(s["signature_ok"]), "complete": bool(s["complete"])})
        rows.append({
            "id": sid, "school": station["school"], "room": station["room"],
            "last_heartbeat": None if hb is None else {
                "received_at": hb["received_at"], "at": hb["at"], "version": hb["version"],
                "sittings_open": hb["sittings_open"],
                "queue": json.loads(hb["body"]).get("queue")},
            "precheck": None if pc is None else {
                "received_at": pc["received_at"], "overall": pc["overall"],
                "failing": json.loads(pc["failing"])},
            "sittings_closed": len(seals),
            "sittings_complete": sum(1 for s in seals if s["complete"]),
            "files_listed": files_listed, "files_arrived": files_arrived,
            "bytes_listed": bytes_listed, "bytes_arrived": bytes_arrived, "seals": seals})
    return rows


@router.get("/api/stations")
async def list_stations(request: Request):
    state = collector(request)
    if not auth.is_admin(state.db, request):
        raise CollectorError(401, "admin_required", headers={"WWW-Authenticate": "Bearer"})
    return {"generated_at": now_iso(), "stations": station_rows(state.db)}
