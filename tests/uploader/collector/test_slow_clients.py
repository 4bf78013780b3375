"""Clients that hold connections without finishing a request, tried with raw sockets against the
real collector: they are closed, and they cannot crowd out the stations."""
from __future__ import annotations

import socket
import time

import httpx
import pytest

from uploader.collector.store import open_db


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (reading what it may send first), or None."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - t0
    return None


def test_a_connection_that_sends_nothing_is_closed(collector_factory):
    server = collector_factory("--header-timeout", "1")
    with connect(server) as sock:
        took = closed_within(sock, 10)
    assert took is not None and took < 4


def test_headers_sent_a_byte_at_a_time_are_cut_off(collector_factory):
    server = collector_factory("--header-timeout", "1")
    with connect(server) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        t0 = time.monotonic()
        closed = False
        for ch in b"X-Slow: " + b"a" * 100:  # slowloris: never the blank line
            try:
                sock.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_within(sock, 0.3) is not None:
                closed = True
                break
        assert closed and time.monotonic() - t0 < 5
    # the collector still answers everyone else
    assert httpx.get(server.url + "/api/health", timeout=5).status_code == 200


def test_a_body_that_trickles_is_cut_off(collector_factory):
    server = collector_factory("--patch-idle-timeout", "1")
    token = server.tokens["S01"]
    with connect(server) as sock:
        sock.sendall(b"POST /api/stations/S01/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        t0 = time.monotonic()
        answer = b""
        sock.settimeout(0.4)
        while time.monotonic() - t0 < 10 and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(b" ")  # one byte now and then: never idle, never done
                answer += sock.recv(4096)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert time.monotonic() - t0 < 6


def test_connections_beyond_the_cap_are_refused_and_the_rest_served(collector_factory):
    server = collector_factory("--max-connections", "4", "--header-timeout", "30")
    idle = [connect(server) for _ in range(4)]
    try:
        time.sleep(0.3)
        with connect(server) as extra:
            assert closed_within(extra, 3) is not None  # closed at once, not left hanging
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(server.url + "/api/health", timeout=5).status_code == 200


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                  b'{"a":' * 40 + b"1" + b"}" * 40,
                                  b'{"at": "\xff"}', b"{", b"[]"])
def test_malformed_or_deeply_nested_heartbeats_are_a_400(collector, body):
    answer = httpx.post(collector.url + "/api/stations/S01/heartbeat", content=body, timeout=30,
                        headers={"Authorization": f"Bearer {collector.tokens['S01']}",
                                 "Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"] == "bad_json"


def test_a_station_sending_reports_in_a_loop_keeps_only_the_newest(collector_factory):
    server = collector_factory()
    report = {"overall": "pass", "checks": [{"id": "disk.free", "status": "pass"}]}
    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"Authorization": f"Bearer {server.tokens['S01']}"}) as client:
        for n in range(105):
            assert client.post("/api/stations/S01/precheck", json={**report, "n": n}).status_code == 200
        client.post("/api/stations/S02/precheck", json=report)  # refused: another station's
    db = open_db(server.data_dir, server.db_url)
    try:
        kept = [row["body"] for row in db.query("SELECT body FROM prechecks WHERE station = 'S01' ORDER BY id")]
    finally:
        db.close()
    assert len(kept) == 100 and '"n": 104' in kept[-1] and kept[0].endswith('"n": 5}')
