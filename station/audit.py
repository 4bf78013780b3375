"""The audit log: who changed what, when, from what to what. Append-only (see schema)."""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from station.db import now


def record(db: sqlite_utils.Database, who: str, action: str, entity: str, entity_id: str,
           old: Any = None, new: Any = None) -> None:
    """Append one entry; call it inside the transaction that makes the change."""
    db.execute(
        "INSERT INTO audit_log (at, who, action, entity, entity_id, old, new) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [now(), who, action, entity, str(entity_id),
         None if old is None else json.dumps(old, ensure_ascii=False, sort_keys=True),
         None if new is None else json.dumps(new, ensure_ascii=False, sort_keys=True)])


def entries(db: sqlite_utils.Database, entity: str | None = None,
            entity_id: str | None = None) -> list[dict]:
    sql, args = "SELECT * FROM audit_log", []
    if entity:
        sql += " WHERE entity = ?"
        args.append(entity)
        if entity_id is not None:
            sql += " AND entity_id = ?"
            args.append(str(entity_id))
    return list(db.query(sql + " ORDER BY id", args))
