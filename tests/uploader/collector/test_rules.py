"""The pure rules, without I/O: metadata parsing, path safety, seal codes, signatures (hypothesis)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from uploader.collector import sittings
from uploader.collector.messages import ERRORS, CollectorError
from uploader.collector.storage import LocalStorage, check_relative_path, safe_key
from uploader.collector.tus import parse_checksum, parse_metadata


@given(st.dictionaries(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10),
                       st.text(min_size=1, max_size=40), max_size=6))
def test_metadata_round_trips(values):
    header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())
    assert parse_metadata(header) == values


def test_metadata_that_is_not_base64_is_a_400():
    with pytest.raises(CollectorError) as caught:
        parse_metadata("path ###")
    assert caught.value.status == 400


@given(st.lists(st.sampled_from(list("ab./\\:\x00 ") + ["..", "录音"]), max_size=30).map("".join))
def test_no_accepted_path_leaves_the_storage_root(path):
    root = Path("/srv/collector/files")
    if check_relative_path(path):
        target = (root / "S01" / "SIT1" / path).resolve()
        assert target.is_relative_to(root / "S01" / "SIT1")
        assert ".." not in path.split("/") and "\\" not in path


def test_local_storage_refuses_a_key_that_climbs(tmp_path):
    with pytest.raises(ValueError):
        LocalStorage(tmp_path).path_of("../outside")
    with pytest.raises(ValueError):
        safe_key("S01", "..", "x")


@pytest.mark.parametrize("path", ["CON", "recordings/nul.flac", "com1.csv", "a./b", "a ", "x?.csv",
                                  "tab\there", "a|b"])
def test_names_windows_would_misread_are_refused(path):
    assert not check_relative_path(path)


def test_plain_relative_paths_are_accepted():
    for path in ["results.csv", "recordings/0001-1.flac", "录音/学生.flac", "console.log",
                 ".hidden", "a b.csv"]:
        assert check_relative_path(path)


@given(st.binary(max_size=200))
def test_seal_code_is_eight_upper_hex_digits_of_the_manifest_hash(data):
    code = sittings.seal_code(data)
    digest = hashlib.sha256(data).hexdigest().upper()
    assert code == f"{digest[:4]}-{digest[4:8]}"


def make_manifest(key: bytes, **fields) -> dict:
    manifest = {"format": "qm-bundle/1", "station": "S01", "sitting": "A", "files": [], **fields}
    manifest["signature"] = hmac.new(key, sittings.canonical(manifest), hashlib.sha256).hexdigest()
    return manifest


@given(st.text(max_size=20))
def test_signature_checks_the_canonical_json(school):
    key = hashlib.sha256(b"qm-manifest-key:token").digest()
    manifest = make_manifest(key, school=school)
    assert sittings.signature_ok(manifest, key)
    assert not sittings.signature_ok({**manifest, "school": school + "x"}, key)
    assert not sittings.signature_ok(manifest, hashlib.sha256(b"other").digest())


def test_manifest_for_another_sitting_is_not_valid():
    key = b"k" * 32
    data = json.dumps(make_manifest(key)).encode()
    assert sittings.parse_manifest(data, "S01", "A", key)[2]
    assert not sittings.parse_manifest(data, "S01", "B", key)[2]
    assert not sittings.parse_manifest(b"not json", "S01", "A", key)[2]


def test_checksum_header_parses_and_refuses_unknown_algorithms():
    digest = base64.b64encode(hashlib.sha1(b"x").digest()).decode()
    hasher, expected = parse_checksum(f"sha1 {digest}")
    hasher.update(b"x")
    assert hasher.digest() == expected
    hasher, expected = parse_checksum("crc32 " + base64.b64encode(
        zlib.crc32(b"x").to_bytes(4, "big")).decode())
    hasher.update(b"x")
    assert hasher.digest() == expected
    for bad in ("md5 AAAA", "crc32 AAAA", "sha256 AAAA", "crc32 not-base64!"):
        with pytest.raises(CollectorError):
            parse_checksum(bad)


def test_every_message_is_chinese_then_english():
    for code, (zh, en) in ERRORS.items():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), code
        assert en.isascii(), code


@pytest.mark.parametrize("station_id", ["../x", "CON", "", "a b", "x" * 65, "站点1"])
def test_station_ids_that_cannot_be_a_folder_are_refused(tmp_path, station_id):
    from uploader.collector.cli import add_station

    with pytest.raises(ValueError) as caught:
        add_station(station_id, tmp_path)
    assert "站点编号" in str(caught.value) and "station id" in str(caught.value)
