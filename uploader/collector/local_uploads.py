"""``UploadStore`` on the collector's SQLite database and a spool on local disk.

The table ``uploads`` holds each upload's row; its bytes so far are ``<data>/incoming/<id>.part``
(spool.py: fsync before an offset is recorded, tails past it cut); one request at a time per
upload, the newest taking over (locks.py); verified files go to the district's ``Storage``.
Everything runs on the event loop's thread; file work goes to worker threads.
"""
from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import logging
import os
import shutil
from typing import AsyncIterator

import anyio

from .. import contract
from . import sittings
from .index import Index
from .locks import Hold, UploadLocks
from .spool import Chunk, Spool, pump, truncate
from .storage import Storage, safe_key
from .store import now_iso
from .uploads import Appended, BodyGone, NewUpload, Upload, UploadRefused, check_new

log = logging.getLogger("qm.collector")

DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
class LocalUploadStore:
    def __init__(self, db: Index, spool: Spool, storage: Storage,
                 max_upload_bytes: int, max_open_uploads: int, idle_timeout: float):
        self.db, self.spool, self.storage = db, spool, storage
        self.max_upload_bytes, self.max_open_uploads = max_upload_bytes, max_open_uploads
        self.idle_timeout = idle_timeout
        self.locks = UploadLocks()

    # -- rows ---------------------------------------------------------------------------

    def _row(self, upload_id: str, station: str) -> dict:
        row = self.db.one("SELECT * FROM uploads WHERE id = ?", [upload_id])
        if row is None:
            raise UploadRefused("not_found")
        if row["station"] != station:
            raise UploadRefused("wrong_station")
        if row["state"] == "discarded":
            raise UploadRefused("gone")
        return row

    def get(self, upload_id: str, station: str) -> Upload:
        return Upload.of(self._row(upload_id, station))

    def _set(self, upload_id: str, **fields) -> None:
        self.db.update("uploads", {"id": upload_id}, fields)

    def _discard(self, upload_id: str) -> None:
        self._set(upload_id, state="discarded")
        self._drop_partial(upload_id)

    # -- where the bytes so far live: the local spool (s3_uploads.py: S3 multipart) ------

    def _open_partial(self, upload_id: str, length: int) -> dict:
        """Make room for a new upload's bytes; returns the row's fields that say where."""
        if shutil.disk_usage(self.spool.root).free < length:
            raise UploadRefused("disk_full")
        try:
            self.spool.create(upload_id)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise UploadRefused("disk_full") from None
            raise
        return {}

    def _drop_partial(self, upload_id: str) -> None:
        self.spool.remove(upload_id)

    def _busy(self) -> UploadRefused:
        return UploadRefused("busy")

    # -- create -------------------------------------------------------------------------

    async def create(self, station: str, new: NewUpload) -> Upload:
        new = dataclasses.replace(new, sha256=new.sha256.lower())
        check_new(new, self.max_upload_bytes)
        sitting, path, sha256, length = new.sitting, new.path, new.sha256, new.length
        signature = None
        if path == contract.MANIFEST:
            # Refused before a byte is sent: a manifest is stored only under a good signature.
            signature = new.signature or ""
            if not contract.signature_matches(sha256, signature, self.manifest_key(station)):
                raise UploadRefused("signature_bad")

        # A creation is a new upload, which the client starts at offset 0 (tus core): an
        # unfinished upload of the same path, left by a client restarted without its URL store,
        # is superseded. A request still running on it is asked to stop first (see locks.py).
        while True:
            same_path = self.db.query(
                "SELECT * FROM uploads WHERE station = ? AND sitting = ? AND path = ? "
                "AND state != 'discarded'", [station, sitting, path])
            running = [row["id"] for row in same_path if self.locks.locked(row["id"])]
            if not running:
                break
            for upload_id in running:
                await self.locks.take_over(upload_id, self._busy())
        # The decision and the insert in one transaction holding the path's lock: atomic
        # across collector instances on PostgreSQL (and, with no await, in one event loop).
        superseded: list[str] = []
        with self.db.transaction(f"path:{station}/{sitting}/{path}"):
            upload = self._create_row(station, new, signature, superseded)
        for upload_id in superseded:  # their bytes go once the new row is committed
            self._drop_partial(upload_id)
        if upload.length == 0 and not upload.done:
            # Nothing will be PATCHed: verify and store the empty file now.
            row = self.db.one("SELECT * FROM uploads WHERE id = ?", [upload.id])
            await self._finish(row, hashlib.sha256(), start=0)
            upload = self.get(upload.id, station)
        return upload

    def _create_row(self, station: str, new: NewUpload, signature: str | None,
                    superseded: list[str]) -> Upload:
        sitting, path, sha256, length = new.sitting, new.path, new.sha256, new.length
        same_path = self.db.query(
            "SELECT * FROM uploads WHERE station = ? AND sitting = ? AND path = ? "
            "AND state != 'discarded'", [station, sitting, path])
        for row in same_path:
            if row["state"] == "done":
                if row["sha256"] != sha256 or row["length"] != length:
                    raise UploadRefused("path_taken", path=path)
                # Already stored: the finished upload again. The station's client reads the
                # offset and sends nothing; a client that ignores it PATCHes from 0 and is told
                # it is done (see append).
                return Upload.of(row)
        if self._same_name_other_case(station, sitting, path):
            raise UploadRefused("path_taken", path=path)
        for row in same_path:
            if row["state"] == "receiving":
                self._set(row["id"], state="discarded")
                superseded.append(row["id"])
        open_now = self.db.count("uploads", "station = ? AND state = 'receiving'", [station])
        if open_now >= self.max_open_uploads:
            raise UploadRefused("too_many_open", limit=self.max_open_uploads)
        upload_id = os.urandom(16).hex()
        where = self._open_partial(upload_id, length)
        row = {**where, "id": upload_id, "station": station, "sitting": sitting, "path": path,
               "sha256": sha256, "length": length, "offset": 0, "state": "receiving",
               "created_at": now_iso(), "finished_at": None, "signature": signature,
               "metadata": new.metadata}
        self.db.insert("uploads", row)
        return Upload.of(row)

    def _same_name_other_case(self, station: str, sitting: str, path: str) -> bool:
        """Another path of the sitting that is the same file on a case-insensitive disk."""
        folded = contract.fold(path)
        return any(contract.fold(row["path"]) == folded and row["path"] != path
                   for row in self.db.query(
                       "SELECT path FROM uploads WHERE station = ? AND sitting = ? "
                       "AND state != 'discarded'", [station, sitting]))

    # -- where it stands, termination --------------------------------------------------

    async def current(self, upload_id: str, station: str) -> Upload:
        self._row(upload_id, station)
        if self.locks.locked(upload_id):
            # Someone asks where the upload stands while a request still writes it: a client
            # resuming after its first self stalled. That request stops, keeping what it can
            # vouch for, so the offset told here is the one an append will be checked against.
            await self.locks.take_over(upload_id, self._busy())
        return self.get(upload_id, station)

    async def terminate(self, upload_id: str, station: str) -> None:
        if self._row(upload_id, station)["state"] == "done":
            # A verified file is a student's work and is never withdrawn.
            raise UploadRefused("already_stored")
        async with self.locks.hold(upload_id, self._busy()):
            if self._row(upload_id, station)["state"] == "done":
                raise UploadRefused("already_stored")
            self._discard(upload_id)

    # -- append -------------------------------------------------------------------------

    async def append(self, upload_id: str, station: str, offset: int,
                     body: AsyncIterator[bytes], checksum: contract.Checksum | None,
                     declared: int | None = None) -> Appended:
        row = self._row(upload_id, station)
        if row["state"] == "done":
            # The file is verified and stored, so whatever a client sends again is read and
            # dropped, and it is told the upload is complete. A client re-sending a stored file
            # from 0 (tuspy, tus-js-client after a creation) would otherwise fail or retry
            # forever; nothing is modified either way.
            if offset > row["length"]:
                raise UploadRefused("offset_mismatch", offset=row["offset"],
                                    claimed=offset)
            return Appended(row["length"], await self._drain(body))
        async with self.locks.hold(upload_id, self._busy()) as hold:
            row = self._row(upload_id, station)  # it may have changed while we waited
            if offset != row["offset"]:
                raise UploadRefused("offset_mismatch", offset=row["offset"],
                                    claimed=offset)
            if row["state"] == "done":
                return Appended(row["offset"], False)
            if declared is not None and offset + declared > row["length"]:
                raise UploadRefused("past_length")
            return await self._receive(row, body, checksum, hold)

    async def _drain(self, body: AsyncIterator[bytes]) -> bool:
        """Read a body to its end and drop it; True when the client went away (or silent)."""
        pieces = body.__aiter__()
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    await anext(pieces)
            except StopAsyncIteration:
                return False
            except (BodyGone, TimeoutError):
                return True

    async def _receive(self, row: dict, body: AsyncIterator[bytes],
                       checksum: contract.Checksum | None, hold: Hold) -> Appended:
        upload_id, start, length = row["id"], row["offset"], row["length"]
        await anyio.to_thread.run_sync(self.spool.reconcile, upload_id, start)
        whole = (await anyio.to_thread.run_sync(self.spool.hasher, upload_id, start)).copy()
        chunk = Chunk(self.spool.path(upload_id), start, whole,
                      checksum.hasher() if checksum else None)
        try:
            gone = await pump(body, chunk, length - start, self.idle_timeout, hold)
            # The data is on disk before the offset that counts it is recorded.
            await anyio.to_thread.run_sync(chunk.keep)
        except OSError as exc:
            chunk.drop()
            if exc.errno in DISK_FULL:
                raise UploadRefused("disk_full", offset=start) from None
            raise
        except BaseException:  # refused, or cancelled: nothing of this request is kept
            chunk.drop()
            raise

        if checksum and (gone or chunk.chunk_hash.digest() != checksum.digest):
            # A chunk that cannot be checked or fails its check is not kept.
            await anyio.to_thread.run_sync(truncate, chunk.path, start)
            if gone:
                return Appended(start, True)
            raise UploadRefused("checksum_mismatch", offset=start)

        offset = start + chunk.received
        self._set(upload_id, offset=offset)
        self.spool.remember(upload_id, offset, whole)
        if offset == length:  # finish even if the client has gone: its HEAD must not see a false end
            await self._finish({**row, "offset": offset}, whole, start)
        return Appended(offset, gone)

    # -- finish: verify, then store -----------------------------------------------------

    async def _finish(self, row: dict, whole, start: int) -> None:
        """The last byte is in: store the file as good only if its SHA-256 is the announced
        one, and only once: when the same path already holds it, this upload ends done, not
        stored again."""
        if whole.hexdigest() != row["sha256"]:
            self._discard(row["id"])
            raise UploadRefused("sha256_mismatch", discarded="sha256-mismatch",
                                extra={"expected": row["sha256"], "received": whole.hexdigest()})
        stored = self.db.one(
            "SELECT sha256 FROM uploads WHERE station = ? AND sitting = ? AND path = ? "
            "AND state = 'done' AND id != ? LIMIT 1",
            [row["station"], row["sitting"], row["path"], row["id"]])
        if stored is not None:
            if stored["sha256"] != row["sha256"]:  # two creations raced with different content
                self._discard(row["id"])
                raise UploadRefused("path_taken", path=row["path"])
            self._mark_done(row)
            await anyio.to_thread.run_sync(self.spool.remove, row["id"])
            return
        check = self._check_manifest(row)
        if check is not None and not check.ok:
            self._discard(row["id"])
            if check.code == "signature_bad":  # signed under an older token: a new creation re-signs
                raise UploadRefused("signature_bad", discarded="signature", detail=check.detail)
            raise UploadRefused(check.code, detail=check.detail)
        try:
            self._record(row, check)
            await anyio.to_thread.run_sync(self._put, row)
        except Exception as exc:
            # Not done: drop this last chunk so the client's HEAD shows it still has to send it.
            self._step_back(row, start, exc)
            full = isinstance(exc, OSError) and exc.errno in DISK_FULL
            raise UploadRefused("disk_full" if full else "storage_failed", offset=start) from None
        self._mark_done(row)

    def manifest_key(self, station: str) -> bytes:
        return bytes.fromhex(self.db.value("SELECT manifest_key FROM stations WHERE id = ?",
                                           [station]) or "")

    def _check_manifest(self, row: dict) -> contract.ManifestCheck | None:
        """The finished manifest upload, checked as the contract says; None for other files."""
        if row["path"] != contract.MANIFEST:
            return None
        data = self.spool.path(row["id"]).read_bytes()
        return contract.verify_manifest(data, row.get("signature"), self.manifest_key(row["station"]),
                                        row["station"], row["sitting"])

    def _record(self, row: dict, check: contract.ManifestCheck | None) -> None:
        """A verified manifest's record (sittings.py), taken from its bytes in the spool."""
        if check is not None:
            sittings.record_manifest(self.db, row["station"], row["sitting"],
                                     self.spool.path(row["id"]).read_bytes(), check)

    def _put(self, row: dict) -> None:
        """Hand the verified file to storage (in a worker thread: it touches storage alone)."""
        self.storage.put(self.spool.path(row["id"]),
                         safe_key(row["station"], row["sitting"], row["path"]))

    def _step_back(self, row: dict, offset: int, exc: BaseException) -> None:
        """Storing failed: cut the spool back to `offset` and record it, so that resending from
        there finishes the upload once storage is back."""
        # Upload ids only: paths carry student codes, which stay out of logs.
        log.error("storing upload %s failed: %s", row["id"], type(exc).__name__)
        path = self.spool.path(row["id"])
        if path.exists():
            truncate(path, offset)
            self._set(row["id"], offset=offset)
            self.spool.forget(row["id"])

    def _mark_done(self, row: dict) -> None:
        with self.db.transaction(sittings.lock(row["station"], row["sitting"])):
            self.db.update("uploads", {"id": row["id"]},
                           {"state": "done", "offset": row["length"], "finished_at": now_iso()})
            sittings.update_completeness(self.db, row["station"], row["sitting"])
        self.spool.forget(row["id"])

    # -- after a crash ------------------------------------------------------------------

    def recover(self) -> None:
        receiving = self.db.query("SELECT * FROM uploads WHERE state = 'receiving'")
        owned = {row["id"] for row in receiving}
        for part in self.spool.root.glob("*.part"):
            if part.stem not in owned:  # killed between creating one and recording it
                part.unlink()
        for row in receiving:
            had_file = self.spool.path(row["id"]).exists()
            on_disk = self.spool.reconcile(row["id"], row["offset"])
            key = safe_key(row["station"], row["sitting"], row["path"])
            if row["offset"] == row["length"] and not had_file and self.storage.exists(key):
                self._mark_done(row)  # killed between storing the file and recording it
            elif on_disk < row["offset"]:
                self._set(row["id"], offset=on_disk)
            elif row["offset"] == row["length"]:
                self._finish_recovered(row)

    def _finish_recovered(self, row: dict) -> None:
        if not self.spool.path(row["id"]).exists():
            self.spool.create(row["id"])
        if self.spool.hasher(row["id"], row["length"]).hexdigest() != row["sha256"]:
            self._discard(row["id"])
            return
        check = self._check_manifest(row)
        if check is not None and not check.ok:  # never stored; the station's next creation resends
            self._discard(row["id"])
            return
        try:
            self._record(row, check)
            self._put(row)
        except Exception as exc:  # storage down at start-up
            if row["length"]:
                # Step back one byte, so the client's HEAD shows the file unfinished and its
                # resend of that byte finishes it once storage is back.
                self._step_back(row, row["length"] - 1, exc)
            else:
                log.error("storing upload %s failed: %s", row["id"], type(exc).__name__)
            return
        self._mark_done(row)
