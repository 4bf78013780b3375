"""Station tokens, the district admin token and the dashboard session cookie.

Only SHA-256 of a token is stored; for manifest signatures the collector keeps the key derived
from the token (contract: sha256(b"qm-manifest-key:" + token)), never the token itself.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from fastapi import Request

from .. import contract
from .index import Index
from .messages import CollectorError
from .store import now_iso

SESSION_COOKIE = "qm_collector_session"
SESSION_SECONDS = 12 * 3600


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def register_station(db: Index, station_id: str, school: str | None = None,
                     room: str | None = None) -> str:
    """Create the station, or give it a new token (the old one stops working); returns the token."""
    if not contract.safe_station_id(station_id):
        raise ValueError(f"站点编号“{station_id}”不合规：只能用字母、数字、_ . -，最长 64 个字符。 / "
                         f"The station id '{station_id}' is not allowed: letters, digits, _ . - only, "
                         f"at most 64 characters.")
    token = new_token()
    row = {"id": station_id, "token_sha256": token_sha256(token),
           "manifest_key": contract.signing_key(token).hex(), "created_at": now_iso()}
    # Looked up and written under one lock: two adds of one station do not race.
    with db.transaction(f"station:{station_id}"):
        if db.one("SELECT 1 FROM stations WHERE id = ?", [station_id]):
            update = {k: v for k, v in row.items() if k != "created_at"}
            update.update({k: v for k, v in (("school", school), ("room", room)) if v is not None})
            db.update("stations", {"id": station_id}, update)
        else:
            db.insert("stations", {**row, "school": school, "room": room})
    return token


def new_admin_token(db: Index) -> str:
    """A fresh district admin token (only its hash is kept, so asking again replaces it)."""
    token = new_token()
    with db.transaction():  # sessions of the old token end with it, in the same commit
        db.upsert("settings", {"key": "admin_token_sha256", "value": token_sha256(token)},
                  pk=("key",))
        db.execute("DELETE FROM sessions")
    return token


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def station_for(db: Index, token: str | None) -> str:
    """The station id of a token; 401 (before any body is read) when missing or unknown."""
    if not token:
        raise CollectorError(401, "token_missing", headers={"WWW-Authenticate": "Bearer"})
    station = db.value("SELECT id FROM stations WHERE token_sha256 = ?", [token_sha256(token)])
    if station is None:
        raise CollectorError(401, "token_unknown", headers={"WWW-Authenticate": "Bearer"})
    return station


def is_admin_token(db: Index, token: str | None) -> bool:
    if not token:
        return False
    stored = db.value("SELECT value FROM settings WHERE key = 'admin_token_sha256'")
    return stored is not None and hmac.compare_digest(stored, token_sha256(token))


def new_session(db: Index) -> str:
    session = secrets.token_urlsafe(32)
    # In the shared index: a dashboard signed in on one collector instance is signed in on all.
    with db.transaction():
        db.execute("DELETE FROM sessions WHERE expires_at < ?", [time.time()])
        db.insert("sessions", {"id_sha256": token_sha256(session),
                               "expires_at": time.time() + SESSION_SECONDS})
    return session


def is_admin(db: Index, request: Request) -> bool:
    """The admin token as Bearer, or a live dashboard session cookie."""
    if is_admin_token(db, bearer(request)):
        return True
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return False
    return db.count("sessions", "id_sha256 = ? AND expires_at > ?",
                    [token_sha256(cookie), time.time()]) > 0


def require_admin(db: Index, request: Request) -> None:
    if not is_admin(db, request):
        raise CollectorError(401, "admin_required", headers={"WWW-Authenticate": "Bearer"})


def require_admin_write(db: Index, request: Request) -> None:
    """A district change (an incident marked handled): the admin, as JSON from the dashboard's
    own origin. The session cookie is SameSite=Strict already; the Origin and the JSON type
    refuse a form another site might post, whatever a browser makes of SameSite."""
    require_admin(db, request)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise CollectorError(415, "json_required")
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise CollectorError(403, "wrong_origin")
