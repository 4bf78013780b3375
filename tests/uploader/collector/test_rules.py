"""The pure rules, without I/O: metadata parsing, path safety, seal codes, signatures (hypothesis)."""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from uploader import contract
from uploader.collector.messages import ERRORS, CollectorError
from uploader.collector.storage import LocalStorage, safe_key
from uploader.collector.tus import parse_checksum, parse_metadata


@given(st.dictionaries(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10),
                       st.text(min_size=1, max_size=40), max_size=6))
def test_metadata_round_trips(values):
    header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())
    assert parse_metadata(header) == values
    assert contract.encode_metadata(values) == header  # the station's encoder, the same bytes


def test_metadata_that_is_not_base64_is_a_400():
    with pytest.raises(CollectorError) as caught:
        parse_metadata("path ###")
    assert caught.value.status == 400


@given(st.lists(st.sampled_from(list("ab./\\:\x00 ") + ["..", "录音"]), max_size=30).map("".join))
def test_no_accepted_path_leaves_the_storage_root(path):
    root = Path("/srv/collector/files")
    if contract.safe_path(path):
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
    assert not contract.safe_path(path)


def test_plain_relative_paths_are_accepted():
    for path in ["results.csv", "recordings/0001-1.flac", "console.log", "rawlogs/a_dev-ttyUSB0.rawlog.jsonl"]:
        assert contract.safe_path(path)


@pytest.mark.parametrize("path", ["录音/学生.flac", ".hidden", "a b.csv", "results\u202e.csv",
                                  "re\u200bsults.csv", "ｒesults.csv", "results.csv\u0000", "-x"])
def test_names_outside_the_safe_alphabet_are_refused(path):
    # RTL overrides, zero-width and full-width look-alikes, spaces, hidden files: all refused
    assert not contract.safe_path(path)


@given(st.binary(max_size=200))
def test_seal_code_is_80_bits_of_the_manifest_hash_in_crockford_base32(data):
    code = contract.seal_code(data)
    n = int.from_bytes(hashlib.sha256(data).digest()[:10], "big")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert code.replace("-", "") == "".join(alphabet[(n >> (75 - 5 * i)) & 31] for i in range(16))
    assert [len(g) for g in code.split("-")] == [4, 4, 4, 4]


KEY = hashlib.sha256(b"qm-manifest-key:token").digest()


def manifest_bytes(**fields) -> bytes:
    manifest = {"format": "qm-bundle/2", "station": "S01", "sitting": "A",
                "files": [{"path": "results.csv", "size": 3, "sha256": "0" * 64}], **fields}
    return contract.canonical_bytes(manifest)


@given(st.text(max_size=20))
def test_the_signature_covers_the_exact_bytes(school):
    data = manifest_bytes(school=school)
    signature = contract.sign(data, KEY)
    assert contract.verify_manifest(data, signature, KEY, "S01", "A").ok
    other = manifest_bytes(school=school + "x")
    assert contract.verify_manifest(other, signature, KEY, "S01", "A").code == "signature_bad"
    assert not contract.verify_manifest(data, signature, hashlib.sha256(b"other").digest(), "S01", "A").ok
    assert not contract.verify_manifest(data, None, KEY, "S01", "A").ok
    assert not contract.verify_manifest(data, contract.sign(data, KEY), b"", "S01", "A").ok


@pytest.mark.parametrize("reformat", [
    lambda m: json.dumps(m, ensure_ascii=False, sort_keys=True),            # spaces after separators
    lambda m: json.dumps(m, ensure_ascii=False, indent=2, sort_keys=True),  # indented
    lambda m: json.dumps(m, separators=(",", ":"), sort_keys=True),        # \u escapes
    lambda m: json.dumps(dict(reversed(list(m.items()))), ensure_ascii=False, separators=(",", ":")),
    lambda m: json.dumps(m, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + " ",
    lambda m: '{"format":"x",' + json.dumps(m, ensure_ascii=False, separators=(",", ":"), sort_keys=True)[1:],
])
def test_only_the_canonical_serialization_is_accepted(reformat):
    # A token holder grinding whitespace, key order or duplicate keys for a matching seal code
    # gets nothing: the collector takes only the canonical bytes, whatever the signature says.
    m = json.loads(manifest_bytes(school="测试实验小学"))
    data = reformat(m).encode("utf-8")
    assert data != manifest_bytes(school="测试实验小学")
    check = contract.verify_manifest(data, contract.sign(data, KEY), KEY, "S01", "A")
    assert check.code == "manifest_not_canonical", check


def test_manifest_for_another_sitting_or_with_bad_files_is_not_valid():
    def check(data, sitting="A"):
        return contract.verify_manifest(data, contract.sign(data, KEY), KEY, "S01", sitting)

    assert check(manifest_bytes()).ok
    assert check(manifest_bytes(), "B").code == "manifest_bad"
    assert check(b"not json").code == "manifest_bad"
    assert check(b"[" * 100_000 + b"]" * 100_000).code == "manifest_bad"  # RecursionError caught
    twice = [{"path": "a.csv", "size": 1, "sha256": "0" * 64}, {"path": "A.CSV", "size": 1, "sha256": "0" * 64}]
    assert check(manifest_bytes(files=twice)).code == "manifest_bad"  # same file on Windows
    assert check(manifest_bytes(files=[{"path": "../x", "size": 1, "sha256": "0" * 64}])).code == "manifest_bad"
    assert check(manifest_bytes(format="qm-bundle/1")).code == "manifest_bad"


def test_checksum_header_parses_and_refuses_unknown_algorithms():
    digest = base64.b64encode(hashlib.sha1(b"x").digest()).decode()
    for header in (f"sha1 {digest}",
                   "crc32 " + base64.b64encode(zlib.crc32(b"x").to_bytes(4, "big")).decode()):
        checksum = parse_checksum(header)
        hasher = checksum.hasher()
        hasher.update(b"x")
        assert hasher.digest() == checksum.digest
        assert checksum.header() == header  # what the station sends is what the collector reads
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
