"""``UploadStore`` for several collector instances: bytes so far in S3, state in the shared index.

tusd's S3 store model. An upload's bytes are parts of one S3 multipart upload (each at least
S3's 5 MiB minimum, but the last) plus a *tail*: the bytes after the last whole part, kept as
an object of their own under ``.partial/<id>/`` until more arrive (S3 cannot append, and a
part under 5 MiB may only be the last). A PATCH reads the tail back, appends its body, ships
every PART_SIZE as a part, and writes what is left as the new tail. Only when S3 has
confirmed all of that does one transaction record the parts, the tail and the new offset:
the offset never counts a byte S3 does not hold, whichever instance asks next.

Any instance can resume any upload: the parts list and tail are in the index, and one writer
at a time is enforced across instances (shared_locks.py). Each part number is handed out once
by the index, so a request that lost its lease can never overwrite a part its successor
recorded; the recording transaction is fenced on the lease too.

The whole-file SHA-256 is checked before a file counts as stored. The instance that received
every byte fed its running hash as they came (the usual case): the hash is checked before the
multipart upload is completed, so a wrong file never reaches its key. After a resume on
another instance, or a restart, the running hash is gone (hashlib cannot be saved, and S3
cannot read parts before completion): the file is completed at its key, read back once and
hashed before its upload is marked done; a mismatch deletes it. Until then it is not counted
anywhere (not arrived, its sitting not complete), as any file still uploading. The multipart
upload is created at the file's key so that completing it is the store: no copy.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncIterator

import anyio

from qmbase.platform import make_private_dir

from .. import contract
from . import sittings
from .locks import Hold
from .local_uploads import LocalUploadStore
from .spool import HASHERS, pump, update_each, write_all
from .storage import S3Storage, safe_key
from .store import now_iso
from .uploads import Appended, UploadRefused

log = logging.getLogger("qm.collector")

MIN_PART = 5 * 1024 * 1024      # S3's smallest part but the last
PART_SIZE = 8 * 1024 * 1024     # shipped as soon as this much is buffered
MAX_PARTS = 10_000              # S3's part numbers: 1 … 10 000
READ_BLOCK = 4 * 1024 * 1024
MULTIPART_GRACE_S = 3600.0
# Cleaning up after a discarded upload (abort the multipart upload, delete its objects) runs
# here, off the request: the upload is already marked discarded, nothing waits for it.
CLEANERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qm-s3-clean")


class Running:
    """This instance's SHA-256 of an upload's first ``offset`` bytes, valid while the upload's
    recorded state is the one it was taken at (``mark``: offset and tail key)."""

    def __init__(self) -> None:
        self._hashes: dict[str, tuple[tuple, "hashlib._Hash"]] = {}

    @staticmethod
    def mark(row: dict) -> tuple:
        return (row["offset"], row.get("tail_key"))

    def get(self, row: dict):
        if row["offset"] == 0:
            return hashlib.sha256()
        cached = self._hashes.get(row["id"])
        return cached[1].copy() if cached and cached[0] == self.mark(row) else None

    def put(self, row: dict, digest) -> None:
        self._hashes[row["id"]] = (self.mark(row), digest)

    def forget(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)


class PartsChunk:
    """One PATCH body on its way to S3: buffered in a private local file, shipped as parts of
    PART_SIZE, the rest written as the new tail by ``keep``. Blocking: run it off the loop."""

    def __init__(self, store: "S3UploadStore", row: dict, buffer_dir: Path, whole, chunk_hash):
        self.store, self.row = store, row
        self.whole, self.chunk_hash = whole, chunk_hash
        self.buffer_dir = buffer_dir
        self.parts: list[dict] = []  # shipped by this PATCH, recorded only by the caller
        self.received = 0
        self.multipart_id = row.get("multipart_id")
        self._open_buffer()
        if row.get("tail_key"):
            self.store.read_into(row["tail_key"], self.file)
            self.buffered = self.file.tell()
        self.tail_key: str | None = None
        self.whole_file: bytes | None = None

    def _open_buffer(self) -> None:
        fd, name = tempfile.mkstemp(dir=self.buffer_dir, suffix=".buf")
        self.path = Path(name)
        self.file = os.fdopen(fd, "w+b", buffering=0)
        self.buffered = 0

    def write(self, pieces) -> None:
        size = sum(len(piece) for piece in pieces)
        hashed = HASHERS.submit(update_each, self.whole, pieces) if self.whole else None
        try:
            write_all(self.file.fileno(), pieces)
            if self.chunk_hash is not None:
                update_each(self.chunk_hash, pieces)
        finally:
            if hashed is not None:
                hashed.result()
        self.received += size
        self.buffered += size
        if self.buffered >= PART_SIZE:
            self._ship()

    def _ship(self) -> None:
        """The buffer, as the next part of the multipart upload."""
        if self.multipart_id is None:
            self.multipart_id = self.store.start_multipart(self.row["id"])
        number = self.store.next_part_number(self.row["id"])
        self.file.seek(0)
        etag = self.store.put_part(self.row["id"], self.multipart_id, number, self.file,
                                   self.buffered)
        self.parts.append({"number": number, "etag": etag, "size": self.buffered})
        self.close()
        self._open_buffer()

    def keep(self) -> None:
        """What is left goes to S3 too: the last part when the file ends here, else the tail."""
        ends = self.row["offset"] + self.received == self.row["length"]
        if ends and self.buffered == self.row["length"] and self.row["path"] == contract.MANIFEST:
            self.file.seek(0)  # the whole manifest is here: checked without reading it back
            self.whole_file = self.file.read()
        if ends and self.buffered:
            self._ship()  # the last part may be under S3's minimum
        elif self.buffered:
            self.file.seek(0)
            self.tail_key = self.store.put_tail(self.row["id"], self.file, self.buffered)
        self.close()

    def close(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class S3UploadStore(LocalUploadStore):
    """The upload rules of ``LocalUploadStore`` (creation, supersession, takeover, caps, the
    checks before storing) with the bytes so far in S3 instead of the local spool."""

    def __init__(self, db, storage: S3Storage, buffer_dir: Path, max_upload_bytes: int,
                 max_open_uploads: int, idle_timeout: float, locks):
        super().__init__(db, None, storage, max_upload_bytes, max_open_uploads, idle_timeout)
        self.locks = locks
        self.client, self.bucket = storage.client, storage.bucket
        self.buffer_dir = make_private_dir(Path(buffer_dir))
        self.running = Running()

    # -- S3 keys and calls (blocking: worker threads) ------------------------------------

    def partial_key(self, upload_id: str, name: str) -> str:
        return self.storage.object_key(f".partial/{upload_id}/{name}")

    def multipart_key(self, upload_id: str) -> str:
        """The multipart upload's key is the file's own: completed there, S3 joins the parts
        in place (no copy of a 4 GiB file in the last PATCH)."""
        row = self.db.one("SELECT station, sitting, path FROM uploads WHERE id = ?", [upload_id])
        return self.final_key(row)

    def start_multipart(self, upload_id: str) -> str:
        answer = self.client.create_multipart_upload(Bucket=self.bucket,
                                                     Key=self.multipart_key(upload_id))
        multipart_id = answer["UploadId"]
        # Recorded at once: an instance killed before its first part is recorded leaves no
        # multipart upload nobody knows of (the next PATCH would start another).
        self.db.execute("UPDATE uploads SET multipart_id = ? WHERE id = ? AND multipart_id IS NULL",
                        [multipart_id, upload_id])
        recorded = self.db.value("SELECT multipart_id FROM uploads WHERE id = ?", [upload_id])
        if recorded != multipart_id:  # another instance started one first: use that one
            self.client.abort_multipart_upload(Bucket=self.bucket, UploadId=multipart_id,
                                               Key=self.multipart_key(upload_id))
        return recorded

    def next_part_number(self, upload_id: str) -> int:
        number = self.db.value("UPDATE uploads SET next_part = coalesce(next_part, 0) + 1 "
                               "WHERE id = ? RETURNING next_part", [upload_id])
        if number > MAX_PARTS:
            raise UploadRefused("storage_failed", offset=None)
        return int(number)

    def put_part(self, upload_id: str, multipart_id: str, number: int, file, size: int) -> str:
        answer = self.client.upload_part(Bucket=self.bucket, Key=self.multipart_key(upload_id),
                                         UploadId=multipart_id, PartNumber=number,
                                         Body=_Window(file, size), ContentLength=size)
        return answer["ETag"]

    def put_tail(self, upload_id: str, file, size: int) -> str:
        key = self.partial_key(upload_id, f"tail-{uuid.uuid4().hex}")
        self.client.put_object(Bucket=self.bucket, Key=key, Body=_Window(file, size),
                               ContentLength=size)
        return key

    def read_into(self, key: str, file, digest=None) -> int:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        count = 0
        for block in body.iter_chunks(READ_BLOCK):
            if file is not None:
                write_all(file.fileno(), [block])
            if digest is not None:
                digest.update(block)
            count += len(block)
        return count

    def recorded_parts(self, upload_id: str) -> list[dict]:
        return self.db.query("SELECT number, etag, size FROM upload_parts WHERE upload_id = ? "
                             "ORDER BY number", [upload_id])

    def _clean(self, upload_id: str, multipart_id: str | None) -> None:
        """Abort the multipart upload (if still open) and delete what is under .partial/<id>/.
        Leftovers after a failure cost space only (README: an S3 lifecycle rule sweeps them)."""
        if multipart_id and self.multipart_open(upload_id, multipart_id):
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, UploadId=multipart_id,
                                                   Key=self.multipart_key(upload_id))
            except Exception as exc:
                log.warning("aborting upload %s in S3 failed: %s", upload_id, type(exc).__name__)
        try:
            listed = self.client.list_objects_v2(Bucket=self.bucket,
                                                 Prefix=self.partial_key(upload_id, ""))
            for item in listed.get("Contents", []):
                self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
        except Exception as exc:
            log.warning("cleaning up upload %s in S3 failed: %s", upload_id, type(exc).__name__)

    def multipart_open(self, upload_id: str, multipart_id: str) -> bool:
        """Whether S3 still has the multipart upload open (ListParts answers NoSuchUpload once
        it is completed or aborted; an UploadPart to it would fail)."""
        from botocore.exceptions import ClientError

        try:
            self.client.list_parts(Bucket=self.bucket, Key=self.multipart_key(upload_id),
                                   UploadId=multipart_id, MaxParts=1)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return False
            raise

    # -- hooks of the upload rules ------------------------------------------------------

    def _open_partial(self, upload_id: str, length: int) -> dict:
        return {"next_part": 0}  # the multipart upload starts with the first part

    def _drop_partial(self, upload_id: str) -> None:
        self.running.forget(upload_id)
        multipart_id = self.db.value("SELECT multipart_id FROM uploads WHERE id = ?", [upload_id])
        CLEANERS.submit(self._clean, upload_id, multipart_id)

    async def _receive(self, row: dict, body: AsyncIterator[bytes],
                       checksum: contract.Checksum | None, hold: Hold) -> Appended:
        start, length = row["offset"], row["length"]
        whole = self.running.get(row)
        try:
            chunk = await anyio.to_thread.run_sync(
                lambda: PartsChunk(self, row, self.buffer_dir, whole,
                                   checksum.hasher() if checksum else None))
        except Exception as exc:
            raise self._storage_refusal(exc, start) from None
        try:
            gone = await pump(body, chunk, length - start, self.idle_timeout, hold)
            if checksum and (gone or chunk.chunk_hash.digest() != checksum.digest):
                # A chunk that cannot be checked or fails its check is not kept: its parts
                # are never recorded (so never assembled) and its numbers never reused.
                chunk.close()
                if gone:
                    return Appended(start, True)
                raise UploadRefused("checksum_mismatch", offset=start)
            await anyio.to_thread.run_sync(chunk.keep)
        except UploadRefused:
            chunk.close()
            raise
        except Exception as exc:
            chunk.close()
            refusal = await anyio.to_thread.run_sync(
                self._storage_refusal, exc, start, row["id"], chunk.multipart_id)
            raise refusal from None
        except BaseException:
            chunk.close()
            raise
        offset = start + chunk.received
        if offset == length:
            # Recorded together with "done", or not at all: a HEAD never sees a false end.
            await self._finish_parts(row, chunk, whole, start, hold)
            return Appended(length, gone)
        self._record_patch(row, chunk, offset, hold)
        if whole is not None:
            self.running.put({**row, "offset": offset, "tail_key": chunk.tail_key}, whole)
        return Appended(offset, gone)

    def _record_patch(self, row: dict, chunk: PartsChunk, offset: int, hold: Hold) -> None:
        """The PATCH's parts, its tail and the offset they make, in one fenced transaction."""
        with self.db.transaction(f"upload:{row['id']}"):
            self.locks.fence(hold)
            for part in chunk.parts:
                self.db.insert("upload_parts", {"upload_id": row["id"], **part})
            self.db.update("uploads", {"id": row["id"]},
                           {"offset": offset, "tail_key": chunk.tail_key})
        if row.get("tail_key") and row["tail_key"] != chunk.tail_key:
            CLEANERS.submit(self._delete, row["tail_key"])

    def _delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            log.warning("deleting an old tail failed: %s", type(exc).__name__)

    def _storage_refusal(self, exc: Exception, offset: int, upload_id: str | None = None,
                         multipart_id: str | None = None) -> UploadRefused:
        """S3 failed: the client resends from ``offset`` later. Unless the multipart upload is
        gone (completed by a try whose answer or copy was lost): then no part can be added and
        the upload is discarded, so the station sends the file again as a new upload."""
        log.error("S3 failed during upload %s: %s", upload_id, type(exc).__name__)
        if upload_id and multipart_id:
            try:
                gone = not self.multipart_open(upload_id, multipart_id)
            except Exception:
                gone = False  # S3 still unreachable: try again later
            if gone:
                self._discard(upload_id)
                return UploadRefused("storage_failed", discarded="storage-failed")
        return UploadRefused("storage_failed", offset=offset)

    # -- finish: assemble, verify, then copy to the final key ---------------------------

    async def _finish(self, row: dict, whole, start: int) -> None:
        """Only the empty file comes here (creation); every other ends in _finish_parts."""
        if whole.hexdigest() != row["sha256"]:
            self._discard(row["id"])
            raise UploadRefused("sha256_mismatch", discarded="sha256-mismatch",
                                extra={"expected": row["sha256"], "received": whole.hexdigest()})
        key = self.storage.object_key(safe_key(row["station"], row["sitting"], row["path"]))
        try:
            await anyio.to_thread.run_sync(
                lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=b""))
        except Exception as exc:  # left receiving: the station's next creation tries again
            raise self._storage_refusal(exc, 0) from None
        with self.db.transaction(sittings.lock(row["station"], row["sitting"])):
            self.db.update("uploads", {"id": row["id"]},
                           {"state": "done", "offset": 0, "finished_at": now_iso()})
            sittings.update_completeness(self.db, row["station"], row["sitting"])

    async def _finish_parts(self, row: dict, chunk: PartsChunk, whole, start: int,
                            hold: Hold) -> None:
        """Every byte is in S3: verify, complete the multipart upload at the file's key (S3
        joins the parts there, no copy), mark the upload done. Nothing of this PATCH is
        recorded unless all of it succeeds: the client's resend of its last chunk retries."""
        upload_id = row["id"]
        if whole is not None and whole.hexdigest() != row["sha256"]:
            self._refuse_mismatch(row, whole.hexdigest())
        stored = self.db.one(
            "SELECT sha256 FROM uploads WHERE station = ? AND sitting = ? AND path = ? "
            "AND state = 'done' AND id != ? LIMIT 1",
            [row["station"], row["sitting"], row["path"], upload_id])
        if stored is not None and stored["sha256"] != row["sha256"]:
            self._discard(upload_id)
            raise UploadRefused("path_taken", path=row["path"])
        check = None
        if row["path"] == contract.MANIFEST and chunk.whole_file is not None:
            check = self._check_manifest_bytes(row, chunk.whole_file)
        if stored is None:
            parts = self.recorded_parts(upload_id) + chunk.parts
            try:
                digest, data = await anyio.to_thread.run_sync(
                    self._complete, row, chunk.multipart_id, parts, whole is None,
                    row["path"] == contract.MANIFEST and check is None)
            except Exception as exc:
                refusal = await anyio.to_thread.run_sync(
                    self._storage_refusal, exc, start, upload_id, chunk.multipart_id)
                raise refusal from None
            if digest is not None and digest != row["sha256"]:
                await anyio.to_thread.run_sync(self._delete, self.final_key(row))
                self._refuse_mismatch(row, digest)
            if data is not None:
                check = self._check_manifest_bytes(row, data, delete=True)
            if check is not None:
                sittings.record_manifest(self.db, row["station"], row["sitting"],
                                         chunk.whole_file or data, check)
        with self.db.transaction(f"upload:{upload_id}", sittings.lock(row["station"], row["sitting"])):
            self.locks.fence(hold)
            for part in chunk.parts:
                self.db.insert("upload_parts", {"upload_id": upload_id, **part}, ignore=True)
            # Only an upload still receiving becomes done (one superseded meanwhile stays
            # discarded: its file, verified, is at its key, and its successor finds it stored).
            if not self.db.execute(
                    "UPDATE uploads SET state = 'done', \"offset\" = ?, tail_key = NULL, "
                    "finished_at = ? WHERE id = ? AND state = 'receiving'",
                    [row["length"], now_iso(), upload_id]):
                raise UploadRefused("gone")
            sittings.update_completeness(self.db, row["station"], row["sitting"])
        self.running.forget(upload_id)
        # Stored already by another upload: this one's multipart upload is aborted, not completed.
        CLEANERS.submit(self._clean, upload_id, chunk.multipart_id if stored else None)

    def final_key(self, row: dict) -> str:
        return self.storage.object_key(safe_key(row["station"], row["sitting"], row["path"]))

    def _refuse_mismatch(self, row: dict, digest: str) -> None:
        self._discard(row["id"])
        raise UploadRefused("sha256_mismatch", discarded="sha256-mismatch",
                            extra={"expected": row["sha256"], "received": digest})

    def _check_manifest_bytes(self, row: dict, data: bytes,
                              delete: bool = False) -> contract.ManifestCheck:
        """The contract's check of a finished manifest; a refused one is discarded (and, when it
        had to be assembled at its key to be read, deleted there)."""
        check = contract.verify_manifest(data, row.get("signature"),
                                         self.manifest_key(row["station"]),
                                         row["station"], row["sitting"])
        if check.ok:
            return check
        if delete:
            self._delete(self.final_key(row))
        self._discard(row["id"])
        if check.code == "signature_bad":  # signed under an older token: a new creation re-signs
            raise UploadRefused("signature_bad", discarded="signature", detail=check.detail)
        raise UploadRefused(check.code, detail=check.detail)

    def _complete(self, row: dict, multipart_id: str, parts: list[dict], rehash: bool,
                  read: bool) -> tuple[str | None, bytes | None]:
        """Complete the multipart upload at the file's key. ``rehash``: the running hash is
        not here (the upload was resumed on this instance, or it restarted), so the file is
        read back once and its SHA-256 returned; ``read``: its bytes too (a manifest too big to
        have been held)."""
        key = self.final_key(row)
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=multipart_id,
            MultipartUpload={"Parts": [{"PartNumber": p["number"], "ETag": p["etag"]}
                                       for p in parts]})
        if not (rehash or read):
            return None, None
        digest = hashlib.sha256()
        with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024, dir=self.buffer_dir) as sink:
            self.read_into(key, sink if read else None, digest)
            sink.seek(0)
            return digest.hexdigest(), (sink.read() if read else None)

    def recover(self) -> None:
        """At start-up nothing needs repair: the index never counts a byte S3 does not hold,
        and what S3 holds past the index (parts of a killed request) is never assembled. What
        a killed instance left to clean up is swept: ``.partial/<id>/`` of every upload that
        is finished or discarded, and multipart uploads nobody owns."""
        prefix = self.storage.object_key(".partial/")
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            ids = [common["Prefix"][len(prefix):].rstrip("/")
                   for page in pages for common in page.get("CommonPrefixes", [])]
        except Exception as exc:  # storage down at start-up: the next start sweeps
            log.warning("listing unfinished uploads in S3 failed: %s", type(exc).__name__)
            return
        for at in range(0, len(ids), 500):
            batch = ids[at:at + 500]
            marks = ", ".join("?" for _ in batch)
            receiving = {row["id"] for row in self.db.query(
                f"SELECT id FROM uploads WHERE state = 'receiving' AND id IN ({marks})", batch)}
            for upload_id in batch:
                if upload_id not in receiving:
                    self._clean(upload_id, None)
        self._sweep_multiparts()

    def _sweep_multiparts(self) -> None:
        """Abort multipart uploads no receiving upload owns (a killed instance's finished or
        discarded ones), once they are an hour old: a younger one may be another instance's,
        created a moment ago and about to be recorded."""
        prefix = self.storage.object_key("")
        cutoff = time.time() - MULTIPART_GRACE_S
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix)
            found = [(u["Key"], u["UploadId"]) for page in pages for u in page.get("Uploads", [])
                     if u["Initiated"].timestamp() < cutoff]
        except Exception as exc:
            log.warning("listing multipart uploads in S3 failed: %s", type(exc).__name__)
            return
        for key, multipart_id in found:
            if self.db.one("SELECT 1 AS owned FROM uploads WHERE multipart_id = ? "
                           "AND state = 'receiving'", [multipart_id]) is None:
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                       UploadId=multipart_id)
                except Exception as exc:
                    log.warning("aborting a leftover multipart upload failed: %s",
                                type(exc).__name__)


class _Window:
    """The first ``size`` bytes of an open file, as a body boto3 can send (and rewind on a
    retry): ``upload_part`` reads from the file's current position."""

    def __init__(self, file, size: int):
        self.file, self.size, self.start = file, size, file.tell()
        self.left = size

    def read(self, amount: int = -1) -> bytes:
        if amount is None or amount < 0 or amount > self.left:
            amount = self.left
        data = self.file.read(amount)
        self.left -= len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self.file.seek(self.start + offset)
            self.left = self.size - offset
        elif whence == 2:
            self.file.seek(self.start + self.size + offset)
            self.left = -offset
        else:
            self.file.seek(offset, 1)
            self.left -= offset
        return self.file.tell() - self.start

    def tell(self) -> int:
        return self.file.tell() - self.start

    def __len__(self) -> int:
        return self.size
