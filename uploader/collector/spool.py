"""In-progress upload data on local disk: `<data>/incoming/<id>.part`, plus its running SHA-256.

Durability rule: bytes are written and fsynced before the offset is recorded in the database, so
the recorded offset is never ahead of the data; `reconcile` cuts any tail beyond the recorded
offset (a PATCH killed half-way) so the data is never ahead of the offset either.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .storage import fsync_dir

READ_BLOCK = 4 * 1024 * 1024
# The chunk's own digest (the tus Upload-Checksum) is computed here while the writing thread
# feeds the file's running digest: see Chunk.write.
CHUNK_HASHERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="qm-chunk-hash")


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing these bytes to disk now, without waiting for it.

    Without this, dirty pages pile up for the whole PATCH and the fsync at its end writes them
    all while the client waits for the answer; with it, the disk works while the next blocks
    arrive and the fsync finds little left to do. POSIX_FADV_DONTNEED starts writeback on Linux
    (and drops pages already clean: the spool is written once and read at most once more).
    Windows has no such call: there the fsync (FlushFileBuffers) does all of it, as before.
    Advice only: a file system that refuses it changes nothing.
    """
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


class Spool:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # upload id -> (offset the hash covers, sha256 object). The hash is fed once per byte
        # as data arrives; only after a restart is it rebuilt by reading the file once.
        self._hashes: dict[str, tuple[int, "hashlib._Hash"]] = {}

    def path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.part"

    def create(self, upload_id: str) -> None:
        with open(self.path(upload_id), "wb") as f:
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


class Chunk:
    """One PATCH body appended at `start`: written and hashed block by block, then kept (fsynced)
    or dropped (cut back to `start`). Blocking calls: run them off the event loop."""

    def __init__(self, path: Path, start: int, whole, chunk_hash=None):
        self.path, self.start = path, start
        self.whole, self.chunk_hash = whole, chunk_hash
        self.received = 0
        self.file = open(path, "r+b", buffering=0)
        self.file.seek(start)

    def write(self, block: bytearray) -> None:
        # Two SHA-256 digests of the same bytes are needed: the chunk's (tus checksum: a byte
        # flipped in transit is caught at this PATCH and only it is re-sent) and the file's
        # running one (the contract's whole-file check before storing). Neither can be derived
        # from the other (SHA-256 of a concatenation is no function of the parts' digests), so
        # each byte is taken once from this buffer and fed to both, computed in parallel
        # threads (hashlib releases the GIL on large buffers) while the block is written: the
        # second digest costs CPU but adds no step to the chain each block waits for.
        side = CHUNK_HASHERS.submit(self.chunk_hash.update, block) if self.chunk_hash else None
        try:
            view = memoryview(block)
            while view:  # an unbuffered write may be short (e.g. just before ENOSPC)
                view = view[self.file.write(view):]
            start_writeback(self.file.fileno(), self.start + self.received, len(block))
            self.whole.update(block)
        finally:
            if side is not None:
                side.result()
        self.received += len(block)

    def keep(self) -> None:
        try:
            os.fsync(self.file.fileno())
        finally:
            self.file.close()

    def drop(self) -> None:
        self.file.close()
        truncate(self.path, self.start)
