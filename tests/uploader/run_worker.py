"""The station's upload worker as its own process, to be killed with SIGKILL by the drill.

Usage: run_worker.py DB COLLECTOR_URL TOKEN RATE_BYTES_PER_S — exits 0 once the queue is done.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import sqlite_utils  # noqa: E402

from uploader import queue, worker  # noqa: E402


def main() -> int:
    db_path, url, token, rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    db = sqlite_utils.Database(db_path)
    db.execute("pragma synchronous=FULL")
    while queue.next_due_at(db) is not None:
        worker.run(db, url, token, once=True, rate_limit=rate,
                   backoff=worker.Backoff(base_s=0.05, cap_s=0.2))
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
