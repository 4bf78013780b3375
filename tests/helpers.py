"""Small helpers shared by tests in several folders: ports, polling, a headless Chromium.

The server processes themselves live beside their tests: tests/station/servers.py (`station
serve`, `station collector serve`), tests/uploader/collector_harness.py and
tests/uploader/collector/conftest.py (the collector); all stop them with ``stop_process``.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# 电子封签 as printed on the sitting sheet: 80 bits in Crockford base32 (no I, L, O, U), 4 groups.
SEAL_CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){3}")
# Debian's Chromium, driven by Playwright: no sandbox as root in a container, no GPU, and
# nothing that reaches for the network (only the package registries are reachable).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Debian chromium is not installed")


def _under_wine() -> bool:
    if sys.platform != "win32":
        return False
    import ctypes

    return hasattr(ctypes.windll.ntdll, "wine_get_version")


UNDER_WINE = _under_wine()
# Wine 8 accepts a file's ACL (SetNamedSecurityInfoW succeeds) but keeps only Unix modes:
# the DACL read back is made from them. Real Windows (NTFS) keeps it.
reads_acls_back = pytest.mark.skipif(UNDER_WINE, reason="Wine does not keep file ACLs")


def station_command() -> list[str]:
    r"""How a test runs the `station` command of the Python running the tests: the console
    script of a venv (bin/station, Scripts\station.exe), else ``python -m station`` (the
    Windows package's embeddable Python has no Scripts folder)."""
    exe = Path(sys.executable)
    for candidate in (exe.with_name("station"), exe.with_name("station.exe"),
                      exe.parent / "Scripts" / "station.exe"):
        if candidate.is_file():
            return [str(candidate)]
    return [sys.executable, "-m", "station"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(app, timeout: float = 30.0):
    """An ASGI app of the test's making under a real uvicorn on 127.0.0.1, in a thread;
    yields its base URL."""
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", http="h11"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it will not go in 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(get, timeout: float = 90.0, what: str = "the condition", every: float = 0.2):
    """Poll until ``get()`` is truthy; returns it. Generous: the machine is shared."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


@contextmanager
def chromium(sync_api):
    """A headless Debian Chromium under Playwright (``sync_api`` = playwright.sync_api)."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def page_errors(page) -> list[str]:
    """Collects what a teacher's page got wrong: failed requests, console errors, uncaught errors."""
    errors: list[str] = []
    # Chromium's own /favicon.ico probe is not the page's doing; every other 404 is.
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    # A failed request is also a console error: already counted above, with its URL.
    page.on("console", lambda m: errors.append(f"{m.text} {m.location.get('url')}")
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def holds_port(pid: int, port: str, seconds: float = 20.0) -> None:
    """Wait until process ``pid`` has ``port`` open (its port reader, not only the first
    check that the port opens): bytes sent before would be lost, as on a real cable."""
    target = os.path.realpath(port)
    deadline = time.monotonic() + seconds
    seen = 0
    while time.monotonic() < deadline:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            links = {os.path.realpath(f"/proc/{pid}/fd/{fd}") for fd in fds}
        except OSError:
            links = set()
        seen = seen + 1 if target in links else 0
        if seen >= 5:                         # open for 0.25 s: the reader, not the check
            return
        time.sleep(0.05)
    raise AssertionError(f"station pe listen never opened {port}")
def district_ca(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A district's own CA and a server certificate it signed for ``host``, as PEM files:
    (ca.pem, cert.pem, key.pem). The CA is not in the system's trust store."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qm test district CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "district-ca.pem", directory / "collector-cert.pem", directory / "collector-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths
