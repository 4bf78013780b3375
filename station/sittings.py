"""Sittings (场次): recordings and readings hang on an open sitting; closing is final."""
from __future__ import annotations

import datetime as dt
from typing import Callable

import sqlite_utils

from pe_station.items import ITEMS
from station import audit
from qmbase.db import transaction
from qmbase.refusal import Refusal
from station.db import now

KINDS = {"singing": ("演唱测试", "singing test"), "pe": ("体育现场测试", "PE field test")}


class SittingError(Refusal):
    """A request about a sitting that cannot be done; the message says why and what to do."""


def _row(db: sqlite_utils.Database, sitting_id: str) -> dict | None:
    return next(db.query("SELECT * FROM sittings WHERE id = ?", [sitting_id]), None)


def get(db: sqlite_utils.Database, sitting_id: str) -> dict:
    row = _row(db, sitting_id)
    if row is None:
        raise SittingError(f"没有编号为 {sitting_id} 的场次，请用 station session list 查看。",
                           f"There is no sitting {sitting_id}; see `station session list`.")
    return row


def _next_id(db: sqlite_utils.Database) -> str:
    day = dt.date.today().strftime("%Y%m%d")
    n = db.execute("SELECT count(*) FROM sittings WHERE id LIKE ?", [day + "-%"]).fetchone()[0]
    return f"{day}-{n + 1:02d}"


def open_sitting(db: sqlite_utils.Database, kind: str, item: str | None, who: str) -> dict:
    if kind not in KINDS:
        raise SittingError(f"场次类型只能是 singing（演唱）或 pe（体育），而不是“{kind}”。",
                           f"A sitting's kind is singing or pe, not \"{kind}\".")
    if kind == "pe":
        if not item:
            raise SittingError("体育场次需要指定项目，例如 --item run_50m。",
                               "A PE sitting needs its item, e.g. --item run_50m.")
        if item not in ITEMS:
            raise SittingError(f"未知的体育项目“{item}”。可用项目：{', '.join(ITEMS)}。",
                               f"Unknown PE item \"{item}\"; items: {', '.join(ITEMS)}.")
    elif item:
        raise SittingError("演唱场次不需要 --item。", "A singing sitting takes no --item.")
    with transaction(db):
        clash = db.execute("SELECT id FROM sittings WHERE state = 'open' AND kind = ? "
                           "AND coalesce(item, '') = ?", [kind, item or ""]).fetchone()
        if clash:
            raise SittingError(f"场次 {clash[0]} 还没有关闭，同一类型同一时间只能打开一个场次。"
                               f"请先关闭它（station session close {clash[0]}）。",
                               f"Sitting {clash[0]} of this kind is still open; close it first.")
        sitting = {"id": _next_id(db), "kind": kind, "item": item, "state": "open",
                   "opened_at": now(), "opened_by": who}
        db.execute("INSERT INTO sittings (id, kind, item, state, opened_at, opened_by) "
                   "VALUES (:id, :kind, :item, :state, :opened_at, :opened_by)", sitting)
        audit.record(db, who, "sitting.open", "sitting", sitting["id"], None, sitting)
    return get(db, sitting["id"])


def close_sitting(db: sqlite_utils.Database, sitting_id: str, who: str,
                  on_closed: list[Callable[[dict], None]] = ()) -> dict:
    """Close for good; ``on_closed`` callbacks (sealing, upload) run after the commit."""
    with transaction(db):
        sitting = get(db, sitting_id)
        if sitting["state"] == "closed":
            raise SittingError(f"场次 {sitting_id} 已于 {sitting['closed_at']} 由 {sitting['closed_by']} "
                               f"关闭，关闭后不能再更改。",
                               f"Sitting {sitting_id} was closed at {sitting['closed_at']} by "
                               f"{sitting['closed_by']}; a closed sitting is final.")
        at = now()
        db.execute("UPDATE sittings SET state = 'closed', closed_at = ?, closed_by = ? "
                   "WHERE id = ? AND state = 'open'", [at, who, sitting_id])
        audit.record(db, who, "sitting.close", "sitting", sitting_id,
                     {"state": "open"}, {"state": "closed", "closed_at": at, "closed_by": who})
    closed = get(db, sitting_id)
    for callback in on_closed:
        callback(closed)
    return closed


def list_sittings(db: sqlite_utils.Database, state: str | None = None) -> list[dict]:
    sql, args = "SELECT * FROM sittings", []
    if state:
        sql += " WHERE state = ?"
        args.append(state)
    return list(db.query(sql + " ORDER BY opened_at, id", args))


def require_open(db: sqlite_utils.Database, sitting_id: str) -> dict:
    """The open sitting a take or reading hangs on, or a clear refusal."""
    sitting = get(db, sitting_id)
    if sitting["state"] != "open":
        raise SittingError(f"场次 {sitting_id} 已关闭，不能再添加录音或成绩。请打开新的场次。",
                           f"Sitting {sitting_id} is closed; open a new sitting.")
    return sitting
