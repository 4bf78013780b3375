"""A sealed sitting goes through the real collector (uvicorn on 127.0.0.1) and arrives byte-exact."""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid

import httpx

from uploader import queue, worker
from uploader.client import TusClient

from .proxy import Proxy

CHUNK = 256 * 1024


def new_sitting() -> str:
    return "SIT-" + uuid.uuid4().hex[:8]


def assert_arrived(collector, bundle) -> None:
    m = bundle.manifest
    for f in m["files"]:
        got = collector.stored("S01", m["sitting"], f["path"])
        assert got.read_bytes() == (bundle.dir / f["path"]).read_bytes(), f["path"]
    assert collector.stored("S01", m["sitting"], "manifest.json").read_bytes() == \
        (bundle.dir / "manifest.json").read_bytes()


def run_until_done(db_path, url, token, timeout_s=60, **kw) -> dict:
    """Run the worker in a thread as `station serve` does, until the queue is done (or a generous limit)."""
    from .conftest import open_db

    thread, stop = worker.start_thread(lambda: open_db(db_path), url, token, poll_s=0.2,
                                       backoff=worker.Backoff(base_s=0.05, cap_s=0.5), **kw)
    cdb = open_db(db_path)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and queue.next_due_at(cdb) is not None:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
        state = queue.status(cdb)
        cdb.close()
    assert not thread.is_alive()
    return {"status": state}


def test_a_sitting_arrives_byte_exact_and_is_marked_done(db, make_bundle, collector):
    b = make_bundle(sizes=(CHUNK * 3 + 123, 5_000), sitting=new_sitting(), chunk_size=CHUNK)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=CHUNK)
    events = []
    counts = worker.run(db, collector.url, collector.token, once=True, on_progress=events.append)
    assert counts["done"] == 5 and counts["failed"] == 0
    assert_arrived(collector, b)
    [s] = queue.status(db)
    assert s["state"] == "done" and s["bytes_done"] == s["bytes_total"] and s["files_done"] == 5
    assert events[-1]["path"] == "manifest.json" and events[-1]["state"] == "done"
    assert any(e["state"] == "uploading" and 0 < e["bytes_done"] < e["size"] for e in events)


def test_running_again_sends_nothing(db, make_bundle, collector):
    b = make_bundle(sizes=(50_000,), sitting=new_sitting(), chunk_size=CHUNK)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=CHUNK)
    worker.run(db, collector.url, collector.token, once=True)
    proxy = Proxy(collector.port)
    try:
        worker.run(db, proxy.url, collector.token, once=True)
        assert proxy.upstream_bytes == 0
    finally:
        proxy.close()


def test_the_same_content_again_is_a_no_op_on_the_collector(db_path, make_bundle, collector, tmp_path):
    """A station reinstalled (queue lost) re-queues a sent bundle: the collector has it, nothing is re-sent."""
    from .conftest import open_db

    b = make_bundle(sizes=(CHUNK * 2,), sitting=new_sitting(), chunk_size=CHUNK)
    first = open_db(db_path)
    queue.enqueue(first, b.dir, digests=b.digests, chunk_size=CHUNK)
    worker.run(first, collector.url, collector.token, once=True)
    first.close()
    fresh = open_db(tmp_path / "reinstalled.db")
    queue.enqueue(fresh, b.dir, chunk_size=CHUNK)
    proxy = Proxy(collector.port)
    try:
        counts = worker.run(fresh, proxy.url, collector.token, once=True)
        assert counts["done"] == 4 and counts["failed"] == 0
        assert proxy.upstream_bytes < 10_000  # creations only, no file bodies
    finally:
        proxy.close()
        fresh.close()


def test_a_resume_starts_at_the_collectors_offset(db, make_bundle, collector):
    """Part of a file is in (a station stopped mid-file): the worker asks for the offset and sends only the rest."""
    b = make_bundle(sizes=(CHUNK * 4,), sitting=new_sitting(), chunk_size=CHUNK)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=CHUNK)
    rec = next(f for f in queue.files_of(db, b.manifest["sitting"]) if f["path"].startswith("recordings/"))
    with TusClient(collector.url, collector.token) as c:
        url, _ = c.create(rec["size"], {"station": "S01", "sitting": rec["sitting"], "path": rec["path"],
                                        "sha256": rec["sha256"]})
        off = c.patch(url, b.dir / rec["path"], 0, CHUNK, json.loads(rec["chunks"])[0])
        off = c.patch(url, b.dir / rec["path"], off, CHUNK, json.loads(rec["chunks"])[1])
    assert off == 2 * CHUNK
    queue.update_file(db, rec["id"], upload_url=httpx.URL(url).path, state="uploading")
    proxy = Proxy(collector.port)
    try:
        worker.run(db, proxy.url, collector.token, once=True)
        assert queue.status(db)[0]["state"] == "done"
        others = sum(f["size"] for f in queue.files_of(db, rec["sitting"]) if f["id"] != rec["id"])
        sent = proxy.upstream_bytes - others
        assert 2 * CHUNK <= sent < 2 * CHUNK + 20_000  # the second half and headers, not the first
    finally:
        proxy.close()
    assert_arrived(collector, b)


def test_a_wrong_token_fails_clearly_and_is_retried_later(db, make_bundle, collector):
    b = make_bundle(sizes=(1000,), sitting=new_sitting(), chunk_size=CHUNK)
    queue.enqueue(db, b.dir)
    counts = worker.run(db, collector.url, "not-the-token", once=True,
                        backoff=worker.Backoff(base_s=30, cap_s=60))
    assert counts["done"] == 0 and counts["failed"] >= 1
    [s] = queue.status(db)
    assert s["state"] == "failed" and "token" in s["last_error"] and "口令" in s["last_error"]
    failed = [f for f in s["files"] if f["state"] == "failed"]
    assert failed and all(15 <= f["retry_in_s"] <= 60 and f["attempts"] == 1 for f in failed)
    # Once the token is put right, the retry succeeds.
    queue.requeue(db, s["sitting"])
    assert worker.run(db, collector.url, collector.token, once=True)["done"] == 4
    assert_arrived(collector, b)


def test_a_flipped_byte_is_caught_and_the_data_re_sent(db_path, db, make_bundle, collector):
    b = make_bundle(sizes=(4 * 1024 * 1024,), sitting=new_sitting(),
                    chunk_size=1024 * 1024)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=1024 * 1024)
    # 1.5 MB into the stream lies inside the second PATCH body (1 MiB chunks, headers < 1 KB).
    proxy = Proxy(collector.port, flip_at=1_500_000)
    try:
        out = run_until_done(db_path, proxy.url, collector.token)
        assert proxy.flipped
        assert out["status"][0]["state"] == "done"
        total = sum(f["size"] for f in b.manifest["files"])
        assert proxy.upstream_bytes > total + 512 * 1024  # the damaged chunk went again
        # ... and only it: the chunk's CRC-32 caught the flip, not the whole file's SHA-256
        # (which would have sent all 4 MiB again).
        assert proxy.upstream_bytes < total + 2 * 1024 * 1024
    finally:
        proxy.close()
    assert_arrived(collector, b)


def test_a_queue_sealed_with_sha256_chunk_digests_still_uploads(db, make_bundle, collector):
    # Stations queued chunks with SHA-256 digests before CRC-32: after an update those rows
    # must still go through, each PATCH checked with its SHA-256.
    b = make_bundle(sizes=(CHUNK * 2 + 77,), sitting=new_sitting(),
                    chunk_size=CHUNK)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=CHUNK)
    for f in queue.files_of(db, b.manifest["sitting"]):
        data = (b.dir / f["path"]).read_bytes()
        legacy = [hashlib.sha256(data[i:i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)]
        queue.update_file(db, f["id"], chunks=json.dumps(legacy or [hashlib.sha256(b"").hexdigest()]))
    counts = worker.run(db, collector.url, collector.token, once=True)
    assert counts["done"] == 4 and counts["failed"] == 0
    assert_arrived(collector, b)


def test_resets_and_stalls_do_not_stop_the_upload(db_path, db, make_bundle, collector):
    b = make_bundle(sizes=(CHUNK * 6, CHUNK * 2 + 1), sitting=new_sitting(),
                    chunk_size=CHUNK)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=CHUNK)
    proxy = Proxy(collector.port, reset_after=CHUNK + CHUNK // 2, resets=3,
                  stall_after=CHUNK // 3, stalls=2)
    try:
        out = run_until_done(db_path, proxy.url, collector.token, timeout=1.5)
        assert out["status"][0]["state"] == "done", out["status"]
        assert proxy.connections >= 6
        total = out["status"][0]["bytes_total"]
        assert proxy.upstream_bytes < 3 * total  # resumed, not restarted each time
    finally:
        proxy.close()
    assert_arrived(collector, b)


def test_stopping_mid_file_keeps_what_arrived_and_the_next_run_finishes(db_path, db, make_bundle, collector):
    """`station serve` shutting down: the worker stops within a block; the next run resumes."""
    from .conftest import open_db

    b = make_bundle(sizes=(2_000_000,), sitting=new_sitting(), chunk_size=CHUNK)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=CHUNK)
    halfway = threading.Event()
    box = {}

    def on_progress(event):
        # Stop from the worker's own thread, so the stop lands at this point whatever the load.
        if event["path"].startswith("recordings/") and event["bytes_done"] >= 600_000:
            halfway.set()
            if "stop" in box:
                box["stop"].set()

    t, stop = worker.start_thread(lambda: open_db(db_path), collector.url, collector.token,
                                  on_progress=on_progress, rate_limit=2_000_000, poll_s=0.2)
    box["stop"] = stop
    assert halfway.wait(60)
    stop.set()
    t.join(60)
    assert not t.is_alive()
    rec = next(f for f in queue.status(db)[0]["files"] if f["path"].startswith("recordings/"))
    assert rec["state"] == "queued" and CHUNK <= rec["bytes_done"] < rec["size"]
    proxy = Proxy(collector.port)
    try:
        worker.run(db, proxy.url, collector.token, once=True)
        assert proxy.upstream_bytes < 2_000_000 - CHUNK  # resumed, not restarted
    finally:
        proxy.close()
    assert queue.status(db)[0]["state"] == "done"
    assert_arrived(collector, b)


def test_a_file_that_does_not_hash_to_its_sha256_is_never_stored_as_good(db, make_bundle, collector):
    """The queue's SHA-256 disagrees with the bytes (a damaged station disk): the collector discards
    each try, the worker gives the attempt up with a clear error, and the sitting is not complete."""
    import hashlib

    b = make_bundle(sizes=(CHUNK + 10,), sitting=new_sitting(), chunk_size=CHUNK)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=CHUNK)
    rec = next(f for f in queue.files_of(db, b.manifest["sitting"]) if f["path"].startswith("recordings/"))
    with db.conn:
        db["upload_files"].update(rec["id"], {"sha256": hashlib.sha256(b"other").hexdigest()})
    worker.run(db, collector.url, collector.token, once=True, backoff=worker.Backoff(base_s=60, cap_s=60))
    [s] = queue.status(db)
    got = next(f for f in s["files"] if f["path"] == rec["path"])
    assert got["state"] == "failed" and "SHA-256" in got["last_error"]
    assert s["state"] == "failed"
    assert not collector.stored("S01", rec["sitting"], rec["path"]).exists()
    assert next(f for f in s["files"] if f["path"] == "manifest.json")["state"] == "queued"
