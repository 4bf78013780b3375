"""A sitting's bundle: its files, ``manifest.json`` and the seal code (电子封签).

The manifest's form is the wire contract with the collector (``contract.py``): each
file's path, size and SHA-256, the station, sitting and times, as canonical JSON fixed at
seal time. No key is needed to seal: the signature is made at upload time
(``worker.py``), with the token the station has then.

Each byte of a bundle is read once, at seal time: the same pass feeds the whole-file
SHA-256 (the manifest needs it) and the CRC-32 of each upload chunk (the tus
``Upload-Checksum`` of each PATCH needs it). The chunk checksums go to the upload queue,
so the upload itself hashes nothing.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

from qmbase.platform import fsync_dir, make_private_file, open_private
from qmbase.refusal import Refusal

from . import contract
from .contract import FORMAT, LEGACY_FORMAT, MANIFEST, Crc32, canonical_bytes, seal_code

# Bytes per tus PATCH (each with its own Upload-Checksum). Measured with scripts/bench/upload.py
# on 127.0.0.1 (1 GiB, medians of 5): 32 MiB uploads ~12% faster than 16 MiB (half the
# requests, fsyncs and commits, during which the client waits); 64 MiB gains nothing more.
# A PATCH cut off mid-way loses its whole chunk (it cannot be checked): on a school link of
# 2 MB/s that is at most ~17 s of sending, which argues against going larger.
DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024
READ_BLOCK = 1024 * 1024
# Keys of a result row that identify a child by name: kept only with upload.include_names.
PERSONAL_KEYS = frozenset({"name", "student_name", "name_zh", "name_en"})


class BundleError(Refusal):
    """A bundle could not be written; ``zh``/``en`` are what a teacher reads."""

    code, exit_code = "bundle", 1


@dataclass(frozen=True)
class FileDigest:
    path: str
    size: int
    sha256: str
    chunk_size: int
    chunks: tuple[str, ...]  # hex CRC-32 of each chunk_size slice, in order (see Crc32)


@dataclass
class Bundle:
    """A sealed bundle: where it is, its manifest, seal code and per-chunk digests."""

    dir: Path
    manifest: dict
    seal_code: str
    digests: dict[str, FileDigest] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    code: str  # missing | size | sha256 | manifest | extra
    path: str | None
    zh: str
    en: str


@dataclass
class BundleCheck:
    ok: bool
    seal_code: str | None
    problems: list[Problem]


# --- pure helpers -------------------------------------------------------------------

def check_relpath(path: str) -> str:
    """A bundle path as the collector demands it (``contract.safe_path``), or BundleError."""
    p = str(path)
    if not contract.safe_path(p):
        raise BundleError(f"文件路径不合规：{p!r}。只能用字母、数字和 . _ -，用“/”分隔，不能含“..”。",
                          f"Bad bundle path {p!r}: use letters, digits and . _ - in '/'-separated "
                          "parts, without '..'.")
    return p


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- digests (each chunk's CRC-32: contract.Crc32) -------------------------------------

def digest_stream(stream, chunk_size: int = DEFAULT_CHUNK_SIZE, sink=None) -> tuple[int, str, tuple[str, ...]]:
    """Read ``stream`` once: size, whole SHA-256 and each chunk's CRC-32; copy to ``sink`` if given."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    whole = hashlib.sha256()
    chunk = Crc32()
    in_chunk = 0
    size = 0
    chunks: list[str] = []
    while True:
        # Never read across a chunk boundary, so each block feeds exactly one chunk digest.
        data = stream.read(min(READ_BLOCK, chunk_size - in_chunk))
        if not data:
            break
        whole.update(data)
        chunk.update(data)
        if sink is not None:
            sink.write(data)
        size += len(data)
        in_chunk += len(data)
        if in_chunk == chunk_size:
            chunks.append(chunk.hexdigest())
            chunk = Crc32()
            in_chunk = 0
    if in_chunk or size == 0:
        chunks.append(chunk.hexdigest())
    return size, whole.hexdigest(), tuple(chunks)


def digest_file(path: Path, chunk_size: int = DEFAULT_CHUNK_SIZE, relpath: str = "") -> FileDigest:
    with open(path, "rb") as f:
        size, sha, chunks = digest_stream(f, chunk_size)
    return FileDigest(relpath or Path(path).name, size, sha, chunk_size, chunks)


def _place(src: Path, dest: Path, link: bool, chunk_size: int, relpath: str) -> FileDigest:
    """Hard-link (same disk) or copy ``src`` to ``dest``, hashing it in the same single pass."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dest)
        except OSError:  # another disk, FAT, no permission: copy instead
            link = False
    if link:
        return digest_file(dest, chunk_size, relpath)
    with open(src, "rb") as fin, open_private(dest) as fout:
        size, sha, chunks = digest_stream(fin, chunk_size, sink=fout)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, dest, follow_symlinks=True)
    make_private_file(dest)  # copystat copied the source's mode too
    return FileDigest(relpath, size, sha, chunk_size, chunks)


def _write_bytes(dest: Path, data: bytes, chunk_size: int, relpath: str) -> FileDigest:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open_private(dest) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    size, sha, chunks = digest_stream(io.BytesIO(data), chunk_size)
    return FileDigest(relpath, size, sha, chunk_size, chunks)


# --- results ------------------------------------------------------------------------

def public_rows(rows: Iterable[Mapping], include_names: bool) -> list[dict]:
    """Result rows as they leave the station: students by code; names only when allowed."""
    out = []
    for row in rows:
        out.append({k: v for k, v in row.items() if include_names or k not in PERSONAL_KEYS})
    return out


def results_csv(rows: list[dict]) -> bytes:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    # UTF-8 with BOM: Excel on a Chinese Windows opens it without garbling the characters.
    return buf.getvalue().encode("utf-8-sig")


def results_json(rows: list[dict]) -> bytes:
    return json.dumps(rows, ensure_ascii=False, indent=2).encode("utf-8")


# --- writing and verifying ----------------------------------------------------------

def write_bundle(dest: Path | str, *, station: str, sitting: str,
                 kind: str, item: str | None = None,
                 opened_at: str | None = None, closed_at: str | None = None,
                 files: Mapping[str, Path | str] | None = None,
                 results: Iterable[Mapping] | None = None,
                 include_names: bool = False, link: bool = True,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> Bundle:
    """Write a sitting's bundle into the new directory ``dest`` and seal it.

    ``files`` maps a bundle path (``recordings/0001-1.flac``) to the source file, which is
    hard-linked when ``link`` and the disk allow it, else copied. ``results`` rows (one
    per reading or take; students by ``code``) become ``results.csv`` and ``results.json``;
    name keys are dropped unless ``include_names``. The bundle is built beside ``dest`` and
    renamed into place, so ``dest`` never holds half a bundle.
    """
    dest = Path(dest)
    if dest.exists():
        raise BundleError(f"场次包目录已存在：{dest}。该场次可能已封存，请勿重复封存。",
                          f"Bundle directory already exists: {dest}. The sitting may already be sealed.")
    files = dict(files or {})
    staging = dest.with_name(dest.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)  # left by a crash mid-seal: the sources are untouched
    staging.mkdir(parents=True)
    digests: dict[str, FileDigest] = {}
    try:
        folded: set[str] = set()
        for rel, src in files.items():
            rel = check_relpath(rel)
            if rel == MANIFEST or contract.fold(rel) in folded:
                raise BundleError(f"文件路径重复或保留：{rel}", f"Duplicate or reserved bundle path: {rel}")
            src = Path(src)
            if not src.is_file():
                raise BundleError(f"找不到要封存的文件：{src}。请检查录音是否已保存。",
                                  f"File to seal not found: {src}. Check that the recording was saved.")
            digests[rel] = _place(src, staging / rel, link, chunk_size, rel)
            folded.add(contract.fold(rel))
        if results is not None:
            rows = public_rows(results, include_names)
            for rel, data in (("results.csv", results_csv(rows)), ("results.json", results_json(rows))):
                if contract.fold(rel) in folded:
                    raise BundleError(f"文件路径重复：{rel}", f"Duplicate bundle path: {rel}")
                digests[rel] = _write_bytes(staging / rel, data, chunk_size, rel)
        manifest = {
            "format": FORMAT, "station": station, "sitting": sitting, "kind": kind, "item": item,
            "opened_at": opened_at, "closed_at": closed_at, "sealed_at": utc_now(),
            "files": [{"path": d.path, "size": d.size, "sha256": d.sha256}
                      for d in sorted(digests.values(), key=lambda d: d.path)],
        }
        data = canonical_bytes(manifest)
        digests[MANIFEST] = _write_bytes(staging / MANIFEST, data, chunk_size, MANIFEST)
        for d in {(staging / r).parent for r in digests}:
            fsync_dir(d)
        os.replace(staging, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle(dest, manifest, seal_code(data), digests)


def read_manifest(bundle_dir: Path | str) -> tuple[dict, bytes]:
    path = Path(bundle_dir) / MANIFEST
    try:
        data = path.read_bytes()
        manifest = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise BundleError(f"场次包缺少 manifest.json：{bundle_dir}。请重新封存该场次。",
                          f"The bundle has no manifest.json: {bundle_dir}. Seal the sitting again.") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(f"manifest.json 已损坏：{path}。请重新封存该场次。",
                          f"manifest.json is damaged: {path}. Seal the sitting again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in (FORMAT, LEGACY_FORMAT) \
            or not isinstance(manifest.get("files"), list):
        raise BundleError(f"manifest.json 格式不对：{path}。", f"manifest.json has the wrong format: {path}.")
    return manifest, data


def verify_bundle(bundle_dir: Path | str) -> BundleCheck:
    """Check the manifest's canonical form and every listed file's size and SHA-256."""
    bundle_dir = Path(bundle_dir)
    try:
        manifest, data = read_manifest(bundle_dir)
    except BundleError as e:
        return BundleCheck(False, None, [Problem("manifest", MANIFEST, e.zh, e.en)])
    problems: list[Problem] = []
    if manifest["format"] != FORMAT or contract.parse_canonical(data)[0] is None:
        problems.append(Problem(
            "manifest", MANIFEST,
            "清单（manifest.json）不是封存时的标准格式：封存后被改动过。请联系信息中心。",
            "manifest.json is not in the canonical form it was sealed in: it was changed after "
            "sealing. Contact the information center."))
    for entry in manifest["files"]:
        rel = str(entry.get("path", ""))
        try:
            check_relpath(rel)
        except BundleError as e:
            problems.append(Problem("manifest", rel, e.zh, e.en))
            continue
        path = bundle_dir / rel
        if not path.is_file():
            problems.append(Problem("missing", rel, f"文件缺失：{rel}。请勿删除场次包中的文件。",
                                    f"File missing: {rel}. Do not delete files from a bundle."))
            continue
        if path.stat().st_size != entry.get("size"):
            problems.append(Problem("size", rel, f"文件大小与封签不符：{rel}（封存后被改动）。",
                                    f"File size differs from the seal: {rel} (changed after sealing)."))
            continue
        if digest_file(path, relpath=rel).sha256 != entry.get("sha256"):
            problems.append(Problem("sha256", rel, f"文件内容与封签不符：{rel}（封存后被改动）。",
                                    f"File content differs from the seal: {rel} (changed after sealing)."))
    return BundleCheck(not problems, seal_code(data), problems)


def upgrade_legacy(bundle_dir: Path | str) -> bytes | None:
    """Re-seal a qm-bundle/1 manifest (signed inside, formatted) as qm-bundle/2; new bytes or None.

    Bundles sealed by older versions stay uploadable: the content is kept as it was, without
    its old signature (made under whatever key the station had, possibly none), written in
    canonical form; the signature is made at upload time like any other. The old file is
    kept beside it as ``manifest.v1.json`` (not part of the upload).
    """
    bundle_dir = Path(bundle_dir)
    manifest, data = read_manifest(bundle_dir)
    if manifest["format"] != LEGACY_FORMAT:
        return None
    body = {k: v for k, v in manifest.items() if k != "signature"}
    body["format"] = FORMAT
    files, why = contract.manifest_files(body)
    if files is None:
        raise BundleError(f"旧版清单无法转换（{why}）：{bundle_dir}。请联系信息中心。",
                          f"The old manifest cannot be converted ({why}): {bundle_dir}. "
                          "Contact the information center.")
    new = canonical_bytes(body)
    old_copy = bundle_dir / "manifest.v1.json"
    if not old_copy.exists():
        _write_bytes(old_copy, data, DEFAULT_CHUNK_SIZE, old_copy.name)
    tmp = bundle_dir / (MANIFEST + ".tmp")
    _write_bytes(tmp, new, DEFAULT_CHUNK_SIZE, MANIFEST)
    os.replace(tmp, bundle_dir / MANIFEST)
    fsync_dir(bundle_dir)
    return new
