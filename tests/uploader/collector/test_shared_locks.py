"""Upload holds across collector instances (shared_locks.py) on a real PostgreSQL and SQLite.

An "instance" here is what one collector process has: its own Index (own connections), its own
SharedLocks and its own event loop, in a thread of the test; the killed instance is a real
subprocess. The holders are the store's real `pump` over a stalled client's body."""
from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_for
from tests.uploader.proxy import Proxy
from uploader.collector import locks
from uploader.collector.locks import UploadLocks
from uploader.collector.shared_locks import SharedLocks
from uploader.collector.spool import Chunk, pump
from uploader.collector.store import open_db

ROOT = Path(__file__).resolve().parents[3]
LEASE = 2.0          # short leases keep the tests short; renewal every 0.5 s
MARGIN = 6.0         # the machine is 2 busy cores: generous
UPLOAD = "u" * 32


class Busy(Exception):
    pass


# -- PostgreSQL: a throwaway cluster, unless tests/services.py provides one -------------------

def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name.split(".")[0]))
    if not found:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1].parent


@pytest.fixture(scope="module")
def _own_postgres():
    """initdb + pg_ctl of Debian's PostgreSQL on 127.0.0.1; as root, run as `postgres`."""
    bin_dir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="qm-locks-pg-"))  # not under pytest's 0700 dirs
    owner = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        owner = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*command: str) -> None:
        subprocess.run([*owner, *command], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        yield port
    finally:
        subprocess.run([*owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(request) -> str:
    """A fresh database of this test's own (tests/services.py's `postgres_url` once on main)."""
    try:
        return request.getfixturevalue("postgres_url")
    except pytest.FixtureLookupError:
        pass
    import psycopg

    port = request.getfixturevalue("_own_postgres")
    name = "locks_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:{port}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/index.db"
    return request.getfixturevalue("pg_url")


# -- instances ---------------------------------------------------------------------------

class Instance:
    """One collector process's side of the locks: Index, SharedLocks, event loop (a thread);
    without a URL, locks.py's UploadLocks alone."""

    def __init__(self, url: str | None, data: Path | None = None, **options):
        self.index = None
        if url is None:
            self.locks = UploadLocks()
        else:
            self.index = open_db(data, url)
            options = {"lease_s": LEASE, "takeover_wait_s": 30.0, **options}
            self.locks = SharedLocks(self.index, **options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro, timeout: float = 60):
        return self.submit(coro).result(timeout)

    def freeze(self, seconds: float) -> None:
        """The whole process stops answering (swapped out, SIGSTOP, a long GC pause): its
        event loop, and so its renewals, do nothing for `seconds`."""
        self.loop.call_soon_threadsafe(time.sleep, seconds)

    def close(self) -> None:
        try:
            if self.index is not None:
                self.run(self.locks.close(), timeout=90)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            if self.index is not None:
                self.index.close()


@pytest.fixture
def instances(db_url, tmp_path):
    made: list[Instance] = []

    def make(url: str | None = None, **options) -> Instance:
        made.append(Instance(url or db_url, tmp_path / f"instance{len(made)}", **options))
        return made[-1]

    yield make
    for instance in made:
        instance.close()


class Request:
    """A PATCH as the store runs it: its hold, and what happened to it (times: monotonic)."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.stopped = threading.Event()
        self.hold = None
        self.gone = None
        self.let_go_at = None


async def stalled_body():
    """A client that sent its first bytes and then nothing (a sleeping laptop)."""
    yield b"x" * 1000
    await asyncio.Event().wait()


async def patch(store_locks, request: Request, spool: Path) -> Request:
    """The store's PATCH: hold, then the real pump waiting for bytes that never come."""
    spool.touch()
    async with store_locks.hold(UPLOAD, Busy()) as hold:
        request.hold = hold
        request.held.set()
        chunk = Chunk(spool, 0, hashlib.sha256())
        try:
            request.gone = await pump(stalled_body(), chunk, 1 << 20, 600.0, hold)
        finally:
            chunk.keep()
        request.stopped.set()
    request.let_go_at = time.monotonic()
    return request


async def stubborn(store_locks, request: Request, release: threading.Event):
    """A holder that never looks at stop_asked (a disk that hangs mid-write) until `release`."""
    async with store_locks.hold(UPLOAD, Busy()) as hold:
        request.hold = hold
        request.held.set()
        while not release.is_set():
            await asyncio.sleep(0.05)
    request.let_go_at = time.monotonic()


async def take(store_locks) -> float:
    """Hold the upload (taking it over); returns when it was ours (monotonic)."""
    async with store_locks.hold(UPLOAD, Busy()):
        return time.monotonic()


# -- across instances --------------------------------------------------------------------

def test_a_holder_in_another_instance_is_asked_to_stop_and_lets_go(instances, tmp_path):
    a, b = instances(), instances()
    first = Request()
    running = a.submit(patch(a.locks, first, tmp_path / "u.part"))
    assert first.held.wait(30)
    assert b.locks.locked(UPLOAD) and a.locks.locked(UPLOAD)

    asked = time.monotonic()
    taken_at = b.run(take(b.locks))
    result = running.result(30)
    # The stall waiting for bytes was cancelled by the stop request and absorbed: the pump
    # returned "counts as gone" and the request ended normally, then let go.
    assert result.gone is True and result.hold.stop_asked
    assert result.let_go_at <= taken_at
    # Seen at A's next renewal (every LEASE/4), not after a lease: no expiry involved.
    assert taken_at - asked < LEASE / 4 + MARGIN / 2
    assert not a.locks.locked(UPLOAD) and not b.locks.locked(UPLOAD)


def test_a_killed_instance_s_hold_is_taken_after_its_lease(db_url, instances, tmp_path):
    """A holder that never lets go keeps a live instance's hold (busy after the takeover
    wait); SIGKILLed, its lease runs out and the other instance takes over."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        from uploader.collector.shared_locks import SharedLocks
        from uploader.collector.store import open_db

        async def main():
            locks = SharedLocks(open_db(sys.argv[2], sys.argv[1]), lease_s={LEASE})
            async with locks.hold({UPLOAD!r}, RuntimeError("busy")):
                print("held", flush=True)
                await asyncio.Event().wait()   # never lets go, never looks at stop_asked

        asyncio.run(main())
    """)
    (tmp_path / "killed").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", script, db_url, str(tmp_path / "killed")],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "held"
        b = instances(takeover_wait_s=1.0)
        started = time.monotonic()
        with pytest.raises(Busy):
            b.run(take(b.locks))
        waited = time.monotonic() - started
        assert 1.0 <= waited < 1.0 + MARGIN
        time.sleep(LEASE)  # alive, it keeps renewing: the lease does not run out
        assert b.locks.locked(UPLOAD)

        b.locks._takeover_wait_s = 30.0
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        taken_at = b.run(take(b.locks))
        # Not before its last renewal's lease ran out, and soon after.
        assert LEASE * 0.5 <= taken_at - killed < LEASE + MARGIN
    finally:
        proc.kill()
        proc.wait(10)


def test_a_holder_that_never_lets_go_makes_the_next_request_busy(instances):
    a, b = instances(), instances(takeover_wait_s=1.0)
    first, release = Request(), threading.Event()
    running = a.submit(stubborn(a.locks, first, release))
    assert first.held.wait(30)
    started = time.monotonic()
    with pytest.raises(Busy):
        b.run(take(b.locks))
    assert 1.0 <= time.monotonic() - started < 1.0 + MARGIN
    assert first.hold.stop_asked  # it was asked, through the row, and ignored it
    release.set()
    running.result(30)
    b.run(take(b.locks))  # let go: free again


def test_a_frozen_instance_loses_its_hold_and_its_fence_refuses(instances, tmp_path):
    a, b = instances(), instances()
    first, release = Request(), threading.Event()
    running = a.submit(stubborn(a.locks, first, release))
    assert first.held.wait(30)
    a.freeze(LEASE + 2)
    frozen = time.monotonic()
    second, release_second = Request(), threading.Event()
    b_done = b.submit(stubborn(b.locks, second, release_second))
    assert second.held.wait(LEASE + MARGIN)
    assert time.monotonic() - frozen >= LEASE * 0.5  # after A's lease ran out, not before
    with b.index.transaction("upload:" + UPLOAD):
        b.locks.fence(second.hold)  # the new holder records freely

    # A wakes up and its request, not knowing yet, tries to record what it wrote.
    with pytest.raises(Busy):
        with a.index.transaction("upload:" + UPLOAD):
            a.locks.fence(first.hold)
            a.index.insert("upload_parts", {"upload_id": UPLOAD, "number": 1, "etag": "stale",
                                            "size": 1})
    assert a.index.count("upload_parts") == 0
    # And its renewal tells it too.
    wait_for(lambda: first.hold.stop_asked, 30, "A's request asked to stop")
    with pytest.raises(RuntimeError):
        a.locks.fence(first.hold)  # outside a transaction it would prove nothing
    release_second.set()
    release.set()
    b_done.result(30)
    running.result(30)


def test_a_takeover_waits_for_a_fenced_transaction_to_commit(instances):
    """The lease runs out while the old holder is between fence() and its commit: the new
    holder gets the upload only after that commit, never in between."""
    a, b = instances(), instances()
    first, release = Request(), threading.Event()
    running = a.submit(stubborn(a.locks, first, release))
    assert first.held.wait(30)
    a.freeze(LEASE + 4)  # its lease runs out while it records
    fenced = threading.Event()
    committed = []

    def record():
        with a.index.transaction("upload:" + UPLOAD):
            a.locks.fence(first.hold)
            fenced.set()
            time.sleep(LEASE + 1)
            a.index.insert("upload_parts", {"upload_id": UPLOAD, "number": 1, "etag": "e1",
                                            "size": 1})
        committed.append(time.monotonic())

    recorder = threading.Thread(target=record)
    recorder.start()
    assert fenced.wait(30)
    taken_at = b.run(take(b.locks), timeout=LEASE + 60)
    recorder.join(60)
    assert committed and committed[0] <= taken_at
    assert b.index.count("upload_parts") == 1
    release.set()
    running.result(30)


def test_an_instance_cut_off_from_the_database_stops_its_holders(pg_url, tmp_path):
    """PostgreSQL unreachable from one instance: it cannot renew, so it must assume its holds
    lost (another instance may take them a lease later) and stop its requests."""
    link = Proxy(int(pg_url.rsplit(":", 1)[1].split("/")[0]))
    url = pg_url.replace(pg_url.rsplit("@", 1)[1].split("/")[0], f"127.0.0.1:{link.port}")
    a = Instance(url, tmp_path / "a")
    try:
        first = Request()
        running = a.submit(patch(a.locks, first, tmp_path / "u.part"))
        assert first.held.wait(30)
        time.sleep(LEASE)
        assert not first.hold.stop_asked  # renewed while the link holds
        real = link.target
        link.target = ("127.0.0.1", free_port())  # nothing listens there: connects fail
        with link.lock:
            for sock in link.socks:
                with _quiet():
                    sock.shutdown(socket.SHUT_RDWR)
        cut = time.monotonic()
        assert first.stopped.wait(LEASE + MARGIN), "the holder was not asked to stop"
        assert first.gone is True
        assert time.monotonic() - cut < LEASE + MARGIN
        link.target = real  # mended: the hold is let go, the instance closes
        running.result(90)
    finally:
        a.close()
        link.close()


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        return kind is not None and issubclass(kind, OSError)


# -- one instance: locks.py's semantics, for UploadLocks and SharedLocks alike -------------

@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def one_instance(request, tmp_path):
    """The store's locks in one process: locks.UploadLocks, or SharedLocks on each index."""
    url = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/index.db"
    elif request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    # The default lease: a takeover inside one process must not wait for a renewal.
    instance = Instance(url, tmp_path / "one", lease_s=10.0, takeover_wait_s=None)
    yield instance
    instance.close()


def test_one_process_the_newest_request_takes_over_at_once(one_instance, tmp_path):
    first = Request()
    running = one_instance.submit(patch(one_instance.locks, first, tmp_path / "u.part"))
    assert first.held.wait(30)
    assert one_instance.locks.locked(UPLOAD)
    asked = time.monotonic()
    taken_at = one_instance.run(take(one_instance.locks))
    assert running.result(30).gone is True
    assert first.let_go_at <= taken_at
    assert taken_at - asked < 2.0  # asked directly: no renewal period (2.5 s) waited for
    assert not one_instance.locks.locked(UPLOAD)


def test_one_process_take_over_waits_and_busy(one_instance, monkeypatch):
    one_instance.run(one_instance.locks.take_over(UPLOAD, Busy()))  # nobody holds it
    monkeypatch.setattr(locks, "TAKEOVER_WAIT_S", 0.5)
    first, release = Request(), threading.Event()
    running = one_instance.submit(stubborn(one_instance.locks, first, release))
    assert first.held.wait(30)
    for attempt in (one_instance.locks.take_over(UPLOAD, Busy()), take(one_instance.locks)):
        started = time.monotonic()
        with pytest.raises(Busy):
            one_instance.run(attempt)
        assert 0.5 <= time.monotonic() - started < 0.5 + MARGIN
    assert first.hold.stop_asked and one_instance.locks.locked(UPLOAD)
    release.set()
    running.result(30)
    assert not one_instance.locks.locked(UPLOAD)
    one_instance.run(take(one_instance.locks))


def test_a_cancel_that_is_not_a_stop_request_is_not_absorbed(one_instance, tmp_path):
    """Cancelling a holder for another reason (shutdown) still cancels it, and lets go."""
    first = Request()
    running = one_instance.submit(patch(one_instance.locks, first, tmp_path / "u.part"))
    assert first.held.wait(30)
    running.cancel()
    wait_for(lambda: not one_instance.locks.locked(UPLOAD), 30, "the hold let go")
    assert first.gone is None and not first.hold.stop_asked
