"""The upload worker: sends queued bundles, retrying with backoff and jitter until done.

Runs inside ``station serve`` (in a thread, with a stop event) and as
``station upload run [--once]``. All state lives in the queue tables, so a worker killed at
any point resumes where it stopped: each file's upload URL is stored as soon as the
collector creates it, and a resume asks the collector for its offset (HEAD) before sending.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sqlite_utils

from qmbase.collector_link import CollectorLink
from qmbase.refusal import Refusal

from . import contract, queue
from .bundle import MANIFEST, BundleError
from .client import FileToSend, Refused, Stopped, TusClient, TusError

Progress = Callable[[dict], None]
RESTART_S = 5.0
log = logging.getLogger(__name__)


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt n waits between half and all of min(cap, base*2^(n-1))."""

    base_s: float = 2.0
    cap_s: float = 600.0

    def delay(self, attempts: int) -> float:
        # Jitter spreads the retries of a whole district's stations after a collector outage.
        d = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        return random.uniform(d / 2, d)


def link_of(collector: CollectorLink | str, token: str | None) -> CollectorLink:
    return collector if isinstance(collector, CollectorLink) else CollectorLink(url=collector,
                                                                                token=token or "")


def run(db: sqlite_utils.Database, collector: CollectorLink | str, token: str | None = None,
        once: bool = False, stop: threading.Event | None = None, on_progress: Progress | None = None, *,
        rate_limit: float | None = None, backoff: Backoff | None = None,
        timeout: float | None = None, poll_s: float = 5.0, transport=None) -> dict:
    """Upload what is queued to ``collector`` (a link, or a URL with ``token``).

    ``once``: one pass over what is due now, then return. Otherwise loop until ``stop`` is
    set, waking when a retry is due or every ``poll_s`` to pick up new sittings. Returns a
    count of files per state. A link that may not be used (no token, plain http to another
    computer) raises ``Refused`` with what to do, before anything is sent.
    """
    stop = stop or threading.Event()
    backoff = backoff or Backoff()
    link = link_of(collector, token)
    if (why := link.refusal()) is not None:
        queue.hold_all(db, " / ".join(why))  # the pages and `upload status` show what to do
        raise Refused(*why)
    with TusClient(link, timeout=timeout, rate_limit=rate_limit, transport=transport) as client:
        while not stop.is_set():
            _one_pass(db, client, stop, on_progress, backoff)
            if once:
                break
            due = queue.next_due_at(db)
            wait = poll_s if due is None else min(poll_s, max(0.0, due - time.time()))
            if wait > 0:
                stop.wait(wait)
    return counts(db)


def start_thread(open_db: Callable[[], sqlite_utils.Database], collector: CollectorLink | str,
                 token: str | None = None, **kw) -> tuple[threading.Thread, threading.Event]:
    """Run the worker in a daemon thread (as ``station serve`` does); set the event to stop it.

    ``open_db`` is called inside the thread: a SQLite connection belongs to the thread that
    opened it.
    """
    stop = threading.Event()

    def target() -> None:
        # The thread must outlive any one fault (a locked database, a proxy's odd answer):
        # a worker that died quietly would leave a sealed sitting "uploading" all day.
        while not stop.is_set():
            db = None
            try:
                db = open_db()
                run(db, collector, token, stop=stop, **kw)
                return
            except Refused as e:  # already written on every waiting file for the proctor to see
                log.error("%s", e)
                return
            except Exception:
                log.exception("upload worker stopped by a fault; starting again in %s s", RESTART_S)
            finally:
                if db is not None:
                    db.close()
            stop.wait(RESTART_S)

    thread = threading.Thread(target=target, name="qm-upload-worker", daemon=True)
    thread.start()
    return thread, stop


def counts(db: sqlite_utils.Database) -> dict:
    out = {s: 0 for s in queue.STATES}
    for row in db.query("select state, count(*) as n from upload_files group by state"):
        out[row["state"]] = row["n"]
    return out


def _one_pass(db, client: TusClient, stop: threading.Event, on_progress, backoff: Backoff) -> None:
    for sitting in queue.pending_sittings(db):
        if stop.is_set():
            return
        try:
            sitting = queue.upgrade_legacy_sitting(db, sitting)
        except (BundleError, OSError) as e:
            _fail_sitting(db, sitting, e, backoff)
            continue
        files = queue.files_of(db, sitting["sitting"])
        for row in files:
            if stop.is_set():
                return
            if row["state"] == "done" or (row["next_attempt_at"] or 0) > time.time():
                continue
            if row["path"] == MANIFEST and any(f["state"] != "done" for f in files if f is not row):
                continue  # the manifest goes last, after every file it lists is in
            _send_file(db, client, sitting, row, stop, on_progress, backoff)
            row.update(queue.file_row(db, row["id"]))
        queue.refresh_sitting(db, sitting["sitting"])


def stored_text(error: Exception) -> str:
    """How the queue keeps a failure: "中文 / English" on one line (the uploads page and
    ``station upload status`` show it)."""
    return f"{error.text_zh} / {error.text_en}" if isinstance(error, Refusal) else str(error)


def _fail_sitting(db, sitting: dict, error: Exception, backoff: Backoff) -> None:
    """A sitting whose bundle cannot be prepared: every unfinished file waits, saying why."""
    text = stored_text(error)
    for row in queue.files_of(db, sitting["sitting"]):
        if row["state"] != "done":
            attempts = (row["attempts"] or 0) + 1
            queue.update_file(db, row["id"], state="failed", attempts=attempts, last_error=text,
                              next_attempt_at=time.time() + backoff.delay(attempts))
    queue.refresh_sitting(db, sitting["sitting"])


def metadata_of(sitting: dict, row: dict, key: bytes) -> dict[str, str]:
    """The tus metadata of one file; the manifest's carries its signature, made now."""
    meta = {"station": sitting["station"], "sitting": sitting["sitting"],
            "path": row["path"], "sha256": row["sha256"]}
    if row["path"] == MANIFEST:
        meta[contract.SIGNATURE_METADATA] = contract.sign_digest(row["sha256"], key)
    return meta


def _send_file(db, client: TusClient, sitting: dict, row: dict, stop, on_progress, backoff) -> None:
    fid = row["id"]
    local = Path(sitting["bundle_dir"]) / row["path"]
    to_send = FileToSend(
        path=local, size=row["size"], sha256=row["sha256"], chunk_size=row["chunk_size"],
        chunks=json.loads(row["chunks"]),
        metadata=metadata_of(sitting, row, contract.signing_key(client.link.token)))
    queue.update_file(db, fid, state="uploading")
    queue.refresh_sitting(db, sitting["sitting"])
    progress = {"sitting": sitting["sitting"], "path": row["path"], "size": row["size"],
                "bytes_done": row["offset"] or 0, "state": "uploading"}

    def emit() -> None:
        if on_progress:
            on_progress(dict(progress))

    def on_url(url: str) -> None:
        queue.update_file(db, fid, upload_url=url)

    def on_offset(offset: int) -> None:
        progress["bytes_done"] = offset
        queue.update_file(db, fid, offset=offset)
        emit()

    def on_bytes(n: int) -> None:
        # Called per block from inside the PATCH body: do the minimum.
        if stop.is_set():
            raise Stopped()
        progress["bytes_done"] += n
        emit()

    try:
        if not local.is_file():
            raise TusError(f"场次包中的文件不见了：{row['path']}。请勿删除场次包；请联系信息中心。",
                           f"Bundle file missing: {row['path']}. Do not delete bundles; contact the "
                           "information center.")
        client.upload(to_send, url=row["upload_url"], on_url=on_url, on_offset=on_offset,
                      on_bytes=on_bytes)
    except Stopped:
        queue.update_file(db, fid, state="queued")
        return
    except Exception as e:
        if not isinstance(e, (TusError, OSError)):
            # Not one of the collector's answers we know (a proxy's page, a header missing):
            # the file waits and is tried again like any failure, and the log keeps the trace.
            log.exception("upload of %s failed", row["path"])
            e = TusError(f"上传时出现意外错误（{type(e).__name__}），稍后自动重试。若一直如此，请联系信息中心。",
                         f"Unexpected error while uploading ({type(e).__name__}); will retry. If it "
                         "persists, contact the information center.")
        elif isinstance(e, OSError):  # unreadable bundle file: say so, and retry like the rest
            e = TusError(f"读取场次包文件失败：{row['path']}（{e.strerror}）。请联系信息中心。",
                         f"Cannot read bundle file {row['path']} ({e.strerror}). Contact the "
                         "information center.")
        attempts = (row["attempts"] or 0) + 1
        # A refusal waits for a person (a new token, the district's word): no point in
        # knocking every few seconds, but it is still tried again, so it goes once fixed.
        wait = backoff.cap_s if isinstance(e, Refused) else backoff.delay(attempts)
        queue.update_file(db, fid, state="failed", attempts=attempts, last_error=stored_text(e),
                          next_attempt_at=time.time() + wait)
        progress["state"] = "failed"
        progress["error"] = stored_text(e)
        emit()
        return
    queue.update_file(db, fid, state="done", offset=row["size"], last_error=None,
                      next_attempt_at=None, done_at=queue.utc_now())
    progress.update(state="done", bytes_done=row["size"])
    emit()
