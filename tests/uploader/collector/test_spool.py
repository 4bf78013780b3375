"""The spool's Chunk on a real file: PATCH bodies larger than the flush-ahead step are kept
byte-exact or dropped without a trace, and a failing flush fails the chunk."""
from __future__ import annotations

import errno
import hashlib
import os
import zlib

import pytest

from uploader.contract import Crc32
from uploader.collector import spool
from uploader.collector.spool import FLUSH_AHEAD, Chunk

MiB = 1024 * 1024


def write_in_blocks(chunk: Chunk, data: bytes, block: int = MiB) -> None:
    for i in range(0, len(data), block):
        # As the collector hands them over: a block is a list of the pieces that came in.
        piece = data[i:i + block]
        chunk.write([piece[:1000], piece[1000:]] if len(piece) > 1000 else [piece])


def test_a_chunk_past_several_flushes_ahead_is_kept_byte_exact(tmp_path):
    path = tmp_path / "u.part"
    before = os.urandom(12345)
    path.write_bytes(before)
    data = os.urandom(3 * FLUSH_AHEAD + 123)
    whole = hashlib.sha256(before)
    chunk = Chunk(path, len(before), whole, Crc32())
    write_in_blocks(chunk, data)
    chunk.keep()
    assert path.read_bytes() == before + data
    assert whole.hexdigest() == hashlib.sha256(before + data).hexdigest()
    assert chunk.chunk_hash.digest() == zlib.crc32(data).to_bytes(4, "big")
    assert chunk.received == len(data)


def test_a_dropped_chunk_leaves_nothing_though_parts_were_flushed(tmp_path):
    path = tmp_path / "u.part"
    before = os.urandom(5000)
    path.write_bytes(before)
    chunk = Chunk(path, len(before), hashlib.sha256(before))
    write_in_blocks(chunk, os.urandom(2 * FLUSH_AHEAD + MiB // 2))
    chunk.drop()
    assert path.read_bytes() == before


def test_a_failed_flush_ahead_fails_the_chunk_and_it_can_be_dropped(tmp_path, monkeypatch):
    # The disk refuses while a PATCH is being flushed ahead (full, or failing): the chunk must
    # not be kept as if its bytes were durable.
    def refuse(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "flush_data", refuse)
    path = tmp_path / "u.part"
    path.write_bytes(b"")
    chunk = Chunk(path, 0, hashlib.sha256())
    write_in_blocks(chunk, os.urandom(FLUSH_AHEAD + MiB))
    # Let the flush ahead run (keep() would cancel one still queued and fsync by itself).
    assert isinstance(chunk._flushing.exception(timeout=60), OSError)
    with pytest.raises(OSError) as failed:
        chunk.keep()
    assert failed.value.errno == errno.ENOSPC
    chunk.drop()
    assert path.stat().st_size == 0
