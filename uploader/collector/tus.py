"""tus 1.0.0 (core, creation, checksum, termination) on FastAPI: headers in, headers out.

The upload state lives in the ``UploadStore`` (uploads.py); these routes read tus headers,
call it, and turn its answers and refusals into tus responses (tusd's handler / DataStore
split). Written by hand rather than with tuspyserver: measured, it checks the token only
after writing a PATCH body, has no checksum extension, never fsyncs and leaves data past the
recorded offset when killed mid-PATCH. Order of every handler: token (401, before any body is
read), tus version, ownership (403), headers; only then is the body streamed to the store.
"""
from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from .. import contract
from .messages import CollectorError
from .uploads import BodyGone, NewUpload, UploadRefused

router = APIRouter()

# tus: Upload-Length and Upload-Offset are non-negative integers. ASCII digits only (str.isdigit
# takes "²" and other Unicode digits int() then refuses), and no more than fit in 63 bits.
DECIMAL = re.compile(r"[0-9]{1,18}")
# The status of each store refusal. 460 (checksum mismatch, tus) also answers every refusal
# that discarded the upload: the client must create it again.
STATUS = {"not_found": 404, "wrong_station": 403, "gone": 410, "too_large": 413,
          "bad_metadata": 400, "bad_path": 400, "past_length": 400, "signature_bad": 422,
          "manifest_bad": 422, "manifest_not_canonical": 422, "path_taken": 409, "busy": 409,
          "offset_mismatch": 409, "already_stored": 409, "too_many_open": 429,
          "checksum_mismatch": 460, "sha256_mismatch": 460, "disk_full": 507,
          "storage_failed": 503}


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
    return {"Tus-Resumable": contract.TUS_VERSION,
            **{k.replace("_", "-"): str(v) for k, v in extra.items()}}


def refusal(exc: UploadRefused) -> CollectorError:
    """A store's refusal as a tus answer (the app's error handler adds Tus-Resumable)."""
    headers = {}
    if exc.offset is not None:
        headers["Upload-Offset"] = str(exc.offset)
    if exc.discarded:
        headers["Upload-Discarded"] = exc.discarded
    status = 460 if exc.discarded else STATUS[exc.code]
    return CollectorError(status, exc.code, headers=headers, extra=exc.extra, **exc.fields)


def asking(request: Request):
    """(collector, station) of a tus request: the token first (401 before any body is read),
    then the tus version (412)."""
    state = collector(request)
    station = state.station(request)
    if request.headers.get("tus-resumable") != contract.TUS_VERSION:
        raise CollectorError(412, "tus_version", headers={"Tus-Version": contract.TUS_VERSION})
    return state, station


def parse_metadata(header: str) -> dict[str, str]:
    try:
        return contract.decode_metadata(header)
    except ValueError as exc:
        raise CollectorError(400, "bad_metadata", detail=str(exc)) from None


def parse_nonnegative(value: str | None, code: str) -> int:
    if value is None or not DECIMAL.fullmatch(value):
        raise CollectorError(400, code)
    return int(value)


def parse_checksum(header: str | None) -> contract.Checksum | None:
    if header is None:
        return None
    try:
        return contract.parse_checksum(header)
    except ValueError:
        raise CollectorError(400, "bad_checksum_header",
                             accepted=", ".join(contract.CHECKSUMS)) from None


async def body(request: Request):
    """The request's body as the store reads it: a disconnect is ``BodyGone``."""
    try:
        async for piece in request.stream():
            yield piece
    except ClientDisconnect:
        raise BodyGone from None


@router.options("/files/")
@router.options("/files")
async def options(request: Request) -> Response:
    return Response(status_code=204, headers=tus_headers(
        Tus_Version=contract.TUS_VERSION, Tus_Extension=contract.TUS_EXTENSIONS,
        Tus_Checksum_Algorithm=",".join(contract.CHECKSUMS),
        Tus_Max_Size=collector(request).uploads.max_upload_bytes))


@router.post("/files/")
@router.post("/files")
async def create(request: Request) -> Response:
    state, station = asking(request)
    length = parse_nonnegative(request.headers.get("upload-length"), "bad_length")
    raw_metadata = request.headers.get("upload-metadata", "")
    meta = parse_metadata(raw_metadata)
    missing = [key for key in contract.UPLOAD_METADATA if not meta.get(key)]
    if missing:
        raise CollectorError(400, "bad_metadata", detail="missing " + ", ".join(missing))
    if meta["station"] != station:
        raise UploadRefused("wrong_station")
    upload = await state.uploads.create(station, NewUpload(
        meta["sitting"], meta["path"], meta["sha256"], length, raw_metadata,
        meta.get(contract.SIGNATURE_METADATA)))
    headers = tus_headers(Location=f"/files/{upload.id}")
    if upload.done:  # stored already (or empty): the client has nothing to send
        headers["Upload-Offset"] = str(upload.length)
    return Response(status_code=201, headers=headers)


@router.head("/files/{upload_id}")
async def head(upload_id: str, request: Request) -> Response:
    state, station = asking(request)
    upload = await state.uploads.current(upload_id, station)
    headers = tus_headers(Upload_Offset=upload.offset, Upload_Length=upload.length,
                          Cache_Control="no-store")
    if upload.metadata:
        headers["Upload-Metadata"] = upload.metadata
    return Response(status_code=200, headers=headers)


@router.delete("/files/{upload_id}")
async def terminate(upload_id: str, request: Request) -> Response:
    # Departure from tus termination, which answers 204 for any upload: a verified file is a
    # student's work and is never withdrawn (409 already_stored).
    state, station = asking(request)
    await state.uploads.terminate(upload_id, station)
    return Response(status_code=204, headers=tus_headers())


@router.patch("/files/{upload_id}")
async def patch(upload_id: str, request: Request) -> Response:
    # Departure from tus core (409 for any offset but the upload's): a PATCH of a stored upload
    # is read, dropped and answered with its length (see UploadStore.append).
    state, station = asking(request)
    state.uploads.get(upload_id, station)
    if request.headers.get("content-type", "").split(";")[0].strip() != contract.PATCH_CONTENT_TYPE:
        raise CollectorError(415, "bad_content_type")
    claimed = parse_nonnegative(request.headers.get("upload-offset"), "bad_offset")
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    declared = request.headers.get("content-length")
    appended = await state.uploads.append(
        upload_id, station, claimed, body(request), checksum,
        int(declared) if declared and DECIMAL.fullmatch(declared) else None)
    # A client that went silent may still be connected: tell it the offset that counts, and
    # close the connection (the rest of its body, should it come, belongs to no request).
    gone = {"Connection": "close"} if appended.gone else {}
    return Response(status_code=204, headers=tus_headers(Upload_Offset=appended.offset, **gone))
