"""tus 1.0.0 (core, creation, checksum, termination) on FastAPI, as the wire contract fixes it.

Written by hand rather than with tuspyserver: measured, it checks the token only after writing a
PATCH body, has no checksum extension, never fsyncs and leaves data past the recorded offset when
killed mid-PATCH. Order of every handler: token (401, before any body is read), tus version,
ownership (403), headers; only then is the body streamed, in large blocks, to the spool.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import hashlib
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import anyio
from fastapi import APIRouter, Request, Response
from sqlite_utils.db import NotFoundError
from starlette.requests import ClientDisconnect

from .. import contract
from ..bundle import Crc32
from . import sittings
from .locks import Hold
from .messages import CollectorError
from .spool import Chunk, truncate
from .storage import check_relative_path, check_segment
from .store import now_iso

router = APIRouter()

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,checksum,termination"
# The station sends CRC-32 (SHA-256 runs once per byte, for the whole file: see bundle.Crc32);
# sha1 is the one algorithm the tus checksum extension requires; sha256 from older stations.
CHECKSUMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "crc32": Crc32}
FLUSH_BYTES = 1024 * 1024  # bytes handed to the writing and hashing threads at a time
# PATCH body bytes all uploads together may hold in memory (blocks being gathered or written).
# Past it a PATCH hands over what it has at once and waits for it to land before reading on
# (uvicorn then stops reading its socket and TCP holds the rest), so a thousand stations at
# once cannot grow the collector by up to two blocks each.
MEMORY_BUDGET = 64 * 1024 * 1024


class Held:
    bytes = 0  # of all PATCH bodies in memory; event loop only
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# tus: Upload-Length and Upload-Offset are non-negative integers. ASCII digits only (str.isdigit
# takes "²" and other Unicode digits int() then refuses), and no more than fit in 63 bits.
DECIMAL = re.compile(r"[0-9]{1,18}")
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
REQUIRED_METADATA = ("station", "sitting", "path", "sha256")
# Spool writes and hashing (hashlib and file writes release the GIL); shared by all uploads.
WRITERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="qm-spool")


def collector(request: Request):
    return request.app.state.collector


def is_tus_path(path: str) -> bool:
    return path == "/files" or path.startswith("/files/")


class MethodOverride:
    """tus core (X-HTTP-Method-Override): the header MUST be taken as the request's method, for
    clients whose runtime or proxy cannot send PATCH or DELETE. ASGI middleware, /files only."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and is_tus_path(scope["path"]):
            for name, value in scope["headers"]:
                if name == b"x-http-method-override":
                    scope = {**scope, "method": value.decode("latin-1").strip().upper()}
                    break
        await self.app(scope, receive, send)


def tus_headers(**extra) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **{k.replace("_", "-"): str(v) for k, v in extra.items()}}


def check_tus_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise CollectorError(412, "tus_version", headers={"Tus-Version": TUS_VERSION})


def parse_metadata(header: str) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64(value)` pairs."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        if key in metadata:
            raise CollectorError(400, "bad_metadata", detail=f"{key}: given twice (keys must be unique)")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CollectorError(400, "bad_metadata", detail=f"{key}: not base64 of UTF-8")
    return metadata


def parse_nonnegative(value: str | None, code: str) -> int:
    if value is None or not DECIMAL.fullmatch(value):
        raise CollectorError(400, code)
    return int(value)


def parse_checksum(header: str | None):
    """`Upload-Checksum: <algorithm> <base64 digest>` → (hash object, expected digest) or None."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    refused = CollectorError(400, "bad_checksum_header", accepted=", ".join(CHECKSUMS))
    if algorithm not in CHECKSUMS:
        raise refused
    try:
        expected = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise refused from None
    hasher = CHECKSUMS[algorithm]()
    if len(expected) != hasher.digest_size:
        raise refused
    return hasher, expected


def own_upload(state, upload_id: str, station: str) -> dict:
    try:
        row = state.db["uploads"].get(upload_id)
    except NotFoundError:
        raise CollectorError(404, "not_found", headers=tus_headers())
    if row["station"] != station:
        raise CollectorError(403, "wrong_station", headers=tus_headers())
    if row["state"] == "discarded":
        raise CollectorError(410, "gone", headers=tus_headers())
    return row


def same_name_other_case(state, station: str, sitting: str, path: str) -> bool:
    """Another path of the sitting that is the same file on a case-insensitive disk."""
    folded = contract.fold(path)
    return any(contract.fold(row["path"]) == folded and row["path"] != path
               for row in state.db["uploads"].rows_where(
                   "station = ? AND sitting = ? AND state != 'discarded'", [station, sitting],
                   select="path"))


@router.options("/files/")
@router.options("/files")
async def options(request: Request) -> Response:
    state = collector(request)
    return Response(status_code=204, headers=tus_headers(
        Tus_Version=TUS_VERSION, Tus_Extension=EXTENSIONS,
        Tus_Checksum_Algorithm=",".join(CHECKSUMS), Tus_Max_Size=state.max_upload_bytes))


@router.post("/files/")
@router.post("/files")
async def create(request: Request) -> Response:
    state = collector(request)
    station = state.station(request)
    check_tus_version(request)
    length = parse_nonnegative(request.headers.get("upload-length"), "bad_length")
    if length > state.max_upload_bytes:
        raise CollectorError(413, "too_large", headers=tus_headers(), length=length,
                             limit=state.max_upload_bytes)
    raw_metadata = request.headers.get("upload-metadata", "")
    meta = parse_metadata(raw_metadata)
    missing = [key for key in REQUIRED_METADATA if not meta.get(key)]
    if missing:
        raise CollectorError(400, "bad_metadata", detail="missing " + ", ".join(missing))
    if meta["station"] != station:
        raise CollectorError(403, "wrong_station", headers=tus_headers())
    if not check_segment(meta["sitting"]):
        raise CollectorError(400, "bad_metadata", detail="sitting must be one plain name")
    if not check_relative_path(meta["path"]):
        raise CollectorError(400, "bad_path", path=meta["path"][:200])
    sha256 = meta["sha256"].lower()
    if not SHA256_HEX.match(sha256):
        raise CollectorError(400, "bad_metadata", detail="sha256 must be 64 hex digits")
    sitting, path = meta["sitting"], meta["path"]
    signature = None
    if path == sittings.MANIFEST_PATH:
        # Refused before a byte is sent: a manifest is stored only under a good signature.
        signature = meta.get(contract.SIGNATURE_METADATA, "")
        if not contract.signature_matches(sha256, signature, state.manifest_key(station)):
            raise CollectorError(422, "signature_bad", headers=tus_headers())

    # A creation is a new upload, which the client starts at offset 0 (tus core): an unfinished
    # upload of the same path, left by a client restarted without its URL store, is superseded.
    # A request still running on it is asked to stop first (see locks.py).
    while True:
        same_path = list(state.db["uploads"].rows_where(
            "station = ? AND sitting = ? AND path = ? AND state != 'discarded'",
            [station, sitting, path]))
        running = [row["id"] for row in same_path if state.locks.locked(row["id"])]
        if not running:
            break
        for upload_id in running:
            await state.locks.take_over(upload_id, busy())
    # No await from here to the insert: under one event loop this is atomic.
    for row in same_path:
        if row["state"] == "done":
            if row["sha256"] != sha256 or row["length"] != length:
                raise CollectorError(409, "path_taken", headers=tus_headers(), path=path)
            # Already stored: the finished upload again. The station's client reads the
            # offset here and sends nothing; a client that ignores it PATCHes from 0 and is
            # told it is done (see patch).
            return Response(status_code=201, headers=tus_headers(
                Location=f"/files/{row['id']}", Upload_Offset=row["length"]))
    if same_name_other_case(state, station, sitting, path):
        raise CollectorError(409, "path_taken", headers=tus_headers(), path=path)
    for row in same_path:
        if row["state"] == "receiving":
            state.discard(row["id"])
    open_now = state.db["uploads"].count_where("station = ? AND state = 'receiving'", [station])
    if open_now >= state.max_open_uploads:
        raise CollectorError(429, "too_many_open", headers=tus_headers(),
                             limit=state.max_open_uploads)
    if shutil.disk_usage(state.spool.root).free < length:
        raise CollectorError(507, "disk_full", headers=tus_headers())
    upload_id = os.urandom(16).hex()
    try:
        state.spool.create(upload_id)
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise CollectorError(507, "disk_full", headers=tus_headers())
        raise
    row = {"id": upload_id, "station": station, "sitting": sitting, "path": path,
           "sha256": sha256, "length": length, "offset": 0, "state": "receiving",
           "created_at": now_iso(), "finished_at": None, "signature": signature,
           "metadata": raw_metadata}
    with state.db.conn:
        state.db["uploads"].insert(row)
    headers = tus_headers(Location=f"/files/{upload_id}")
    if length == 0:  # nothing will be PATCHed: verify and store the empty file now
        await finish(state, row, hashlib.sha256(), start=0)
        headers["Upload-Offset"] = "0"
    return Response(status_code=201, headers=headers)


def busy() -> CollectorError:
    return CollectorError(409, "busy", headers=tus_headers())


def metadata_header(row: dict) -> str:
    """The Upload-Metadata the upload was created with (rebuilt for uploads created before it
    was kept: the four keys the contract requires)."""
    if row.get("metadata") is not None:
        return row["metadata"]
    return ",".join(f"{key} {base64.b64encode(row[key].encode()).decode()}"
                    for key in REQUIRED_METADATA)


@router.head("/files/{upload_id}")
async def head(upload_id: str, request: Request) -> Response:
    state = collector(request)
    station = state.station(request)
    check_tus_version(request)
    row = own_upload(state, upload_id, station)
    if state.locks.locked(upload_id):
        # Someone asks where the upload stands while a request still writes it: a client
        # resuming after its first self stalled. That request stops, keeping what it can vouch
        # for, so the offset told here is the one a PATCH will be checked against.
        await state.locks.take_over(upload_id, busy())
        row = own_upload(state, upload_id, station)
    headers = tus_headers(Upload_Offset=row["offset"], Upload_Length=row["length"],
                          Cache_Control="no-store")
    if metadata := metadata_header(row):
        headers["Upload-Metadata"] = metadata
    return Response(status_code=200, headers=headers)


@router.delete("/files/{upload_id}")
async def terminate(upload_id: str, request: Request) -> Response:
    state = collector(request)
    station = state.station(request)
    check_tus_version(request)
    row = own_upload(state, upload_id, station)
    if row["state"] == "done":
        # Departure from tus termination, which answers 204: a verified file is a student's
        # work and is never withdrawn (nothing a student produced is ever lost).
        raise CollectorError(409, "already_stored", headers=tus_headers())
    async with state.locks.hold(upload_id, busy()):
        row = own_upload(state, upload_id, station)
        if row["state"] == "done":
            raise CollectorError(409, "already_stored", headers=tus_headers())
        state.discard(upload_id)
    return Response(status_code=204, headers=tus_headers())


@router.patch("/files/{upload_id}")
async def patch(upload_id: str, request: Request) -> Response:
    state = collector(request)
    station = state.station(request)
    check_tus_version(request)
    row = own_upload(state, upload_id, station)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/offset+octet-stream":
        raise CollectorError(415, "bad_content_type", headers=tus_headers())
    claimed = parse_nonnegative(request.headers.get("upload-offset"), "bad_offset")
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    if row["state"] == "done":
        # Departure from tus core (409 for any offset but the upload's): the file is verified
        # and stored, so whatever a client sends again is read and dropped, and it is told the
        # upload is complete. A client re-sending a stored file from 0 (tuspy, tus-js-client
        # after a creation) would otherwise fail or retry forever; nothing is modified either way.
        if claimed > row["length"]:
            raise CollectorError(409, "offset_mismatch", headers=tus_headers(
                Upload_Offset=row["offset"]), offset=row["offset"], claimed=claimed)
        gone = await drain(request, state.patch_idle_timeout)
        return Response(status_code=204, headers=tus_headers(
            Upload_Offset=row["length"], **({"Connection": "close"} if gone else {})))
    async with state.locks.hold(upload_id, busy()) as hold:
        row = own_upload(state, upload_id, station)  # it may have changed while we waited
        if claimed != row["offset"]:
            raise CollectorError(409, "offset_mismatch", headers=tus_headers(
                Upload_Offset=row["offset"]), offset=row["offset"], claimed=claimed)
        if row["state"] == "done":
            return Response(status_code=204, headers=tus_headers(Upload_Offset=row["offset"]))
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and claimed + int(declared) > row["length"]:
            raise CollectorError(400, "past_length", headers=tus_headers())
        return await receive(state, row, request, checksum, hold)


async def drain(request: Request, idle_timeout: float) -> bool:
    """Read a body to its end and drop it; True when the client went away (or went silent)."""
    pieces = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                await anext(pieces)
        except StopAsyncIteration:
            return False
        except (ClientDisconnect, TimeoutError):
            return True


async def pump(request: Request, chunk: Chunk, room: int, idle_timeout: float,
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
    pieces = request.stream().__aiter__()
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
            except (ClientDisconnect, TimeoutError):
                disconnected = True
                break
            except asyncio.CancelledError:
                if not hold.stopped_by_cancel():
                    raise
                break
            finally:
                hold.waiting_for_bytes = False
            if queued + in_block + len(piece) > room:
                raise CollectorError(400, "past_length", headers=tus_headers())
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


async def receive(state, row: dict, request: Request, checksum, hold: Hold) -> Response:
    upload_id, start, length = row["id"], row["offset"], row["length"]
    await anyio.to_thread.run_sync(state.spool.reconcile, upload_id, start)
    whole = (await anyio.to_thread.run_sync(state.spool.hasher, upload_id, start)).copy()
    chunk = Chunk(state.spool.path(upload_id), start, whole, checksum[0] if checksum else None)
    try:
        disconnected = await pump(request, chunk, length - start, state.patch_idle_timeout, hold)
        # The data is on disk before the offset that counts it is recorded.
        await anyio.to_thread.run_sync(chunk.keep)
    except OSError as exc:
        chunk.drop()
        if exc.errno in DISK_FULL:
            raise CollectorError(507, "disk_full", headers=tus_headers(Upload_Offset=start))
        raise
    except BaseException:  # refused, or cancelled: nothing of this request is kept
        chunk.drop()
        raise

    # A client that went silent may still be connected: tell it the offset that counts, and
    # close the connection (the rest of its body, should it come, belongs to no request).
    gone = {"Connection": "close"} if disconnected else {}
    if checksum and (disconnected or chunk.chunk_hash.digest() != checksum[1]):
        # A chunk that cannot be checked or fails its check is not kept.
        await anyio.to_thread.run_sync(truncate, chunk.path, start)
        if disconnected:
            return Response(status_code=204, headers=tus_headers(Upload_Offset=start, **gone))
        raise CollectorError(460, "checksum_mismatch", headers=tus_headers(Upload_Offset=start))

    offset = start + chunk.received
    with state.db.conn:
        state.db["uploads"].update(upload_id, {"offset": offset})
    state.spool.remember(upload_id, offset, whole)
    if offset == length:  # finish even if the client has gone: its HEAD must not see a false end
        return await finish(state, {**row, "offset": offset}, whole, start)
    return Response(status_code=204, headers=tus_headers(Upload_Offset=offset, **gone))


async def finish(state, row: dict, whole, start: int) -> Response:
    """The last byte is in: store the file as good only if its SHA-256 is the announced one,
    and only once: when the same path already holds it, this upload ends done, not stored again."""
    if whole.hexdigest() != row["sha256"]:
        state.discard(row["id"])
        raise CollectorError(460, "sha256_mismatch", headers=tus_headers(
            Upload_Discarded="sha256-mismatch"), extra={"expected": row["sha256"],
                                                        "received": whole.hexdigest()})
    stored = next(state.db["uploads"].rows_where(
        "station = ? AND sitting = ? AND path = ? AND state = 'done' AND id != ?",
        [row["station"], row["sitting"], row["path"], row["id"]], limit=1), None)
    if stored is not None:
        if stored["sha256"] != row["sha256"]:  # two creations raced with different content
            state.discard(row["id"])
            raise CollectorError(409, "path_taken", headers=tus_headers(), path=row["path"])
        state.mark_done(row)
        await anyio.to_thread.run_sync(state.spool.remove, row["id"])
        return Response(status_code=204, headers=tus_headers(Upload_Offset=row["length"]))
    check = None
    if row["path"] == sittings.MANIFEST_PATH:
        check = state.check_manifest(row)
        if not check.ok:
            state.discard(row["id"])
            headers = tus_headers()
            if check.code == "signature_bad":  # signed under an older token: a new creation re-signs
                headers["Upload-Discarded"] = "signature"
            raise CollectorError(460 if check.code == "signature_bad" else 422, check.code,
                                 headers=headers, detail=check.detail)
    try:
        if check is not None:
            state.record_manifest(row, check)
        await anyio.to_thread.run_sync(state.put_file, row)
    except Exception as exc:
        # Not done: drop this last chunk so the client's HEAD shows it still has to send it.
        path = state.spool.path(row["id"])
        if path.exists():
            await anyio.to_thread.run_sync(truncate, path, start)
            with state.db.conn:
                state.db["uploads"].update(row["id"], {"offset": start})
            state.spool.forget(row["id"])
        full = isinstance(exc, OSError) and exc.errno in DISK_FULL
        state.log_storage_error(row, exc)
        raise CollectorError(507 if full else 503, "disk_full" if full else "storage_failed",
                             headers=tus_headers(Upload_Offset=start))
    state.mark_done(row)
    return Response(status_code=204, headers=tus_headers(Upload_Offset=row["length"]))
