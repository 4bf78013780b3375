"""Stall drill: a PATCH whose client goes silent mid-body must not lock its upload for good:
the idle timeout ends it, and a resuming client takes it over at once.

A raw socket sends the headers and part of a PATCH body, then sends nothing while keeping the
connection open (a dead link the OS has not noticed yet). A second client then resumes the upload
from the collector's offset and finishes it. Bounds are generous: nothing here measures time.
"""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import metadata

DEADLINE_S = 60.0


def open_stalled_patch(url: str, token: str, location: str, data: bytes, sent: int,
                       checksum: bool) -> socket.socket:
    """Start a PATCH of all of `data` from offset 0, send only `sent` bytes of it, and return the
    socket, left open and silent."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    head = [f"PATCH {location} HTTP/1.1", f"Host: {parts.netloc}",
            f"Authorization: Bearer {token}", "Tus-Resumable: 1.0.0",
            "Content-Type: application/offset+octet-stream", "Upload-Offset: 0",
            f"Content-Length: {len(data)}"]
    if checksum:
        head.append("Upload-Checksum: sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode())
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + data[:sent])
    return sock


def resume(http: httpx.Client, location: str, data: bytes) -> int:
    """Resume like a station would: ask the offset, send the rest; retry while the upload is busy.
    Returns the offset the successful PATCH started from."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        offset = int(http.head(location).headers["Upload-Offset"])
        rest = data[offset:]
        answer = http.patch(location, content=rest, headers={
            "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset),
            "Upload-Checksum": "sha256 " + base64.b64encode(hashlib.sha256(rest).digest()).decode()})
        if answer.status_code == 204:
            assert answer.headers["Upload-Offset"] == str(len(data))
            return offset
        assert answer.status_code == 409, answer.text  # busy (the stalled PATCH), or offset moved
        if time.monotonic() > deadline:
            raise AssertionError("the stalled PATCH still holds the upload: " + answer.text)
        time.sleep(0.1)


def create(http: httpx.Client, data: bytes, sitting: str) -> str:
    return http.post("/files/", headers={"Upload-Length": str(len(data)), "Upload-Metadata": metadata(
        station="S01", sitting=sitting, path="recordings/0001-1.flac",
        sha256=hashlib.sha256(data).hexdigest())}).headers["Location"]


@pytest.mark.parametrize("checksum", [False, True], ids=["no-checksum", "with-checksum"])
def test_a_silent_patch_counts_as_gone_after_the_idle_timeout(collector_factory, checksum):
    server = collector_factory("--patch-idle-timeout", "1")
    token = server.tokens["S01"]
    data = os.urandom(3 * 1024 * 1024 + 4321)
    sent = 1024 * 1024 + 777
    sitting = "SIT-STALL-" + ("SUM" if checksum else "RAW")
    with httpx.Client(base_url=server.url, timeout=60,
                      headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}) as http:
        location = create(http, data, sitting)
        stalled = open_stalled_patch(server.url, token, location, data, sent, checksum)
        try:
            # Nobody else asks: the collector alone ends the silent PATCH.
            answer = read_until_closed(stalled)
        finally:
            stalled.close()
        # Bytes of a stalled PATCH are handled as on a disconnect: kept when nothing vouched for
        # them, dropped when they came with an Upload-Checksum that can no longer be checked.
        kept = 0 if checksum else sent
        assert answer.startswith(b"HTTP/1.1 204")
        assert f"upload-offset: {kept}\r\n".encode() in answer.lower()
        assert resume(http, location, data) == kept
    assert server.stored(sitting, "recordings/0001-1.flac").read_bytes() == data


@pytest.mark.parametrize("checksum", [False, True], ids=["no-checksum", "with-checksum"])
def test_a_resuming_client_takes_over_a_stalled_patch(collector_factory, checksum):
    # The default idle timeout (20 s): the second client must not have to wait it out.
    server = collector_factory()
    token = server.tokens["S01"]
    data = os.urandom(3 * 1024 * 1024 + 4321)
    sent = 1024 * 1024 + 777
    sitting = "SIT-TAKEOVER-" + ("SUM" if checksum else "RAW")
    with httpx.Client(base_url=server.url, timeout=60,
                      headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}) as http:
        location = create(http, data, sitting)
        stalled = open_stalled_patch(server.url, token, location, data, sent, checksum)
        try:
            time.sleep(0.5)  # let the collector start on the stalled body
            began = time.monotonic()
            started_at = resume(http, location, data)
            took = time.monotonic() - began
            answer = read_until_closed(stalled)
        finally:
            stalled.close()
    assert took < 15, took
    # What the stalled request had received is kept unless a checksum vouched for all of it.
    assert started_at == 0 if checksum else 0 <= started_at <= sent
    assert server.stored(sitting, "recordings/0001-1.flac").read_bytes() == data
    # The stalled client, were it still listening, is told the offset its bytes reached (the
    # answer may be lost: its connection is closed with its unread bytes, a reset).
    if answer:
        assert answer.startswith(b"HTTP/1.1 204")
        assert f"upload-offset: {started_at}\r\n".encode() in answer.lower()


def read_until_closed(sock: socket.socket) -> bytes:
    # Well under uvicorn's 30 s keep-alive timeout, which would close the socket anyway.
    sock.settimeout(20)
    received = b""
    try:
        while piece := sock.recv(65536):
            received += piece
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def test_patch_idle_timeout_must_be_positive(tmp_path):
    from uploader.collector.app import create_app

    with pytest.raises(ValueError):
        create_app(tmp_path, patch_idle_timeout=0)
