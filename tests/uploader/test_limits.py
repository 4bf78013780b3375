"""The bandwidth cap (a school's link is shared) and the collector's disk running full."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import pytest

from uploader import queue, worker

from .collector_harness import Collector, add_station
from .test_end_to_end import assert_arrived


def test_the_bandwidth_cap_holds(db, make_bundle, collector):
    size = 1_500_000
    b = make_bundle(sizes=(size,), sitting="SIT-" + uuid.uuid4().hex[:8],
                    chunk_size=256 * 1024)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=256 * 1024)
    rate = 1_000_000
    started = time.monotonic()
    worker.run(db, collector.url, collector.token, once=True, rate_limit=rate)
    elapsed = time.monotonic() - started
    assert queue.status(db)[0]["state"] == "done"
    # A lower bound only: a slow machine makes it longer, never shorter. The bucket starts
    # with a quarter second of allowance.
    assert elapsed >= (size - rate / 4) / rate * 0.95
    assert_arrived(collector, b)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs for the collector's data dir (needs root, as on the test machines)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.decode())

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)

    yield mnt, grow
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_the_collectors_disk_full_is_a_clear_error_retried_later(db, make_bundle, small_disk, tmp_path):
    mnt, grow = small_disk
    c = Collector(tmp_path / "unused")
    c.data, c.store = mnt / "data", tmp_path / "store"
    c.data.mkdir()
    token = add_station(c.data, "S01")
    c.start()
    try:
        b = make_bundle(sizes=(3 * 1024 * 1024,), sitting="SIT-full", chunk_size=256 * 1024)
        queue.enqueue(db, b.dir, digests=b.digests, chunk_size=256 * 1024)
        counts = worker.run(db, c.url, token, once=True, backoff=worker.Backoff(base_s=60, cap_s=60))
        [s] = queue.status(db)
        rec = next(f for f in s["files"] if f["path"].startswith("recordings/"))
        assert rec["state"] == "failed" and counts["done"] < s["files_total"]
        assert "磁盘已满" in rec["last_error"] and "disk is full" in rec["last_error"]
        assert rec["retry_in_s"] >= 25  # retried later, not hammered
        assert s["state"] != "done"
        manifest = next(f for f in s["files"] if f["path"] == "manifest.json")
        assert manifest["state"] == "queued"  # the sitting is not sent as complete
        grow()  # the information center frees space
        queue.requeue(db, "SIT-full")
        worker.run(db, c.url, token, once=True)
        assert queue.status(db)[0]["state"] == "done"
        assert_arrived(c, b)
    finally:
        c.stop()
