"""Stations: heartbeat, pre-check reports, the throughput probe and `GET /api/stations`
(the dashboard itself is `dashboard.py`)."""
from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect

from . import auth, sittings
from .messages import CollectorError
from .store import now_iso

router = APIRouter()
MAX_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32          # a pre-check report nests 4 deep; deeper is not a station talking
BODY_TOTAL_IDLES = 3         # a whole small body gets three idle timeouts (60 s by default)
PRECHECKS_KEPT = 100         # pre-check reports kept per station (the newest)
STATUSES = ("pass", "warn", "fail", "skip")


def collector(request: Request):
    return request.app.state.collector


async def timed_pieces(request: Request):
    """The body's pieces, each within the collector's idle timeout and all within three of
    them (TimeoutError otherwise): a client trickling bytes does not hold a request open."""
    idle = collector(request).patch_idle_timeout
    loop = asyncio.get_running_loop()
    give_up = loop.time() + BODY_TOTAL_IDLES * idle
    pieces = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout_at(min(give_up, loop.time() + idle)):
                piece = await anext(pieces)
        except StopAsyncIteration:
            return
        yield piece


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes, in time (``timed_pieces``)."""
    body = bytearray()
    try:
        async for piece in timed_pieces(request):
            body += piece
            if len(body) > limit:
                raise CollectorError(413, "bad_json", detail=f"over {limit} bytes",
                                     headers={"Connection": "close"})
    except TimeoutError:
        raise CollectorError(408, "body_timeout", headers={"Connection": "close"})
    except ClientDisconnect:
        raise CollectorError(400, "bad_json", detail="the client went away")
    return bytes(body)


def nesting(value) -> int:
    """How deep lists and objects nest (iteratively: the check itself must not recurse)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


async def json_object(request: Request) -> dict:
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CollectorError(400, "bad_json", detail=type(exc).__name__)
    if not isinstance(value, dict):
        raise CollectorError(400, "bad_json", detail="not an object")
    if nesting(value) > MAX_JSON_DEPTH:
        raise CollectorError(400, "bad_json", detail=f"nested deeper than {MAX_JSON_DEPTH}")
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
    state.db.upsert("heartbeats", {
        "station": station_id, "received_at": now_iso(), "at": str(body.get("at") or ""),
        "version": str(body.get("version") or ""),
        "sittings_open": open_count if isinstance(open_count, int) else None,
        "body": json.dumps(body, ensure_ascii=False)}, pk=("station",))
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
    with state.db.transaction(f"prechecks:{station_id}"):
        state.db.insert("prechecks", {
            "station": station_id, "received_at": now_iso(), "overall": report["overall"],
            "failing": json.dumps(failing_checks(report), ensure_ascii=False),
            "body": json.dumps(report, ensure_ascii=False)})
        # A station (or its stolen token) sending reports in a loop must not fill the disk.
        state.db.execute("DELETE FROM prechecks WHERE station = ? AND id NOT IN (SELECT id FROM prechecks "
                         "WHERE station = ? ORDER BY id DESC LIMIT ?)", [station_id, station_id, PRECHECKS_KEPT])
    return {"status": "ok"}


@router.put("/api/probe")
async def probe(request: Request):
    """Throughput probe for the pre-check: read, count, discard."""
    collector(request).station(request)
    count = 0
    try:
        async for piece in timed_pieces(request):
            count += len(piece)
    except (ClientDisconnect, TimeoutError):
        pass
    return {"bytes": count}


def station_rows(db) -> list[dict]:
    heartbeats = {r["station"]: r for r in db.query("SELECT * FROM heartbeats")}
    prechecks = {r["station"]: r for r in db.query(
        "SELECT * FROM prechecks WHERE id IN (SELECT max(id) FROM prechecks GROUP BY station)")}
    rows = []
    for station in db.query("SELECT * FROM stations ORDER BY id"):
        sid = station["id"]
        hb, pc = heartbeats.get(sid), prechecks.get(sid)
        seals, files_listed, files_arrived, bytes_listed, bytes_arrived = [], 0, 0, 0, 0
        for s in db.query("SELECT * FROM sittings WHERE station = ? "
                          "ORDER BY sealed_at NULLS FIRST, sitting", [sid]):
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
