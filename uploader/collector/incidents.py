"""Incidents (应急事件): filed on a station, kept here, followed and marked handled by the district.

A station sends each incident as soon as it is filed (`POST /api/stations/{id}/incidents`, from
its outbox, so a resend after a lost answer is harmless: the incident's id, made on the
station, is part of the key). The dashboard marks one handled
(`POST /api/incidents/{station}/{uid}/handled`).
The categories are the wire contract's fixed list; the station's forms offer the same.
"""
from __future__ import annotations

import json
import re

from fastapi import APIRouter, Request

from . import auth
from .index import Index
from .messages import CollectorError
from .store import now_iso

# id -> (中文, English): the order is the order the forms list them in.
CATEGORIES: dict[str, tuple[str, str]] = {
    "equipment": ("设备故障", "equipment failure"),
    "power": ("停电", "power cut"),
    "network": ("网络中断", "network outage"),
    "unwell": ("学生身体不适", "student unwell"),
    "absent": ("学生缺考或迟到", "student absent or late"),
    "disturbance": ("考场秩序干扰", "disturbance"),
    "other": ("其他", "other"),
}
MAX_TEXT = 4000
UID = re.compile(r"^[0-9a-f]{32}$")

router = APIRouter()


def check(body: dict) -> dict:
    """The incident fields a station sends, checked; CollectorError 422 naming the field."""
    def text(key: str, required: bool = False) -> str:
        value = body.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()) or len(value) > MAX_TEXT:
            raise CollectorError(422, "bad_incident", detail=key)
        return value.strip()

    local_id = body.get("id")
    if not isinstance(local_id, int) or isinstance(local_id, bool) or local_id < 1:
        raise CollectorError(422, "bad_incident", detail="id")
    uid = body.get("uid")
    if not isinstance(uid, str) or not UID.match(uid):
        raise CollectorError(422, "bad_incident", detail="uid")
    if body.get("category") not in CATEGORIES:
        raise CollectorError(422, "bad_incident", detail="category")
    students = body.get("students") or []
    if not isinstance(students, list) or not all(isinstance(s, str) for s in students):
        raise CollectorError(422, "bad_incident", detail="students")
    return {"uid": uid, "local_id": local_id, "category": body["category"], "at": text("at", True),
            "sitting": text("sitting") or None, "students": json.dumps(students, ensure_ascii=False),
            "text": text("text", True), "action": text("action"), "filed_by": text("filed_by")}


def store(db: Index, station: str, body: dict) -> bool:
    """Keep a station's incident; False when it was already here (a resend)."""
    row = check(body)
    row = {"station": station, **row, "received_at": now_iso(), "handled_at": None,
           "handled_by": None, "handled_note": None}
    # One statement: a resend arriving at two instances at once is still kept once.
    return db.insert("incidents", row, ignore=True) == 1


def rows(db: Index) -> list[dict]:
    """Every incident, newest first, with its school (code and name) and category names."""
    out = []
    for r in db.query(
            "SELECT i.*, st.school AS school_code, sc.name AS school_name FROM incidents i "
            "LEFT JOIN stations st ON st.id = i.station LEFT JOIN schools sc ON sc.code = st.school "
            "ORDER BY i.at DESC, i.station, i.local_id DESC"):
        zh, en = CATEGORIES.get(r["category"], (r["category"], r["category"]))
        out.append({**r, "students": json.loads(r["students"] or "[]"), "category_zh": zh,
                    "category_en": en, "handled": r["handled_at"] is not None})
    return out


@router.post("/api/stations/{station_id}/incidents")
async def receive(station_id: str, request: Request):
    from .stations import json_object, own_station

    own_station(request, station_id)
    state = request.app.state.collector
    added = store(state.db, station_id, await json_object(request))
    state.live.changed()
    return {"status": "ok", "stored": added}


@router.post("/api/incidents/{station_id}/{uid}/handled")
async def handled(station_id: str, uid: str, request: Request):
    from .stations import json_object

    state = request.app.state.collector
    auth.require_admin_write(state.db, request)
    body = await json_object(request)
    note = body.get("note") if isinstance(body.get("note"), str) else ""
    who = body.get("by") if isinstance(body.get("by"), str) else ""
    changed = state.db.update("incidents", {"station": station_id, "uid": uid}, {
        "handled_at": now_iso(), "handled_by": who.strip()[:100] or "区县 district",
        "handled_note": note.strip()[:MAX_TEXT]})
    if not changed:
        raise CollectorError(404, "no_incident")
    state.live.changed()
    return {"status": "ok"}
