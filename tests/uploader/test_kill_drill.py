"""The station killed with SIGKILL at 20 random points of an upload, restarted each time.

Every file arrives byte-exact, the sitting ends done, and nothing is re-sent from the
start: each kill costs at most the chunk that was in flight (counted by a proxy).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from uploader import queue

from .proxy import Proxy
from .test_end_to_end import assert_arrived

CHUNK = 128 * 1024
KILLS = 20
RUNNER = Path(__file__).with_name("run_worker.py")


def test_sigkill_at_random_points_resumes_and_never_restarts_a_file(db_path, db, make_bundle, collector):
    rnd = random.Random()
    seed = rnd.randrange(1 << 30)
    rnd.seed(seed)
    b = make_bundle(sizes=(3 * 1024 * 1024, 3 * 1024 * 1024 + 777), sitting="SIT-" + uuid.uuid4().hex[:8],
                    chunk_size=CHUNK)
    queue.enqueue(db, b.dir, digests=b.digests, chunk_size=CHUNK)
    total = queue.status(db)[0]["bytes_total"]
    proxy = Proxy(collector.port)
    # A bandwidth cap stretches the upload so the kills land all along it.
    cmd = [sys.executable, str(RUNNER), str(db_path), proxy.url, collector.token, str(4 * 1024 * 1024)]
    kills = 0
    try:
        while kills < KILLS:
            start = proxy.upstream_bytes
            point = start + rnd.randrange(500, 300 * 1024)  # from mid-creation to mid-chunk
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            while proc.poll() is None and proxy.upstream_bytes < point:
                time.sleep(0.002)
            if proc.poll() is not None:
                assert proc.returncode == 0, proc.stderr.read().decode()
                break  # finished before this kill point
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        final = subprocess.run(cmd, capture_output=True, timeout=120)
        assert final.returncode == 0, final.stderr.decode()
    finally:
        proxy.close()
    assert kills >= KILLS // 2, f"only {kills} kills landed (seed {seed})"
    [s] = queue.status(db)
    assert s["state"] == "done" and s["files_done"] == s["files_total"], s
    assert_arrived(collector, b)
    # Each kill loses at most the chunk in flight plus request headers; a file re-sent from
    # byte 0 would add at least 3 MiB.
    assert proxy.upstream_bytes <= total + kills * (CHUNK + 4096) + 64 * 1024, (proxy.upstream_bytes, seed)
