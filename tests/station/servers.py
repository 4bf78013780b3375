"""Real servers for station tests: `station serve` and `station collector serve` on 127.0.0.1."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

STATION = str(Path(sys.executable).with_name("station"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `station …` server process, stopped at the end of the test."""

    def __init__(self, args: list[str], port: int, env: dict | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([STATION, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/api/health", timeout=1)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"`station {' '.join(args)}` did not start: "
                                         f"{self.proc.communicate()}")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def last_line(*args: str) -> str:
    out = subprocess.run([STATION, *args], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip().splitlines()[-1]


class Collector(Server):
    """`station collector serve` on its own data dir; add-station and admin-token as a district would."""

    def __init__(self, data: Path, port: int | None = None):
        self.data = data
        port = port or free_port()
        super().__init__(["collector", "serve", "--data", str(data), "--port", str(port)], port)

    def add_station(self, station_id: str) -> str:
        return last_line("collector", "add-station", station_id, "--data", str(self.data))

    def admin(self) -> httpx.Client:
        token = last_line("collector", "admin-token", "--data", str(self.data))
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"})
