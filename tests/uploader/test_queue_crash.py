"""The upload queue on the station's own connection (autocommit, as `station.db.connect` opens
it): a sitting and its files appear together or not at all, even when the process is killed
(SIGKILL, a real subprocess) between the two writes."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(r"""
    import os, sys, time
    from pathlib import Path
    from station.db import open_db
    from uploader import queue
    from uploader.bundle import write_bundle

    data_dir = Path(sys.argv[1])
    src = data_dir / "take.flac"
    src.write_bytes(os.urandom(10_000))
    bundle = write_bundle(data_dir / "bundle", station="S01", sitting="SIT-1", kind="singing",
                          files={"recordings/0001-1.flac": src})
    db = open_db(data_dir)

    def trace(sql):
        # Called as each statement starts: the sitting's row is written, its files' not yet.
        if sql.lstrip().upper().startswith("INSERT") and "upload_files" in sql:
            print("between", flush=True)
            time.sleep(60)

    db.conn.set_trace_callback(trace)
    queue.enqueue(db, bundle.dir, digests=bundle.digests)
    print("finished", flush=True)
""")


def test_a_kill_between_the_sitting_and_its_files_leaves_neither(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        assert line == "between", child.stderr.read()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    conn = sqlite3.connect(tmp_path / "station.db")
    try:
        sittings = conn.execute("SELECT count(*) FROM upload_sittings").fetchone()[0]
        files = conn.execute("SELECT count(*) FROM upload_files").fetchone()[0]
    finally:
        conn.close()
    assert (sittings, files) == (0, 0)
