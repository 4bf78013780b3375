"""The S3 upload store without HTTP: parts and tail in a real S3 server (moto's, in its own
process), state in a real PostgreSQL; two stores on them stand for two collector instances."""
from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from uploader import contract
from uploader.collector.auth import register_station
from uploader.collector.shared_locks import SharedLocks
from uploader.collector.s3_uploads import MIN_PART, PART_SIZE, S3UploadStore
from uploader.collector.storage import S3Storage
from uploader.collector.store import open_db
from uploader.collector.uploads import NewUpload, UploadRefused

boto3 = pytest.importorskip("boto3")

SITTING = "20260520-01"
MiB = 1024 * 1024


@pytest.fixture
def instances(tmp_path, postgres_url, s3_server, s3_bucket, monkeypatch):
    """Two stores on one index and one bucket: what two collector processes share."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    made = []

    def make() -> S3UploadStore:
        n = len(made)
        db = open_db(tmp_path / f"i{n}", postgres_url)
        store = S3UploadStore(db, S3Storage(s3_bucket, "2026", s3_server.endpoint_url),
                              tmp_path / f"i{n}" / "buffers", 1 << 32, 100, 5.0, SharedLocks(db))
        made.append(store)
        return store

    first = make()
    register_station(first.db, "S01")
    yield make
    for store in made:
        store.db.close()


def client(store: S3UploadStore):
    return store.client


def new(data: bytes, path: str = "recordings/0001-1.flac", sha256: str | None = None) -> NewUpload:
    return NewUpload(SITTING, path, sha256 or hashlib.sha256(data).hexdigest(), len(data))


async def pieces(data: bytes, step: int = 1 << 20):
    for at in range(0, len(data), step):
        yield data[at:at + step]


def stored(store: S3UploadStore, path: str = "recordings/0001-1.flac") -> bytes:
    key = f"2026/S01/{SITTING}/{path}"
    return store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read()


def keys(store: S3UploadStore) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def wait_for_cleanup(store: S3UploadStore, expected: list[str]) -> list[str]:
    for _ in range(100):  # the clean-up runs in the background, after the answer
        if keys(store) == expected:
            break
        asyncio.run(asyncio.sleep(0.05))
    return keys(store)


def test_parts_and_tail_are_recorded_only_as_s3_confirms_them(instances):
    store = instances()
    data = os.urandom(3 * PART_SIZE + 12345)

    async def run():
        upload = await store.create("S01", new(data))
        first = await store.append(upload.id, "S01", 0, pieces(data[:PART_SIZE + 3 * MiB]), None)
        assert first.offset == PART_SIZE + 3 * MiB
        row = store.db.one("SELECT * FROM uploads WHERE id = ?", [upload.id])
        parts = store.recorded_parts(upload.id)
        # One whole part, and the 3 MiB after it kept as the tail object (under S3's minimum).
        assert [p["size"] for p in parts] == [PART_SIZE] and row["tail_key"]
        tail = store.client.head_object(Bucket=store.bucket, Key=row["tail_key"])
        assert tail["ContentLength"] == 3 * MiB
        assert sum(p["size"] for p in parts) + tail["ContentLength"] == row["offset"]
        last = await store.append(upload.id, "S01", first.offset, pieces(data[first.offset:]), None)
        assert last.offset == len(data)
        return upload.id

    upload_id = asyncio.run(run())
    assert store.get(upload_id, "S01").done
    assert stored(store) == data
    parts = store.recorded_parts(upload_id)
    assert all(p["size"] >= MIN_PART for p in parts[:-1]) and sum(p["size"] for p in parts) == len(data)
    # Nothing of the upload is left beside the stored file: no tail, no assembled copy.
    assert wait_for_cleanup(store, [f"2026/S01/{SITTING}/recordings/0001-1.flac"]) == \
        [f"2026/S01/{SITTING}/recordings/0001-1.flac"]


def test_another_instance_resumes_and_checks_the_whole_file_by_reading_it_back(instances):
    first, second = instances(), instances()
    data = os.urandom(2 * PART_SIZE + 777)

    async def start():
        upload = await first.create("S01", new(data))
        await first.append(upload.id, "S01", 0, pieces(data[:PART_SIZE + 100]), None)
        return upload.id

    upload_id = asyncio.run(start())
    resumed = second.get(upload_id, "S01")
    assert resumed.offset == PART_SIZE + 100 and second.running.get(
        second.db.one("SELECT * FROM uploads WHERE id = ?", [upload_id])) is None

    async def finish():
        return await second.append(upload_id, "S01", resumed.offset,
                                   pieces(data[resumed.offset:]), None)

    assert asyncio.run(finish()).offset == len(data)
    assert second.get(upload_id, "S01").done and stored(second) == data


def test_a_wrong_file_never_reaches_its_final_key(instances):
    store = instances()
    data = os.urandom(PART_SIZE + 5)
    upload = asyncio.run(store.create("S01", new(data, sha256=hashlib.sha256(b"other").hexdigest())))
    with pytest.raises(UploadRefused) as refused:
        asyncio.run(store.append(upload.id, "S01", 0, pieces(data), None))
    assert refused.value.code == "sha256_mismatch"
    assert store.db.value("SELECT state FROM uploads WHERE id = ?", [upload.id]) == "discarded"
    assert wait_for_cleanup(store, []) == []


def test_a_chunk_failing_its_checksum_leaves_the_offset_and_parts_as_they_were(instances):
    store = instances()
    data = os.urandom(PART_SIZE * 2 + 10)

    async def run():
        upload = await store.create("S01", new(data))
        bad = contract.Checksum("sha256", hashlib.sha256(b"not this").digest())
        with pytest.raises(UploadRefused) as refused:
            await store.append(upload.id, "S01", 0, pieces(data[:PART_SIZE + 50]), bad)
        assert refused.value.code == "checksum_mismatch" and refused.value.offset == 0
        assert store.get(upload.id, "S01").offset == 0 and store.recorded_parts(upload.id) == []
        good = contract.Checksum("sha256", hashlib.sha256(data).digest())
        done = await store.append(upload.id, "S01", 0, pieces(data), good)
        assert done.offset == len(data)
        # The refused chunk's part numbers were never reused: the recorded ones come after.
        assert min(p["number"] for p in store.recorded_parts(upload.id)) > 1
        return upload.id

    upload_id = asyncio.run(run())
    assert store.get(upload_id, "S01").done and stored(store) == data


def test_the_same_file_twice_is_stored_once(instances):
    first, second = instances(), instances()
    data = os.urandom(300_000)

    async def send(store):
        upload = await store.create("S01", new(data))
        if not upload.done:
            await store.append(upload.id, "S01", 0, pieces(data), None)
        return upload.id

    a = asyncio.run(send(first))
    b = asyncio.run(send(second))
    assert a == b  # the second creation found the stored file
    assert stored(first) == data
    assert first.db.value("SELECT files FROM arrivals WHERE station = 'S01'") == 1


def test_a_wrong_file_finished_on_another_instance_is_deleted_from_its_key(instances):
    """Resumed elsewhere, the running hash is gone: the file is read back at its key after
    assembly, and a mismatch removes it there before anything counts it."""
    first, second = instances(), instances()
    data = os.urandom(PART_SIZE + 1000)
    wrong = hashlib.sha256(b"announced, not sent").hexdigest()

    async def start():
        upload = await first.create("S01", new(data, sha256=wrong))
        await first.append(upload.id, "S01", 0, pieces(data[:PART_SIZE + 10]), None)
        return upload.id

    upload_id = asyncio.run(start())
    with pytest.raises(UploadRefused) as refused:
        asyncio.run(second.append(upload_id, "S01", PART_SIZE + 10, pieces(data[PART_SIZE + 10:]), None))
    assert refused.value.code == "sha256_mismatch" and refused.value.discarded
    assert second.db.value("SELECT state FROM uploads WHERE id = ?", [upload_id]) == "discarded"
    assert wait_for_cleanup(second, []) == []
    assert second.db.count("arrivals") == 0
