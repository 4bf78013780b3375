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
import threading
import time

from fastapi import APIRouter, Request

from qmbase.db import insert_row, transaction

from .. import contract
from . import auth
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


class Misses:
    """Wrong codes in the last minute, per client and in all (in memory: a restart forgets,
    which only gives a guesser one more minute's handful)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._times: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._times.get(key, []) if now - t < WINDOW_S]
        self._times[key] = times
        return times

    def wait_s(self, client: str) -> int:
        """Seconds until ``client`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            waits = [WINDOW_S - (now - times[0]) for key, limit in ((client, MISSES_PER_CLIENT), ("*", MISSES_IN_ALL))
                     if len(times := self._recent(key, now)) >= limit]
        return int(max(waits)) + 1 if waits else 0

    def add(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (client, "*"):
                self._recent(key, now).append(now)


def _misses(request: Request) -> Misses:
    misses = getattr(request.app.state, "pairing_misses", None)
    if misses is None:
        misses = request.app.state.pairing_misses = Misses()
    return misses


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
    with transaction(state.db):  # the new code replaces the unused ones, in one commit
        state.db.execute("DELETE FROM pairings WHERE station = ? AND used_at IS NULL", [station_id])
        insert_row(state.db, "pairings", {
            "code_sha256": auth.token_sha256(code), "station": station_id,
            "school": str(body.get("school") or "") or None, "room": str(body.get("room") or "") or None,
            "created_at": now_iso(), "expires_at": expires, "used_at": None})
    return {"station": station_id, "code": code, "expires_at": expires, "valid_s": int(TTL_S)}


@router.post("/api/pair")
async def redeem(request: Request):
    """``{"code"}`` -> the station's id, school, room and a fresh token, once."""
    state = collector(request)
    misses = _misses(request)
    client = request.client.host if request.client else "?"
    wait = misses.wait_s(client)
    if wait:
        raise CollectorError(429, "pairing_rate", headers={"Retry-After": str(wait)}, seconds=wait)
    body = await json_object(request)
    digest = auth.token_sha256(normalise(body.get("code") or ""))
    with state.db.conn:          # marked used in the same statement that finds it: once only
        taken = state.db.execute(
            "UPDATE pairings SET used_at = ? WHERE code_sha256 = ? AND used_at IS NULL AND expires_at > ?",
            [now_iso(), digest, time.time()]).rowcount
    if taken != 1:
        misses.add(client)
        raise CollectorError(403, "pairing_refused")
    row = state.db["pairings"].get(digest)
    token = auth.register_station(state.db, row["station"], school=row["school"], room=row["room"])
    station = state.db["stations"].get(row["station"])
    return {"station_id": row["station"], "token": token, "school": station["school"] or "",
            "room": station["room"] or ""}
