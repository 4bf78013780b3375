"""The pure parts of the client: how collector answers map to actions, headers, backoff."""
from __future__ import annotations

import base64
import hashlib
import zlib

import httpx
import pytest

from uploader.client import (AlreadyStored, Busy, ChunkRejected, OffsetConflict, Refused, ServerFull, TusError,
                             UploadDiscarded, UploadGone, checksum_header, encode_metadata, error_for)
from uploader.worker import Backoff


@pytest.mark.parametrize("status,headers,kind", [
    (460, {"Upload-Discarded": "sha256-mismatch"}, UploadDiscarded),
    (460, {}, ChunkRejected),
    (404, {}, UploadGone),
    (410, {}, UploadGone),
    (409, {}, OffsetConflict),
    (401, {}, Refused),
    (403, {}, Refused),
    (413, {}, Refused),
    (400, {}, Refused),
    (507, {}, ServerFull),
    (500, {}, TusError),
    (502, {}, TusError),
])
def test_each_answer_maps_to_an_action_with_a_bilingual_message(status, headers, kind):
    err = error_for(httpx.Response(status, headers=headers, json={"error": "x"}), "patch")
    assert type(err) is kind and err.status == status
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.zh)  # Chinese first
    assert err.en and str(err).startswith(err.zh)


@pytest.mark.parametrize("code,kind", [
    ("offset_mismatch", OffsetConflict),
    ("busy", Busy),
    ("already_stored", AlreadyStored),
    ("path_taken", Refused),
])
def test_each_409_is_told_apart_by_its_code(code, kind):
    # Calling every 409 an offset conflict made a station retry path_taken for ever.
    err = error_for(httpx.Response(409, json={"error": code}), "create")
    assert type(err) is kind and err.code == code


@pytest.mark.parametrize("code", ["signature_bad", "manifest_not_canonical", "manifest_bad"])
def test_a_refused_manifest_says_what_to_do(code):
    err = error_for(httpx.Response(422, json={"error": code}), "patch")
    assert type(err) is Refused and err.code == code
    assert "信息中心" in err.zh or "令牌" in err.zh


def test_disk_full_says_what_to_do():
    err = error_for(httpx.Response(507), "patch")
    assert "磁盘已满" in err.zh and "disk is full" in err.en and "retry" in err.en


def test_metadata_is_base64_of_utf8():
    header = encode_metadata({"station": "S01", "path": "recordings/学生-1.flac"})
    pairs = dict(p.split(" ") for p in header.split(","))
    assert base64.b64decode(pairs["path"]).decode("utf-8") == "recordings/学生-1.flac"
    assert base64.b64decode(pairs["station"]) == b"S01"


def test_checksum_header_is_base64_of_the_raw_digest():
    # Chunks sealed now carry CRC-32 (big-endian); queues sealed earlier hold SHA-256.
    algo, b64 = checksum_header(f"{zlib.crc32(b'chunk'):08x}").split(" ")
    assert algo == "crc32" and base64.b64decode(b64) == zlib.crc32(b"chunk").to_bytes(4, "big")
    digest = hashlib.sha256(b"chunk").hexdigest()
    algo, b64 = checksum_header(digest).split(" ")
    assert algo == "sha256" and base64.b64decode(b64) == hashlib.sha256(b"chunk").digest()
    with pytest.raises(ValueError):
        checksum_header("abc123")


def test_backoff_grows_with_jitter_and_stops_at_the_cap():
    b = Backoff(base_s=1.0, cap_s=60.0)
    for attempts, top in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (50, 60.0)]:
        delays = {b.delay(attempts) for _ in range(50)}
        assert all(top / 2 <= d <= top for d in delays)
        assert len(delays) > 1  # jitter: a district's stations do not retry in step


from hypothesis import given, strategies as st  # noqa: E402


@given(st.integers(min_value=300, max_value=599),
       st.dictionaries(st.sampled_from(["Upload-Discarded", "Upload-Offset", "X-Other"]),
                       st.text(alphabet="abc-0123", max_size=12)),
       st.binary(max_size=64))
def test_any_refusal_becomes_a_bilingual_error(status, headers, body):
    err = error_for(httpx.Response(status, headers=headers, content=body), "patch")
    assert isinstance(err, TusError) and err.zh and err.en and err.status == status
