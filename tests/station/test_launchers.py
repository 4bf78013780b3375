"""What the Windows launchers (windows/launchers/*.cmd) ask of the command line: `serve --open`
opens the pages once they answer; `precheck --open-report` writes the report and opens it.
A recording "browser" (the BROWSER variable webbrowser honours) stands in for the real one."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import free_port, station_command, stop_process, wait_for

pytestmark = pytest.mark.linux_only  # BROWSER is a shell script


@pytest.fixture
def browser(tmp_path, monkeypatch):
    opened = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n', encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(script))
    return opened


def test_serve_open_opens_the_pages_once_they_answer(data_dir, browser):
    port = free_port()
    proc = subprocess.Popen([*station_command(), "serve", "--port", str(port), "--open"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        wait_for(lambda: browser.exists() and browser.read_text().strip(), 60, "the browser to open")
        opened = browser.read_text().split()
        # The one-time sign-in link of this computer's station, opened once.
        assert len(opened) == 1 and opened[0].startswith(f"http://127.0.0.1:{port}/login?token="), opened
    finally:
        stop_process(proc)


@pytest.mark.audio
def test_precheck_open_report_writes_and_opens_the_report(station, data_dir, browser, headset):
    done = station("precheck", "--no-network", "--open-report")
    report = data_dir / "reports" / "设备检查报告.html"
    assert report.exists(), done.stderr
    assert browser.read_text().split() == [report.resolve().as_uri()]
    assert str(report) in done.stdout
