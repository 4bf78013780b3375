"""Jinja templates: the shared base beside this file, each router's beside its router."""
from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from station.web.i18n import WEB, pick_lang, translator

_env = Environment(
    loader=ChoiceLoader([FileSystemLoader(str(WEB / "templates")),
                         *[FileSystemLoader(str(p)) for p in sorted(WEB.glob("*/templates"))]]),
    autoescape=select_autoescape(["html"]),
)
templates = Jinja2Templates(env=_env)


def clock(iso: str) -> str:
    """An ISO time as a teacher reads it: "2026-12-03 21:52:17 (UTC+08:00)"."""
    at = dt.datetime.fromisoformat(iso)
    offset = at.strftime("%z")
    zone = f" (UTC{offset[:3]}:{offset[3:]})" if offset else ""
    return at.strftime("%Y-%m-%d %H:%M:%S") + zone


_env.filters["clock"] = clock


def lang_of(request: Request) -> str:
    return pick_lang(request.query_params.get("lang"), request.cookies.get("lang"))


def render(request: Request, name: str, **context):
    """Render a page in the request's language; remembers an explicit ?lang= in a cookie."""
    lang = lang_of(request)
    state = request.app.state
    response = templates.TemplateResponse(request, name, {
        "lang": lang, "t": translator(lang), "station_id": state.station.station_id,
        "rehearsal": state.rehearsal, "version": state.version,
        "proctor": (request.scope.get("qm.session") or {}).get("proctor"), **context})
    if request.query_params.get("lang") == lang:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax")
    return response
