"""What the pages' JSON APIs share: the request body, who acts, and the bilingual refusal.

A refusal is ``{"error", "zh", "en"}``: 400 for bad input, 409 for a request the station
cannot take now; ``error`` is a short code a script can test (``refused`` unless named).
"""
from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import JSONResponse

NOT_AN_OBJECT = ("请求内容不是 JSON 对象，请刷新页面后重试。",
                 "The request body is not a JSON object; reload the page and try again.")


def refuse(zh: str, en: str, status: int = 409, code: str = "refused") -> JSONResponse:
    return JSONResponse({"error": code, "zh": zh, "en": en}, status_code=status)


async def json_body(request: Request, optional: bool = False) -> dict | JSONResponse:
    """The request's JSON object, or the refusal to send back (400). ``optional``: an
    empty body is an empty object (a button that may send nothing)."""
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return refuse(*NOT_AN_OBJECT, 400)
    return body


def who(request: Request, body: dict) -> str:
    """The operator a write is recorded under: the body's "by", else the station's default."""
    return request.app.state.station.operator(str(body.get("by") or "").strip() or None)
