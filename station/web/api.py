"""What the pages' JSON APIs share: the request body, who acts, and the answer to a refusal.

A route refuses by raising a :class:`qmbase.refusal.Refusal` (any project error derives from
it); one exception handler answers ``{"error": code, "zh", "en"}`` with its status: 400 for
bad input, 409 for a request the station cannot take now (``error`` is ``refused`` unless
named), and the pages show ``zh`` or ``en``. Anything else that escapes a route is a
bilingual 500 that names no exception: its text may hold a child's name, and the log keeps
the trace.
"""
from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from qmbase.refusal import Refusal

NOT_AN_OBJECT = ("请求内容不是 JSON 对象，请刷新页面后重试。",
                 "The request body is not a JSON object; reload the page and try again.")
INTERNAL = ("工作站内部出错，这次操作没有完成；已保存的数据不受影响。请刷新页面后重试，"
            "如一直如此，请联系信息中心。",
            "An internal error stopped this request; saved data is not affected. Reload the page "
            "and try again; if it goes on, tell the information center.")


class Refused(Refusal):
    """A route's own refusal: ``raise Refused(zh, en, 400)``."""

    def __init__(self, zh: str, en: str, status: int = 409, code: str = "refused",
                 fix_zh: str = "", fix_en: str = ""):
        super().__init__(zh, en, fix_zh, fix_en, code=code, status=status)


def answer(exc: Refusal) -> JSONResponse:
    status = exc.status if isinstance(exc.status, int) and 400 <= exc.status < 600 else 409
    return JSONResponse(exc.answer(), status_code=status, headers={"Cache-Control": "no-store"})


async def refusal_handler(request: Request, exc: Refusal) -> JSONResponse:
    return answer(exc)


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the exception itself after this answer is sent.
    return answer(Refused(*INTERNAL, 500, "internal"))


def install(app: FastAPI) -> None:
    """The one place the station app learns how to answer a refusal and a fault."""
    app.add_exception_handler(Refusal, refusal_handler)
    app.add_exception_handler(Exception, internal_error_handler)


async def _read(request: Request, optional: bool) -> dict:
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Refused(*NOT_AN_OBJECT, 400)
    return body


async def json_body(request: Request) -> dict:
    """``body: dict = Depends(json_body)``: the write's JSON object, or a 400 refusal."""
    return await _read(request, optional=False)


async def optional_json_body(request: Request) -> dict:
    """As :func:`json_body`, but an empty body is an empty object (a button that may send
    nothing)."""
    return await _read(request, optional=True)


class ProctorRequired(Refusal):
    """A write came from a page session where no proctor has signed in with their name."""

    code, status = "proctor_required", 401

    def __init__(self):
        super().__init__("请先在页面顶部填写您的姓名（监测员签到），再进行操作。",
                         "Sign in with your name at the top of the page (proctor sign-in) first, "
                         "then try again.")


def who(request: Request) -> str:
    """The operator a write is recorded under: the proctor signed in to this page session.
    Never a field of the request: a "by" in the body is ignored."""
    session = request.scope.get("qm.session") or {}
    name = session.get("proctor")
    if not name:
        raise ProctorRequired()
    return name
