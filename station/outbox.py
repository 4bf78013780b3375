"""Messages for the district collector that must arrive even if the network is down now.

Pre-check reports and incidents are queued here and sent when the collector answers; heartbeats replace
the one still waiting (only the newest matters). Sending retries with exponential backoff
and jitter; nothing is dropped. Files travel through the uploader's queue, not here.
"""
from __future__ import annotations

import json
import random
import time
from typing import Any

import sqlite_utils

from station.db import now

MAX_BACKOFF_S = 300.0


def put(db: sqlite_utils.Database, kind: str, path: str, body: Any, replace: bool = False) -> int:
    if replace:
        db.execute("DELETE FROM outbox WHERE kind = ? AND sent_at IS NULL", [kind])
    cur = db.execute("INSERT INTO outbox (kind, path, body, created_at) VALUES (?, ?, ?, ?)",
                     [kind, path, json.dumps(body, ensure_ascii=False), now()])
    return cur.lastrowid


def pending(db: sqlite_utils.Database, due_only: bool = True) -> list[dict]:
    sql = "SELECT id, kind, path, body, attempts FROM outbox WHERE sent_at IS NULL"
    args: list = []
    if due_only:
        sql += " AND next_attempt_at <= ?"
        args.append(time.time())
    return list(db.query(sql + " ORDER BY id", args))


def backoff_s(attempts: int) -> float:
    """1, 2, 4 … seconds up to five minutes, with full jitter so stations don't stampede."""
    return random.uniform(0, min(MAX_BACKOFF_S, 2.0 ** attempts))


def flush(db: sqlite_utils.Database, link, client=None, timeout_s: float = 10.0,
          due_only: bool = True) -> tuple[int, int]:
    """Send what is due (everything waiting, with ``due_only=False``) to the collector ``link``
    (``CollectorLink``: its URL, token, CA and TLS); returns (sent, still waiting). Never raises
    for a network fault; a link that may not be used (no token, plain http elsewhere) sends
    nothing and keeps everything waiting."""
    if link.refusal() is not None:
        return 0, len(pending(db, due_only=False))
    import httpx

    own = client is None
    try:
        client = client or link.client(timeout=timeout_s)
    except (OSError, ValueError):  # the CA file named in [upload] ca_bundle cannot be read
        return 0, len(pending(db, due_only=False))
    sent = 0
    try:
        for message in pending(db, due_only):
            try:
                response = client.post(link.base_url + message["path"],
                                       content=message["body"].encode("utf-8"),
                                       headers={"Authorization": f"Bearer {link.token}",
                                                "Content-Type": "application/json"})
                ok = response.status_code < 300
                error = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            except (OSError, ValueError) as exc:  # an unreadable CA file, a malformed address
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if ok:
                db.execute("UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL "
                           "WHERE id = ?", [now(), message["id"]])
                sent += 1
            else:
                db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                           "next_attempt_at = ? WHERE id = ?",
                           [error, time.time() + backoff_s(message["attempts"] + 1), message["id"]])
    finally:
        if own:
            client.close()
    return sent, len(pending(db, due_only=False))


def deliver(station, due_only: bool = True) -> tuple[int, int]:
    """Send what waits for this station's collector; (sent, still waiting). A rehearsal never
    reports to a real district, and nothing is sent without a collector."""
    from station.rehearsal import guard

    if guard.refused(station.config) is not None or not station.config["upload.collector_url"]:
        return 0, len(pending(station.db, due_only=False))
    return flush(station.db, station.collector_link(), due_only=due_only)
