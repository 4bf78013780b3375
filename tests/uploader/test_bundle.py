"""Bundle, manifest, signature and seal code: what the proctor and the collector rely on."""
from __future__ import annotations

import hashlib
import io
import json
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from uploader import contract
from uploader.bundle import BundleError, Crc32, digest_stream, seal_code, verify_bundle, write_bundle

from .conftest import TOKEN, rows


def test_manifest_lists_every_file_with_size_and_sha256(make_bundle):
    b = make_bundle(sizes=(200_000, 10))
    m = json.loads((b.dir / "manifest.json").read_text("utf-8"))
    assert m["format"] == "qm-bundle/2"
    assert (m["station"], m["sitting"], m["kind"]) == ("S01", "SIT-1", "singing")
    assert m["opened_at"] and m["closed_at"] and m["sealed_at"]
    paths = [f["path"] for f in m["files"]]
    assert paths == sorted(["recordings/0001-1.flac", "recordings/0002-1.flac", "results.csv", "results.json"])
    for f in m["files"]:
        data = (b.dir / f["path"]).read_bytes()
        assert f["size"] == len(data)
        assert f["sha256"] == hashlib.sha256(data).hexdigest()


def test_the_manifest_is_its_canonical_json_and_carries_no_signature(make_bundle):
    b = make_bundle()
    data = (b.dir / "manifest.json").read_bytes()
    m = json.loads(data)
    assert "signature" not in m
    assert data == json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def test_the_signature_follows_the_contract_and_needs_a_key():
    data = b'{"format":"qm-bundle/2"}'
    key = hashlib.sha256(b"qm-manifest-key:" + TOKEN.encode()).digest()
    import hmac
    message = b"qm-bundle/2 manifest sha256 " + hashlib.sha256(data).hexdigest().encode()
    assert contract.sign(data, key) == hmac.new(key, message, hashlib.sha256).hexdigest()
    assert contract.signing_key(TOKEN) == key
    with pytest.raises(ValueError):
        contract.sign(data, b"")  # never under an empty key


def test_seal_code_is_80_bits_of_the_canonical_manifest_in_crockford_groups(make_bundle):
    b = make_bundle()
    digest = hashlib.sha256((b.dir / "manifest.json").read_bytes()).digest()
    n = int.from_bytes(digest[:10], "big")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    chars = "".join(alphabet[(n >> (75 - 5 * i)) & 31] for i in range(16))
    assert b.seal_code == "-".join(chars[i:i + 4] for i in (0, 4, 8, 12))
    assert verify_bundle(b.dir).seal_code == b.seal_code
    assert seal_code(b"x") != seal_code(b"y")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_a_seal_code_is_four_groups_of_four_without_look_alikes(data):
    code = seal_code(data)
    groups = code.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 4]
    assert not set("".join(groups)) - set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert not set(code) & set("ILOU")


def test_a_sealed_bundle_verifies(make_bundle):
    check = verify_bundle(make_bundle().dir)
    assert check.ok and check.problems == []


def test_a_tampered_recording_is_detected(make_bundle):
    b = make_bundle()
    target = b.dir / "recordings/0001-1.flac"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit changed
    target.unlink()  # break the hard link: the source recording stays as it was
    target.write_bytes(bytes(data))
    check = verify_bundle(b.dir)
    assert not check.ok
    assert [(p.code, p.path) for p in check.problems] == [("sha256", "recordings/0001-1.flac")]
    assert "封存后被改动" in check.problems[0].zh and "changed after sealing" in check.problems[0].en


def test_a_deleted_or_truncated_file_is_detected(make_bundle):
    b = make_bundle()
    (b.dir / "results.csv").unlink()
    rec = b.dir / "recordings/0002-1.flac"
    data = rec.read_bytes()
    rec.unlink()
    rec.write_bytes(data[:-1])
    codes = {(p.code, p.path) for p in verify_bundle(b.dir).problems}
    assert codes == {("missing", "results.csv"), ("size", "recordings/0002-1.flac")}


def test_a_reformatted_manifest_is_not_the_sealed_one(make_bundle):
    b = make_bundle()
    path = b.dir / "manifest.json"
    m = json.loads(path.read_bytes())
    path.write_text(json.dumps(m, ensure_ascii=False, indent=1), "utf-8")  # same content, spaces
    assert [p.code for p in verify_bundle(b.dir).problems] == ["manifest"]


def test_a_damaged_manifest_is_a_clear_problem(make_bundle):
    b = make_bundle()
    (b.dir / "manifest.json").write_bytes(b"{not json")
    check = verify_bundle(b.dir)
    assert not check.ok and check.problems[0].code == "manifest" and check.seal_code is None


def test_students_by_code_names_only_when_allowed(make_bundle):
    without = make_bundle()
    text = (without.dir / "results.csv").read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese text correctly
    decoded = text.decode("utf-8-sig")
    assert "0001" in decoded and "测试学生" not in decoded
    assert all("name" not in r for r in json.loads((without.dir / "results.json").read_bytes()))
    with_names = make_bundle(include_names=True)
    assert "测试学生1" in (with_names.dir / "results.csv").read_bytes().decode("utf-8-sig")
    assert json.loads((with_names.dir / "results.json").read_bytes())[0]["name"] == "测试学生1"
    assert json.loads((with_names.dir / "results.json").read_bytes())[0]["value"] == -1.5


def test_copy_when_not_linking_keeps_the_bundle_independent(tmp_path):
    src = tmp_path / "a.flac"
    src.write_bytes(b"abc" * 1000)
    b = write_bundle(tmp_path / "b", station="S01", sitting="X", kind="pe",
                     item="weight", files={"recordings/a.flac": src}, link=False)
    src.write_bytes(b"changed")
    assert verify_bundle(b.dir).ok


@pytest.mark.parametrize("bad", ["../escape.flac", "/abs.flac", "a//b.flac", "a\\b.flac", "", "manifest.json"])
def test_bad_paths_are_refused_and_nothing_is_left(tmp_path, bad):
    src = tmp_path / "a.flac"
    src.write_bytes(b"x")
    with pytest.raises(BundleError) as e:
        write_bundle(tmp_path / "b", station="S01", sitting="X", kind="singing",
                     files={bad: src})
    assert e.value.zh and e.value.en
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()
    assert src.read_bytes() == b"x"


def test_a_missing_recording_is_refused_and_nothing_is_left(tmp_path):
    with pytest.raises(BundleError) as e:
        write_bundle(tmp_path / "b", station="S01", sitting="X", kind="singing",
                     files={"recordings/0001-1.flac": tmp_path / "nope.flac"})
    assert "找不到" in e.value.zh and "not found" in e.value.en
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()


def test_sealing_twice_is_refused_and_the_first_bundle_stays(make_bundle, tmp_path):
    b = make_bundle()
    before = (b.dir / "manifest.json").read_bytes()
    with pytest.raises(BundleError):
        write_bundle(b.dir, station="S01", sitting="SIT-1", kind="singing", results=rows())
    assert (b.dir / "manifest.json").read_bytes() == before and verify_bundle(b.dir).ok


def test_chunk_digests_come_from_the_same_pass(make_bundle):
    b = make_bundle(sizes=(64 * 1024 * 3 + 7,), chunk_size=64 * 1024)
    d = b.digests["recordings/0001-1.flac"]
    data = (b.dir / "recordings/0001-1.flac").read_bytes()
    assert d.chunks == tuple(f"{zlib.crc32(data[i:i + d.chunk_size]):08x}"
                             for i in range(0, len(data), d.chunk_size))
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert set(b.digests) == {"recordings/0001-1.flac", "results.csv", "results.json", "manifest.json"}


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5000), st.lists(st.integers(min_value=0, max_value=5000), max_size=5))
def test_crc32_is_zlibs_whatever_the_pieces(data, cuts):
    # The collector may run ISA-L's CRC-32 and the station zlib's, or the other way round:
    # fed in any pieces, both must give zlib's value, big-endian in digest().
    h = Crc32()
    edges = [0, *sorted(cuts), len(data)]
    for a, b in zip(edges, edges[1:]):
        h.update(memoryview(data)[a:b])
    assert h.hexdigest() == f"{zlib.crc32(data):08x}"
    assert h.digest() == zlib.crc32(data).to_bytes(4, "big") and h.copy().digest() == h.digest()


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_digest_stream_matches_slicing(data, chunk_size):
    out = io.BytesIO()
    size, whole, chunks = digest_stream(io.BytesIO(data), chunk_size, sink=out)
    assert size == len(data) and out.getvalue() == data
    assert whole == hashlib.sha256(data).hexdigest()
    expected = [f"{zlib.crc32(data[i:i + chunk_size]):08x}" for i in range(0, len(data), chunk_size)]
    assert list(chunks) == (expected or [f"{zlib.crc32(b''):08x}"])
