"""Incidents (应急事件) a proctor files on the day: kept, audited, sealed, and sent at once.

An incident is kept in the station's database as filed (it cannot be changed afterwards, like
the audit log), written to the audit log in the same transaction, put in the outbox for the
district collector and, when it names a sitting that is not sealed yet, sealed into that
sitting's bundle (`incidents.json`) when the sitting closes. Sending is tried at once; when
the network is down the outbox keeps it and sends it later.

The categories are the district's fixed list, shared with the collector (its wire contract).
"""
from __future__ import annotations

import json
import uuid

from station import audit, outbox, roster, sittings
from station.context import Station
from station.db import now, transaction
from station.errors import UsageError
from uploader.collector.incidents import CATEGORIES, MAX_TEXT

BUNDLE_FILE = "incidents.json"


def parse_students(text: str | list | None) -> list[str]:
    if text is None:
        return []
    parts = text if isinstance(text, list) else str(text).replace("，", ",").replace("、", ",").split(",")
    codes = []
    for part in parts:
        code = str(part).strip()
        if code and code not in codes:
            codes.append(code)
    return codes


def check(station: Station, category: str, text: str, sitting: str | None,
          students: list[str], action: str) -> None:
    """Refuse what the district could not use, saying what to change (UsageError, exit 2)."""
    if category not in CATEGORIES:
        names = "、".join(f"{k}（{zh}）" for k, (zh, _) in CATEGORIES.items())
        raise UsageError(f"事件类别“{category}”不在规定的列表中，请从这些中选一个：{names}。",
                         f"The category '{category}' is not in the fixed list; choose one of "
                         f"{', '.join(CATEGORIES)}.")
    if not text.strip():
        raise UsageError("请写明发生了什么（事件经过）。", "Say what happened (the text must not be empty).")
    if len(text) > MAX_TEXT or len(action) > MAX_TEXT:
        raise UsageError(f"事件经过和处置措施各不超过 {MAX_TEXT} 字。",
                         f"What happened and what was done: at most {MAX_TEXT} characters each.")
    if sitting is not None:
        sittings.get(station.db, sitting)    # SittingError names the sitting when unknown
    unknown = [c for c in students if roster.lookup(station.db, c) is None]
    if unknown:
        raise UsageError(f"这些学籍号/考号不在本机名册中：{'、'.join(unknown)}。请核对号码；名册外的学生请写在事件经过里。",
                         f"These student codes are not in this station's roster: {', '.join(unknown)}. "
                         f"Check them; describe a student outside the roster in the text instead.")


def document(station: Station, row: dict) -> dict:
    """What the collector receives (and the bundle keeps): students by code, never by name."""
    return {"id": row["id"], "uid": row["uid"], "station": station.station_id,
            "category": row["category"], "at": row["at"], "sitting": row["sitting"],
            "students": json.loads(row["students"]), "text": row["text"], "action": row["action"],
            "filed_by": row["filed_by"]}


def add(station: Station, category: str, text: str, sitting: str | None = None,
        students: list[str] | None = None, action: str = "", who: str | None = None) -> dict:
    students = students or []
    text, action = (text or "").strip(), (action or "").strip()
    sitting = (sitting or "").strip() or None
    check(station, category, text, sitting, students, action)
    db = station.db
    row = {"uid": uuid.uuid4().hex, "category": category, "at": now(), "sitting": sitting,
           "students": json.dumps(students, ensure_ascii=False), "text": text, "action": action,
           "filed_by": station.operator(who)}
    with transaction(db):
        cur = db.execute("INSERT INTO incidents (uid, category, at, sitting, students, text, action, "
                         "filed_by) VALUES (:uid, :category, :at, :sitting, :students, :text, "
                         ":action, :filed_by)", row)
        row["id"] = cur.lastrowid
        doc = document(station, row)
        audit.record(db, row["filed_by"], "incident.add", "incident", str(row["id"]), None, doc)
        # Queued even with no collector configured yet: it is sent once one is.
        outbox.put(db, "incident", f"/api/stations/{station.station_id}/incidents", doc)
    from station.sealing import seal_code

    doc["sealed_already"] = sitting is not None and seal_code(station, sitting) is not None
    return doc


def list_all(station: Station, sitting: str | None = None) -> list[dict]:
    sql, args = "SELECT * FROM incidents", []
    if sitting is not None:
        sql, args = sql + " WHERE sitting = ?", [sitting]
    return [document(station, row) for row in station.db.query(sql + " ORDER BY id", args)]


def bundle_bytes(station: Station, sitting: str) -> bytes | None:
    """The sitting's incidents as its bundle keeps them, or None when there are none."""
    rows = list_all(station, sitting)
    return json.dumps(rows, ensure_ascii=False, indent=2).encode("utf-8") if rows else None


def send_now(station: Station) -> tuple[int, int]:
    """Deliver what the outbox holds now, whatever its backoff says: (sent, still waiting)."""
    return outbox.deliver(station, due_only=False)
