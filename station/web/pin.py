"""The proctor PIN: pages reachable from other computers ask for it once per browser.

On 127.0.0.1 (the default) only someone at this computer can reach the pages and no PIN
is asked. A station bound to another address must have ``web.pin`` set (``serve``
refuses to start otherwise).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

COOKIE = "qm_pin"
OPEN_PATHS = ("/api/health", "/login", "/static/")


def install(app: FastAPI, pin: str) -> None:
    if not pin:
        return
    secret = secrets.token_bytes(32)  # a restart asks again: fine for a test day
    token = hmac.new(secret, pin.encode(), hashlib.sha256).hexdigest()

    @app.middleware("http")
    async def require_pin(request: Request, call_next):
        path = request.url.path
        if path.startswith(OPEN_PATHS) or hmac.compare_digest(request.cookies.get(COOKIE, ""), token):
            return await call_next(request)
        if path.startswith("/api/"):
            return JSONResponse({"error": "pin_required", "zh": "请先输入监测员口令",
                                 "en": "enter the proctor PIN first"}, status_code=401)
        return RedirectResponse(f"/login?next={path}", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/", wrong: int = 0):
        from station.web.templating import render

        return render(request, "login.html", page="login", next=next, wrong=bool(wrong))

    @app.post("/login")
    async def login(request: Request):
        form = await request.form()
        target = str(form.get("next") or "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if hmac.compare_digest(str(form.get("pin", "")), pin):
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        return RedirectResponse(f"/login?next={target}&wrong=1", status_code=303)
