"""The district's view of its test day: every expected school, its stations, what is missing.

One function, `overview`, answers the dashboard, its live stream and both forms. It reads each
table once with a handful of aggregate queries (never one query per station or sitting), so it
stays fast with hundreds of stations (scripts/bench/dashboard.py, docs/PERFORMANCE.md).

A station is *ready* when its latest pre-check passed (or only warned) and its heartbeat is
fresh. A school is *silent* when none of its stations has sent a heartbeat within the silent
limit, *ready* when as many stations as it expects are registered and every one is ready, and
*not ready* otherwise. What is missing is said per station: never pre-checked, pre-check
failed, no heartbeat, sittings open (not yet sealed), uploads incomplete; per school: stations
expected but never registered.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone, tzinfo


DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_SILENT_MINUTES = 5.0
NO_SCHOOL = ""
# Zones a district in China may name, for a computer without the IANA database (Windows
# without the tzdata package): all are UTC+8 all year.
CHINA_ZONES = {"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Urumqi", "PRC",
               "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei"}


def local_zone(name: str) -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:
        if name in CHINA_ZONES:
            return timezone(timedelta(hours=8), "CST")
        raise ValueError(f"未知时区“{name}”，请用 IANA 名称，如 Asia/Shanghai。\n"
                         f"Unknown time zone '{name}'; use an IANA name such as Asia/Shanghai.")


def local_time(iso: str | None, zone: tzinfo) -> str:
    """`2026-11-22T23:46:45+00:00` → `2026-11-23 07:46:45` in the district's zone ('' for none)."""
    if not iso:
        return ""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _grouped(db: Index, sql: str) -> dict:
    out: dict = {}
    for row in db.query(sql):
        out.setdefault(row["station"], []).append(row)
    return out


def _station(st: dict, hb: dict | None, pc: dict | None, sits: list[dict], done: dict,
             receiving: int, now: float, silent_s: float) -> dict:
    queue = {}
    sittings_open = None
    if hb is not None:
        try:
            body = json.loads(hb["body"] or "{}")
        except ValueError:
            body = {}
        queue = body.get("queue") or {}
        sittings_open = hb["sittings_open"]
    age = None if hb is None else max(0.0, now - (_epoch(hb["received_at"]) or 0))
    silent = age is None or age > silent_s
    seals, files_known, bytes_known = [], 0, 0
    for s in sits:
        arrived = done.get(s["sitting"], {"files": 0, "bytes": 0, "via": ""})
        vias = set(filter(None, (arrived["via"] or "").split(","))) | ({s["via"]} if s["via"] else set())
        files_known += (s["files_total"] or 0) + 1          # the listed files and the manifest
        bytes_known += (s["bytes_total"] or 0)
        # Only what the page and the forms show: this goes to every open dashboard often.
        seals.append({"sitting": s["sitting"], "seal_code": s["seal_code"],
                      "signature_ok": bool(s["signature_ok"]), "complete": bool(s["complete"]),
                      "completed_at": s["completed_at"],
                      "via": "usb" if "usb" in vias else "network", "by_hand": "usb" in vias})
    files_done = sum(d["files"] for d in done.values())
    bytes_done = sum(d["bytes"] for d in done.values())
    q_files = sum((queue.get("files") or {}).values()) if isinstance(queue.get("files"), dict) else 0
    files_expected = max(files_known, q_files or 0, files_done)
    bytes_expected = max(bytes_known, int(queue.get("bytes_total") or 0), bytes_done)
    problems = []
    if pc is None:
        problems.append("never_prechecked")
    elif pc["overall"] == "fail":
        problems.append("precheck_failed")
    if silent:
        problems.append("silent")
    if sittings_open:
        problems.append("sittings_open")
    incomplete = [s for s in seals if not s["complete"]]
    if files_done < files_expected or incomplete:
        problems.append("uploads_incomplete")
    return {
        "id": st["id"], "school": st["school"], "room": st["room"],
        "heartbeat_at": hb["received_at"] if hb else None,
        "heartbeat_age_s": None if age is None else round(age),
        "version": hb["version"] if hb else None,
        "silent": silent, "sittings_open": sittings_open or 0,
        "precheck": None if pc is None else {
            "overall": pc["overall"], "received_at": pc["received_at"],
            "failing": json.loads(pc["failing"] or "[]")},
        "ready": pc is not None and pc["overall"] in ("pass", "warn") and not silent,
        "sittings": seals, "sittings_sealed": len(seals),
        "sittings_complete": sum(1 for s in seals if s["complete"]),
        "files_arrived": files_done, "files_expected": files_expected,
        "bytes_arrived": bytes_done, "bytes_received": bytes_done + receiving,
        "bytes_expected": bytes_expected, "problems": problems,
    }


def _school(code: str, info: dict | None, stations: list[dict], incidents_open: int) -> dict:
    expected = info["stations_expected"] if info else len(stations)
    missing_stations = max(0, expected - len(stations))
    fresh = [s for s in stations if not s["silent"]]
    if not fresh:
        status = "silent"
    elif missing_stations == 0 and all(s["ready"] for s in stations):
        status = "ready"
    else:
        status = "not_ready"
    seals = [x for s in stations for x in s["sittings"]]
    problems: dict[str, list[str]] = {}
    for s in stations:
        for p in s["problems"]:
            problems.setdefault(p, []).append(s["id"])
    files_arrived = sum(s["files_arrived"] for s in stations)
    files_expected = sum(s["files_expected"] for s in stations)
    open_sittings = sum(s["sittings_open"] for s in stations)
    complete = bool(seals) and all(x["complete"] for x in seals) and not open_sittings \
        and files_arrived >= files_expected
    return {
        "code": code, "name": (info or {}).get("name") or code, "listed": info is not None,
        "contact": (info or {}).get("contact") or "", "phone": (info or {}).get("phone") or "",
        "stations_expected": expected, "stations_registered": len(stations),
        "stations_missing": missing_stations, "status": status,
        "missing": [{"code": k, "stations": v} for k, v in problems.items()],
        "sittings_sealed": len(seals), "sittings_complete": sum(1 for x in seals if x["complete"]),
        "sittings_open": open_sittings,
        "sittings_by_hand": sum(1 for x in seals if x["by_hand"]),
        "seal_codes": [x["seal_code"] for x in seals],
        "files_arrived": files_arrived, "files_expected": files_expected,
        "bytes_arrived": sum(s["bytes_arrived"] for s in stations),
        "bytes_received": sum(s["bytes_received"] for s in stations),
        "bytes_expected": sum(s["bytes_expected"] for s in stations),
        "complete": complete,
        "completed_at": max((x["completed_at"] or "" for x in seals), default="") if complete else None,
        "via": sorted({x["via"] for x in seals}),
        "incidents_open": incidents_open, "stations": stations,
    }


def overview(db: Index, silent_minutes: float = DEFAULT_SILENT_MINUTES,
             now: float | None = None) -> dict:
    """Every school (the district's list first, then schools only stations name) with its
    stations, and the summary band's counts. Rates and ETAs are the live view's (`live.py`)."""
    now = time.time() if now is None else now
    silent_s = silent_minutes * 60
    schools = {r["code"]: r for r in db.query("SELECT * FROM schools ORDER BY code")}
    heartbeats = {r["station"]: r for r in db.query(
        "SELECT station, received_at, version, sittings_open, body FROM heartbeats")}
    prechecks = {r["station"]: r for r in db.query(
        "SELECT station, received_at, overall, failing FROM prechecks WHERE id IN "
        "(SELECT max(id) FROM prechecks GROUP BY station)")}
    sits = _grouped(db, "SELECT station, sitting, kind, item, closed_at, sealed_at, seal_code, "
                        "signature_ok, files_total, bytes_total, complete, completed_at, "
                        "received_at, via FROM sittings ORDER BY station, sealed_at NULLS FIRST, sitting")
    done: dict[str, dict] = {}
    for r in db.query("SELECT station, sitting, files, bytes, via FROM arrivals"):
        done.setdefault(r["station"], {})[r["sitting"]] = r
    receiving = {r["station"]: r["n"] for r in db.query(
        "SELECT station, CAST(sum(\"offset\") AS BIGINT) AS n FROM uploads WHERE state = 'receiving' GROUP BY station")}
    incidents_open: dict[str, int] = {}
    for r in db.query("SELECT st.school AS school, count(*) AS n FROM incidents i LEFT JOIN "
                      "stations st ON st.id = i.station WHERE i.handled_at IS NULL GROUP BY st.school"):
        incidents_open[r["school"] or NO_SCHOOL] = r["n"]

    by_school: dict[str, list[dict]] = {code: [] for code in schools}
    for st in db.query("SELECT id, school, room FROM stations ORDER BY id"):
        row = _station(st, heartbeats.get(st["id"]), prechecks.get(st["id"]),
                       sits.get(st["id"], []), done.get(st["id"], {}),
                       receiving.get(st["id"], 0) or 0, now, silent_s)
        by_school.setdefault(st["school"] or NO_SCHOOL, []).append(row)
    rows = [_school(code, schools.get(code), stations, incidents_open.get(code, 0))
            for code, stations in by_school.items()]
    rows.sort(key=lambda s: (not s["listed"], s["code"] == NO_SCHOOL, s["code"]))
    stations = [s for school in rows for s in school["stations"]]
    summary = {
        "schools": len(rows),
        "schools_ready": sum(1 for s in rows if s["status"] == "ready"),
        "schools_not_ready": sum(1 for s in rows if s["status"] == "not_ready"),
        "schools_silent": sum(1 for s in rows if s["status"] == "silent"),
        "schools_complete": sum(1 for s in rows if s["complete"]),
        "stations": len(stations), "stations_expected": sum(s["stations_expected"] for s in rows),
        "stations_ready": sum(1 for s in stations if s["ready"]),
        "sittings_sealed": sum(s["sittings_sealed"] for s in rows),
        "sittings_complete": sum(s["sittings_complete"] for s in rows),
        "sittings_open": sum(s["sittings_open"] for s in rows),
        "sittings_by_hand": sum(s["sittings_by_hand"] for s in rows),
        "files_arrived": sum(s["files_arrived"] for s in rows),
        "files_expected": sum(s["files_expected"] for s in rows),
        "bytes_arrived": sum(s["bytes_arrived"] for s in rows),
        "bytes_received": sum(s["bytes_received"] for s in rows),
        "bytes_expected": sum(s["bytes_expected"] for s in rows),
        "incidents_open": sum(incidents_open.values()),
    }
    return {"generated_at": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
            "silent_minutes": silent_minutes, "summary": summary, "schools": rows}
