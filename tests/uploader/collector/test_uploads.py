"""The UploadStore without HTTP: what tus.py relies on, reached directly (real SQLite, spool, disk)."""
from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from uploader import contract
from uploader.collector.auth import register_station
from uploader.collector.local_uploads import LocalUploadStore
from uploader.collector.spool import Spool
from uploader.collector.storage import LocalStorage
from uploader.collector.store import open_db
from uploader.collector.uploads import NewUpload, UploadRefused

SITTING = "20260520-01"


def open_store(data_dir, **limits) -> LocalUploadStore:
    return LocalUploadStore(open_db(data_dir), Spool(data_dir / "incoming"),
                            LocalStorage(data_dir / "files"), limits.get("max_bytes", 1 << 30),
                            limits.get("max_open", 100), limits.get("idle", 5.0))


@pytest.fixture
def store(tmp_path):
    store = open_store(tmp_path)
    register_station(store.db, "S01")
    return store


def new(data: bytes, path: str = "results.csv", sha256: str | None = None) -> NewUpload:
    return NewUpload(SITTING, path, sha256 or hashlib.sha256(data).hexdigest(), len(data))


async def pieces(*parts: bytes):
    for part in parts:
        yield part


def stored(store: LocalUploadStore, path: str = "results.csv") -> bytes:
    return (store.storage.root / "S01" / SITTING / path).read_bytes()


def test_append_in_parts_then_the_verified_file_is_stored(store):
    data = os.urandom(3 * 1024 * 1024 + 7)

    async def run():
        upload = await store.create("S01", new(data))
        first = await store.append(upload.id, "S01", 0, pieces(data[:1_000_000]), None)
        assert (first.offset, first.gone) == (1_000_000, False)
        with pytest.raises(UploadRefused) as refused:  # a stale offset: nothing written
            await store.append(upload.id, "S01", 0, pieces(data), None)
        assert refused.value.code == "offset_mismatch" and refused.value.offset == 1_000_000
        crc = contract.Crc32(data[1_000_000:])
        last = await store.append(upload.id, "S01", 1_000_000, pieces(data[1_000_000:]),
                                  contract.Checksum("crc32", crc.digest()))
        assert last.offset == len(data)
        return upload.id

    upload_id = asyncio.run(run())
    assert store.get(upload_id, "S01").done
    assert stored(store) == data
    assert not store.spool.path(upload_id).exists()


def test_a_file_whose_sha256_differs_is_discarded_not_stored(store):
    data = b"child's results"

    async def run():
        upload = await store.create("S01", new(data, sha256=hashlib.sha256(b"other").hexdigest()))
        with pytest.raises(UploadRefused) as refused:
            await store.append(upload.id, "S01", 0, pieces(data), None)
        assert refused.value.code == "sha256_mismatch" and refused.value.discarded
        with pytest.raises(UploadRefused) as again:
            store.get(upload.id, "S01")
        assert again.value.code == "gone"

    asyncio.run(run())
    assert not (store.storage.root / "S01" / SITTING / "results.csv").exists()


def test_another_station_is_refused(store):
    register_station(store.db, "S02")

    async def run():
        upload = await store.create("S01", new(b"abc"))
        for call in (store.current(upload.id, "S02"), store.terminate(upload.id, "S02")):
            with pytest.raises(UploadRefused) as refused:
                await call
            assert refused.value.code == "wrong_station"

    asyncio.run(run())


def test_a_stalled_writer_is_taken_over_and_keeps_what_it_received(store):
    data = os.urandom(2_000_000)

    async def run():
        upload = await store.create("S01", new(data))
        stall = asyncio.Event()

        async def stalled():
            yield data[:700_000]
            await stall.wait()  # a laptop gone to sleep mid-PATCH
            yield data[700_000:]

        first = asyncio.create_task(store.append(upload.id, "S01", 0, stalled(), None))
        while store.get(upload.id, "S01").offset == 0 and not store.locks.locked(upload.id):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the first block reaches the writer
        resumed = await store.current(upload.id, "S01")  # the resuming client's HEAD
        assert (await first).gone
        assert resumed.offset == 700_000
        rest = await store.append(upload.id, "S01", resumed.offset, pieces(data[700_000:]), None)
        assert rest.offset == len(data)

    asyncio.run(run())
    assert stored(store) == data


def test_open_uploads_per_station_are_capped(tmp_path):
    store = open_store(tmp_path, max_open=2)
    register_station(store.db, "S01")

    async def run():
        for name in ("a.csv", "b.csv"):
            await store.create("S01", new(b"abc", path=name))
        with pytest.raises(UploadRefused) as refused:
            await store.create("S01", new(b"abc", path="c.csv"))
        assert refused.value.code == "too_many_open"

    asyncio.run(run())


def test_recover_after_a_crash(tmp_path):
    """Killed mid-append (data past the offset), killed after the last byte was recorded but
    before the file was stored, and killed between creating a spool file and recording it."""
    store = open_store(tmp_path)
    register_station(store.db, "S01")
    partial, whole = os.urandom(500_000), os.urandom(300_000)

    async def run():
        a = await store.create("S01", new(partial, path="a.flac"))
        await store.append(a.id, "S01", 0, pieces(partial[:200_000]), None)
        b = await store.create("S01", new(whole, path="b.flac"))
        return a.id, b.id

    a, b = asyncio.run(run())
    with open(store.spool.path(a), "ab") as f:  # written, never counted
        f.write(partial[200_000:260_000])
    store.spool.path(b).write_bytes(whole)
    store.db.execute("UPDATE uploads SET offset = ? WHERE id = ?", [len(whole), b])
    store.db.conn.commit()
    orphan = store.spool.path("f" * 32)
    orphan.write_bytes(b"no upload owns this")
    store.db.conn.close()

    again = open_store(tmp_path)  # the collector started again
    again.recover()
    assert again.spool.path(a).stat().st_size == 200_000 == again.get(a, "S01").offset
    assert again.get(b, "S01").done and stored(again, "b.flac") == whole
    assert not orphan.exists()

    async def resume():
        done = await again.append(a, "S01", 200_000, pieces(partial[200_000:]), None)
        assert done.offset == len(partial)

    asyncio.run(resume())
    assert stored(again, "a.flac") == partial
