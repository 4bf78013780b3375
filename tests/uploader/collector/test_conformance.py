"""The tus 1.0.0 protocol's MUSTs for a server, one test (or more) each, against a real collector.

Sections cite protocol.md of github.com/tus/tus-resumable-upload-protocol (commit 30698e1),
e.g. "Core / Headers / Tus-Resumable". Where the collector departs on purpose, the test says so
and pins the departure: a PATCH of a completed upload (Core / Requests / PATCH) and a DELETE of
a stored file (Termination).
"""
from __future__ import annotations

import base64
import hashlib
import os
import re

import httpx
import pytest

from .conftest import metadata

ANNOUNCED = {"creation", "checksum", "termination"}


def sha1_header(body: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(body).digest()).decode()


@pytest.fixture
def tus(tus_for):
    return tus_for()


# -- Core / Headers ----------------------------------------------------------------------------

def error_answers(collector, tus) -> dict[str, httpx.Response]:
    """One answer of each error status the tus endpoints give."""
    data = os.urandom(1000)
    location = tus.create(data, path="errors.csv").headers["Location"]
    stranger = httpx.Client(base_url=collector.url, headers={"Tus-Resumable": "1.0.0"})
    other = httpx.Client(base_url=collector.url, headers={
        "Tus-Resumable": "1.0.0", "Authorization": f"Bearer {collector.tokens['S02']}"})
    with stranger, other:
        return {
            "400 bad length": tus.http.post("/files/", headers={"Upload-Length": "²".encode()}),
            "400 no offset": tus.http.patch(location, content=b"x", headers={
                "Content-Type": "application/offset+octet-stream"}),
            "400 checksum algorithm": tus.patch(location, 0, b"x", headers={
                "Upload-Checksum": "md5 " + base64.b64encode(b"0" * 16).decode()}),
            "401": stranger.head(location),
            "403": other.head(location),
            "404": tus.head("/files/" + "0" * 32),
            "409": tus.patch(location, 5, b"x"),
            "412": tus.http.head(location, headers={"Tus-Resumable": "0.2.2"}),
            "413": tus.create(10 ** 12),
            "415": tus.http.patch(location, content=b"x", headers={
                "Upload-Offset": "0", "Content-Type": "text/plain"}),
            "460": tus.patch(location, 0, b"x", headers={"Upload-Checksum": sha1_header(b"y")}),
        }


def test_every_answer_carries_tus_resumable(collector, tus, sitting):
    # Core / Headers / Tus-Resumable: "MUST be included in every request and response except
    # for OPTIONS requests" — error answers included.
    data = os.urandom(100)
    created = tus.create(data)
    location = created.headers["Location"]
    answers = {"201": created, "200 HEAD": tus.head(location), "204 PATCH": tus.patch(location, 0, data),
               **error_answers(collector, tus)}
    for name, answer in answers.items():
        assert name.split()[0] == str(answer.status_code), (name, answer.status_code, answer.text)
        assert answer.headers.get("Tus-Resumable") == "1.0.0", name


def test_unsupported_version_is_412_with_tus_version_and_not_processed(collector, tus, sitting):
    # Core / Headers / Tus-Resumable: 412, MUST include Tus-Version, MUST NOT process the request.
    spooled = collector.spool_names()
    answer = tus.create(b"abc", headers={"Tus-Resumable": "0.2.2"})
    assert answer.status_code == 412
    assert "1.0.0" in answer.headers["Tus-Version"].split(",")
    assert "Location" not in answer.headers and collector.spool_names() == spooled


def test_options_lists_version_extensions_max_size_and_checksums(collector):
    # Core / Requests / OPTIONS: MUST contain Tus-Version; the Server MUST ignore Tus-Resumable.
    # Core / Headers / Tus-Version, Tus-Extension, Tus-Max-Size: comma-separated lists, and a
    # non-negative integer. Checksum: Tus-Checksum-Algorithm MUST be in the OPTIONS answer, sha1
    # MUST be supported, names only lowercase ASCII. Creation, Checksum, Termination: each
    # MUST be announced in Tus-Extension.
    for headers in ({}, {"Tus-Resumable": "0.0.1"}):
        answer = httpx.options(collector.url + "/files/", headers=headers)
        assert answer.status_code in (200, 204)
        assert answer.headers["Tus-Version"].split(",")[0] == "1.0.0"
        assert set(answer.headers["Tus-Extension"].split(",")) == ANNOUNCED
        assert re.fullmatch(r"[0-9]+", answer.headers["Tus-Max-Size"])
        algorithms = answer.headers["Tus-Checksum-Algorithm"].split(",")
        assert "sha1" in algorithms
        assert all(re.fullmatch(r"[\x21-\x7e]+", a) and a == a.lower() for a in algorithms)


@pytest.mark.parametrize("value", ["²", "-1", "1.0", "0x10", "١٢", "1e3", "+5", "", "9" * 30])
def test_upload_length_and_offset_are_plain_non_negative_integers(collector, tus, value):
    # Core / Headers / Upload-Offset, Upload-Length: "MUST be a non-negative integer".
    value = value.encode("utf-8")  # as a client would send "²": its UTF-8 bytes
    refused = tus.http.post("/files/", headers={"Upload-Length": value, "Upload-Metadata": metadata(
        station="S01", sitting=tus.sitting, path="x.csv", sha256="0" * 64)})
    assert refused.status_code == 400 and refused.json()["error"] == "bad_length"
    data = os.urandom(100)
    location = tus.create(data).headers["Location"]
    refused = tus.http.patch(location, content=data, headers={
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": value})
    assert refused.status_code == 400 and refused.json()["error"] == "bad_offset"
    assert "Upload-Offset" in refused.json()["message_en"]
    assert tus.head(location).headers["Upload-Offset"] == "0"


def test_method_override_is_taken_as_the_method(collector, tus, sitting):
    # Core / Headers / X-HTTP-Method-Override: MUST be interpreted as the request's method.
    data = os.urandom(3000)
    location = tus.create(data).headers["Location"]
    answer = tus.http.post(location, content=data, headers={
        "X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"})
    assert answer.status_code == 204 and answer.headers["Upload-Offset"] == "3000"
    assert collector.stored(sitting).read_bytes() == data
    other = tus.create(data, path="other.csv").headers["Location"]
    assert tus.http.post(other, headers={"X-HTTP-Method-Override": "DELETE"}).status_code == 204
    assert tus.head(other).status_code in (404, 410)


# -- Core / Requests / HEAD --------------------------------------------------------------------

def test_head_always_has_offset_length_and_no_store(collector, tus):
    # Core / Requests / HEAD: Upload-Offset MUST be there even at 0 and when completed;
    # Upload-Length MUST be there when known; Cache-Control: no-store MUST be set.
    data = os.urandom(2000)
    location = tus.create(data).headers["Location"]
    for expected in ("0", "2000"):
        answer = tus.head(location)
        assert answer.status_code in (200, 204)
        assert answer.headers["Upload-Offset"] == expected
        assert answer.headers["Upload-Length"] == "2000"
        assert answer.headers["Cache-Control"] == "no-store"
        tus.patch(location, 0, data)


def test_head_of_a_missing_upload_has_no_offset(collector, tus):
    # Core / Requests / HEAD: not found → 404, 410 or 403, without Upload-Offset.
    data = os.urandom(10)
    gone = tus.create(data).headers["Location"]
    tus.http.delete(gone)
    for location in ("/files/" + "f" * 32, gone):
        answer = tus.head(location)
        assert answer.status_code in (403, 404, 410)
        assert "Upload-Offset" not in answer.headers


# -- Core / Requests / PATCH -------------------------------------------------------------------

def test_patch_offset_mismatch_is_409_and_modifies_nothing(collector, tus, sitting):
    # Core / Requests / PATCH: offsets that do not match → 409 "without modifying the upload".
    data = os.urandom(5000)
    location = tus.create(data).headers["Location"]
    tus.patch(location, 0, data[:1000])
    for claimed in (0, 999, 1001, 4999):
        answer = tus.patch(location, claimed, data[claimed:])
        assert answer.status_code == 409
        assert tus.head(location).headers["Upload-Offset"] == "1000"
    assert collector.spool_file(location).read_bytes() == data[:1000]


def test_patch_success_is_204_with_the_sum_offset(collector, tus, sitting):
    # Core / Requests / PATCH: 204 with Upload-Offset = offset before + bytes received.
    data = os.urandom(9000)
    location = tus.create(data).headers["Location"]
    offset = 0
    for size in (1, 4095, 4904):
        answer = tus.patch(location, offset, data[offset:offset + size])
        assert answer.status_code == 204
        offset += size
        assert answer.headers["Upload-Offset"] == str(offset)
    assert collector.stored(sitting).read_bytes() == data


def test_patch_wrong_media_type_is_415_and_unknown_upload_404(collector, tus):
    # Core / Requests / PATCH: Content-Type MUST be application/offset+octet-stream (else 415,
    # SHOULD); a PATCH to a non-existent resource SHOULD be 404.
    data = os.urandom(10)
    location = tus.create(data).headers["Location"]
    answer = tus.http.patch(location, content=data, headers={
        "Upload-Offset": "0", "Content-Type": "application/octet-stream"})
    assert answer.status_code == 415
    assert tus.patch("/files/" + "e" * 32, 0, data).status_code == 404


def test_patch_of_a_completed_upload_is_told_it_is_complete(collector, tus, sitting):
    # Departure from Core / Requests / PATCH (409 for any other offset): a stored file sent
    # again from an earlier offset is read, dropped and answered 204 with the full offset, so
    # clients that create again and send from 0 succeed; the upload is not modified.
    data = os.urandom(4000)
    location = tus.upload(data)
    answer = tus.patch(location, 0, os.urandom(4000))
    assert answer.status_code == 204 and answer.headers["Upload-Offset"] == "4000"
    assert collector.stored(sitting).read_bytes() == data


# -- Creation ----------------------------------------------------------------------------------

def test_creation_is_201_with_a_location_at_offset_0(collector, tus):
    # Creation / POST: 201 Created, Location MUST be set; the new resource has offset 0.
    answer = tus.create(os.urandom(100))
    assert answer.status_code == 201
    assert tus.head(answer.headers["Location"]).headers["Upload-Offset"] == "0"


def test_creation_over_the_maximum_is_413(collector, tus):
    # Creation / POST: over the maximum (Tus-Max-Size) → MUST respond 413.
    limit = int(httpx.options(collector.url + "/files/").headers["Tus-Max-Size"])
    assert tus.create(limit + 1).status_code == 413
    assert tus.create(limit).status_code == 201


def test_deferred_length_is_refused_as_it_is_not_announced(collector, tus):
    # Creation / POST: Upload-Length or Upload-Defer-Length MUST be sent; creation-defer-length
    # is not in Tus-Extension, so a deferred length is a bad request.
    answer = tus.http.post("/files/", headers={"Upload-Defer-Length": "1", "Upload-Metadata": metadata(
        station="S01", sitting=tus.sitting, path="x.csv", sha256="0" * 64)})
    assert answer.status_code == 400
    assert "Upload-Defer-Length" in answer.json()["message_en"]


def test_empty_upload_is_complete_at_creation(collector, tus, sitting):
    # Creation / POST: Upload-Length 0 is "immediately complete after its creation".
    location = tus.create(b"", path="empty.txt").headers["Location"]
    assert tus.head(location).headers["Upload-Offset"] == "0"
    assert collector.stored(sitting, "empty.txt").read_bytes() == b""


def test_head_carries_the_metadata_as_created(collector, tus):
    # Creation / POST: with metadata, HEAD answers MUST include Upload-Metadata "as specified
    # by the Client during the creation" (extra keys and empty values included).
    data = os.urandom(10)
    sent = metadata(station="S01", sitting=tus.sitting, path="m.csv",
                    sha256=hashlib.sha256(data).hexdigest(), filename="成绩.csv") + ",is_confidential"
    location = tus.http.post("/files/", headers={"Upload-Length": "10", "Upload-Metadata": sent}
                             ).headers["Location"]
    assert tus.head(location).headers["Upload-Metadata"] == sent
    tus.patch(location, 0, data)
    assert tus.head(location).headers["Upload-Metadata"] == sent


def test_metadata_keys_must_be_unique(collector, tus):
    # Creation / Headers / Upload-Metadata: "All keys MUST be unique".
    sent = metadata(station="S01", sitting=tus.sitting, path="d.csv", sha256="0" * 64)
    answer = tus.http.post("/files/", headers={
        "Upload-Length": "1", "Upload-Metadata": sent + ",path " + base64.b64encode(b"e.csv").decode()})
    assert answer.status_code == 400 and "path" in answer.json()["message_en"]


# -- Checksum ----------------------------------------------------------------------------------

def test_checksum_unsupported_algorithm_is_400_listing_the_accepted(collector, tus):
    # Checksum: 400 for an unsupported algorithm; the chunk MUST be discarded, the offset MUST
    # NOT be updated. The message lists what is accepted.
    data = os.urandom(100)
    location = tus.create(data).headers["Location"]
    answer = tus.patch(location, 0, data, headers={
        "Upload-Checksum": "md5 " + base64.b64encode(hashlib.md5(data).digest()).decode()})
    assert answer.status_code == 400
    for algorithm in ("sha1", "sha256", "crc32"):
        assert algorithm in answer.json()["message_en"] and algorithm in answer.json()["message_zh"]
    assert tus.head(location).headers["Upload-Offset"] == "0"


def test_checksum_mismatch_is_460_and_the_chunk_discarded(collector, tus, sitting):
    # Checksum: 460 on mismatch; the chunk MUST be discarded and the offset MUST NOT move.
    data = os.urandom(3000)
    location = tus.create(data).headers["Location"]
    assert tus.patch(location, 0, data[:1000], headers={
        "Upload-Checksum": sha1_header(data[:1000])}).status_code == 204
    answer = tus.patch(location, 1000, data[1000:], headers={"Upload-Checksum": sha1_header(b"no")})
    assert answer.status_code == 460
    assert tus.head(location).headers["Upload-Offset"] == "1000"
    assert collector.spool_file(location).read_bytes() == data[:1000]
    assert tus.patch(location, 1000, data[1000:], headers={
        "Upload-Checksum": sha1_header(data[1000:])}).status_code == 204
    assert collector.stored(sitting).read_bytes() == data


# -- Termination -------------------------------------------------------------------------------

def test_delete_is_204_and_then_404_or_410(collector, tus):
    # Termination / DELETE: MUST respond 204; later requests SHOULD get 404 or 410.
    data = os.urandom(300)
    location = tus.create(data).headers["Location"]
    tus.patch(location, 0, data[:100])
    assert tus.http.delete(location).status_code == 204
    assert tus.head(location).status_code in (404, 410)
    assert tus.patch(location, 100, data[100:]).status_code in (404, 410)


def test_a_stored_file_is_never_withdrawn(collector, tus, sitting):
    # Departure from Termination (204 for completed uploads too): a verified file is a
    # student's work and is never withdrawn; the answer says so (409).
    data = os.urandom(300)
    location = tus.upload(data)
    answer = tus.http.delete(location)
    assert answer.status_code == 409 and answer.json()["error"] == "already_stored"
    assert collector.stored(sitting).read_bytes() == data
