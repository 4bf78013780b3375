"""The Windows test lane: `station.cmd` of the Windows package run under Wine by Linux pytest.

`scripts/test-windows` prepares the Wine prefix and sets the variables of `scripts/test-windows
env`; without them these tests are skipped (`scripts/test` runs on Linux only). The devices,
the collector and Chromium stay on Linux, as the school's headset, scale and district would be
outside the Windows computer.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

WIN_STATION = os.environ.get("QM_WIN_STATION", "")
WINEPREFIX = Path(os.environ.get("WINEPREFIX", "/nonexistent"))


def pytest_collection_modifyitems(config, items):
    if WIN_STATION and (WINEPREFIX / ".qm-ready").exists():
        return
    skip = pytest.mark.skip(reason="the Windows lane: run by scripts/test-windows under Wine")
    here = Path(__file__).parent
    for item in items:  # the hook sees every collected test, not only this folder's
        if here in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def wine_services():
    """Start Wine's own services (winedevice, plugplay, explorer) with nothing attached: the
    first Windows program after a fresh wineserver starts them, and they would keep its
    stdout pipe open after it exits."""
    if WIN_STATION:
        subprocess.run(["wine", "cmd", "/c", "exit"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def wine_path(path: Path) -> str:
    """The Windows name of a Linux path: Wine maps / to drive Z:."""
    return "Z:" + str(path).replace("/", "\\")


class WindowsResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        # Like Chinese Windows: code page 936 on the pipe. GB18030 is its superset, byte for byte.
        self.raw = proc.stdout
        self.stdout = proc.stdout.decode("gb18030").replace("\r\n", "\n")
        self.stderr = proc.stderr.decode("gb18030", "replace").replace("\r\n", "\n")


def station_cmd(*args: str) -> list[str]:
    return ["wine", "cmd", "/c", WIN_STATION, *args]


@pytest.fixture
def win_data(tmp_path, monkeypatch):
    """The Windows station's data dir, a folder with a Chinese name as a teacher's would be."""
    d = tmp_path / "工作站数据"
    monkeypatch.setenv("STATION_DATA_DIR", wine_path(d))
    return d


@pytest.fixture
def win_station(win_data):
    """Run `station.cmd ARGS` under Wine; std handles are pipes (a file would kill python.exe)."""
    def run(*args: str, timeout: float = 180, check: bool = True) -> WindowsResult:
        proc = subprocess.run(station_cmd(*args), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, env=os.environ.copy())
        result = WindowsResult(proc)
        if check and result.returncode != 0:
            raise AssertionError(f"station.cmd {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    return run
