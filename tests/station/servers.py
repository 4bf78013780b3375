"""Real servers for station tests: `station serve` and `station collector serve` on 127.0.0.1."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.helpers import free_port, station_command, stop_process, wait_for

__all__ = ["Collector", "Server", "free_port", "import_roster", "last_line", "station_serve",
           "pe_pending", "stop_process", "wait_for"]

STATION = station_command()


class Server:
    """A `station …` server process, stopped at the end of the test."""

    def __init__(self, args: list[str], port: int, env: dict | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([*STATION, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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
        stop_process(self.proc)


def station_serve(env: dict | None = None) -> Server:
    """`station serve` on a free port over the session's data dir."""
    port = free_port()
    return Server(["serve", "--port", str(port)], port, env)


def pe_pending(client: httpx.Client, n: int) -> list[dict] | None:
    """The PE sitting's attempts waiting for the proctor, once there are ``n`` of them."""
    pending = client.get("/api/pe/state").json()["pending"]
    return pending if len(pending) == n else None


def import_roster(station, path: Path, csv_text: str, encoding: str = "utf-8") -> None:
    """Write a roster CSV (generated names, never real people) and `station roster import` it."""
    path.write_text(csv_text, encoding=encoding)
    station("roster", "import", str(path), check=True)


def last_line(*args: str) -> str:
    out = subprocess.run([*STATION, *args], capture_output=True, text=True, check=True, timeout=60)
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
