"""Collector instances for the multi-instance drills: each a `station collector serve` process
with its own port and data dir, all on one database (``--db``) and one S3 store.

Unlike tests/uploader/collector/conftest.py's Collector (which hands the process a socket the
test holds, so a restart keeps every queued connection), an instance here listens on its own
port: when it is killed the port refuses, as a dead machine's does, and the balancer
(balancer.py) skips it. A restart comes back on the same port.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[3]


class CollectorInstance:
    def __init__(self, db_url: str | None, storage_url: str | None, s3_endpoint_url: str | None,
                 data_dir: Path, env: dict[str, str] | None = None, extra_args: tuple[str, ...] = ()):
        """``db_url`` None: the instance keeps its index in SQLite in its data dir (the
        single-district collector); ``storage_url`` None: files in the data dir too.
        ``env``: added to this process's environment (e.g. S3Server.env())."""
        self.db_url, self.storage_url, self.s3_endpoint_url = db_url, storage_url, s3_endpoint_url
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.data_dir / "collector.log"
        self.proc: subprocess.Popen | None = None

    def _shared(self) -> list[str]:
        """The options every `station collector` command of this instance takes."""
        return [*(["--db", self.db_url] if self.db_url else []), "--data", str(self.data_dir)]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "station.cli", "collector", "serve", *self._shared(),
                *(["--storage", self.storage_url] if self.storage_url else []),
                *(["--s3-endpoint-url", self.s3_endpoint_url] if self.s3_endpoint_url else []),
                "--host", "127.0.0.1", "--port", str(self.port), *self.extra_args]

    def start(self, timeout: float = 60) -> "CollectorInstance":
        """Start (or start again, on the same port) and wait until GET /api/health answers."""
        with open(self.log, "ab") as log:   # appended: a restart keeps the story of the last run
            self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the collector on port {self.port} exited "
                                   f"{self.proc.returncode}:\n{self.log_text()}")
            try:
                return httpx.get(self.url + "/api/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, timeout, f"the collector on port {self.port} to answer /api/health",
                 every=0.05)
        return self

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Another `station collector` command on this instance's database and data dir, e.g.
        ``run("add-station", "S01", "--school", "...")``; fails the test if it fails."""
        result = subprocess.run([sys.executable, "-m", "station.cli", "collector", *args,
                                 *self._shared()], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"station collector {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def token(self, command: str, *args: str) -> str:
        """The token that `add-station` or `admin-token` prints on its last line."""
        return self.run(command, *args).stdout.strip().splitlines()[-1]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as on a power cut; the port then refuses."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn finishes its requests), killed if it will not go in 10 s."""
        if self.proc:
            stop_process(self.proc)
