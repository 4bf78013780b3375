"""Signing at upload time, as an unlucky district and an attacker would meet it: bundles sealed
by the previous version, a name the collector already holds, no token at all."""
from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import tempfile
from pathlib import Path

import pytest

from uploader import contract, queue, worker
from uploader.bundle import digest_file
from uploader.client import FileToSend, Refused, TusClient

from .test_end_to_end import assert_arrived, new_sitting


def collector_seal(collector, sitting: str) -> tuple[str, int]:
    conn = sqlite3.connect(collector.data / "collector.db")
    try:
        return conn.execute("SELECT seal_code, signature_ok FROM sittings WHERE station = 'S01' AND sitting = ?",
                            [sitting]).fetchone()
    finally:
        conn.close()


def make_legacy(db, bundle) -> bytes:
    """Turn a queued bundle into what version 1 left on disk: a formatted manifest signed inside
    (here under the empty key, as a sitting sealed before the token was set was)."""
    m = {**bundle.manifest, "format": "qm-bundle/1"}
    canonical = json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    m["signature"] = hmac.new(b"", canonical, hashlib.sha256).hexdigest()
    data = json.dumps(m, ensure_ascii=False, indent=2).encode()
    path = bundle.dir / "manifest.json"
    path.write_bytes(data)
    sitting = bundle.manifest["sitting"]
    row = next(f for f in queue.files_of(db, sitting) if f["path"] == "manifest.json")
    d = digest_file(path, row["chunk_size"], "manifest.json")
    sha = hashlib.sha256(data).hexdigest()
    db.execute("UPDATE upload_files SET size = ?, sha256 = ?, chunks = ? WHERE id = ?",
               [d.size, sha, json.dumps(d.chunks), row["id"]])
    db.execute("UPDATE upload_sittings SET seal_code = ?, manifest_sha256 = ? WHERE sitting = ?",
               [sha[:4].upper() + "-" + sha[4:8].upper(), sha, sitting])
    db.conn.commit()
    return data


def test_a_bundle_queued_by_the_previous_version_still_uploads(db, make_bundle, collector):
    b = make_bundle(sitting=new_sitting())
    queue.enqueue(db, b.dir)
    old = make_legacy(db, b)
    counts = worker.run(db, collector.url, collector.token, once=True)
    assert counts["done"] == len(b.manifest["files"]) + 1 and counts["failed"] == 0
    new = (b.dir / "manifest.json").read_bytes()
    assert (b.dir / "manifest.v1.json").read_bytes() == old  # kept, never uploaded
    assert contract.parse_canonical(new)[0] is not None and json.loads(new)["format"] == "qm-bundle/2"
    assert_arrived(collector, b)
    [s] = queue.status(db)
    assert s["state"] == "done" and s["seal_code"] == contract.seal_code(new)
    assert collector_seal(collector, b.manifest["sitting"]) == (s["seal_code"], 1)


def test_a_name_the_collector_holds_with_other_content_is_not_an_offset_conflict(db, make_bundle, collector):
    b = make_bundle(sizes=(1000,), sitting=new_sitting())
    sitting = b.manifest["sitting"]
    with tempfile.TemporaryDirectory() as tmp:  # someone else's results.csv, already stored
        other = Path(tmp) / "results.csv"
        other.write_bytes(b"code,value\r\n0001,99\r\n")
        sha = hashlib.sha256(other.read_bytes()).hexdigest()
        with TusClient(collector.url, collector.token) as c:
            c.upload(FileToSend(other, other.stat().st_size, sha, 1 << 20, [digest_file(other, 1 << 20).chunks[0]],
                                {"station": "S01", "sitting": sitting, "path": "results.csv", "sha256": sha}))
    queue.enqueue(db, b.dir)
    worker.run(db, collector.url, collector.token, once=True, backoff=worker.Backoff(base_s=1, cap_s=300))
    [s] = queue.status(db)
    row = next(f for f in s["files"] if f["path"] == "results.csv")
    assert row["state"] == "failed" and s["state"] != "done"
    assert "不会被覆盖" in row["last_error"] and "never overwritten" in row["last_error"]
    assert "offset" not in row["last_error"]
    assert row["retry_in_s"] > 200  # waits for a person, not knocking every few seconds
    assert next(f for f in s["files"] if f["path"] == "manifest.json")["state"] == "queued"


def test_uploading_without_a_token_is_refused_with_what_to_do(db, make_bundle, collector):
    b = make_bundle(sizes=(1000,), sitting=new_sitting())
    queue.enqueue(db, b.dir)
    with pytest.raises(Refused) as caught:
        worker.run(db, collector.url, "", once=True)
    assert "add-station" in caught.value.en and "令牌" in caught.value.zh
    [s] = queue.status(db)
    assert s["state"] == "failed" and "add-station" in s["last_error"]
    assert all(f["state"] != "done" and f["bytes_done"] == 0 for f in s["files"])
    for empty in ("", None):
        with pytest.raises(ValueError):
            contract.signing_key(empty)  # no path signs under a key made of nothing
