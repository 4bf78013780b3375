"""The wire contract between station and collector, in one place (both import it).

qm-bundle/2:

- ``manifest.json`` is the canonical JSON of the manifest (keys sorted, no spaces, UTF-8):
  its bytes are fixed when the sitting closes, so its SHA-256, and the seal code taken from
  it, never change afterwards. The collector accepts only these bytes: a manifest whose
  bytes differ from the canonical form of its own content (extra spaces, another key order,
  a duplicate key) is refused, so nobody can grind formatting to match a written seal code.
- The signature travels beside the manifest, not inside it: HMAC-SHA256 under the key
  derived from the station's token, over the manifest's SHA-256. The station makes it when
  it uploads, with the token it has then, so giving a station a new token (``collector
  add-station`` again) leaves every unsent bundle uploadable, and no manifest is ever signed
  with an empty key (the station refuses to upload without a token).
- Bundle paths follow one strict rule (``safe_path``): relative, ``/``-separated segments
  of a safe alphabet, none a Windows device name, unique ignoring case (a collector may
  store on a Windows or macOS disk).

``verify_manifest`` is the one check of a manifest a collector makes, whatever brought it
(tus upload or a USB stick, where the signature is the text of ``manifest.sig`` beside it).

The transport is tus 1.0.0 (core, creation, checksum, termination): its version, the
``Upload-Metadata`` keys and encoding, and the ``Upload-Checksum`` algorithms are written
here once, for the station's client and the collector's routes.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Mapping

try:  # ISA-L's CRC-32 (python-isal): the very same checksum as zlib's, ~8x faster (PCLMUL)
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # the stdlib's, where isal is not installed: slower, same values
    from zlib import crc32 as _crc32

FORMAT = "qm-bundle/2"
LEGACY_FORMAT = "qm-bundle/1"  # signature inside, formatted bytes: only upgraded on the station
MANIFEST = "manifest.json"
SIGNATURE_METADATA = "signature"  # the tus Upload-Metadata key of the manifest's signature
SIGNATURE_FILE = "manifest.sig"   # the same signature beside the manifest on a USB stick

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# One path segment: letters, digits, '.', '_', '-'; starts with a letter or digit.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_PATH_CHARS = 512
MAX_STATION_ID = 64
# Device names Windows opens instead of a file, whatever the extension.
WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                             *(f"LPT{i}" for i in range(10))})
# Crockford's base32: no I, L, O or U, so nothing a teacher copies can be misread.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SEAL_BITS = 80  # 16 characters; matching a written code by trial takes ~2^80 hashes


# --- names ---------------------------------------------------------------------------

def safe_segment(segment: str) -> bool:
    """One name a client may choose (station, sitting, one part of a path)."""
    return (isinstance(segment, str) and SEGMENT.match(segment) is not None
            and not segment.endswith(".")
            and segment.split(".")[0].upper() not in WINDOWS_DEVICES)


def safe_station_id(station_id: str) -> bool:
    """A station's id: one safe name of at most MAX_STATION_ID characters (the collector's
    keys and folders, the station's set-up page and pairing all check this one rule)."""
    return safe_segment(station_id) and len(station_id) <= MAX_STATION_ID


def safe_path(path: str) -> bool:
    """A bundle path: relative, '/'-separated safe segments, at most 512 characters."""
    return (isinstance(path, str) and 0 < len(path) <= MAX_PATH_CHARS
            and all(safe_segment(part) for part in path.split("/")))


def fold(path: str) -> str:
    """The form two paths must not share: the same file on a case-insensitive disk."""
    return path.casefold()


# --- canonical form, signature, seal code --------------------------------------------------

def canonical_bytes(manifest: Mapping) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def signing_key(token: str) -> bytes:
    """The manifest key derived from the token, so the collector keeps no token in clear."""
    if not token:
        raise ValueError("a manifest is never signed without a token")
    return hashlib.sha256(b"qm-manifest-key:" + token.encode("utf-8")).digest()


def sign_digest(manifest_sha256: str, key: bytes) -> str:
    """The signature of a manifest, given the hex SHA-256 of its bytes."""
    if not key:
        raise ValueError("a manifest is never signed without a key")
    message = f"{FORMAT} manifest sha256 {manifest_sha256.lower()}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(manifest_bytes: bytes, key: bytes) -> str:
    return sign_digest(hashlib.sha256(manifest_bytes).hexdigest(), key)


def signature_matches(manifest_sha256: str, signature: str | None, key: bytes) -> bool:
    if not isinstance(signature, str) or not key or not SHA256_HEX.match(manifest_sha256 or ""):
        return False
    return hmac.compare_digest(sign_digest(manifest_sha256, key), signature.strip().lower())


def seal_code(manifest_bytes: bytes) -> str:
    """电子封签: the first 80 bits of SHA-256 of the canonical manifest, as XXXX-XXXX-XXXX-XXXX."""
    head = int.from_bytes(hashlib.sha256(manifest_bytes).digest()[:SEAL_BITS // 8], "big")
    chars = "".join(CROCKFORD[(head >> shift) & 31] for shift in range(SEAL_BITS - 5, -1, -5))
    return "-".join(chars[i:i + 4] for i in range(0, len(chars), 4))


# --- the one manifest check ---------------------------------------------------------------

@dataclass
class ManifestCheck:
    ok: bool
    code: str | None = None           # signature_bad | manifest_not_canonical | manifest_bad
    detail: str = ""
    manifest: dict = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    seal_code: str | None = None


def parse_canonical(data: bytes) -> tuple[dict | None, str | None, str]:
    """(manifest, error code, detail): the bytes must be the canonical JSON of an object."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, "manifest_bad", f"not JSON ({type(exc).__name__})"
    if not isinstance(value, dict):
        return None, "manifest_bad", "not a JSON object"
    try:
        again = canonical_bytes(value)
    except (ValueError, UnicodeEncodeError, RecursionError):
        return None, "manifest_not_canonical", "cannot be written canonically"
    if again != data:
        return None, "manifest_not_canonical", "bytes differ from the canonical form"
    return value, None, ""


def manifest_files(manifest: Mapping) -> tuple[list[dict] | None, str]:
    """The listed files, each {path, size, sha256}, or None and why not."""
    files = manifest.get("files")
    if not isinstance(files, list):
        return None, "files must be a list"
    seen: set[str] = set()
    out = []
    for f in files:
        if not (isinstance(f, dict) and set(f) == {"path", "size", "sha256"}):
            return None, "each file is {path, size, sha256}"
        path, size, sha = f["path"], f["size"], f["sha256"]
        if not safe_path(path) or path == MANIFEST:
            return None, f"bad path {str(path)[:100]!r}"
        if fold(path) in seen:
            return None, f"path listed twice (ignoring case): {path[:100]!r}"
        seen.add(fold(path))
        if type(size) is not int or size < 0:
            return None, f"bad size for {path!r}"
        if not isinstance(sha, str) or not SHA256_HEX.match(sha):
            return None, f"bad sha256 for {path!r}"
        out.append({"path": path, "size": size, "sha256": sha})
    return out, ""


def verify_manifest(data: bytes, signature: str | None, key: bytes,
                    station: str, sitting: str) -> ManifestCheck:
    """Is ``data`` a manifest of ``station``'s ``sitting``, canonical and signed under ``key``?"""
    if not signature_matches(hashlib.sha256(data).hexdigest(), signature, key):
        return ManifestCheck(False, "signature_bad", "the signature does not match")
    manifest, code, detail = parse_canonical(data)
    if manifest is None:
        return ManifestCheck(False, code, detail)
    if manifest.get("format") != FORMAT:
        return ManifestCheck(False, "manifest_bad", f"format must be {FORMAT}")
    if manifest.get("station") != station or manifest.get("sitting") != sitting:
        return ManifestCheck(False, "manifest_bad", "station or sitting differs from the upload's")
    files, detail = manifest_files(manifest)
    if files is None:
        return ManifestCheck(False, "manifest_bad", detail)
    return ManifestCheck(True, None, "", manifest, files, seal_code(data))


# --- tus: version, metadata, chunk checksums -----------------------------------------------

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination"
PATCH_CONTENT_TYPE = "application/offset+octet-stream"
# The Upload-Metadata keys of every upload; the manifest's also carries SIGNATURE_METADATA.
UPLOAD_METADATA = ("station", "sitting", "path", "sha256")


# Each PATCH's Upload-Checksum (tus checksum extension). Its job is to catch a chunk damaged in
# transit so that only that chunk is sent again; the guarantee that nothing is stored as good
# with a wrong hash is the whole file's SHA-256, checked by the collector before it stores. A
# second SHA-256 per byte for the chunk cost each side ~0.9 ms of CPU per MiB (the largest
# item in the upload's cost, measured by scripts/bench/upload.py); CRC-32 catches every burst
# error up to 32 bits and any flipped byte, at ~0.06 ms per MiB with ISA-L (~0.45 with the
# stdlib's zlib), so SHA-256 runs once per byte on each side, as issue 6 asks.
class Crc32:
    """CRC-32 (zlib's) behind hashlib's interface; ``digest()`` is big-endian, as tus servers
    and S3 send CRC-32 checksums in base64."""

    name = "crc32"
    digest_size = 4

    def __init__(self, data: bytes = b"", value: int = 0):
        self.value = _crc32(data, value)

    def update(self, data) -> None:
        self.value = _crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")

    def hexdigest(self) -> str:
        return f"{self.value:08x}"

    def copy(self) -> "Crc32":
        return Crc32(value=self.value)


# The Upload-Checksum algorithms, in the order the collector advertises them. Stations send
# CRC-32; sha1 is the one algorithm the tus checksum extension requires; sha256 from chunks
# queued by older stations.
CHECKSUMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "crc32": Crc32}


@dataclass(frozen=True)
class Checksum:
    """One ``Upload-Checksum``: the algorithm's name and the raw digest of the PATCH body."""

    algorithm: str
    digest: bytes

    def hasher(self):
        return CHECKSUMS[self.algorithm]()

    def header(self) -> str:
        return f"{self.algorithm} " + base64.b64encode(self.digest).decode("ascii")


def parse_checksum(header: str) -> Checksum:
    """``<algorithm> <base64 digest>``; ValueError when malformed or of an unknown algorithm."""
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise ValueError(f"unknown checksum algorithm {algorithm[:40]!r}")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise ValueError("the checksum is not base64") from None
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise ValueError(f"a {algorithm} digest has another length")
    return Checksum(algorithm, digest)


def encode_metadata(meta: Mapping[str, str]) -> str:
    """tus Upload-Metadata: comma-separated ``key base64(UTF-8 value)`` pairs."""
    return ",".join(f"{k} {base64.b64encode(str(v).encode('utf-8')).decode('ascii')}"
                    for k, v in meta.items())


def decode_metadata(header: str) -> dict[str, str]:
    """The pairs of an Upload-Metadata header; ValueError (naming the key) when malformed."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        if key in metadata:
            raise ValueError(f"{key}: given twice (keys must be unique)")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"{key}: not base64 of UTF-8") from None
    return metadata
