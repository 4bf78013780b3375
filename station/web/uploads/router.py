"""The /uploads page: each sealed sitting's seal code and how far its upload has gone.

The page shows what ``station upload status`` prints (the rows of ``uploader.queue.status``)
and re-reads its fragment every few seconds; ``GET /api/uploads`` is the same as JSON.
"Retry now" makes a waiting sitting due at once; the worker in ``station serve`` picks it
up on its next wake-up (within its poll interval).
"""
from __future__ import annotations

from fastapi import APIRouter, Request

from station.web.api import Refused
from station.web.templating import render
from uploader import queue

router = APIRouter()


def split_error(text: str | None) -> tuple[str, str]:
    """The worker stores a failure as "中文 / English" (``TusError``); each page shows its half."""
    if not text:
        return "", ""
    zh, sep, en = text.partition(" / ")
    return (zh, en) if sep else (text, text)


def _kinds(db) -> dict[str, dict]:
    cur = db.execute("SELECT id, kind, item FROM sittings")
    return {r[0]: {"kind": r[1], "item": r[2]} for r in cur.fetchall()}


def uploads_of(request: Request) -> list[dict]:
    """``queue.status`` with what a page needs beside it: kind, item, error halves, next retry."""
    db = request.app.state.station.db
    kinds = _kinds(db)
    rows = queue.status(db)
    for s in rows:
        s.update(kinds.get(s["sitting"], {"kind": None, "item": None}))
        s["error_zh"], s["error_en"] = split_error(s["last_error"])
        waits = [f["retry_in_s"] for f in s["files"] if f["retry_in_s"] is not None]
        s["retry_in_s"] = min(waits) if waits else None
        s["percent"] = 100 if not s["bytes_total"] else int(100 * s["bytes_done"] / s["bytes_total"])
        for f in s["files"]:
            f["error_zh"], f["error_en"] = split_error(f["last_error"])
            f["percent"] = 100 if not f["size"] else int(100 * f["bytes_done"] / f["size"])
    return rows


def nbytes(n: int) -> str:
    """Decimal units, as the terminal view (rich) and Windows Explorer show them."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def retry(request: Request, sitting: str) -> None:
    """Make the sitting's unfinished files due now; a bilingual refusal when there is nothing to retry."""
    db = request.app.state.station.db
    row = next((s for s in queue.status(db) if s["sitting"] == sitting), None)
    if row is None:
        raise Refused(f"上传队列中没有场次 {sitting}：场次关闭并封存后才会加入。",
                      f"Sitting {sitting} is not in the upload queue; a sitting joins it once closed and sealed.",
                      404)
    if row["state"] == "done":
        raise Refused(f"场次 {sitting} 已全部上传完成，无需重试。",
                      f"Sitting {sitting} is already fully uploaded; there is nothing to retry.", 409)
    queue.requeue(db, sitting)


@router.get("/api/uploads")
def uploads_json(request: Request) -> dict:
    return {"sittings": uploads_of(request)}


@router.post("/api/uploads/{sitting}/retry")
def retry_json(request: Request, sitting: str):
    retry(request, sitting)
    return next(s for s in uploads_of(request) if s["sitting"] == sitting)


@router.get("/uploads")
def uploads_page(request: Request):
    template = "uploads_main.html" if request.query_params.get("fragment") else "uploads.html"
    configured = bool(request.app.state.station.config["upload.collector_url"])
    return render(request, template, page="uploads", uploads=uploads_of(request), nbytes=nbytes,
                  configured=configured)
