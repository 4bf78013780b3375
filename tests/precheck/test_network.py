"""Network, clock and version checks against a real HTTP(S) server on 127.0.0.1.

The server is a small stand-in for the collector's health and probe endpoints (the
collector itself is another package): it answers `GET /api/health` with a `Date`
header we can set off by N seconds, and `PUT /api/probe` reads and discards the body.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from precheck import network, registry, system
from precheck.context import Context
from precheck.dayplan import DayPlan
from precheck.runner import run
from qmbase.collector_link import CollectorLink

TOKEN = "tok-S01-test"


class FakeCollector:
    def __init__(self, clock_offset_s: float = 0.0, expected_version: str | None = None,
                 tls: ssl.SSLContext | None = None):
        outer = self
        self.clock_offset_s = clock_offset_s
        self.expected_version = expected_version
        self.probe_bytes_seen: list[int] = []
        self.health_requests = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def date_time_string(self, timestamp=None):
                return formatdate(time.time() + outer.clock_offset_s, usegmt=True)

            def reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                """The request body, plain or chunked (the probe streams it chunked)."""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        yield self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                    return
                remaining = int(self.headers.get("Content-Length", 0))
                while remaining:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        return
                    remaining -= len(chunk)
                    yield chunk

            def do_GET(self):
                if self.path == "/api/health":
                    outer.health_requests += 1
                    self.reply(200, {"status": "ok", "version": "1.0.0",
                                     "expected_station_version": outer.expected_version})
                else:
                    self.reply(404, {"error": "not_found"})

            def do_PUT(self):
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.reply(401, {"error": "unauthorized"})
                    self.close_connection = True
                    return
                seen = sum(len(c) for c in self.body())
                outer.probe_bytes_seen.append(seen)
                self.reply(200, {"bytes": seen})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector():
    servers: list[FakeCollector] = []

    def start(**kwargs) -> FakeCollector:
        servers.append(FakeCollector(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is: nothing listens there


# --- network.collector ---------------------------------------------------------------

def test_closed_port_fails_collector_and_says_what_to_do():
    ctx = Context(link=CollectorLink(url=f"http://127.0.0.1:{closed_port()}"), http_timeout_s=2)
    result = network.check_collector(ctx)
    assert result.status == "fail"
    assert "无法连接" in result.summary_zh and "Cannot reach" in result.summary_en
    assert "collector_url" in result.fix_zh and "collector_url" in result.fix_en
    assert result.details["error"]


def test_live_collector_passes_with_latency(collector):
    server = collector()
    result = network.check_collector(Context(link=CollectorLink(url=server.url)))
    assert result.status == "pass"
    assert result.details["latency_ms"] >= 0
    assert result.details["server_version"] == "1.0.0"


def test_a_server_that_is_not_the_collector_fails(collector):
    server = collector()
    # Right host, wrong path prefix: the answer is a 404, not a health document.
    result = network.check_collector(Context(link=CollectorLink(url=server.url + "/elsewhere")))
    assert result.status == "fail"
    assert result.details["status_code"] == 404


def test_no_collector_configured_skips_every_network_check():
    for check in registry.NETWORK:
        assert check.fn(Context()).status == "skip", check.id


# --- network.dns ---------------------------------------------------------------------

def test_unresolvable_name_fails_dns():
    # .invalid never resolves (RFC 6761): no traffic leaves the machine.
    result = network.check_dns(Context(link=CollectorLink(url="https://collector.qm-test.invalid:8443")))
    assert result.status == "fail"
    assert result.details["host"] == "collector.qm-test.invalid"
    assert "DNS" in result.fix_zh and "DNS" in result.fix_en


def test_localhost_resolves():
    result = network.check_dns(Context(link=CollectorLink(url="http://localhost:8080")))
    assert result.status == "pass"
    assert any(a in ("127.0.0.1", "::1") for a in result.details["addresses"])


def test_ip_address_needs_no_dns():
    assert network.check_dns(Context(link=CollectorLink(url="http://127.0.0.1:8080"))).status == "skip"


# --- clock.skew ----------------------------------------------------------------------

@pytest.mark.parametrize("offset, status", [(0, "pass"), (5, "warn"), (-5, "warn"),
                                            (90, "fail"), (-90, "fail")])
def test_clock_skew_against_the_collectors_date(collector, offset, status):
    server = collector(clock_offset_s=offset)
    result = system.check_clock_skew(Context(link=CollectorLink(url=server.url)))
    assert result.status == status, result
    assert abs(result.details["skew_s"] - offset) < 1.6
    if status != "pass":
        assert result.fix_zh and result.fix_en


def test_clock_skew_warns_when_the_collector_is_down():
    result = system.check_clock_skew(Context(link=CollectorLink(url=f"http://127.0.0.1:{closed_port()}")))
    assert result.status == "warn"
    assert "network.collector" in result.fix_en


def test_clock_skew_formula_uses_the_round_trip_midpoint():
    date = formatdate(1_000_000.0, usegmt=True)
    # Sent at 999_990, answered at 999_992: our midpoint is 999_991, theirs 1_000_000.5.
    assert system.clock_skew_s(date, 999_990.0, 999_992.0) == pytest.approx(9.5)


# --- software.version ----------------------------------------------------------------

@pytest.mark.parametrize("mine, expected, status", [
    ("1.2.0", "1.2.0", "pass"), ("1.1.9", "1.2.0", "fail"), ("1.3.0", "1.2.0", "warn"),
    ("1.2.0", None, "skip")])
def test_software_version_against_the_collector(collector, mine, expected, status):
    server = collector(expected_version=expected)
    result = system.check_software_version(Context(link=CollectorLink(url=server.url), version=mine))
    assert result.status == status
    assert result.details["version"] == mine
    if status == "fail":
        assert expected in result.fix_zh and expected in result.fix_en


def test_health_is_fetched_once_per_run(collector):
    server = collector(expected_version="0.1.0")
    ctx = Context(link=CollectorLink(url=server.url), version="0.1.0")
    report = run({"network": [registry.BY_ID[i] for i in ("network.collector", "clock.skew",
                                                          "software.version")]}, ctx)
    assert [c.status for c in report.checks] == ["pass", "pass", "pass"]
    assert server.health_requests == 1


# --- network.throughput --------------------------------------------------------------

def test_throughput_uploads_the_probe(collector):
    server = collector()
    result = network.check_throughput(Context(link=CollectorLink(url=server.url, token=TOKEN)))
    assert result.status == "pass"
    assert server.probe_bytes_seen == [Context().probe_bytes]
    assert result.details["probe_bytes"] == Context().probe_bytes
    assert result.details["bytes_per_s"] > 0


def test_throughput_probe_stops_at_its_time_budget(collector):
    server = collector()
    # A zero budget sends nothing; the check believes the server's count, not its own.
    result = network.check_throughput(Context(link=CollectorLink(url=server.url, token=TOKEN), probe_max_s=0))
    assert server.probe_bytes_seen == [0]
    assert result.status == "fail" and result.details["sent_bytes"] == 0


def test_throughput_warns_when_the_day_would_take_over_30_minutes(collector):
    server = collector()
    # 200 000 students of 10 min each: about 1.7 TB, which no school line sends in 30 min.
    ctx = Context(link=CollectorLink(url=server.url, token=TOKEN), plan=DayPlan(students=200_000, song_seconds=600))
    result = network.check_throughput(ctx)
    assert result.status == "warn"
    assert result.details["day_upload_s"] > network.UPLOAD_WARN_S


def test_throughput_with_a_wrong_token_fails(collector):
    server = collector()
    result = network.check_throughput(Context(link=CollectorLink(url=server.url, token="wrong")))
    assert result.status == "fail"
    assert "令牌" in result.summary_zh and "token" in result.summary_en
    assert server.probe_bytes_seen == []


def test_throughput_against_a_closed_port_fails():
    result = network.check_throughput(Context(link=CollectorLink(url=f"http://127.0.0.1:{closed_port()}",
                                                                 token=TOKEN)))
    assert result.status == "fail"
    assert "Cannot reach" in result.summary_en and result.fix_zh


def test_throughput_without_a_token_fails(collector):
    server = collector()
    result = network.check_throughput(Context(link=CollectorLink(url=server.url, token="")))
    assert result.status == "fail"
    assert "upload.token" in result.fix_en


# --- network.tls ---------------------------------------------------------------------

def make_cert(tmp_path, days_valid: float, days_ago: float = 1.0):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qm test collector")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=days_ago))
            .not_valid_after(now + dt.timedelta(days=days_valid))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


def test_tls_certificate_expiring_in_3_days_warns(collector, tmp_path):
    cert, context = make_cert(tmp_path, days_valid=3)
    server = collector(tls=context)
    ctx = Context(link=CollectorLink(url=server.url, ca_bundle=str(cert)))
    result = network.check_tls(ctx)
    assert result.status == "warn"
    assert 2 <= result.details["days_left"] <= 3
    assert result.fix_zh and result.fix_en
    # The district CA also lets the health request through.
    assert network.check_collector(ctx).status == "pass"


def test_tls_certificate_valid_for_a_year_passes(collector, tmp_path):
    cert, context = make_cert(tmp_path, days_valid=365)
    server = collector(tls=context)
    assert network.check_tls(Context(link=CollectorLink(url=server.url, ca_bundle=str(cert)))).status == "pass"


def test_tls_self_signed_without_the_district_ca_fails(collector, tmp_path):
    _, context = make_cert(tmp_path, days_valid=365)
    server = collector(tls=context)
    result = network.check_tls(Context(link=CollectorLink(url=server.url)))
    assert result.status == "fail"
    assert "ca_bundle" in result.fix_zh and "ca_bundle" in result.fix_en


def test_tls_expired_certificate_fails(collector, tmp_path):
    cert, context = make_cert(tmp_path, days_valid=-1, days_ago=30)
    server = collector(tls=context)
    result = network.check_tls(Context(link=CollectorLink(url=server.url, ca_bundle=str(cert))))
    assert result.status == "fail"
    assert "expired" in result.details["error"]


def test_tls_skips_plain_http(collector):
    server = collector()
    assert network.check_tls(Context(link=CollectorLink(url=server.url))).status == "skip"


# --- the standard run, end to end ----------------------------------------------------

def test_standard_run_without_audio(collector, tmp_path):
    from precheck.report import to_json
    from precheck.runner import run_precheck

    server = collector(clock_offset_s=90, expected_version="0.1.0")
    ctx = Context(station_id="S09", data_dir=tmp_path, link=CollectorLink(url=server.url, token=TOKEN),
                  plan=DayPlan(students=1, song_seconds=1))
    seen = []
    report = run_precheck(ctx, audio=False, on_result=lambda r: seen.append(r.id))
    data = to_json(report)
    statuses = {c["id"]: c["status"] for c in data["checks"]}
    assert statuses == {"network.dns": "skip", "network.collector": "pass", "network.tls": "skip",
                        "network.throughput": "pass", "clock.skew": "fail",
                        "software.version": statuses["software.version"], "disk.free": "pass"}
    assert data["station_id"] == "S09" and data["overall"] == "fail" and report.exit_code == 1
    assert sorted(seen) == sorted(statuses)
    json.dumps(data, allow_nan=False)
