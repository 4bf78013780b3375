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


class ProctorRequired(Exception):
    """A write came from a page session where no proctor has signed in with their name."""

    refusal = ("请先在页面顶部填写您的姓名（监测员签到），再进行操作。",
               "Sign in with your name at the top of the page (proctor sign-in) first, then try again.")


def who(request: Request) -> str:
    """The operator a write is recorded under: the proctor signed in to this page session.
    Never a field of the request: a "by" in the body is ignored."""
    session = request.scope.get("qm.session") or {}
    name = session.get("proctor")
    if not name:
        raise ProctorRequired()
    return name


def proctor_required(request: Request, exc: ProctorRequired) -> JSONResponse:
    return refuse(*ProctorRequired.refusal, 401, code="proctor_required")
