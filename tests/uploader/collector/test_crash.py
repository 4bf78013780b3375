"""Fault drill: the collector is SIGKILLed in the middle of a PATCH and started again."""
from __future__ import annotations

import base64
import hashlib
import os
import threading
import time

import httpx

MiB = 1024 * 1024


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_sigkill_mid_patch_then_resume_is_byte_exact(collector_factory):
    server = collector_factory()
    token = server.tokens["S01"]
    data = os.urandom(6 * MiB)
    tus_headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    with httpx.Client(base_url=server.url, headers=tus_headers, timeout=60) as http:
        meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {
            "station": "S01", "sitting": "SIT-CRASH", "path": "recordings/0001-1.flac",
            "sha256": hashlib.sha256(data).hexdigest()}.items())
        location = http.post("/files/", headers={"Upload-Length": str(len(data)),
                                                 "Upload-Metadata": meta}).headers["Location"]
        patch_headers = {"Content-Type": "application/offset+octet-stream"}
        first = http.patch(location, content=data[:2 * MiB],
                           headers={**patch_headers, "Upload-Offset": "0"})
        assert first.headers["Upload-Offset"] == str(2 * MiB)

    # The second PATCH sends 2 MiB more and then stalls, as a slow network would.
    release = threading.Event()
    outcome: list = []

    def body():
        for i in range(2 * MiB, 4 * MiB, 64 * 1024):
            yield data[i:i + 64 * 1024]
        release.wait(60)
        yield data[4 * MiB:]

    def send():
        try:
            outcome.append(httpx.patch(server.url + location, content=body(), timeout=60,
                                       headers={**tus_headers, **patch_headers,
                                                "Upload-Offset": str(2 * MiB)}))
        except httpx.TransportError as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    spool = server.spool_file(location)
    # The collector has written part of the stalled chunk to disk but not yet recorded it.
    wait_for(lambda: spool.stat().st_size > 2 * MiB, "the chunk to reach the disk")
    server.kill()
    release.set()
    sender.join(60)
    assert isinstance(outcome[0], httpx.TransportError)
    assert spool.stat().st_size > 2 * MiB  # a tail the database never counted

    server.start()
    # On restart the tail is cut: offset and data agree, at what was recorded before the kill.
    assert spool.stat().st_size == 2 * MiB
    with httpx.Client(base_url=server.url, headers=tus_headers, timeout=60) as http:
        offset = int(http.head(location).headers["Upload-Offset"])
        assert offset == 2 * MiB
        while offset < len(data):
            answer = http.patch(location, content=data[offset:offset + 2 * MiB],
                                headers={**patch_headers, "Upload-Offset": str(offset)})
            assert answer.status_code == 204, answer.text
            offset = int(answer.headers["Upload-Offset"])
    stored = server.stored("SIT-CRASH", "recordings/0001-1.flac")
    assert stored.read_bytes() == data


def test_restart_removes_spool_files_no_upload_owns(collector_factory, tus_for):
    server = collector_factory(start=False)
    stray = server.data_dir / "incoming" / ("f" * 32 + ".part")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"left by a crash between creating the file and recording the upload")
    server.start()
    assert not stray.exists()
    tus = tus_for(server=server)
    location = tus.create(b"kept").headers["Location"]
    server.kill()
    server.start()
    assert server.spool_file(location).exists()  # an upload's own spool file stays
