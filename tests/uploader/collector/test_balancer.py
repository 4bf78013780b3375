"""The drills' load balancer, in front of two tiny real HTTP servers that say who they are."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.helpers import free_port

from .balancer import Balancer


class Named(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive, as the collector's uvicorn

    def do_GET(self):
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Backend:
    """An HTTP server on a fixed port that can go down and come back on the same port."""

    def __init__(self, name: str):
        self.name, self.port, self.server = name, free_port(), None

    def up(self) -> "Backend":
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Named)
        self.server.name = self.name
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def backends():
    made = [Backend("A").up(), Backend("B").up()]
    yield made
    for backend in made:
        backend.down()


@pytest.fixture
def balancer(backends):
    lb = Balancer([b.port for b in backends])
    yield lb
    lb.close()


def ask(url: str) -> str:
    """One request on a connection of its own, as each new station connection is."""
    with httpx.Client(timeout=10) as client:
        return client.get(url + "/who").text


def test_new_connections_go_round_robin(balancer, backends):
    assert [ask(balancer.url) for _ in range(6)] == ["A", "B", "A", "B", "A", "B"]
    assert balancer.connections_per_backend == {backends[0].port: 3, backends[1].port: 3}


def test_a_connection_keeps_its_backend(balancer):
    with httpx.Client(timeout=10) as client:      # keep-alive: one connection, many requests
        assert {client.get(balancer.url + "/who").text for _ in range(5)} == {"A"}
    assert ask(balancer.url) == "B"


def test_a_refusing_backend_is_skipped_then_tried_again(balancer, backends):
    a, b = backends
    b.down()
    assert [ask(balancer.url) for _ in range(4)] == ["A"] * 4
    assert balancer.refused_per_backend[b.port] == 2       # tried at each of its turns
    assert balancer.connections_per_backend == {a.port: 4, b.port: 0}
    b.up()                                                 # back on the same port
    assert sorted(ask(balancer.url) for _ in range(4)) == ["A", "A", "B", "B"]
    assert balancer.connections_per_backend[b.port] == 2


def test_with_every_backend_down_the_connection_is_closed(balancer, backends):
    for backend in backends:
        backend.down()
    with pytest.raises(httpx.TransportError):
        ask(balancer.url)
    backends[0].up()
    assert ask(balancer.url) == "A"
