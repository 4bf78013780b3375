"""The upload worker outlives faults nobody planned for: a proxy that strips tus headers, a
database that cannot be opened for a moment. A worker that died quietly would leave a sealed
sitting "uploading" all day with nobody told."""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from uploader import queue, worker

from .conftest import open_db
from .test_end_to_end import assert_arrived


class HeaderStrippingProxy(BaseHTTPRequestHandler):
    """A school gateway's idea of HTTP: creates uploads, then answers HEAD without Upload-Offset."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Location", "/files/" + uuid.uuid4().hex)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_answer_without_tus_headers_fails_the_file_clearly_and_the_worker_goes_on(db, make_bundle):
    server = ThreadingHTTPServer(("127.0.0.1", 0), HeaderStrippingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        b = make_bundle(sizes=(1000, 2000), sitting="SIT-" + uuid.uuid4().hex[:8])
        queue.enqueue(db, b.dir)
        counts = worker.run(db, f"http://127.0.0.1:{server.server_port}", "t0ken", once=True,
                            backoff=worker.Backoff(base_s=30, cap_s=60))
    finally:
        server.shutdown()
    assert counts["done"] == 0
    [s] = queue.status(db)
    failed = [f for f in s["files"] if f["state"] == "failed"]
    # Every file was tried (the first fault did not end the pass) and says what happened.
    assert len(failed) == len(s["files"]) - 1, s["files"]  # the manifest waits for the others
    assert all("意外错误" in f["last_error"] and "KeyError" in f["last_error"] for f in failed)
    assert all(10 <= f["retry_in_s"] <= 30 for f in failed)  # backoff 30 s: 15-30 s, less time passed


def test_the_worker_thread_starts_again_after_a_fault(db_path, db, make_bundle, collector, monkeypatch):
    monkeypatch.setattr(worker, "RESTART_S", 0.2)
    b = make_bundle(sizes=(5_000,), sitting="SIT-" + uuid.uuid4().hex[:8])
    queue.enqueue(db, b.dir)
    opened = []

    def flaky_open():
        opened.append(time.monotonic())
        if len(opened) == 1:
            raise sqlite3.OperationalError("database is locked")
        return open_db(db_path)

    thread, stop = worker.start_thread(flaky_open, collector.url, collector.token, poll_s=0.2)
    try:
        deadline = time.monotonic() + 60
        while queue.next_due_at(db) is not None:
            assert time.monotonic() < deadline, queue.status(db)
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert len(opened) == 2 and not thread.is_alive()
    assert_arrived(collector, b)
