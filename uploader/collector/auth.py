"""Station tokens, the district admin token and the dashboard session cookie.

Only SHA-256 of a token is stored; for manifest signatures the collector keeps the key derived
from the token (contract: sha256(b"qm-manifest-key:" + token)), never the token itself.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import sqlite_utils
from fastapi import Request

from qmbase.db import insert_row, transaction, update_row, upsert_row

from .. import contract
from .messages import CollectorError
from .store import now_iso

SESSION_COOKIE = "qm_collector_session"
SESSION_SECONDS = 12 * 3600


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def register_station(db: sqlite_utils.Database, station_id: str, school: str | None = None,
                     room: str | None = None) -> str:
    """Create the station, or give it a new token (the old one stops working); returns the token."""
    if not contract.safe_station_id(station_id):
        raise ValueError(f"站点编号“{station_id}”不合规：只能用字母、数字、_ . -，最长 64 个字符。 / "
                         f"The station id '{station_id}' is not allowed: letters, digits, _ . - only, "
                         f"at most 64 characters.")
    token = new_token()
    row = {"id": station_id, "token_sha256": token_sha256(token),
           "manifest_key": contract.signing_key(token).hex(), "created_at": now_iso()}
    with transaction(db):  # looked up and written under one write lock: two adds do not race
        if db.execute("SELECT 1 FROM stations WHERE id = ?", [station_id]).fetchone():
            update = {k: v for k, v in row.items() if k != "created_at"}
            update.update({k: v for k, v in (("school", school), ("room", room)) if v is not None})
            update_row(db, "stations", {"id": station_id}, update)
        else:
            insert_row(db, "stations", {**row, "school": school, "room": room})
    return token


def new_admin_token(db: sqlite_utils.Database) -> str:
    """A fresh district admin token (only its hash is kept, so asking again replaces it)."""
    token = new_token()
    with transaction(db):  # sessions of the old token end with it, in the same commit
        upsert_row(db, "settings", {"key": "admin_token_sha256", "value": token_sha256(token)},
                   pk=("key",))
        db.execute("DELETE FROM sessions")
    return token


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def station_for(db: sqlite_utils.Database, token: str | None) -> str:
    """The station id of a token; 401 (before any body is read) when missing or unknown."""
    if not token:
        raise CollectorError(401, "token_missing", headers={"WWW-Authenticate": "Bearer"})
    rows = list(db["stations"].rows_where("token_sha256 = ?", [token_sha256(token)],
                                          select="id"))
    if not rows:
        raise CollectorError(401, "token_unknown", headers={"WWW-Authenticate": "Bearer"})
    return rows[0]["id"]


def is_admin_token(db: sqlite_utils.Database, token: str | None) -> bool:
    if not token:
        return False
    rows = list(db["settings"].rows_where("key = 'admin_token_sha256'"))
    return bool(rows) and hmac.compare_digest(rows[0]["value"], token_sha256(token))


def new_session(db: sqlite_utils.Database) -> str:
    session = secrets.token_urlsafe(32)
    with transaction(db):
        db.execute("DELETE FROM sessions WHERE expires_at < ?", [time.time()])
        insert_row(db, "sessions", {"id_sha256": token_sha256(session),
                                    "expires_at": time.time() + SESSION_SECONDS})
    return session


def is_admin(db: sqlite_utils.Database, request: Request) -> bool:
    """The admin token as Bearer, or a live dashboard session cookie."""
    if is_admin_token(db, bearer(request)):
        return True
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return False
    return db["sessions"].count_where("id_sha256 = ? AND expires_at > ?",
                                      [token_sha256(cookie), time.time()]) > 0


def require_admin(db: sqlite_utils.Database, request: Request) -> None:
    if not is_admin(db, request):
        raise CollectorError(401, "admin_required", headers={"WWW-Authenticate": "Bearer"})


def require_admin_write(db: sqlite_utils.Database, request: Request) -> None:
    """A district change (an incident marked handled): the admin, as JSON from the dashboard's
    own origin. The session cookie is SameSite=Strict already; the Origin and the JSON type
    refuse a form another site might post, whatever a browser makes of SameSite."""
    require_admin(db, request)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise CollectorError(415, "json_required")
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise CollectorError(403, "wrong_origin")
