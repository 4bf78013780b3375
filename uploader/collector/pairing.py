"""One-time pairing codes: the district's dashboard shows a short code for a station, the
station's set-up page sends it back and gets the station's token. No token is typed or copied.

A code is 8 characters from an alphabet without look-alikes (about 39 bits), lives 10
minutes, works once, and only its SHA-256 is stored. Redeeming is unauthenticated (a new
computer has nothing else), so wrong codes are rate-limited per client address and in all:
guessing a live code within its 10 minutes is out of reach. Redeeming gives the station a new
token (as `add-station` does again): the old one stops working.
"""
from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request

from .. import contract
from . import auth
from .index import Index
from .messages import CollectorError
from .stations import collector, json_object
from .store import now_iso

router = APIRouter()

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"       # no 0/O, 1/I/L
LENGTH = 8
TTL_S = 600.0
WINDOW_S = 60.0
MISSES_PER_CLIENT = 5        # wrong codes per client address per minute
MISSES_IN_ALL = 30           # wrong codes from everyone per minute


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalise(code: str) -> str:
    """What a teacher types: any case, with or without the dash or spaces."""
    raw = "".join(c for c in str(code).upper() if c.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == LENGTH else raw


def wait_s(db: Index, client: str) -> int:
    """Seconds until ``client`` may try again (0: now). Wrong codes are kept in the index, so
    the limits hold across every collector instance behind one address."""
    now = time.time()
    waits = []
    for where, params, limit in (("client = ?", [client], MISSES_PER_CLIENT), ("1 = 1", [], MISSES_IN_ALL)):
        recent = db.query(f"SELECT at FROM pairing_misses WHERE {where} AND at > ? ORDER BY at DESC "
                          f"LIMIT {limit}", [*params, now - WINDOW_S])
        if len(recent) >= limit:
            waits.append(WINDOW_S - (now - recent[-1]["at"]))
    return int(max(waits)) + 1 if waits else 0


def add_miss(db: Index, client: str) -> None:
    now = time.time()
    with db.transaction():
        db.execute("DELETE FROM pairing_misses WHERE at < ?", [now - WINDOW_S])
        db.insert("pairing_misses", {"client": client, "at": now})


@router.post("/api/stations/{station_id}/pairing")
async def make_code(station_id: str, request: Request):
    """A new code for ``station_id`` (the district admin only); an unused older one ends."""
    state = collector(request)
    if not auth.is_admin(state.db, request):
        raise CollectorError(401, "admin_required", headers={"WWW-Authenticate": "Bearer"})
    if not contract.safe_station_id(station_id):
        raise CollectorError(400, "bad_station_id", station=station_id)
    body = await json_object(request)
    code = new_code()
    expires = time.time() + TTL_S
    # The new code replaces the unused ones, in one commit.
    with state.db.transaction(f"pairing:{station_id}"):
        state.db.execute("DELETE FROM pairings WHERE station = ? AND used_at IS NULL", [station_id])
        state.db.insert("pairings", {
            "code_sha256": auth.token_sha256(code), "station": station_id,
            "school": str(body.get("school") or "") or None, "room": str(body.get("room") or "") or None,
            "created_at": now_iso(), "expires_at": expires, "used_at": None})
    return {"station": station_id, "code": code, "expires_at": expires, "valid_s": int(TTL_S)}


@router.post("/api/pair")
async def redeem(request: Request):
    """``{"code"}`` -> the station's id, school, room and a fresh token, once."""
    state = collector(request)
    client = request.client.host if request.client else "?"
    wait = wait_s(state.db, client)
    if wait:
        raise CollectorError(429, "pairing_rate", headers={"Retry-After": str(wait)}, seconds=wait)
    body = await json_object(request)
    digest = auth.token_sha256(normalise(body.get("code") or ""))
    # Marked used in the same statement that finds it: once only, whichever instance asks.
    taken = state.db.execute(
        "UPDATE pairings SET used_at = ? WHERE code_sha256 = ? AND used_at IS NULL AND expires_at > ?",
        [now_iso(), digest, time.time()])
    if taken != 1:
        add_miss(state.db, client)
        raise CollectorError(403, "pairing_refused")
    row = state.db.one("SELECT * FROM pairings WHERE code_sha256 = ?", [digest])
    token = auth.register_station(state.db, row["station"], school=row["school"], room=row["room"])
    station = state.db.one("SELECT * FROM stations WHERE id = ?", [row["station"]])
    return {"station_id": row["station"], "token": token, "school": station["school"] or "",
            "room": station["room"] or ""}
