"""The collector under a real uvicorn on 127.0.0.1 (a subprocess, so it can be SIGKILLed), and a
minimal tus client written from the contract (the station's own client is tested on its side)."""
from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import stop_process
from uploader.collector.cli import add_station, admin_token

ROOT = Path(__file__).resolve().parents[3]


class Collector:
    """A collector process serving on a socket this test owns, so a restart keeps the port."""

    def __init__(self, data_dir: Path, extra_args: list[str], wrapper: list[str] | None = None,
                 ca_file: str | None = None):
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.wrapper = wrapper or []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
        scheme = "https" if ca_file else "http"
        self.url = f"{scheme}://127.0.0.1:{self.sock.getsockname()[1]}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "collector.log"

    def start(self) -> "Collector":
        fd = self.sock.fileno()
        command = [*self.wrapper, sys.executable, "-m", "uploader.collector.cli", "serve",
                   "--fd", str(fd), "--data", str(self.data_dir), *self.extra_args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, pass_fds=(fd,), cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/api/health", timeout=5,
                             verify=self.verify).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the collector did not start:\n" + self.log.read_text())
            time.sleep(0.05)

    def spool_file(self, location: str) -> Path:
        """Where the collector keeps the unfinished data of the upload at `location`."""
        return self.data_dir / "incoming" / (location.rsplit("/", 1)[1] + ".part")

    def spool_names(self) -> set[str]:
        return {p.name for p in (self.data_dir / "incoming").iterdir()}

    def stored(self, sitting: str, path: str = "results.csv", station: str = "S01") -> Path:
        return self.data_dir / "files" / station / sitting / path

    def stored_files(self) -> list[Path]:
        root = self.data_dir / "files"
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as on a power cut."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)
        self.sock.close()


def collectors(tmp: Path, new_database=None):
    """``new_database``: None keeps each collector's index in SQLite in its data dir; else a
    callable giving a fresh PostgreSQL database, one per data dir (a restart keeps its own)."""
    servers: list[Collector] = []
    databases: dict[Path, str] = {}

    def make(*extra_args: str, data_dir: Path | None = None, wrapper=None,
             stations=("S01", "S02", "S03"), start: bool = True, ca_file=None) -> Collector:
        d = data_dir or tmp / f"collector{len(servers)}"
        d.mkdir(parents=True, exist_ok=True)
        db_url = None
        if new_database is not None:
            db_url = databases.setdefault(d, databases.get(d) or new_database())
            extra_args = ("--db", db_url, *extra_args)
        server = Collector(d, list(extra_args), wrapper, ca_file)
        server.db_url = db_url
        server.tokens = {sid: add_station(sid, d, school=f"学校{sid}", room=f"考场{sid}",
                                          db_url=db_url)
                         for sid in stations}
        server.admin = admin_token(d, db_url)
        servers.append(server)
        return server.start() if start else server

    return make, servers


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def collector_index(request):
    """Where the collectors of a module keep their index: every module's tests run once on
    SQLite in the data dir (None: the district's collector) and once on PostgreSQL (a fresh
    database per data dir: the province's), the same migrations and the same answers.
    QM_TEST_COLLECTOR_DB=sqlite|postgresql runs only one."""
    only = os.environ.get("QM_TEST_COLLECTOR_DB")
    if only and only != request.param:
        pytest.skip(f"QM_TEST_COLLECTOR_DB={only}")
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_server").new_database


@pytest.fixture
def collector_factory(tmp_path, collector_index):
    make, servers = collectors(tmp_path, collector_index)
    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def collector(tmp_path_factory, collector_index):
    """One collector per test module (starting one costs a second); tests keep apart by using
    their own sitting (see `tus_for`)."""
    make, servers = collectors(tmp_path_factory.mktemp("collector"), collector_index)
    yield make("--max-upload-bytes", str(64 * 1024 * 1024))
    for server in servers:
        server.stop()


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def metadata(**values: str) -> str:
    return ",".join(f"{k} {b64(v)}" for k, v in values.items())


class Tus:
    """Just enough of a tus client to drive the collector from the tests."""

    def __init__(self, url: str, token: str, sitting: str = "SIT1", verify=True):
        self.sitting = sitting
        self.http = httpx.Client(base_url=url, timeout=60, verify=verify,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Tus-Resumable": "1.0.0"})

    def create(self, data_or_length, station="S01", sitting=None, path="results.csv",
               sha256: str | None = None, headers: dict | None = None,
               signature: str | None = None) -> httpx.Response:
        if isinstance(data_or_length, bytes):
            length = len(data_or_length)
            sha256 = sha256 or hashlib.sha256(data_or_length).hexdigest()
        else:
            length = data_or_length
        return self.http.post("/files/", headers={
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(station=station, sitting=sitting or self.sitting, path=path,
                                        sha256=sha256 or "0" * 64,
                                        **({"signature": signature} if signature else {})),
            **(headers or {})})

    def patch(self, location: str, offset: int, body, checksum: bytes | None = None,
              headers: dict | None = None) -> httpx.Response:
        h = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)}
        if checksum is not None:
            h["Upload-Checksum"] = "sha256 " + base64.b64encode(
                hashlib.sha256(checksum).digest()).decode()
        return self.http.patch(location, content=body, headers={**h, **(headers or {})})

    def head(self, location: str) -> httpx.Response:
        return self.http.head(location)

    def upload(self, data: bytes, chunk: int = 256 * 1024, **meta) -> str:
        created = self.create(data, **meta)
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        offset = int(self.head(location).headers["Upload-Offset"])
        while offset < len(data):
            piece = data[offset:offset + chunk]
            answer = self.patch(location, offset, piece, checksum=piece)
            assert answer.status_code == 204, answer.text
            offset = int(answer.headers["Upload-Offset"])
        return location


@pytest.fixture
def sitting(request) -> str:
    """A sitting id of this test's own, so tests sharing a collector never meet."""
    return "SIT-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]


@pytest.fixture
def tus_for(collector, sitting):
    clients: list[Tus] = []

    def make(station: str = "S01", server: Collector | None = None) -> Tus:
        server = server or collector
        client = Tus(server.url, server.tokens[station], sitting, server.verify)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.http.close()
