"""In-progress upload data on local disk: `<data>/incoming/<id>.part`, plus its running SHA-256,
and the streaming of a request body into it (``pump``).

Durability rule: bytes are written and fsynced before the offset is recorded in the database, so
the recorded offset is never ahead of the data; `reconcile` cuts any tail beyond the recorded
offset (a PATCH killed half-way) so the data is never ahead of the offset either.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncIterator, Sequence

from qmbase.platform import fsync_dir, make_private_dir, open_private

from .locks import Hold
from .uploads import BodyGone, UploadRefused

READ_BLOCK = 4 * 1024 * 1024
# The file's running SHA-256 is fed here while the writing thread writes the same block: see
# Chunk.write. Shared by all uploads; each Chunk has at most one block in here at a time.
HASHERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="qm-hash")
# Every FLUSH_AHEAD bytes of a PATCH, what has been written so far is flushed to the disk in
# the background (one flush in flight per chunk), so the fsync that must come before the
# offset is recorded finds little left to do. On this machine's disk a flush takes time in
# proportion to the data it carries (~10 ms per 16 MiB) even after start_writeback: done only
# at the end of each PATCH it was a pause of 0.5-0.7 s per GiB with the client waiting. With
# flushes ahead the last one takes 1-4 ms; 1 GiB through scripts/bench/upload.py (medians of
# 5): 3.5 s without, 2.7 s every 8 MiB, 2.0-2.1 s every 4 or 2 MiB. Durability is unchanged:
# the offset still counts only bytes covered by the final fsync.
FLUSH_AHEAD = 4 * 1024 * 1024
FLUSHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qm-flush")


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing these bytes to disk now, without waiting for it.

    Without this, dirty pages pile up for the whole PATCH and the fsync at its end writes them
    all while the client waits for the answer; with it, the disk works while the next blocks
    arrive (on this machine's disk that alone did not shorten the fsync: see FLUSH_AHEAD). POSIX_FADV_DONTNEED starts writeback on Linux
    (and drops pages already clean: the spool is written once and read at most once more).
    Windows has no such call: there the fsync (FlushFileBuffers) does all of it, as before.
    Advice only: a file system that refuses it changes nothing.
    """
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


def flush_data(fd: int) -> None:
    """Make the file's data durable: fdatasync on POSIX; Windows has only fsync
    (FlushFileBuffers)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


class Spool:
    def __init__(self, root: str | Path):
        self.root = make_private_dir(Path(root))
        # upload id -> (offset the hash covers, sha256 object). The hash is fed once per byte
        # as data arrives; only after a restart is it rebuilt by reading the file once.
        self._hashes: dict[str, tuple[int, "hashlib._Hash"]] = {}

    def path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.part"

    def create(self, upload_id: str) -> None:
        with open_private(self.path(upload_id)) as f:  # private from its first byte
            os.fsync(f.fileno())
        fsync_dir(self.root)

    def reconcile(self, upload_id: str, offset: int) -> int:
        """Make the file exactly `offset` bytes when it is longer; return the bytes really there."""
        path = self.path(upload_id)
        if not path.exists():
            return 0
        size = path.stat().st_size
        if size > offset:
            with open(path, "r+b") as f:
                f.truncate(offset)
                os.fsync(f.fileno())
            self._hashes.pop(upload_id, None)
            return offset
        return size

    def hasher(self, upload_id: str, offset: int):
        """The SHA-256 of the first `offset` bytes (cached; rebuilt from disk after a restart)."""
        cached = self._hashes.get(upload_id)
        if cached and cached[0] == offset:
            return cached[1]
        digest = hashlib.sha256()
        remaining = offset
        with open(self.path(upload_id), "rb") as f:
            while remaining:
                block = f.read(min(READ_BLOCK, remaining))
                if not block:
                    raise OSError(f"spool file of {upload_id} is shorter than {offset}")
                digest.update(block)
                remaining -= len(block)
        self._hashes[upload_id] = (offset, digest)
        return digest

    def remember(self, upload_id: str, offset: int, digest) -> None:
        self._hashes[upload_id] = (offset, digest)

    def forget(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)

    def remove(self, upload_id: str) -> None:
        self.forget(upload_id)
        self.path(upload_id).unlink(missing_ok=True)


def truncate(path: Path, size: int) -> None:
    """Cut a spool file back to `size` (dropping a rejected chunk); frees space on a full disk."""
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


IOV_MAX = 512  # pieces per writev, well under every system's limit (Linux: 1024)


def update_each(digest, pieces: Sequence[bytes]) -> None:
    for piece in pieces:
        digest.update(piece)


def write_all(fd: int, pieces: Sequence[bytes]) -> None:
    """Write all pieces at the file position. A write may be short (e.g. just before ENOSPC):
    the rest is then written piece by piece, which raises the error if there is one."""
    if not hasattr(os, "writev"):  # Windows
        for piece in pieces:
            write_rest(fd, memoryview(piece))
        return
    for at in range(0, len(pieces), IOV_MAX):
        group = pieces[at:at + IOV_MAX]
        written = os.writev(fd, group)
        if written == sum(len(piece) for piece in group):
            continue
        for piece in group:  # short: find where it stopped, write the rest plainly
            if written >= len(piece):
                written -= len(piece)
                continue
            write_rest(fd, memoryview(piece)[written:])
            written = 0


def write_rest(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


class Chunk:
    """One PATCH body appended at `start`: written and hashed block by block, then kept (fsynced)
    or dropped (cut back to `start`). Blocking calls: run them off the event loop."""

    def __init__(self, path: Path, start: int, whole, chunk_hash=None):
        self.path, self.start = path, start
        self.whole, self.chunk_hash = whole, chunk_hash
        self.received = 0
        self.file = open(path, "r+b", buffering=0)
        self.file.seek(start)
        self._unflushed = 0
        self._flushing = None  # the background flush in flight, if any

    def write(self, pieces: Sequence[bytes]) -> None:
        """Append one block, given as the pieces it arrived in (bytes the caller no longer
        touches; it waits for this call before handing over the next block, so the digests
        see the blocks in order)."""
        # Two digests of the same bytes: the file's running SHA-256 (the contract's whole-file
        # check before storing) and the chunk's checksum (tus Upload-Checksum, CRC-32 from
        # current stations: a byte flipped in transit is caught at this PATCH and only it is
        # re-sent). Writing a MiB to the page cache and hashing it take about a millisecond
        # each here (scripts/bench/upload.py): done one after the other they were the slowest
        # step of an upload, so the SHA-256 runs in another thread while this one writes the
        # block and takes its checksum (hashlib, zlib and file writes release the GIL).
        # The pieces go to the disk as they are, in one writev, and to the digests one by one:
        # joining them first copied every byte once more (~0.1 CPU-s per GiB, profiled).
        size = sum(len(piece) for piece in pieces)
        hashed = HASHERS.submit(update_each, self.whole, pieces)
        try:
            write_all(self.file.fileno(), pieces)
            start_writeback(self.file.fileno(), self.start + self.received, size)
            if self.chunk_hash is not None:
                update_each(self.chunk_hash, pieces)
        finally:
            hashed.result()
        self.received += size
        self._unflushed += size
        if self._unflushed >= FLUSH_AHEAD and (self._flushing is None or self._flushing.done()):
            self._settle()  # a failed flush ahead fails this block, as a failed write would
            self._flushing = FLUSHERS.submit(flush_data, self.file.fileno())
            self._unflushed = 0

    def _settle(self) -> None:
        """Wait for the flush in flight (or cancel it if it has not started): no flush may run
        on a closed file, and its error, if any, is this chunk's."""
        flushing, self._flushing = self._flushing, None
        if flushing is not None and not flushing.cancel():
            flushing.result()

    def keep(self) -> None:
        try:
            self._settle()
            os.fsync(self.file.fileno())
        finally:
            self.file.close()

    def drop(self) -> None:
        try:
            self._settle()
        except OSError:
            pass  # the chunk is being dropped anyway
        finally:
            self.file.close()
        truncate(self.path, self.start)


FLUSH_BYTES = 1024 * 1024  # bytes handed to the writing and hashing threads at a time
# PATCH body bytes all uploads together may hold in memory (blocks being gathered or written).
# Past it a PATCH hands over what it has at once and waits for it to land before reading on
# (uvicorn then stops reading its socket and TCP holds the rest), so a thousand stations at
# once cannot grow the collector by up to two blocks each.
MEMORY_BUDGET = 64 * 1024 * 1024
# Spool writes and hashing (hashlib and file writes release the GIL); shared by all uploads.
WRITERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="qm-spool")


class Held:
    bytes = 0  # of all PATCH bodies in memory; event loop only


async def pump(body: AsyncIterator[bytes], chunk: Chunk, room: int, idle_timeout: float,
               hold: Hold) -> bool:
    """Stream the body into `chunk` in blocks of FLUSH_BYTES; True when the client went away
    (or counts as gone).

    A client that sends nothing for `idle_timeout` seconds counts as gone: a stalled link
    would otherwise hold the upload until the OS drops the dead socket, which can take many
    minutes. So does one whose upload another request takes over (`hold.stop_asked`).

    One block is written and hashed in worker threads while the next one is being received,
    so the socket, the disk and the hashing overlap instead of taking turns. A block is the
    list of pieces as the server handed them over: they are joined in the writing thread,
    not here on the event loop's, the busiest one."""
    loop = asyncio.get_running_loop()
    block: list[bytes] = []
    in_block = queued = 0
    pending = None
    pending_bytes = mine = 0  # the block in flight; what this PATCH counts in Held.bytes
    pieces = body.__aiter__()
    disconnected = False

    async def landed() -> None:
        nonlocal pending, pending_bytes, mine
        await pending
        pending = None
        mine -= pending_bytes
        Held.bytes -= pending_bytes
        pending_bytes = 0

    try:
        while not hold.stop_asked:
            try:
                # Only the wait for bytes is timed (or cancelled by a takeover): a slow disk
                # must not cut a live client off, and a cancelled wait on a block in flight
                # would let it land after a drop.
                hold.waiting_for_bytes = True
                async with asyncio.timeout(idle_timeout):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                break
            except (BodyGone, TimeoutError):
                disconnected = True
                break
            except asyncio.CancelledError:
                if not hold.stopped_by_cancel():
                    raise
                break
            finally:
                hold.waiting_for_bytes = False
            if queued + in_block + len(piece) > room:
                raise UploadRefused("past_length")
            if piece:
                block.append(piece)
                in_block += len(piece)
                mine += len(piece)
                Held.bytes += len(piece)
            over_budget = Held.bytes > MEMORY_BUDGET
            if in_block >= FLUSH_BYTES or (over_budget and in_block):
                if pending is not None:
                    await landed()  # one block in flight: blocks land in order
                pending = loop.run_in_executor(WRITERS, chunk.write, block)
                pending_bytes = in_block
                queued += in_block
                block, in_block = [], 0
                if over_budget:
                    await landed()
        if pending is not None:
            await landed()
        if block:
            await loop.run_in_executor(WRITERS, chunk.write, block)
        return disconnected or hold.stop_asked
    finally:
        Held.bytes -= mine
        if pending is not None and not pending.done():
            # Refused or cancelled: let the block in flight land before the caller cuts it off.
            await asyncio.wait([pending])
