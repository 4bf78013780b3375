"""The station's pages tried as an attacker would, on 127.0.0.1 only: another web page open
in the proctor's browser, a DNS-rebinding Host, another account of the computer without
the install's secret, a PIN guesser, odd bytes, a huge body. Nothing may be read or written.
"""
from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.helpers import chromium, needs_chromium
from tests.station.servers import STATION, import_roster, station_serve

CODE = "0001"
ROSTER = "学籍号,姓名,性别,年级,班级\n0001,王子涵,男,四年级,4(1)\n0002,李欣怡,女,四年级,4(1)\n"


@pytest.fixture
def pe_station(station, data_dir, tmp_path):
    """A served station with a roster (generated names) and an open PE sitting."""
    import_roster(station, tmp_path / "roster.csv", ROSTER)
    sitting = station("session", "open", "--kind", "pe", "--item", "sit_and_reach", "--by", "张老师",
                      check=True).stdout.strip().splitlines()[-1]
    server = station_serve()
    yield server, sitting, data_dir
    server.stop()


def _db_rows(data_dir, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{data_dir / 'station.db'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def _audit(data_dir) -> list[tuple]:
    return _db_rows(data_dir, "SELECT who, action, entity_id FROM audit_log ORDER BY id")


def _sitting_state(data_dir, sitting: str) -> str:
    return _db_rows(data_dir, f"SELECT state FROM sittings WHERE id = '{sitting}'")[0][0]


class EvilSite:
    """Another origin (127.0.0.1 on another port): pages that try to write to the station."""

    def __init__(self, pages: dict[str, str]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0], "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _form(action: str, fields: dict) -> str:
    """A form that posts itself, as text/plain, whose body reads as the JSON the API wants."""
    payload = json.dumps(fields)[:-1] + ', "x": "'
    return (f'<form id="f" method="post" enctype="text/plain" action="{action}">'
            f"<input type=\"hidden\" name='{payload}' value='\"}}'></form>"
            '<script>document.getElementById("f").submit();</script>')


@needs_chromium
def test_another_page_in_the_browser_cannot_mark_absent_or_close(pe_station):
    from playwright import sync_api

    server, sitting, data_dir = pe_station
    station = server.url
    body = json.dumps({"code": CODE, "sitting": sitting})
    fetches = f"""<script>
      var opts = {{method: "POST", mode: "no-cors", credentials: "include",
                  headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(body)}}};
      Promise.allSettled([fetch("{station}/api/pe/absent", opts), fetch("{station}/api/pe/close", opts),
                          fetch("{station}/api/pe/exempt", opts)])
        .then(function () {{ document.title = "done"; }});
    </script>"""
    evil = EvilSite({"/fetch": fetches,
                     "/absent": _form(f"{station}/api/pe/absent", {"code": CODE}),
                     "/close": _form(f"{station}/api/pe/close", {"sitting": sitting})})
    before = _audit(data_dir)
    try:
        with chromium(sync_api) as browser:
            page = server.page(browser)        # the proctor is signed in, in this browser
            page.goto(station + "/pe")
            page.goto(evil.url + "/fetch")
            page.wait_for_function("document.title === 'done'", timeout=30_000)
            for form in ("/absent", "/close"):
                with page.expect_response(lambda r: r.url.startswith(station + "/api/pe/")) as answer:
                    page.goto(evil.url + form)
                assert answer.value.status == 403, answer.value.text()
                assert answer.value.json()["error"] == "cross_origin"
    finally:
        evil.stop()
    assert _audit(data_dir) == before
    assert _sitting_state(data_dir, sitting) == "open"
    assert _db_rows(data_dir, "SELECT count(*) FROM pe_attempts")[0][0] == 0
    assert _db_rows(data_dir, "SELECT count(*) FROM pe_results")[0][0] == 0
    # The same write from the station's own session goes through: the refusals above were not luck.
    with server.client() as proctor:
        proctor.post("/api/pe/absent", json={"code": CODE}).raise_for_status()
    assert _audit(data_dir)[-1][:2] == ("张老师", "pe.result.absent")


def test_writes_are_json_from_the_station_origin_only(pe_station):
    server, sitting, data_dir = pe_station
    before = _audit(data_dir)
    with server.client() as client:
        cases = [({"Content-Type": "text/plain"}, 415),
                 ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
                 ({"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}, 403),
                 ({"Content-Type": "application/json", "Origin": "null"}, 403),
                 ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403),
                 ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403)]
        for headers, status in cases:
            for path in ("/api/pe/absent", "/api/pe/close", "/api/uploads/x/retry", "/api/precheck/run",
                         "/api/proctor"):
                answer = client.post(path, content=json.dumps({"code": CODE, "sitting": sitting,
                                                               "name": "冒名者"}), headers=headers)
                assert answer.status_code == status, (path, headers, answer.text)
                doc = answer.json()
                assert doc["zh"] and doc["en"], doc
    assert _audit(data_dir) == before
    assert _sitting_state(data_dir, sitting) == "open"


def test_the_audit_names_the_signed_in_proctor_never_the_body(pe_station):
    server, sitting, data_dir = pe_station
    with server.client(proctor=None) as anonymous:
        refused = anonymous.post("/api/pe/absent", json={"code": CODE, "by": "冒名者"})
        assert refused.status_code == 401 and refused.json()["error"] == "proctor_required"
        assert "姓名" in refused.json()["zh"]
    assert not [row for row in _audit(data_dir) if row[1] == "pe.result.absent"]
    with server.client(proctor="刘老师") as proctor:
        proctor.post("/api/pe/absent", json={"code": CODE, "by": "冒名者"}).raise_for_status()
        assert "刘老师" in proctor.get("/pe").text       # the page shows who is signed in
    assert _audit(data_dir)[-1][:2] == ("刘老师", "pe.result.absent")
    assert all(row[0] != "冒名者" for row in _audit(data_dir))


def test_a_rebinding_host_is_refused_even_with_a_session(pe_station):
    server, _, _ = pe_station
    with server.client() as client:
        assert client.get("/api/pe/export").status_code == 200
        for host in ("attacker.example", f"attacker.example:{server.port}", "127.0.0.1.nip.io",
                     f"127.0.0.1:{server.port}@attacker.example"):
            for path in ("/api/pe/export", "/pe", "/api/health", "/login"):
                answer = client.get(path, headers={"Host": host})
                assert answer.status_code == 421, (host, path, answer.status_code)
                assert answer.json()["error"] == "bad_host" and answer.json()["zh"]
            assert client.post("/api/pe/absent", json={"code": CODE}, headers={"Host": host}).status_code == 421
        for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
            assert client.get("/api/health", headers={"Host": host}).status_code == 200


def test_another_account_without_the_secret_reads_no_names(pe_station):
    server, _, data_dir = pe_station
    assert (data_dir / "web-token").stat().st_mode & 0o077 == 0     # the secret is the account's own
    stranger = httpx.Client(base_url=server.url, timeout=30)
    assert stranger.get("/api/health").status_code == 200               # monitoring still works
    assert stranger.get("/static/app.js").status_code == 200
    for path in ("/api/pe/export", "/api/pe/state", "/api/status", "/api/uploads"):
        answer = stranger.get(path)
        assert answer.status_code == 401 and "王子涵" not in answer.text, path
    page = stranger.get("/pe")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    # A guessed link, a forged or replayed-from-elsewhere cookie: still nothing.
    assert stranger.get("/login", params={"token": "x" * 43}).status_code == 401
    assert server.cookie_name not in stranger.cookies
    forged = server.client().cookies[server.cookie_name].rsplit(".", 1)[0] + "." + "0" * 64
    assert stranger.get("/api/pe/export", headers={"Cookie": f"{server.cookie_name}={forged}"}).status_code == 401
    other_install = httpx.get(server.url + "/api/pe/export",
                              cookies={server.cookie_name: "eyJzaWQiOiAieCJ9." + "a" * 64}, timeout=30)
    assert other_install.status_code == 401


def test_security_headers_on_every_answer_and_no_api_docs(pe_station):
    server, _, _ = pe_station
    with server.client() as client:
        for path in ("/", "/pe", "/api/health", "/api/pe/state", "/static/app.js", "/login", "/nowhere",
                     "/openapi.json", "/docs", "/redoc"):
            headers = client.get(path).headers
            csp = headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
            assert "script-src 'self'" in csp, path
            assert headers.get("x-content-type-options") == "nosniff", path
            assert headers.get("referrer-policy") == "no-referrer", path
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert client.get(path).status_code == 404, path
        refused = client.get("/api/health", headers={"Host": "evil.example"})
        assert refused.headers.get("x-content-type-options") == "nosniff"


def _raw_request(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head)
    return sock


def test_request_bodies_are_capped_while_they_arrive(pe_station):
    server, _, data_dir = pe_station
    cookie = server.client().cookies[server.cookie_name]
    with server.client() as client:
        big = client.post("/api/pe/absent", content=b'{"code": "' + b"0" * (2 << 20) + b'"}',
                          headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and big.json()["error"] == "too_large" and big.json()["en"]
    # Chunked, no length: refused once the cap is passed, long before 64 MiB have been sent.
    sock = _raw_request(server.port, (
        f"POST /api/pe/absent HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nCookie: {server.cookie_name}={cookie}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n").encode())
    chunk = b"%x\r\n%s\r\n" % (1 << 16, b" " * (1 << 16))
    sent, answer = 0, b""
    sock.settimeout(0.05)
    started = time.monotonic()
    try:
        while sent < 64 << 20 and time.monotonic() - started < 60:
            try:
                answer += sock.recv(4096)
                if answer:
                    break
            except socket.timeout:
                pass
            sock.sendall(chunk)
            sent += 1 << 16
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(10)
    try:
        while b"\r\n\r\n" not in answer:
            more = sock.recv(4096)
            if not more:
                break
            answer += more
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 << 20, f"the station read {sent} bytes before refusing"
    assert not [row for row in _audit(data_dir) if row[1] == "pe.result.absent"]


def test_a_pin_guesser_is_slowed_then_locked_out(data_dir, station):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text('[web]\npin = "482915"\n', encoding="utf-8")
    server = station_serve()
    try:
        guesser = httpx.Client(base_url=server.url, timeout=30)
        statuses = []
        started = time.monotonic()
        for guess in range(100000, 100040):
            form = guesser.get("/login")
            csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            answer = guesser.post("/login", data={"secret": str(guess), "csrf": csrf, "next": "/"})
            statuses.append(answer.status_code)
            assert server.cookie_name not in guesser.cookies
        assert time.monotonic() - started < 60
        assert statuses[:3] == [401, 401, 401] or statuses[:2] == [401, 401], statuses
        assert statuses.count(429) >= 35, statuses     # nearly every guess is not even tried
        # Even the right PIN is refused while this client waits; it says so in both languages.
        form = guesser.get("/login")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        locked = guesser.post("/login", data={"secret": "482915", "csrf": csrf, "next": "/"})
        assert locked.status_code == 429 and server.cookie_name not in guesser.cookies
        assert "秒后再试" in locked.text
        # The login link of this computer's account still works (another client, the secret).
        assert server.client().get("/api/status").status_code == 200
    finally:
        server.stop()


def test_the_pin_form_needs_its_csrf_token(data_dir, station):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text('[web]\npin = "482915"\n', encoding="utf-8")
    server = station_serve()
    try:
        client = httpx.Client(base_url=server.url, timeout=30)
        answer = client.post("/login", data={"secret": "482915", "next": "/"})
        assert answer.status_code == 403 and server.cookie_name not in client.cookies
        answer = client.post("/login", data={"secret": "482915", "next": "/"},
                             headers={"Origin": "http://127.0.0.1:1"})
        assert answer.status_code == 403 and answer.json()["error"] == "cross_origin"
    finally:
        server.stop()


def test_a_non_ascii_pin_and_cookie_are_answered_not_crashed(data_dir, station):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text('[web]\npin = "监测员口令二〇二六"\n', encoding="utf-8")
    server = station_serve()
    try:
        client = httpx.Client(base_url=server.url, timeout=30)
        for value in ("监测员".encode(), "é".encode("latin-1"), b"\xff\xfe.\xc3\xa9"):
            for name in (server.cookie_name, "qm_pin", "qm_login_%d" % server.port):
                answer = client.get("/api/status", headers={"Cookie": name.encode() + b"=" + value})
                assert answer.status_code == 401, value
                assert client.get("/", headers={"Cookie": name.encode() + b"=" + value}).status_code == 303
            odd_csrf = httpx.post(server.url + "/login", content="csrf=%C3%A9&secret=%E5%8F%A3".encode(),
                                  headers={"Cookie": b"qm_login_%d=" % server.port + value,
                                           "Content-Type": "application/x-www-form-urlencoded"})
            assert odd_csrf.status_code in (401, 403), odd_csrf.status_code   # answered, never a 500
        form = client.get("/login")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        wrong = client.post("/login", data={"secret": "口令", "csrf": csrf, "next": "/"})
        assert wrong.status_code == 401
        form = client.get("/login")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        right = client.post("/login", data={"secret": "监测员口令二〇二六", "csrf": csrf, "next": "/pe"})
        assert right.status_code == 303 and right.headers["location"] == "/pe"
        assert client.get("/api/status").status_code == 200
    finally:
        server.stop()


def test_a_short_pin_stops_the_start_with_what_to_do(data_dir, station):
    import subprocess

    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text('[web]\npin = "2468"\n', encoding="utf-8")
    result = subprocess.run([*STATION, "serve", "--host", "0.0.0.0", "--port", "1", "--no-browser"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "至少需要 6 个字符" in result.stderr and "at least 6" in result.stderr


def test_the_pin_throttle_grows_then_locks_and_forgets_on_success():
    from station.web import pin

    now = [0.0]
    throttle = pin.Throttle(clock=lambda: now[0])
    delays = [throttle.failed("10.0.0.9") for _ in range(pin.LOCK_AFTER)]
    assert delays[:pin.FREE_TRIES] == [0.0] * pin.FREE_TRIES
    assert delays[pin.FREE_TRIES:-1] == sorted(delays[pin.FREE_TRIES:-1]) and delays[pin.FREE_TRIES] > 0
    assert delays[-1] == pin.LOCK_S and throttle.wait_s("10.0.0.9") == pin.LOCK_S
    assert throttle.wait_s("10.0.0.10") == 0           # per client
    now[0] += pin.LOCK_S
    assert throttle.wait_s("10.0.0.9") == 0
    throttle.succeeded("10.0.0.9")
    assert throttle.failed("10.0.0.9") == 0.0
