"""The upload queue table: what `station upload status` shows and what survives a restart."""
from __future__ import annotations

import json

import pytest

from uploader import queue
from uploader.bundle import BundleError

from .conftest import open_db


def test_a_sealed_bundle_is_queued_with_the_manifest_last(db, make_bundle):
    b = make_bundle(sizes=(150_000, 10))
    row = queue.enqueue(db, b.dir, digests=b.digests, chunk_size=64 * 1024)
    assert row["sitting"] == "SIT-1" and row["state"] == "queued" and row["seal_code"] == b.seal_code
    files = queue.files_of(db, "SIT-1")
    assert [f["path"] for f in files][-1] == "manifest.json"
    assert {f["state"] for f in files} == {"queued"}
    rec = next(f for f in files if f["path"] == "recordings/0001-1.flac")
    assert json.loads(rec["chunks"]) == list(b.digests["recordings/0001-1.flac"].chunks)
    [s] = queue.status(db)
    assert s["bytes_done"] == 0 and s["bytes_total"] == sum(f["size"] for f in files)
    assert s["files_total"] == 5 and s["files_done"] == 0


def test_without_seal_time_digests_the_files_are_read_once_and_give_the_same(db, make_bundle):
    b = make_bundle(sizes=(200_000,))
    queue.enqueue(db, b.dir, chunk_size=64 * 1024)
    rec = next(f for f in queue.files_of(db, "SIT-1") if f["path"] == "recordings/0001-1.flac")
    assert json.loads(rec["chunks"]) == list(b.digests["recordings/0001-1.flac"].chunks)


def test_queueing_twice_is_a_no_op(db, make_bundle):
    b = make_bundle()
    first = queue.enqueue(db, b.dir, digests=b.digests, chunk_size=64 * 1024)
    again = queue.enqueue(db, b.dir, digests=b.digests, chunk_size=64 * 1024)
    assert first == again and len(queue.files_of(db, "SIT-1")) == 5


def test_a_different_bundle_for_a_queued_sitting_is_refused(db, make_bundle):
    queue.enqueue(db, make_bundle(sitting="SIT-7").dir)
    other = make_bundle(sitting="SIT-7")
    with pytest.raises(BundleError) as e:
        queue.enqueue(db, other.dir)
    assert "SIT-7" in e.value.zh and "different seal" in e.value.en


def test_a_tampered_bundle_is_not_queued(db, make_bundle):
    b = make_bundle()
    rec = b.dir / "recordings/0001-1.flac"
    data = bytearray(rec.read_bytes())
    data[5] ^= 0xFF
    rec.unlink()
    rec.write_bytes(bytes(data))
    with pytest.raises(BundleError) as e:
        queue.enqueue(db, b.dir)
    assert "recordings/0001-1.flac" in e.value.en
    assert queue.status(db) == []


def test_a_folder_without_manifest_is_refused(db, tmp_path):
    with pytest.raises(BundleError) as e:
        queue.enqueue(db, tmp_path)
    assert "manifest.json" in e.value.zh
    assert queue.status(db) == []


def test_the_queue_survives_reopening_the_database(db_path, make_bundle):
    db = open_db(db_path)
    b = make_bundle()
    queue.enqueue(db, b.dir)
    f = queue.files_of(db, "SIT-1")[0]
    queue.update_file(db, f["id"], state="uploading", upload_url="http://c/files/abc", offset=4096)
    db.close()
    again = open_db(db_path)
    f2 = queue.files_of(again, "SIT-1")[0]
    assert (f2["state"], f2["upload_url"], f2["offset"]) == ("uploading", "http://c/files/abc", 4096)
    assert queue.next_due_at(again) == 0
    again.close()


def test_sitting_state_follows_its_files(db, make_bundle):
    queue.enqueue(db, make_bundle(sizes=(10,)).dir)
    files = queue.files_of(db, "SIT-1")
    queue.update_file(db, files[0]["id"], state="failed", last_error="网络中断 / network down")
    assert queue.refresh_sitting(db, "SIT-1") == "failed"
    assert queue.status(db)[0]["last_error"] == "网络中断 / network down"
    for f in files:
        queue.update_file(db, f["id"], state="done")
    assert queue.refresh_sitting(db, "SIT-1") == "done"
    assert queue.next_due_at(db) is None
    assert queue.status(db)[0]["bytes_done"] == queue.status(db)[0]["bytes_total"]


def test_the_heartbeat_summary_counts_what_is_left(db, make_bundle):
    queue.enqueue(db, make_bundle(sizes=(5000,)).dir)
    files = queue.files_of(db, "SIT-1")
    rec = next(f for f in files if f["path"].startswith("recordings/"))
    queue.update_file(db, rec["id"], offset=2000)
    s = queue.summary(db)
    assert s["sittings"] == 1 and s["sittings_done"] == 0 and s["files"]["queued"] == len(files)
    assert s["bytes_left"] == s["bytes_total"] - 2000
    assert "recordings" not in json.dumps(s)  # no paths (they carry student codes)
