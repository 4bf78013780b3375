"""The collector over TLS (--tls-cert/--tls-key), as districts run it on a network."""
from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture
def tls_collector(collector_factory, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return collector_factory("--tls-cert", str(cert), "--tls-key", str(key), ca_file=str(cert))


def test_upload_and_dashboard_login_over_tls(tls_collector, tus_for):
    server = tls_collector
    tus = tus_for(server=server)
    data = os.urandom(100_000)
    tus.upload(data)
    assert server.stored(tus.sitting).read_bytes() == data
    with httpx.Client(base_url=server.url, verify=server.verify) as browser:
        login = browser.post("/login", data={"token": server.admin})
        assert login.status_code == 303
        cookie = login.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_plain_http_to_the_tls_port_gets_no_answer(tls_collector):
    with pytest.raises(httpx.HTTPError):
        httpx.get(tls_collector.url.replace("https://", "http://") + "/api/health", timeout=5)
