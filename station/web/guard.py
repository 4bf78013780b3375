"""What every request to the station passes first, in one place (an ASGI middleware).

In order: the Host must be one the station serves (a DNS-rebinding page names its own);
a write (any method but GET/HEAD/OPTIONS) must come from the station's own origin and be
JSON, so no other web page open in the browser can change a result; outside the few open
paths the request must carry a session (``session``); the body is capped while it is read;
and every answer carries the security headers. Refusals are bilingual JSON.
"""
from __future__ import annotations

import json
import re
import socket
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from qmbase.refusal import Refusal
from station.web.session import Sessions, cookie_name

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_PATHS = ("/api/health", "/static/", "/login")
FORM_PATHS = {"/login"}             # the one HTML form; it carries its own CSRF token
MAX_BODY = 1024 * 1024              # the pages send small JSON documents
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

# No inline script or style on the pages: scripts and styles come from /static only.
# The favicon is an empty data: URL; recordings play from the station itself.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

REFUSALS = {
    "bad_host": (421, "这个地址不是本工作站的地址，请求已拒绝。请用 http://127.0.0.1:端口/ 打开工作站页面，"
                      "或请信息中心把该地址加入 [web] allowed_hosts。",
                 "This address is not one the station serves; the request was refused. Open the station at "
                 "http://127.0.0.1:<port>/, or ask the information center to add the address to [web] allowed_hosts."),
    "cross_origin": (403, "请求来自其他网站或网页，已拒绝：只有工作站自己的页面可以修改数据。",
                     "The request came from another site or page and was refused: only the station's own "
                     "pages may change data."),
    "not_json": (415, "请求格式不对（须为 JSON），已拒绝。请刷新工作站页面后重试。",
                 "The request is not JSON and was refused. Reload the station page and try again."),
    "login_required": (401, "请先登录：打开 station serve 窗口中显示的登录链接，或在登录页输入口令。",
                       "Sign in first: open the login link shown where `station serve` runs, or enter "
                       "the PIN on the login page."),
    "too_large": (413, "请求内容太大，已拒绝（上限 1 MB）。请刷新页面后重试。",
                  "The request body is too large and was refused (limit 1 MB). Reload the page and try again."),
}


class TooLarge(Exception):
    pass


_HOST = re.compile(r"\[([0-9a-f:.]+)\]|([a-z0-9.-]+)")


def host_name(host_header: str) -> str:
    """The host part of a Host header, lower-cased, without port or IPv6 brackets; "" for
    anything that is not a plain host[:port] (userinfo, paths, spaces: never served)."""
    host = host_header.strip().lower()
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not name or (port and not (port.isascii() and port.isdigit())):
        name, port = host, ""
    match = _HOST.fullmatch(name)
    if match is None:
        return ""
    return match.group(1) or match.group(2)


def allowed_hosts(bind_host: str, extra: list[str] | tuple[str, ...] = ()) -> set[str]:
    """Loopback names, the address the station listens on and the configured extras. Bound
    to every interface, the computer's own name and addresses are served too."""
    hosts = set(LOOPBACK_HOSTS) | {h.strip().strip("[]").lower() for h in [*extra, bind_host]}
    if bind_host in ("0.0.0.0", "::", ""):
        name = socket.gethostname().lower()
        hosts |= {name, socket.getfqdn().lower()}
        try:
            hosts |= {info[4][0].lower() for info in socket.getaddrinfo(name, None)}
        except OSError:
            pass
    return {h for h in hosts if h}


class Guard:
    """The ASGI middleware; ``sessions`` reads the session cookie, ``hosts`` are served."""

    def __init__(self, app, sessions: Sessions, hosts: set[str], max_body: int = MAX_BODY):
        self.app = app
        self.sessions = sessions
        self.hosts = hosts
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *[h for h in SECURITY_HEADERS if h[0] not in names]]}
            await send(message)

        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return await refuse(send_with_headers, "bad_host")
        path = scope["path"]          # not request.url: that is rebuilt from the Host header
        method = scope["method"]
        if method not in SAFE_METHODS:
            problem = cross_site(headers, host, path)
            if problem:
                return await refuse(send_with_headers, problem)
        session = self.sessions.read(cookie_parser(headers.get("cookie", "")).get(cookie_name(scope)))
        scope["qm.session"] = session
        if session is None and not path.startswith(OPEN_PATHS):
            if path.startswith("/api/") or method not in SAFE_METHODS:
                return await refuse(send_with_headers, "login_required")
            target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            return await redirect(send_with_headers, "/login?next=" + quote(target, safe=""))

        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body:
            return await refuse(send_with_headers, "too_large")
        received = 0

        async def capped_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise TooLarge()
            return message

        try:
            await self.app(scope, capped_receive, send_with_headers)
        except TooLarge:
            if not started:
                await refuse(send_with_headers, "too_large")


def cross_site(headers: Headers, host: str, path: str) -> str | None:
    """Why a write must be refused, or None. ``Origin`` must be this station's own; without
    one (an older browser), ``Sec-Fetch-Site`` must say same-origin; a client that sends
    neither is not a browser page and needs the session like anyone else."""
    origin = headers.get("origin")
    if origin is not None:
        if origin != f"http://{host}":
            return "cross_origin"
    else:
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return "cross_origin"
    if path in FORM_PATHS:
        return None
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return "not_json"
    return None


async def refuse(send, code: str) -> None:
    status, zh, en = REFUSALS[code]
    body = json.dumps(Refusal(zh, en, code=code).answer(), ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


async def redirect(send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
