"""`station upload status`: what a teacher sees of the queue, in Chinese first, and its JSON."""
from __future__ import annotations

import json

from rich.console import Console

from uploader import queue, status_view


def rendered(rows) -> str:
    console = Console(record=True, width=160, color_system=None)
    status_view.print_status(rows, console)
    return console.export_text()


def test_the_queue_shows_each_sitting_with_its_seal_code_and_files(db, make_bundle):
    b = make_bundle(sizes=(200_000,))
    queue.enqueue(db, b.dir)
    rec = next(f for f in queue.files_of(db, "SIT-1") if f["path"].startswith("recordings/"))
    queue.update_file(db, rec["id"], state="failed", offset=100_000,
                      last_error="收集端磁盘已满 / the collector's disk is full", next_attempt_at=9e12)
    queue.refresh_sitting(db, "SIT-1")
    text = rendered(queue.status(db))
    assert "SIT-1" in text and b.seal_code in text
    assert "recordings/0001-1.flac" in text and "manifest.json" in text
    assert "失败，将自动重试" in text and "排队中" in text
    assert "100.0 kB / 200.0 kB" in text
    assert "收集端磁盘已满" in text
    assert text.index("失败") < text.index("failed")  # Chinese first


def test_an_empty_queue_says_so():
    text = rendered([])
    assert "上传队列为空" in text and "queue is empty" in text


def test_json_has_every_sitting_and_file(db, make_bundle):
    b = make_bundle(sizes=(1000,))
    queue.enqueue(db, b.dir)
    doc = json.loads(status_view.to_json(queue.status(db)))
    [s] = doc["sittings"]
    assert s["seal_code"] == b.seal_code and s["state"] == "queued"
    assert {f["path"] for f in s["files"]} >= {"manifest.json", "results.csv", "recordings/0001-1.flac"}
    assert all({"size", "bytes_done", "state", "attempts", "last_error"} <= set(f) for f in s["files"])


def test_live_progress_counts_bytes_per_file():
    console = Console(record=True, width=160, color_system=None)
    with status_view.LiveProgress(console) as live:
        live.update({"sitting": "SIT-1", "path": "results.csv", "size": 1000, "bytes_done": 400, "state": "uploading"})
        live.update({"sitting": "SIT-1", "path": "results.csv", "size": 1000, "bytes_done": 1000, "state": "done"})
        [task] = live.progress.tasks
        assert task.completed == 1000 and task.total == 1000
