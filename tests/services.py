"""Real services for tests and benchmarks: a private PostgreSQL cluster and an S3 server.

Both are used from the pytest fixtures (tests/conftest.py: ``postgres_server``, ``s3_server``,
``postgres_url``, ``s3_bucket``) and from ``scripts/bench/`` scripts, as context managers::

    with PostgresServer() as pg, S3Server() as s3:
        url, bucket = pg.new_database(), s3.new_bucket()

PostgreSQL comes from Debian's packages (``postgresql``, installed by ``scripts/test``):
``initdb`` and ``pg_ctl`` of the newest ``/usr/lib/postgresql/<version>/bin``, a cluster in a
fresh temporary dir, listening on 127.0.0.1 on a free port. PostgreSQL refuses to run as
root, and CI runs as root: then the cluster belongs to the ``postgres`` system user and its
commands run through ``runuser``. ``QM_TEST_POSTGRES_URL`` (an admin URL, e.g.
``postgresql://postgres@127.0.0.1:5432/postgres``) uses a server the machine already runs.

The S3 server is moto's server mode (``python -m moto.server``) in its own process, not Ceph's
radosgw, though radosgw is in Debian. Checked on this machine (Debian 12, bookworm):
``apt-cache policy radosgw`` offers 16.2.15 (Pacific) only. Pacific's radosgw is a gateway in
front of RADOS: it needs a running Ceph cluster (monitors, a manager, OSDs with their disks,
keyrings) before it answers one request, far more than a test can start in seconds. The
``dbstore`` back-end that lets radosgw run alone on SQLite came after Pacific: the option to
choose a back-end store (``rgw_backend_store``, marked experimental) was merged in September
2021 (ceph/ceph#43054), starting radosgw with dbstore without contacting monitors in April
2022 (ceph/ceph#45987), both after Pacific (16.2.0, March 2021) branched; a Rook maintainer
found it "only in quincy" (rook/rook#12276, 2023), and vstart only learnt to run radosgw with
no monitors or OSDs in December 2023 (ceph/ceph#54827). So Debian 12's radosgw cannot serve
S3 here without a whole Ceph cluster.

What moto's server does and does not do (tests/test_services.py proves each rule below
against the real server, so a moto upgrade that changes one fails there, not in a drill):
  - enforced: at CompleteMultipartUpload every part but the last must be >= 5 MiB
    (``EntityTooSmall``) unless ``S3_UPLOAD_PART_MIN_SIZE`` is set, which S3Server keeps out
    of moto's environment; a listed ETag that is not the part's -> ``InvalidPart``; uploading
    a part number again replaces that part; ``ListParts``/``AbortMultipartUpload`` of an
    unknown upload -> ``NoSuchUpload``; completing an upload twice succeeds the second time
    (as S3 does);
  - NOT enforced: ``UploadPart`` or ``CompleteMultipartUpload`` naming an aborted or already
    completed upload answers HTTP 500 (moto raises a KeyError), not S3's 404 ``NoSuchUpload``.
    Code that must tell "the upload is gone" from "the store failed" cannot be tested on
    moto for those two calls: ask ListParts (which does answer ``NoSuchUpload``). botocore
    retries a 500 (with back-off) before the caller sees it. A part whose ``Content-MD5`` or
    ``x-amz-checksum-sha256`` does not match its body is stored, not refused with S3's
    ``BadDigest``: a digest sent with a part proves nothing on moto. Parts listed out of order
    at completion give ``EntityTooSmall`` (or succeed if all are >= 5 MiB), not
    ``InvalidPartOrder``;
  - moto keeps every object in its process (parts over ~5 MiB spill to temporary files) and
    CompleteMultipartUpload joins the parts in memory: a 1 GiB object costs moto 2 GiB or
    more while it completes. It is one threaded werkzeug process: figures measured against
    it are a floor for the collector, not the speed of a real S3 store.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.helpers import free_port, stop_process

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"              # the cluster's superuser, whoever owns its files


class Service:
    """A service a test or a benchmark starts and always cleans up: ``with X() as x:``."""

    def start(self):
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()                # a half-started service leaves nothing behind
            raise

    def __exit__(self, *exc) -> None:
        self.close()


def postgres_bin() -> Path:
    """The bin dir of the newest PostgreSQL installed from Debian's packages."""
    versions = sorted((p for p in POSTGRES_ROOT.glob("*/bin/initdb")),
                      key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)])
    if not versions:
        raise RuntimeError(f"PostgreSQL is not installed (no {POSTGRES_ROOT}/<version>/bin/initdb): "
                           "apt-get install postgresql (scripts/test installs it), or set "
                           "QM_TEST_POSTGRES_URL to the admin URL of a server this machine runs")
    return versions[-1].parent


class PostgresServer(Service):
    """A private PostgreSQL cluster on 127.0.0.1 (or the one QM_TEST_POSTGRES_URL names)."""

    def __init__(self, admin_url: str | None = None, max_connections: int = 200):
        self.admin_url = admin_url or os.environ.get("QM_TEST_POSTGRES_URL") or None
        self.owned = self.admin_url is None   # a server we start, stop and may restart
        self.max_connections = max_connections
        self.root: Path | None = None
        self.port = (urlsplit(self.admin_url).port or 5432) if self.admin_url else 0
        self.databases: list[str] = []
        self.running = False

    # -- the cluster's files and commands ------------------------------------------------
    @staticmethod
    def _owner():
        """Who owns the cluster: PostgreSQL will not run as root, so as root the `postgres`
        system user (its passwd entry), else whoever runs the tests (None)."""
        if os.geteuid() != 0:
            return None
        import pwd

        try:
            return pwd.getpwnam(SUPERUSER)
        except KeyError:
            raise RuntimeError("running as root but there is no `postgres` user to run "
                               "PostgreSQL as: apt-get install postgresql creates it") from None

    def _give(self, path: Path) -> None:
        owner = self._owner()
        if owner:
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", SUPERUSER, "--"] if self._owner() else []

    def _run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run([*self._as_owner(), *command], capture_output=True, text=True,
                                timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n"
                               f"{result.stdout}{result.stderr}{self.log_tail()}")
        return result

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def log_tail(self, lines: int = 30) -> str:
        if self.root and self.log.exists():
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _init(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="qm-postgres-"))
        (self.root / "sockets").mkdir()
        for path in (self.root, self.root / "sockets"):
            self._give(path)
        bin_dir = postgres_bin()
        self._pg_ctl = str(bin_dir / "pg_ctl")
        # --no-sync: only initdb's own final flush of the new cluster is skipped (a test cluster
        # lost to a power cut is simply made again); the server itself runs with fsync=on.
        self._run(str(bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")

    def _configure(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root / 'sockets'}'",
            "max_connections": str(self.max_connections),
            # Durability is what the drills test: a commit must survive a restart.
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "logging_collector": "off",
        }
        # postgresql.auto.conf is read last and belongs to the cluster's owner like the rest.
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        conf = self.data / "postgresql.auto.conf"
        conf.write_text(text)
        self._give(conf)

    def _pg_ctl_start(self) -> None:
        self._run(self._pg_ctl, "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.log))

    # -- what tests use -----------------------------------------------------------------
    def start(self) -> "PostgresServer":
        if not self.owned or self.running:
            return self
        if self.root is None:
            self._init()
        for attempt in range(3):
            if attempt or not self.port:
                self.port = free_port()
            self._configure()
            try:
                self._pg_ctl_start()
                break
            except RuntimeError:
                # another process took the free port between our look and postgres' bind
                if "could not bind" not in self.log_tail() or attempt == 2:
                    raise
        self.running = True
        self.admin_url = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected, a clean shutdown) or ``immediate``."""
        if self.owned and self.running:
            self._run(self._pg_ctl, "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))
            self.running = False

    def restart(self) -> None:
        """A fast stop, then a start on the SAME port: "PostgreSQL restarted mid-run"."""
        if not self.owned:
            raise RuntimeError("cannot restart a server the tests did not start (QM_TEST_POSTGRES_URL)")
        self.stop("fast")
        self._pg_ctl_start()
        self.running = True

    def kill(self) -> None:
        """Stop with no shutdown at all (``pg_ctl -m immediate``: every process quits at once,
        no checkpoint); the next ``start()`` runs crash recovery, as after the server crashed.
        (Not a power cut: what was written but not yet flushed stays in the OS's cache.)"""
        if not self.owned:
            raise RuntimeError("cannot kill a server the tests did not start (QM_TEST_POSTGRES_URL)")
        self.stop("immediate")

    def url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))

    def new_database(self) -> str:
        """CREATE DATABASE with a fresh name; returns its URL."""
        import psycopg

        name = "qm_" + secrets.token_hex(6)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def close(self) -> None:
        if self.owned:
            if self.running:
                try:
                    self.stop("immediate")
                except (RuntimeError, subprocess.TimeoutExpired):
                    pass
            if self.root:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
        elif self.databases:
            # someone else's server: leave it as we found it
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                for name in self.databases:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.databases.clear()


class S3Server(Service):
    """moto's S3 server in its own process on 127.0.0.1 (why moto: see the module docstring)."""

    CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1"}

    def __init__(self, log: Path | None = None):
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log = log

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables a collector process (boto3) needs to reach this server's buckets."""
        return dict(self.CREDENTIALS)

    def start(self, timeout: float = 60) -> "S3Server":
        import httpx

        if self.proc and self.proc.poll() is None:
            return self
        env = {**os.environ, **self.CREDENTIALS}
        # Keep S3's real 5 MiB minimum part size: the multipart store is tested against it.
        env.pop("S3_UPLOAD_PART_MIN_SIZE", None)
        env.pop("MOTO_PORT", None)
        for attempt in range(3):
            self.port = free_port()
            out = open(self.log, "ab") if self.log else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env)
            if self.log:
                out.close()
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    if httpx.get(self.endpoint_url + "/moto-api/", timeout=2).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None:
                stop_process(self.proc)
                raise RuntimeError(f"moto's S3 server did not answer on {self.endpoint_url} "
                                   f"in {timeout:.0f} s")
            # it exited: most likely the port was taken meanwhile; try another
        raise RuntimeError("moto's S3 server would not start (python -m moto.server exited "
                           "three times; is moto[server] installed?)")

    def client(self, config=None):
        """A boto3 S3 client of this server (``config``: a botocore Config, e.g. no retries)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=config)

    def new_bucket(self) -> str:
        name = "qm-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def kill(self) -> None:
        """SIGKILL: moto keeps everything in memory, so every bucket is gone with it."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        if self.proc:
            stop_process(self.proc)
            self.proc = None
