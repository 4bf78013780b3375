"""Small helpers shared by tests in several folders: ports, polling, a headless Chromium.

The server processes themselves live beside their tests: tests/station/servers.py (`station
serve`, `station collector serve`), tests/uploader/client/collector_harness.py and
tests/uploader/collector/conftest.py (the collector); all stop them with ``stop_process``.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
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
