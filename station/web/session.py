"""Who may use the station's pages, and which proctor is acting: the signed session cookie.

Modelled on Jupyter server's token: each install keeps a secret in a private file of the
data dir (``web-token``). `station serve` prints a one-time login link carrying it (and
opens the browser with it); the link trades the secret for an HttpOnly, SameSite=Strict
session cookie. So another account on the same computer, which can reach the loopback
port but not the data dir, cannot read children's names. From other computers the proctor
PIN is the way in (see ``pin``).

The cookie is stateless, ``<payload>.<HMAC>``, keyed by the install secret: it survives a
restart of the station, and it carries the proctor's name once they have signed in. Every
write's audit "who" is that name, never a field of the request.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import unicodedata
from pathlib import Path

from qmbase.platform import write_private_text

COOKIE = "qm_session"       # + "_<port>": cookies are not kept apart by port (as Jupyter does)
TOKEN_FILE = "web-token"
MAX_AGE_S = 24 * 3600       # a test day; the next day starts from the link again
PROCTOR_MAX = 40


def install_token(data_dir: Path) -> str:
    """The install's secret, created on first use in a file only this account can read."""
    path = Path(data_dir) / TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        token = ""
    if len(token) < 32:
        token = secrets.token_urlsafe(32)
        write_private_text(path, token + "\n")
    return token


def cookie_name(scope: dict, base: str = COOKIE) -> str:
    """The cookie's name for the port this request came in on: two stations (or a station
    and its rehearsal) on one computer do not overwrite each other's sessions."""
    server = scope.get("server") or ("", 0)
    return f"{base}_{server[1]}"


def login_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/login?token={token}"


def same_secret(given: str, expected: str) -> bool:
    """Constant-time, byte-wise: any text (a non-ASCII PIN or cookie) compares, never raises."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


class Sessions:
    """Issues and reads session cookies under one install's secret."""

    def __init__(self, token: str):
        self.token = token
        self._key = hmac.new(token.encode(), b"qm-station session cookie", hashlib.sha256).digest()

    def is_token(self, given: str) -> bool:
        return same_secret(given, self.token)

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def issue(self, proctor: str = "", sid: str | None = None) -> str:
        doc = {"sid": sid or secrets.token_urlsafe(12), "proctor": proctor, "at": int(time.time())}
        payload = base64.urlsafe_b64encode(json.dumps(doc, ensure_ascii=True).encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload.encode())}"

    def read(self, cookie: str | None) -> dict | None:
        """The session a cookie carries, or None (missing, forged, expired or garbled)."""
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not same_secret(mac, self._sign(payload.encode("utf-8", "surrogatepass"))):
            return None
        try:
            doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            if time.time() - int(doc.get("at", 0)) > MAX_AGE_S:
                return None
        except (ValueError, TypeError, AttributeError):
            return None
        return doc

    def set_cookie(self, scope: dict, response, proctor: str = "", sid: str | None = None) -> None:
        response.set_cookie(cookie_name(scope), self.issue(proctor, sid), max_age=MAX_AGE_S, path="/",
                            httponly=True, samesite="strict")


def clean_proctor(name: object) -> str | None:
    """A proctor's name as typed, trimmed; None when empty, too long or carrying invisible
    or direction-changing characters (the audit log must read as what it says)."""
    if not isinstance(name, str):
        return None
    name = unicodedata.normalize("NFC", name).strip()
    if not name or len(name) > PROCTOR_MAX:
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in name):
        return None
    return name
