"""The tus endpoints against the wire contract, through a real uvicorn on 127.0.0.1."""
from __future__ import annotations

import base64
import hashlib
import os
import zlib

import httpx


def test_options_announces_the_contracted_extensions(collector):
    answer = httpx.options(collector.url + "/files/")
    assert answer.status_code == 204
    assert answer.headers["Tus-Resumable"] == "1.0.0"
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert answer.headers["Tus-Extension"] == "creation,checksum,termination"
    assert set(answer.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha256", "sha1", "crc32"}
    assert answer.headers["Tus-Max-Size"] == str(64 * 1024 * 1024)


def test_health_needs_no_token_and_dates_the_answer(collector):
    answer = httpx.get(collector.url + "/api/health")
    assert answer.json()["status"] == "ok"
    assert "expected_station_version" in answer.json()
    assert answer.headers["Date"]


def test_file_sent_in_chunks_is_stored_byte_exact(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(1_300_000)
    location = tus.upload(data, chunk=300_000, path="recordings/0001-1.flac")
    head = tus.head(location)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Cache-Control"] == "no-store"
    assert collector.stored(sitting, "recordings/0001-1.flac").read_bytes() == data
    assert not collector.spool_file(location).exists()


def test_resume_from_the_servers_offset(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(500_000)
    location = tus.create(data).headers["Location"]
    assert tus.patch(location, 0, data[:200_000]).headers["Upload-Offset"] == "200000"
    # The client lost track: it asks, and carries on from there.
    offset = int(tus.head(location).headers["Upload-Offset"])
    assert offset == 200_000
    assert tus.patch(location, offset, data[offset:]).status_code == 204
    assert collector.stored(sitting).read_bytes() == data


def test_wrong_offset_is_409_and_changes_nothing(collector, tus_for):
    tus = tus_for()
    data = os.urandom(10_000)
    location = tus.create(data).headers["Location"]
    tus.patch(location, 0, data[:4000])
    answer = tus.patch(location, 1000, data[1000:])
    assert answer.status_code == 409
    assert "续传" in answer.json()["message"] and "offset" in answer.json()["message"]
    assert tus.head(location).headers["Upload-Offset"] == "4000"


def test_chunk_with_bad_checksum_is_460_and_not_kept(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(100_000)
    location = tus.create(data).headers["Location"]
    tus.patch(location, 0, data[:50_000], checksum=data[:50_000])
    answer = tus.patch(location, 50_000, data[50_000:], checksum=b"something else")
    assert answer.status_code == 460
    assert answer.json()["error"] == "checksum_mismatch"
    assert tus.head(location).headers["Upload-Offset"] == "50000"
    assert tus.patch(location, 50_000, data[50_000:], checksum=data[50_000:]).status_code == 204
    assert collector.stored(sitting).read_bytes() == data


def test_crc32_chunk_checksum_catches_a_flipped_byte_and_keeps_the_good_chunk(
        collector, tus_for, sitting):
    # The station's Upload-Checksum is CRC-32 (big-endian, base64), so SHA-256 runs once per byte.
    tus = tus_for()
    data = os.urandom(100_000)
    location = tus.create(data).headers["Location"]

    def crc(piece: bytes) -> dict:
        return {"Upload-Checksum": "crc32 " + base64.b64encode(
            zlib.crc32(piece).to_bytes(4, "big")).decode()}

    assert tus.patch(location, 0, data[:50_000], headers=crc(data[:50_000])).status_code == 204
    flipped = bytearray(data[50_000:])
    flipped[1234] ^= 0x01
    answer = tus.patch(location, 50_000, bytes(flipped), headers=crc(data[50_000:]))
    assert answer.status_code == 460 and answer.json()["error"] == "checksum_mismatch"
    assert tus.head(location).headers["Upload-Offset"] == "50000"
    assert tus.patch(location, 50_000, data[50_000:], headers=crc(data[50_000:])).status_code == 204
    assert collector.stored(sitting).read_bytes() == data


def test_one_large_patch_is_stored_byte_exact(collector, tus_for, sitting):
    # Larger than several of the spool's flush-ahead steps, in one PATCH, as the station sends.
    tus = tus_for()
    data = os.urandom(13 * 1024 * 1024 + 17)
    location = tus.create(data).headers["Location"]
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    answer = tus.patch(location, 0, data, headers={"Upload-Checksum": "crc32 " + crc})
    assert answer.status_code == 204 and answer.headers["Upload-Offset"] == str(len(data))
    assert collector.stored(sitting).read_bytes() == data


def test_whole_file_hash_mismatch_discards_and_stores_nothing(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(70_000)
    wrong = hashlib.sha256(b"the manifest said something else").hexdigest()
    location = tus.create(data, sha256=wrong).headers["Location"]
    tus.patch(location, 0, data[:35_000])
    answer = tus.patch(location, 35_000, data[35_000:])
    assert answer.status_code == 460
    assert answer.headers["Upload-Discarded"] == "sha256-mismatch"
    assert answer.json()["error"] == "sha256_mismatch"
    assert answer.json()["message_zh"] and answer.json()["message_en"]
    assert not collector.stored(sitting).exists()
    assert tus.head(location).status_code in (404, 410)
    # The client creates a new upload and sends the right file: now it is accepted.
    assert tus.create(data).headers["Location"] != location
    tus.upload(data)
    assert collector.stored(sitting).read_bytes() == data


def test_creating_again_supersedes_the_unfinished_upload(collector, tus_for, sitting):
    # tus core: a new upload starts at offset 0. The one a client forgot is discarded.
    tus = tus_for()
    data = os.urandom(40_000)
    first = tus.create(data).headers["Location"]
    assert tus.patch(first, 0, data[:10_000]).status_code == 204
    again = tus.create(data)
    assert again.status_code == 201
    second = again.headers["Location"]
    assert second != first
    assert tus.head(second).headers["Upload-Offset"] == "0"
    assert tus.head(first).status_code == 410
    assert not collector.spool_file(first).exists()
    assert tus.patch(second, 0, data).status_code == 204
    assert collector.stored(sitting).read_bytes() == data


def test_sending_a_stored_file_again_succeeds_and_stores_it_once(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(40_000)
    first = tus.upload(data)
    stored = collector.stored(sitting)
    before = (stored.stat().st_ino, stored.stat().st_mtime_ns)
    # The station's client reads the offset at creation and sends nothing more.
    again = tus.create(data)
    assert again.status_code == 201
    assert again.headers["Location"] == first
    assert again.headers["Upload-Offset"] == str(len(data))
    # A client that ignores it sends the file from 0: told it is complete, nothing modified.
    for offset in (0, 1000):
        done = tus.patch(first, offset, data[offset:])
        assert done.status_code == 204 and done.headers["Upload-Offset"] == str(len(data))
    assert tus.patch(first, len(data) + 1, b"").status_code == 409
    assert tus.head(first).headers["Upload-Offset"] == str(len(data))
    assert (stored.stat().st_ino, stored.stat().st_mtime_ns) == before
    assert stored.read_bytes() == data


def test_different_content_for_a_stored_path_is_refused(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(1000)
    tus.upload(data)
    answer = tus.create(os.urandom(1000))
    assert answer.status_code == 409
    assert answer.json()["error"] == "path_taken"
    assert collector.stored(sitting).read_bytes() == data


def test_body_past_the_declared_length_is_refused(collector, tus_for):
    tus = tus_for()
    data = os.urandom(1000)
    location = tus.create(data).headers["Location"]
    answer = tus.patch(location, 0, data + b"extra")
    assert answer.status_code == 400
    assert tus.head(location).headers["Upload-Offset"] == "0"


def test_empty_file_is_stored_at_creation(collector, tus_for, sitting):
    tus = tus_for()
    answer = tus.create(b"", path="notes.txt")
    assert answer.status_code == 201
    assert answer.headers["Upload-Offset"] == "0"
    assert collector.stored(sitting, "notes.txt").read_bytes() == b""


def test_termination_discards_an_unfinished_upload(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(5000)
    location = tus.create(data).headers["Location"]
    tus.patch(location, 0, data[:100])
    assert tus.http.delete(location).status_code == 204
    assert tus.head(location).status_code in (404, 410)
    assert not collector.spool_file(location).exists()


def test_a_stored_file_cannot_be_withdrawn(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(5000)
    location = tus.upload(data)
    answer = tus.http.delete(location)
    assert answer.status_code == 409
    assert collector.stored(sitting).read_bytes() == data


def test_probe_counts_a_streamed_body(collector, tus_for):
    tus = tus_for()
    answer = tus.http.put("/api/probe", content=iter([b"x" * 65536] * 16))
    assert answer.json() == {"bytes": 16 * 65536}


def test_open_uploads_per_station_are_capped(collector_factory):
    server = collector_factory("--max-open-uploads", "3")
    with httpx.Client(base_url=server.url, headers={
            "Authorization": f"Bearer {server.tokens['S01']}", "Tus-Resumable": "1.0.0"}) as http:
        def create(path: str) -> httpx.Response:
            return http.post("/files/", headers={"Upload-Length": "10", "Upload-Metadata": ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                {"station": "S01", "sitting": "CAP", "path": path, "sha256": "0" * 64}.items())})
        first = [create(f"{n}.csv").headers["Location"] for n in range(3)]
        assert create("0.csv").status_code == 201  # creating again replaces, it does not add
        refused = create("3.csv")
        assert refused.status_code == 429 and refused.json()["error"] == "too_many_open"
        assert refused.headers["Tus-Resumable"] == "1.0.0"
        assert "3" in refused.json()["message_zh"] and "DELETE" in refused.json()["message_en"]
        assert http.delete(first[1]).status_code == 204
        assert create("3.csv").status_code == 201
