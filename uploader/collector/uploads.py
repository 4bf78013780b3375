"""The collector's upload state, behind one interface (tusd's split: HTTP handler | DataStore + locker).

An ``UploadStore`` owns every rule of an upload's life: the table of uploads, the bytes
received so far, one writer at a time per upload (a stalled holder is taken over), creation,
appending, the whole-file SHA-256 check before a file is stored, discarding, and recovery
after a crash. It knows nothing of HTTP: it refuses with ``UploadRefused`` (a code from the
collector's catalog plus the facts a client needs), and ``tus.py`` turns that into a status
and tus headers. Today's implementation is ``LocalUploadStore`` (SQLite + a spool on local
disk, ``local_uploads.py``); another (e.g. PostgreSQL + S3 multipart) must keep the same
promises, written on each method below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Protocol

from .. import contract
from .messages import CollectorError


@dataclass(frozen=True)
class NewUpload:
    """What a client announces when it creates an upload (the contract's metadata)."""

    sitting: str
    path: str
    sha256: str
    length: int
    metadata: str = ""            # the raw Upload-Metadata, told back as it was sent
    signature: str | None = None  # the manifest's (contract.SIGNATURE_METADATA)


@dataclass(frozen=True)
class Upload:
    id: str
    station: str
    sitting: str
    path: str
    sha256: str
    length: int
    offset: int          # bytes received and durable; never ahead of the data
    state: str           # receiving | done | discarded
    metadata: str

    @property
    def done(self) -> bool:
        return self.state == "done"

    @classmethod
    def of(cls, row: dict) -> "Upload":
        return cls(row["id"], row["station"], row["sitting"], row["path"], row["sha256"],
                   row["length"], row["offset"], row["state"], metadata_of(row))


@dataclass(frozen=True)
class Appended:
    offset: int   # the offset that counts now
    gone: bool    # the client went away or silent (or was taken over) before its body ended


class BodyGone(Exception):
    """Raised by a request body's iterator when the client disconnects mid-body."""


class UploadRefused(CollectorError):
    """An upload rule said no: ``code`` from the catalog, ``offset`` the client should resume
    from (when it matters), ``discarded`` why the upload was dropped (when it was and the client
    must start a new one). The HTTP status and headers are tus.py's to choose."""

    def __init__(self, code: str, offset: int | None = None, discarded: str | None = None,
                 extra: dict | None = None, **fields):
        super().__init__(0, code, extra=extra, offset=offset, **fields)
        self.offset, self.discarded = offset, discarded


class UploadStore(Protocol):
    """The upload state machine: receiving → done (stored, verified) | discarded.

    Every method names the station asking; an upload of another station is refused
    (``wrong_station``), an unknown one ``not_found``, a discarded one ``gone``.
    """

    max_upload_bytes: int

    def get(self, upload_id: str, station: str) -> Upload:
        """The upload as recorded now (no waiting for a request writing it)."""

    async def create(self, station: str, new: NewUpload) -> Upload:
        """A new upload at offset 0, or the stored one when the same file is already in.

        Refuses a bad name (``bad_metadata``, ``bad_path``), a size over ``max_upload_bytes``
        (``too_large``), a manifest whose signature does not match (``signature_bad``, before a
        byte is sent), another file at the same path or the same path in another case
        (``path_taken``), more than the station's cap of unfinished uploads (``too_many_open``)
        and a full disk (``disk_full``). An unfinished upload of the same path is superseded
        (its writer, if any, is taken over first). An empty file is verified and stored at once.
        """

    async def current(self, upload_id: str, station: str) -> Upload:
        """The upload as a resuming client must see it: a request still writing it is asked
        to stop first, and the offset returned counts only what that request made durable."""

    async def append(self, upload_id: str, station: str, offset: int,
                     body: AsyncIterator[bytes], checksum: contract.Checksum | None,
                     declared: int | None = None) -> Appended:
        """Append ``body`` at ``offset`` (which must be the upload's: ``offset_mismatch``).

        One writer per upload: a newer request takes over (``busy`` if the holder does not let
        go in time). Bytes are durable before the offset that counts them is recorded. A body
        past the length is refused (``past_length``; ``declared`` lets that happen before a
        byte is read); one failing ``checksum`` is dropped (``checksum_mismatch``), and so is
        one that ends early when it carries a checksum (it cannot be checked). A body
        that stops arriving for the idle timeout counts as the client gone. At the last byte
        the whole file's SHA-256 is checked (``sha256_mismatch``: discarded) and, for the
        manifest, the contract's check (``contract.verify_manifest``) before the file is
        stored; when storing fails, the last chunk is dropped (``storage_failed``,
        ``disk_full``) so that resending it finishes the upload. An upload already done
        reads the body, keeps nothing and answers its length.
        """

    async def terminate(self, upload_id: str, station: str) -> None:
        """Discard an unfinished upload; a stored one is never withdrawn (``already_stored``)."""

    def recover(self) -> None:
        """After a crash, before any request: data past a recorded offset is cut, uploads
        whose last byte was in are finished (or stepped back one byte if storage is down), and
        partial data no upload owns is removed."""


def metadata_of(row: dict) -> str:
    """The Upload-Metadata the upload was created with (rebuilt for uploads created before it
    was kept: the keys the contract requires)."""
    if row.get("metadata") is not None:
        return row["metadata"]
    return contract.encode_metadata({key: row[key] for key in contract.UPLOAD_METADATA})


def check_new(new: NewUpload, max_upload_bytes: int) -> None:
    """The rules on what a client announces, before anything is recorded."""
    if new.length > max_upload_bytes:
        raise UploadRefused("too_large", length=new.length, limit=max_upload_bytes)
    if not contract.safe_segment(new.sitting):
        raise UploadRefused("bad_metadata", detail="sitting must be one plain name")
    if not contract.safe_path(new.path):
        raise UploadRefused("bad_path", path=new.path[:200])
    if not contract.SHA256_HEX.match(new.sha256):
        raise UploadRefused("bad_metadata", detail="sha256 must be 64 hex digits")
