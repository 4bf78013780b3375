"""The district dashboard (`/`): one live page, the login that guards it, and the forms.

The page gets its first document embedded, then follows `GET /api/dashboard/events`
(server-sent events: the whole document whenever it changes, at least every TICK_S seconds).
`GET /api/dashboard` is the same document once; `/reports/<form>.<xlsx|csv>` downloads the
district's forms as `station collector report` writes them. All need the admin token (Bearer)
or the dashboard's session cookie.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from . import auth, incidents, reports
from .messages import message, ui
from .stations import read_body

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TICK_S = 3.0
CONTENT_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 "csv": "text/csv; charset=utf-8"}
FILE_NAMES = {"upload-status": "数据上传情况上报表", "incidents": "应急事件上报表"}


def collector(request: Request):
    return request.app.state.collector


def lang_of(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "zh"


@router.get("/", response_class=HTMLResponse)
async def page(request: Request):
    state = collector(request)
    lang = lang_of(request)
    if not auth.is_admin(state.db, request):
        return templates.TemplateResponse(request, "login.html", {"t": ui(lang), "lang": lang,
                                                                  "error": None})
    return templates.TemplateResponse(request, "dashboard.html", {
        "t": ui(lang), "lang": lang, "doc": state.live.snapshot(),
        "categories": incidents.CATEGORIES})


@router.get("/api/dashboard")
async def document(request: Request):
    state = collector(request)
    auth.require_admin(state.db, request)
    # Serialised here: FastAPI's own encoder walks the whole document first and takes longer
    # than building it (scripts/bench/dashboard.py).
    return Response(json.dumps(state.live.snapshot(), ensure_ascii=False, separators=(",", ":")),
                    media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/api/dashboard/events")
async def events(request: Request):
    state = collector(request)
    auth.require_admin(state.db, request)

    async def stream():
        last = None
        # The browser reconnects by itself after a drop; tell it to wait a little only.
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            payload = json.dumps(state.live.snapshot(), ensure_ascii=False, separators=(",", ":"))
            yield f"data: {payload}\n\n" if payload != last else ": still here\n\n"
            last = payload
            await state.live.wait(TICK_S)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/reports/{form}.{fmt}")
async def report(form: str, fmt: str, request: Request):
    state = collector(request)
    auth.require_admin(state.db, request)
    if form not in reports.FORMS or fmt not in CONTENT_TYPES:
        return Response(status_code=404)
    data = reports.render(state.db, form, fmt, state.live.zone)
    name = f"{FILE_NAMES[form]}.{fmt}"
    from urllib.parse import quote

    return Response(data, media_type=CONTENT_TYPES[fmt], headers={
        "Content-Disposition": f"attachment; filename=\"{form}.{fmt}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})


@router.post("/login")
async def login(request: Request):
    # The form is one urlencoded field; parse_qs saves a python-multipart dependency.
    state = collector(request)
    lang = lang_of(request)
    body = await read_body(request, 4096)
    token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0].strip()
    if not auth.is_admin_token(state.db, token):
        return templates.TemplateResponse(request, "login.html", {
            "t": ui(lang), "lang": lang, "error": " / ".join(message("login_failed"))},
            status_code=401)
    response = RedirectResponse(f"/?lang={lang}", status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, auth.new_session(state.db), httponly=True,
                        samesite="strict", max_age=auth.SESSION_SECONDS,
                        secure=request.url.scheme == "https")
    return response
