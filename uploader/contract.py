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
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Mapping

FORMAT = "qm-bundle/2"
LEGACY_FORMAT = "qm-bundle/1"  # signature inside, formatted bytes: only upgraded on the station
MANIFEST = "manifest.json"
SIGNATURE_METADATA = "signature"  # the tus Upload-Metadata key of the manifest's signature
SIGNATURE_FILE = "manifest.sig"   # the same signature beside the manifest on a USB stick

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# One path segment: letters, digits, '.', '_', '-'; starts with a letter or digit.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_PATH_CHARS = 512
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
