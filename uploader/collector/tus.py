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
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
REQUIRED_METADATA = ("station", "sitting", "path", "sha256")
# Spool writes and hashing (hashlib and file writes release the GIL); shared by all uploads.
WRITERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="qm-spool")


def collector(request: Request):
    return request.app.state.collector


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
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CollectorError(400, "bad_metadata", detail=f"{key}: not base64 of UTF-8")
    return metadata


def parse_nonnegative(value: str | None, code: str) -> int:
    if value is None or not value.isdigit():
        raise CollectorError(400, code)
    return int(value)


def parse_checksum(header: str | None):
    """`Upload-Checksum: <algorithm> <base64 digest>` → (hash object, expected digest) or None."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise CollectorError(400, "bad_checksum_header")
    try:
        expected = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise CollectorError(400, "bad_checksum_header")
    hasher = CHECKSUMS[algorithm]()
    if len(expected) != hasher.digest_size:
        raise CollectorError(400, "bad_checksum_header")
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
    meta = parse_metadata(request.headers.get("upload-metadata", ""))
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

    # No await between this lookup and the insert: under one event loop creation is atomic.
    same_path = list(state.db["uploads"].rows_where(
        "station = ? AND sitting = ? AND path = ? AND state != 'discarded'", [station, sitting, path]))
    for row in same_path:
        if row["sha256"] == sha256 and row["length"] == length:
            if signature is not None and row["state"] == "receiving" and row["signature"] != signature:
                with state.db.conn:  # the station was given a new token: keep the newest signature
                    state.db["uploads"].update(row["id"], {"signature": signature})
            if row["state"] == "receiving" and row["offset"] == length:
                # All bytes in but not stored (storage failed): try again now, so the client
                # never takes an unstored file for a finished one.
                if state.lock(row["id"]).locked():
                    raise CollectorError(409, "busy", headers=tus_headers())
                whole = await anyio.to_thread.run_sync(state.spool.hasher, row["id"], length)
                await finish(state, row, whole, start=length)
                row["state"] = "done"
            extra = {"Upload_Offset": row["length"]} if row["state"] == "done" else {}
            return Response(status_code=201, headers=tus_headers(
                Location=f"/files/{row['id']}", **extra))
    if any(row["state"] == "done" for row in same_path) or same_name_other_case(state, station, sitting, path):
        raise CollectorError(409, "path_taken", headers=tus_headers(), path=path)
    if shutil.disk_usage(state.spool.root).free < length:
        raise CollectorError(507, "disk_full", headers=tus_headers())
    for row in same_path:  # the station has moved on to other content for this path
        state.discard(row["id"])
    upload_id = os.urandom(16).hex()
    try:
        state.spool.create(upload_id)
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise CollectorError(507, "disk_full", headers=tus_headers())
        raise
    row = {"id": upload_id, "station": station, "sitting": sitting, "path": path,
           "sha256": sha256, "length": length, "offset": 0, "state": "receiving",
           "created_at": now_iso(), "finished_at": None, "signature": signature}
    with state.db.conn:
        state.db["uploads"].insert(row)
    headers = tus_headers(Location=f"/files/{upload_id}")
    if length == 0:  # nothing will be PATCHed: verify and store the empty file now
        await finish(state, row, hashlib.sha256(), start=0)
        headers["Upload-Offset"] = "0"
    return Response(status_code=201, headers=headers)


@router.head("/files/{upload_id}")
async def head(upload_id: str, request: Request) -> Response:
    state = collector(request)
    station = state.station(request)
    check_tus_version(request)
    row = own_upload(state, upload_id, station)
    return Response(status_code=200, headers=tus_headers(
        Upload_Offset=row["offset"], Upload_Length=row["length"], Cache_Control="no-store"))


@router.delete("/files/{upload_id}")
async def terminate(upload_id: str, request: Request) -> Response:
    state = collector(request)
    station = state.station(request)
    check_tus_version(request)
    row = own_upload(state, upload_id, station)
    if row["state"] == "done":
        raise CollectorError(409, "already_stored", headers=tus_headers())
    if state.lock(upload_id).locked():
        raise CollectorError(409, "busy", headers=tus_headers())
    state.discard(upload_id)
    return Response(status_code=204, headers=tus_headers())


@router.patch("/files/{upload_id}")
async def patch(upload_id: str, request: Request) -> Response:
    state = collector(request)
    station = state.station(request)
    check_tus_version(request)
    own_upload(state, upload_id, station)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/offset+octet-stream":
        raise CollectorError(415, "bad_content_type", headers=tus_headers())
    claimed = parse_nonnegative(request.headers.get("upload-offset"), "offset_mismatch")
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    lock = state.lock(upload_id)
    if lock.locked():
        raise CollectorError(409, "busy", headers=tus_headers())
    async with lock:
        row = own_upload(state, upload_id, station)  # it may have changed while we waited
        if claimed != row["offset"]:
            raise CollectorError(409, "offset_mismatch", headers=tus_headers(
                Upload_Offset=row["offset"]), offset=row["offset"], claimed=claimed)
        if row["state"] == "done":
            return Response(status_code=204, headers=tus_headers(Upload_Offset=row["offset"]))
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and claimed + int(declared) > row["length"]:
            raise CollectorError(400, "past_length", headers=tus_headers())
        return await receive(state, row, request, checksum)


async def pump(request: Request, chunk: Chunk, room: int, idle_timeout: float) -> bool:
    """Stream the body into `chunk` in blocks of FLUSH_BYTES; True when the client went away.

    A client that sends nothing for `idle_timeout` seconds counts as gone: a stalled link
    would otherwise hold the upload's lock (every other PATCH gets 409 busy) until the OS
    drops the dead socket, which can take many minutes.

    One block is written and hashed in worker threads while the next one is being received,
    so the socket, the disk and the hashing overlap instead of taking turns. A block is the
    list of pieces as the server handed them over: they are joined in the writing thread,
    not here on the event loop's, the busiest one."""
    loop = asyncio.get_running_loop()
    block: list[bytes] = []
    in_block = queued = 0
    pending = None
    pieces = request.stream().__aiter__()
    disconnected = False
    try:
        while True:
            try:
                # Only the wait for bytes is timed: a slow disk must not cut a live client off,
                # and a cancelled wait on a block in flight would let it land after a drop.
                async with asyncio.timeout(idle_timeout):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                break
            except (ClientDisconnect, TimeoutError):
                disconnected = True
                break
            if queued + in_block + len(piece) > room:
                raise CollectorError(400, "past_length", headers=tus_headers())
            if piece:
                block.append(piece)
                in_block += len(piece)
            if in_block >= FLUSH_BYTES:
                if pending is not None:
                    await pending  # one block in flight: blocks land in order
                pending = loop.run_in_executor(WRITERS, chunk.write, block)
                queued += in_block
                block, in_block = [], 0
        if pending is not None:
            await pending
        if block:
            await loop.run_in_executor(WRITERS, chunk.write, block)
        return disconnected
    finally:
        if pending is not None and not pending.done():
            # Refused or cancelled: let the block in flight land before the caller cuts it off.
            await asyncio.wait([pending])


async def receive(state, row: dict, request: Request, checksum) -> Response:
    upload_id, start, length = row["id"], row["offset"], row["length"]
    await anyio.to_thread.run_sync(state.spool.reconcile, upload_id, start)
    whole = (await anyio.to_thread.run_sync(state.spool.hasher, upload_id, start)).copy()
    chunk = Chunk(state.spool.path(upload_id), start, whole, checksum[0] if checksum else None)
    try:
        disconnected = await pump(request, chunk, length - start, state.patch_idle_timeout)
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
    """The last byte is in: store the file as good only if its SHA-256 is the announced one."""
    if whole.hexdigest() != row["sha256"]:
        state.discard(row["id"])
        raise CollectorError(460, "sha256_mismatch", headers=tus_headers(
            Upload_Discarded="sha256-mismatch"), extra={"expected": row["sha256"],
                                                        "received": whole.hexdigest()})
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
