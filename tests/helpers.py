"""Small helpers shared by tests in several folders: ports, polling, a headless Chromium.

The server processes themselves live beside their tests: tests/station/servers.py (`station
serve`, `station collector serve`), tests/uploader/client/collector_harness.py and
tests/uploader/collector/conftest.py (the collector); all stop them with ``stop_process``.
"""
from __future__ import annotations

import re
import socket
import subprocess
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
