"""Start the real collector under uvicorn on 127.0.0.1 in a child process (for end-to-end tests)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import free_port, stop_process

LAUNCH = r"""
import sys
from uploader.collector.cli import serve
serve("127.0.0.1", int(sys.argv[3]), sys.argv[1], "file:" + sys.argv[2])
"""


def add_station(data_dir: Path, station_id: str) -> str:
    from uploader.collector.cli import add_station as add

    return add(station_id, data_dir)


class Collector:
    def __init__(self, root: Path):
        self.data = root / "collector-data"
        self.store = root / "collector-store"
        self.data.mkdir(parents=True, exist_ok=True)
        self.store.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Collector":
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCH, str(self.data), str(self.store), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("collector exited: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("collector did not start in 30 s")

    def stored(self, station: str, sitting: str, path: str) -> Path:
        return self.store / station / sitting / path

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)
