"""Every refusal of the contract: the right status, a bilingual message, and nothing stored."""
from __future__ import annotations

import hashlib
import os

import httpx
import pytest


def assert_bilingual(answer: httpx.Response) -> None:
    body = answer.json()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message_zh"])
    assert body["message_en"].isascii()
    assert body["message"].index(body["message_zh"]) < body["message"].index(body["message_en"])


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc", "Bearer"])
def test_patch_without_a_valid_token_writes_not_one_byte(collector, tus_for, authorization):
    tus = tus_for()
    data = os.urandom(200_000)
    location = tus.create(data).headers["Location"]
    headers = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream",
               "Upload-Offset": "0"}
    if authorization:
        headers["Authorization"] = authorization
    answer = httpx.patch(collector.url + location, content=data, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert_bilingual(answer)
    assert collector.spool_file(location).stat().st_size == 0
    assert tus.head(location).headers["Upload-Offset"] == "0"


def test_creation_without_a_valid_token_creates_nothing(collector, tus_for):
    tus = tus_for()
    tus.http.headers["Authorization"] = "Bearer forged"
    before = collector.spool_names()
    answer = tus.create(b"abc")
    assert answer.status_code == 401
    assert collector.spool_names() == before


def test_replaced_token_stops_working(collector, tus_for):
    from uploader.collector.cli import add_station

    tus = tus_for("S03")
    assert tus.create(b"abc", station="S03").status_code == 201
    # A new token for S03: the old one is void from now on.
    collector.tokens["S03"] = add_station("S03", collector.data_dir, db_url=collector.db_url)
    assert tus.create(b"abcd", station="S03").status_code == 401
    assert tus_for("S03").create(b"abcd", station="S03").status_code == 201


def test_another_stations_upload_is_403(collector, tus_for):
    mine, theirs = tus_for("S01"), tus_for("S02")
    data = os.urandom(10_000)
    location = mine.create(data).headers["Location"]
    assert theirs.head(location).status_code == 403
    answer = theirs.patch(location, 0, data)
    assert answer.status_code == 403
    assert_bilingual(answer)
    assert theirs.http.delete(location).status_code == 403
    assert collector.spool_file(location).stat().st_size == 0
    assert mine.head(location).headers["Upload-Offset"] == "0"


def test_creating_for_another_station_is_403(collector, tus_for):
    before = collector.spool_names()
    answer = tus_for("S01").create(b"abc", station="S02")
    assert answer.status_code == 403
    assert collector.spool_names() == before


def test_upload_length_over_the_limit_is_413_at_creation(collector, tus_for):
    before = collector.spool_names()
    answer = tus_for().create(64 * 1024 * 1024 + 1)
    assert answer.status_code == 413
    assert_bilingual(answer)
    assert collector.spool_names() == before


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape.csv", "a/../../b", "recordings\\x.flac",
                                  "a//b", "a/", "./a", "C:evil", "", "a/\x00b"])
def test_paths_that_could_escape_are_400(collector, tus_for, path):
    before, stored_before = collector.spool_names(), collector.stored_files()
    answer = tus_for().create(b"abc", path=path)
    assert answer.status_code == 400
    assert_bilingual(answer)
    assert collector.spool_names() == before
    assert collector.stored_files() == stored_before


@pytest.mark.parametrize("bad_sitting", ["..", "a/b", "a\\b"])
def test_sitting_that_could_escape_is_400(collector, tus_for, bad_sitting):
    assert tus_for().create(b"abc", sitting=bad_sitting).status_code == 400


@pytest.mark.parametrize("metadata", [
    "sitting U0lUMQ==,path eC5jc3Y=,sha256 " + "A" * 88,   # no station
    "station UzAx,path eC5jc3Y=",                            # no sitting, no sha256
    "station UzAx,sitting U0lUMQ==,path eC5jc3Y=,sha256 bm90LWhleA==",  # sha256 not hex
    "station !!!,sitting U0lUMQ==,path eC5jc3Y=,sha256 " + "A" * 88,    # not base64
])
def test_missing_or_malformed_metadata_is_400(collector, tus_for, metadata):
    tus = tus_for()
    before = collector.spool_names()
    answer = tus.http.post("/files/", headers={"Upload-Length": "3", "Upload-Metadata": metadata})
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_metadata"
    assert collector.spool_names() == before


@pytest.mark.parametrize("length", [None, "-1", "abc", "1.5"])
def test_bad_upload_length_is_400(collector, tus_for, length):
    tus = tus_for()
    headers = {"Upload-Metadata": "station UzAx"}
    if length is not None:
        headers["Upload-Length"] = length
    assert tus.http.post("/files/", headers=headers).status_code == 400


def test_other_tus_version_is_412(collector, tus_for):
    tus = tus_for()
    answer = tus.create(b"abc", headers={"Tus-Resumable": "0.2.2"})
    assert answer.status_code == 412
    assert answer.headers["Tus-Version"] == "1.0.0"


def test_patch_with_wrong_content_type_is_415(collector, tus_for):
    tus = tus_for()
    location = tus.create(b"abc").headers["Location"]
    answer = tus.patch(location, 0, b"abc", headers={"Content-Type": "application/json"})
    assert answer.status_code == 415
    assert tus.head(location).headers["Upload-Offset"] == "0"


def test_unknown_upload_is_404(collector, tus_for):
    assert tus_for().head("/files/" + "0" * 32).status_code == 404


def test_malformed_checksum_header_is_400(collector, tus_for):
    tus = tus_for()
    location = tus.create(b"abc").headers["Location"]
    answer = tus.patch(location, 0, b"abc", headers={"Upload-Checksum": "md5 AAAA"})
    assert answer.status_code == 400
    # A known algorithm with a digest of the wrong length is malformed too, not a mismatch.
    answer = tus.patch(location, 0, b"abc", headers={"Upload-Checksum": "crc32 AAAAAAAA"})
    assert answer.status_code == 400
    assert tus.head(location).headers["Upload-Offset"] == "0"


def test_nothing_is_ever_stored_as_good_with_a_wrong_hash(collector, tus_for, sitting):
    tus = tus_for()
    data = os.urandom(3000)
    tus.create(data, sha256=hashlib.sha256(b"other").hexdigest())
    location = tus.create(data, sha256=hashlib.sha256(b"other").hexdigest()).headers["Location"]
    assert tus.patch(location, 0, data).status_code == 460
    assert not collector.stored(sitting).exists()
