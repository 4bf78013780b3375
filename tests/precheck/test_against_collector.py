"""The network checks against the real collector (uploader/collector) under uvicorn.

The other tests use a small stand-in server so they can bend the clock and the
certificate; this one proves the checks and the collector keep the same contract
(health shape, `Date`, the streamed probe, token refusal).
"""
from __future__ import annotations

import socket
import threading
import time

import pytest

from precheck import network, system
from precheck.context import Context
from qmbase.collector_link import CollectorLink


@pytest.fixture
def real_collector(tmp_path):
    import uvicorn

    from uploader.collector.app import create_app
    from uploader.collector.cli import add_station

    token = add_station("S01", tmp_path / "collector")
    app = create_app(tmp_path / "collector")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", http="h11"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the collector did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", token
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_checks_pass_against_the_real_collector(real_collector):
    url, token = real_collector
    ctx = Context(link=CollectorLink(url=url, token=token))
    assert network.check_collector(ctx).status == "pass"
    throughput = network.check_throughput(ctx)
    assert throughput.status == "pass"
    assert throughput.details["probe_bytes"] == Context().probe_bytes   # the collector's own count
    clock = system.check_clock_skew(ctx)
    assert clock.status == "pass" and abs(clock.details["skew_s"]) < 2


def test_the_real_collector_refuses_a_wrong_token(real_collector):
    url, _ = real_collector
    result = network.check_throughput(Context(link=CollectorLink(url=url, token="not-a-token")))
    assert result.status == "fail"
    assert result.details["status_code"] == 401
