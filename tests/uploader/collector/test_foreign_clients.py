"""Clients nobody here wrote — tuspy (PyPI) and tus-js-client (npm, under Node) — at their default
settings, against a real collector, in every restart case a station meets:

- a client restarted without its URL store creates the upload again while a partial one exists;
- a client sends again a file the collector already stored;
- a first client stalls mid-PATCH (a sleeping laptop, a hung process) and a second one resumes.

Each ends with the file stored byte-exact, once.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tusclient import client as tus_client

from .conftest import Tus
from .test_stall import open_stalled_patch, read_until_closed

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "tus_clients"
PATH = "recordings/0001-1.flac"


def tuspy_upload(server, token: str, file: Path, meta: dict, url: str | None = None) -> str:
    """tuspy 1.1.0 as its README shows it: no retries, one PATCH for the whole file."""
    client = tus_client.TusClient(server.url + "/files/",
                                  headers={"Authorization": f"Bearer {token}"})
    uploader = client.uploader(str(file), metadata=meta, url=url)
    uploader.upload()
    return uploader.url


def js_upload(server, token: str, file: Path, meta: dict, url: str | None = None) -> str:
    node = shutil.which("node")
    script = CLIENTS_DIR / "upload.cjs"
    if node is None or not (CLIENTS_DIR / "node_modules" / "tus-js-client").is_dir():
        pytest.fail("Node or tus-js-client is missing: scripts/test installs them "
                    "(apt nodejs npm; npm ci in tests/uploader/tus_clients)")
    args = [node, str(script), server.url + "/files/", token, str(file), json.dumps(meta)]
    done = subprocess.run(args + ([url] if url else []), capture_output=True, text=True,
                          timeout=120, cwd=CLIENTS_DIR)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    answer = json.loads(lines[-1])
    assert answer["ok"], answer["error"]
    return answer["url"]


CLIENTS = {"tuspy": tuspy_upload, "tus-js-client": js_upload}


@pytest.fixture(params=list(CLIENTS))
def upload_with(request):
    return CLIENTS[request.param]


@pytest.fixture
def file_to_send(tmp_path, sitting):
    data = os.urandom(2 * 1024 * 1024 + 12345)
    path = tmp_path / "0001-1.flac"
    path.write_bytes(data)
    meta = {"station": "S01", "sitting": sitting, "path": PATH,
            "sha256": hashlib.sha256(data).hexdigest()}
    return path, data, meta


def own_client(collector, sitting) -> Tus:
    return Tus(collector.url, collector.tokens["S01"], sitting)


def stored_once(collector, sitting, data: bytes) -> None:
    files = [p for p in collector.stored_files() if sitting in p.parts]
    assert [p.relative_to(collector.data_dir / "files" / "S01" / sitting).as_posix()
            for p in files] == [PATH]
    assert files[0].read_bytes() == data


def test_an_ordinary_upload(collector, sitting, upload_with, file_to_send):
    file, data, meta = file_to_send
    url = upload_with(collector, collector.tokens["S01"], file, meta)
    stored_once(collector, sitting, data)
    assert own_client(collector, sitting).head(url).headers["Upload-Offset"] == str(len(data))


def test_restarted_without_its_url_store_while_a_partial_upload_exists(
        collector, sitting, upload_with, file_to_send):
    file, data, meta = file_to_send
    tus = own_client(collector, sitting)
    partial = tus.create(data, path=PATH).headers["Location"]
    assert tus.patch(partial, 0, data[:777_777]).status_code == 204
    # The client lost the URL: it creates the upload again and sends from offset 0.
    url = upload_with(collector, collector.tokens["S01"], file, meta)
    assert not url.endswith(partial)
    stored_once(collector, sitting, data)
    assert tus.head(partial).status_code == 410  # the forgotten one is discarded
    assert not collector.spool_file(partial).exists()


def test_sending_again_a_file_already_stored(collector, sitting, upload_with, file_to_send):
    file, data, meta = file_to_send
    tus = own_client(collector, sitting)
    tus.upload(data, chunk=1024 * 1024, path=PATH)
    stored = collector.stored(sitting, PATH)
    before = (stored.stat().st_ino, stored.stat().st_mtime_ns)
    url = upload_with(collector, collector.tokens["S01"], file, meta)
    assert own_client(collector, sitting).head(url).headers["Upload-Offset"] == str(len(data))
    assert (stored.stat().st_ino, stored.stat().st_mtime_ns) == before  # not stored twice
    stored_once(collector, sitting, data)


@pytest.mark.parametrize("checksum", [False, True], ids=["no-checksum", "with-checksum"])
def test_a_stalled_first_client_is_taken_over(collector, sitting, upload_with, file_to_send,
                                              checksum):
    # The collector keeps its default 20 s idle timeout: tus-js-client's default retries give
    # up after about 9 s, tuspy's default does not retry at all. Only a takeover lets them in.
    file, data, meta = file_to_send
    tus = own_client(collector, sitting)
    location = tus.create(data, path=PATH).headers["Location"]
    token = collector.tokens["S01"]
    stalled = open_stalled_patch(collector.url, token, location, data, 1024 * 1024 + 5, checksum)
    try:
        time.sleep(0.3)  # the collector is now waiting on the stalled body
        began = time.monotonic()
        upload_with(collector, token, file, meta, url=collector.url + location)
        took = time.monotonic() - began
        read_until_closed(stalled)
    finally:
        stalled.close()
    assert took < 15, took
    stored_once(collector, sitting, data)
