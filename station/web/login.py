"""Signing in: the login link or the PIN form gives a session; a proctor then signs in by name.

``GET /login?token=…`` is the link `station serve` prints and opens. ``POST /login`` is the
station's one HTML form (the PIN, or the secret pasted by hand): it carries a CSRF token
that must match a cookie set with the form. ``POST /api/proctor`` (JSON, from the pages'
small sign-in) puts the proctor's name into the session: every write is recorded under it.
"""
from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse

from station.web.api import Refused, json_body
from station.web.pin import Throttle
from station.web.session import Sessions, clean_proctor, cookie_name, same_secret

router = APIRouter()
CSRF_COOKIE = "qm_login"    # + "_<port>", as the session cookie


def _sessions(request: Request) -> Sessions:
    return request.app.state.sessions


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _local_target(target: str) -> str:
    """Where to go after signing in: a path on this station only."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _signed_in(request: Request, target: str) -> RedirectResponse:
    response = RedirectResponse(_local_target(target), status_code=303)
    _sessions(request).set_cookie(request.scope, response)
    response.delete_cookie(cookie_name(request.scope, CSRF_COOKIE), path="/login")
    return response


def _form(request: Request, target: str, status: int = 200, wrong: bool = False, wait_s: float = 0):
    from station.web.templating import render

    csrf = secrets.token_urlsafe(24)
    response = render(request, "login.html", page="login", next=_local_target(target), wrong=wrong,
                      wait_s=int(wait_s + 0.999), csrf=csrf, pin=bool(request.app.state.pin))
    response.status_code = status
    response.set_cookie(cookie_name(request.scope, CSRF_COOKIE), csrf, path="/login", httponly=True, samesite="strict")
    return response


def _guess(request: Request, given: str) -> bool:
    """Is ``given`` the PIN? Counted against the client's tries (see ``pin.Throttle``)."""
    throttle: Throttle = request.app.state.login_throttle
    pin = request.app.state.pin
    if pin and same_secret(given, pin):
        throttle.succeeded(_client(request))
        return True
    throttle.failed(_client(request))
    return False


@router.get("/login")
def login_page(request: Request, next: str = "/", token: str = ""):
    # The install's secret cannot be guessed (256 bits): it always works, so a PIN guesser
    # on this computer cannot lock the proctor out of their own link.
    if token and _sessions(request).is_token(token):
        return _signed_in(request, next)
    wait = request.app.state.login_throttle.wait_s(_client(request))
    return _form(request, next, 429 if wait else (401 if token else 200), wrong=bool(token), wait_s=wait)


@router.post("/login")
async def login(request: Request):
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    target = form.get("next", "/")
    if not same_secret(form.get("csrf", ""), request.cookies.get(cookie_name(request.scope, CSRF_COOKIE), "") or "\0"):
        return _form(request, target, 403)
    secret = form.get("secret", "")
    if _sessions(request).is_token(secret):
        return _signed_in(request, target)
    wait = request.app.state.login_throttle.wait_s(_client(request))
    if wait:
        return _form(request, target, 429, wait_s=wait)
    if _guess(request, secret):
        return _signed_in(request, target)
    wait = request.app.state.login_throttle.wait_s(_client(request))
    return _form(request, target, 429 if wait else 401, wrong=True, wait_s=wait)


@router.post("/api/proctor")
async def sign_in_proctor(request: Request, body: dict = Depends(json_body)):
    name = clean_proctor(body.get("name"))
    if name is None:
        raise Refused("请填写您的姓名（1 到 40 个字，不含特殊符号）。",
                      "Enter your name (1 to 40 characters, no special symbols).", 400)
    response = JSONResponse({"proctor": name})
    session = request.scope.get("qm.session") or {}
    _sessions(request).set_cookie(request.scope, response, name, session.get("sid"))
    return response
