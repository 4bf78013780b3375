"""A rehearsal started as a teacher starts it on Windows: `演练模式.cmd` (double-clicked, here run
by Wine's cmd.exe), then a singing sitting and a 50 m sitting driven in Chromium from Linux,
both sealed and uploaded to the rehearsal's own collector, and Ctrl-C ending it all.

Under Wine the simulated PE devices are the rehearsal's socket:// ports (no socat, no PTY)
and the headset is "the computer's own" (Wine's default devices, which on this machine are
the virtual headset's). The e2e test's steps are reused; only fewer students go through."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_test_day import (LAPTOP, SEAL, SECONDS, Day, close_pe, device_status,
                                     measure_and_confirm, open_pe, sign_in, take)
from tests.helpers import chromium, free_port, page_errors, wait_for
from tests.station.servers import Server
from tests.windows.conftest import WIN_STATION

LAUNCHER = WIN_STATION.rsplit("\\", 1)[0] + "\\演练模式.cmd"


def windows_pids(*needles: str) -> list[int]:
    """The Linux pids of the Windows processes whose command line holds every needle."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if "python.exe" in cmdline and all(n in cmdline for n in needles):
            pids.append(int(entry.name))
    return pids


class LauncherRehearsal(Server):
    """`演练模式.cmd --port P` under Wine; signs in and reads the data dir as `Server` does."""

    def __init__(self, data: Path, port: int):
        self.port, self.url, self.verify = port, f"http://127.0.0.1:{port}", True
        self.args, self.env, self.data = ["serve", "--simulate"], os.environ.copy(), data
        # Std handles are pipes: Wine's python.exe cannot start on a regular file.
        self.proc = subprocess.Popen(["wine", "cmd", "/c", LAUNCHER, "--port", str(port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        wait_for(self._up, 240, "演练模式.cmd to serve")

    def _up(self) -> bool:
        try:
            return httpx.get(self.url + "/api/health", timeout=2).json()["rehearsal"] is True
        except httpx.TransportError:
            assert self.proc.poll() is None, self.proc.stdout.read().decode("gb18030", "replace")
            return False

    def data_dir(self) -> Path:
        return self.data / "rehearsal"

    def ctrl_c(self) -> str:
        """What the teacher does to end it: Ctrl-C in its console (Wine turns SIGINT into it)."""
        for pid in windows_pids("serve --simulate", f"--port {self.port}"):
            os.kill(pid, signal.SIGINT)
        out, _ = self.proc.communicate(timeout=120)
        return out.decode("gb18030", "replace")

    def stop(self) -> None:       # after a failure: nothing may outlive the test
        for pid in windows_pids(str(self.port)) + windows_pids("collector serve", "rehearsal"):
            os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


def test_a_rehearsal_from_its_launcher_runs_a_take_and_a_pe_sitting(win_data, tmp_path, sing_into_mic):
    sync_api = pytest.importorskip("playwright.sync_api")
    rehearsal = LauncherRehearsal(win_data, free_port())
    try:
        with chromium(sync_api) as browser:
            page = browser.new_page(viewport=LAPTOP)
            errors = page_errors(page)
            page.on("dialog", lambda d: d.accept())
            shots = tmp_path / "shots"
            shots.mkdir()
            day = Day(page, rehearsal, shots, sync_api.expect)
            sign_in(day, rehearsal)
            info = day.api.get("/api/rehearsal").json()
            assert info["headset"] is False        # Windows: the computer's own headset, said so
            assert all(d["port"].startswith("socket://127.0.0.1:") for d in info["devices"]), info["devices"]

            singing(day, sing_into_mic)
            run_50m(day)

            day.visit("/uploads", "uploads")
            done = page.locator('#uploads article.upload[data-state="done"]')
            sync_api.expect(done).to_have_count(2, timeout=240_000)
        assert errors == []
        said = rehearsal.ctrl_c()
    finally:
        rehearsal.stop()
    assert "演练已结束" in said and "Rehearsal ended" in said, said
    # Ctrl-C stopped the rehearsal's collector too: no Windows process is left behind.
    assert windows_pids("collector serve", "rehearsal") == []


def singing(day: Day, sing_into_mic) -> None:
    day.visit("/sing", "sing")
    day.page.click("#sing-open")
    day.expect(day.page.locator("#sing-code")).to_be_visible(timeout=SECONDS)
    for code in day.codes(4, 2):
        day.scan(code, "#sing-code")
        day.expect(day.page.locator(f'#sing-now[data-code="{code}"]')).to_be_visible(timeout=SECONDS)
        verdict = take(day, sing_into_mic, sing=True, button="#sing-record")
        for _ in range(3):   # a loaded machine may drop audio: refused or flagged, never accepted
            if verdict == "录音合格":
                break
            again = "#sing-retake" if day.page.locator("#sing-retake").count() else "#sing-record"
            verdict = take(day, sing_into_mic, sing=True, button=again)
        assert verdict == "录音合格", f"{code}: {verdict}"
    day.page.click('button[data-action="close"]')
    day.expect(day.page.locator("#seal-code")).to_have_text(SEAL, timeout=SECONDS)


def run_50m(day: Day) -> None:
    open_pe(day, "run_50m", "run")
    day.expect(device_status(day, "timer-1")).to_have_text("已连接", timeout=SECONDS)
    codes = day.codes(4, 4)[2:4]
    for code in codes:
        day.scan(code, "#pe-code")
        day.expect(day.page.locator(f'.pe-student[data-code="{code}"]')).to_be_visible(timeout=SECONDS)
        measure_and_confirm(day, code, "timer-1")
    results = {r["student"]["code"]: r for r in day.api.get("/api/pe/export").json()["results"]}
    assert all(results[c]["status"] == "done" for c in codes), results
    close_pe(day, "run")
