"""Sealed sittings carried by hand (`station collector import DIR`): a school without a network
brings its bundles on a USB stick, written by `station upload export`.

Each sitting on the stick passes the checks an upload passes, with the contract's own
functions: the manifest's canonical form, format, station, sitting and its signature (the
text of `manifest.sig` beside it, under the key kept for that station) by
`contract.verify_manifest`, every path by `contract.safe_path`, and every file's size and
SHA-256 against the manifest. A sitting that fails any check is refused as a whole, naming the file and the reason, and nothing of it is
stored. What passes is stored as `uploads` rows in state done (via 'usb'), exactly where a
network upload puts them: a later network upload of the same file finds it done and sends
nothing (tus creation answers with the whole length), and a sitting that came by network
first is reported as already there. Exactly once, whichever way comes first. The incidents
sealed with a sitting are filed as if they had been sent (keyed by their id, so once too).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from qmbase.refusal import Refusal

from .. import contract
from ..bundle import digest_stream
from . import incidents, sittings
from .index import Index
from .messages import CollectorError
from .storage import safe_key
from .store import now_iso

MAX_DEPTH = 3  # stick root / station folder / sitting folder / manifest.json
INCIDENTS = "incidents.json"   # the incidents a station sealed with the sitting


@dataclass
class Outcome:
    folder: str
    station: str
    sitting: str
    status: str                 # stored | already | refused
    seal_code: str | None = None
    files: int = 0
    bytes: int = 0
    problems: list[dict] = field(default_factory=list)   # {path, code, zh, en}

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Refused(Refusal):
    def __init__(self, path: str, code: str, zh: str, en: str):
        super().__init__(f"{path}: {zh}", f"{path}: {en}", code=code)
        self.problem = {"path": path, "code": code, "zh": zh, "en": en}


def find_bundles(root: Path) -> list[Path]:
    """Folders holding a manifest.json: the stick itself, a station's folder or a sitting's."""
    found = []
    for depth in range(MAX_DEPTH):
        found += [m.parent for m in root.glob("/".join(["*"] * depth + ["manifest.json"]))
                  if m.is_file()]
    return sorted(set(found))


def import_dir(db: Index, storage, staging_root: Path, root: Path | str) -> list[Outcome]:
    root = Path(root)
    return [import_bundle(db, storage, staging_root, folder, root) for folder in find_bundles(root)]


def _read_head(folder: Path) -> tuple[bytes, str, str]:
    data = (folder / contract.MANIFEST).read_bytes()
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refused(contract.MANIFEST, "manifest",
                      "清单文件已损坏，无法读取。", "The manifest is damaged and cannot be read.") from None
    if not isinstance(manifest, dict):
        raise Refused(contract.MANIFEST, "manifest", "清单文件格式不对。", "The manifest has the wrong format.")
    return data, str(manifest.get("station") or ""), str(manifest.get("sitting") or "")


def _station_key(db: Index, station: str) -> bytes:
    row = db.one("SELECT manifest_key FROM stations WHERE id = ?", [station])
    if row is None:
        raise Refused(contract.MANIFEST, "unknown_station",
                      f"工作站 {station} 未在本汇集服务器登记。请先 station collector add-station {station}，"
                      f"或检查这是否是本区县的 U 盘。",
                      f"Station {station} is not registered on this collector. Add it first "
                      f"(station collector add-station {station}), or check the stick is this district's.")
    return bytes.fromhex(row["manifest_key"] or "")


def _stage(folder: Path, entry: dict, staging: Path) -> Path:
    """Copy one listed file off the stick, hashing it on the way; refuse any difference."""
    rel = entry["path"]
    if not contract.safe_path(rel) or rel == contract.MANIFEST:
        raise Refused(rel[:200], "bad_path", "文件路径不合规（绝对路径、..、反斜杠或 Windows 不允许的名字）。",
                      "The file path is not allowed (absolute, '..', backslash or a name Windows forbids).")
    source = folder / rel
    if not source.is_file():
        raise Refused(rel, "missing", "U 盘上缺少这个文件。请在工作站上重新导出。",
                      "This file is missing from the stick. Export again on the station.")
    target = staging / hashlib.sha256(rel.encode("utf-8")).hexdigest()
    with open(source, "rb") as fin, open(target, "wb") as fout:
        size, sha256, _ = digest_stream(fin, sink=fout)
        fout.flush()
        os.fsync(fout.fileno())
    if size != entry["size"]:
        raise Refused(rel, "size", f"文件大小与封签不符（清单 {entry['size']} 字节，U 盘上 {size} 字节）：封存后被改动或拷贝不完整。",
                      f"The size differs from the seal (manifest {entry['size']} bytes, stick {size}): "
                      f"changed after sealing or copied incompletely.")
    if sha256 != entry["sha256"].lower():
        raise Refused(rel, "sha256", "文件内容与封签不符（SHA-256 不同）：封存后被改动。",
                      "The content differs from the seal (SHA-256 differs): changed after sealing.")
    return target


def _done(db: Index, station: str, sitting: str) -> dict[str, str]:
    """Path -> SHA-256 of the files of a sitting already stored (by either way)."""
    return {r["path"]: r["sha256"] for r in db.query(
        "SELECT path, sha256 FROM uploads WHERE station = ? AND sitting = ? AND state = 'done'",
        [station, sitting])}


def _keep_incidents(db: Index, station: str, data: bytes | None) -> None:
    """A school without a network sends its incidents sealed in the bundle: file them as the
    network would have (a later network delivery of the same incident changes nothing)."""
    if data is None:
        return
    try:
        filed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return
    for body in filed if isinstance(filed, list) else []:
        if isinstance(body, dict):
            try:
                incidents.store(db, station, body)
            except CollectorError:
                pass  # sealed by an older station, in a shape the form cannot take: it stays in the bundle


def _signature(folder: Path) -> str:
    try:
        return (folder / contract.SIGNATURE_FILE).read_text("ascii", errors="replace").strip()
    except FileNotFoundError:
        raise Refused(contract.SIGNATURE_FILE, "signature",
                      "U 盘上缺少清单的签名（manifest.sig）。请用新版工作站软件重新导出（station upload export）。",
                      "The manifest's signature (manifest.sig) is missing from the stick. Export again "
                      "with the current station software (station upload export).") from None


def _refusal(check: contract.ManifestCheck) -> Refused:
    if check.code == "signature_bad":
        return Refused(contract.MANIFEST, "signature",
                       "清单的签名不符：清单被改动过，或不是该工作站用其当前令牌签的。未保存任何内容。"
                       "若工作站换过令牌，请在工作站上重新导出。",
                       "The manifest's signature does not match: it was altered, or not signed by this "
                       "station under its current token. Nothing was stored. If the station was given a "
                       "new token, export again on the station.")
    return Refused(contract.MANIFEST, check.code or "manifest",
                   f"清单不合规（{check.detail}）：封存后被改动过，或由不兼容的软件写出。未保存任何内容。",
                   f"The manifest is not valid ({check.detail}): changed after sealing, or written by "
                   f"incompatible software. Nothing was stored.")


def import_bundle(db: Index, storage, staging_root: Path, folder: Path,
                  root: Path) -> Outcome:
    shown = str(folder.relative_to(root)) if folder != root else "."
    outcome = Outcome(shown, "", folder.name, "refused")
    staging = staging_root / ("usb-" + os.urandom(8).hex())
    try:
        data, outcome.station, outcome.sitting = _read_head(folder)
        station, sitting = outcome.station, outcome.sitting or folder.name
        outcome.sitting = sitting
        if not (contract.safe_segment(station) and contract.safe_segment(sitting)):
            raise Refused(contract.MANIFEST, "manifest", "清单中的工作站或场次编号不合规。",
                          "The manifest's station or sitting id is not allowed.")
        key = _station_key(db, station)
        signature = _signature(folder)
        check = contract.verify_manifest(data, signature, key, station, sitting)
        if not check.ok:
            raise _refusal(check)
        files = check.files
        outcome.seal_code = check.seal_code
        manifest_sha = hashlib.sha256(data).hexdigest()
        known = db.one("SELECT manifest_sha256 FROM sittings WHERE station = ? AND sitting = ? "
                       "AND signature_ok = 1", [station, sitting])
        if known and known["manifest_sha256"] != manifest_sha:
            raise Refused(contract.MANIFEST, "other_seal",
                          "该场次已用另一份封签交来，已封存的数据不会被替换。请联系该校核对电子封签。",
                          "This sitting already came with another seal; sealed data is never replaced. "
                          "Check the seal code with the school.")
        staging.mkdir(parents=True)
        staged = {f["path"]: _stage(folder, f, staging) for f in files}
        staged[contract.MANIFEST] = staging / "manifest"
        staged[contract.MANIFEST].write_bytes(data)
        wanted = {f["path"]: (f["sha256"].lower(), f["size"]) for f in files}
        wanted[contract.MANIFEST] = (manifest_sha, len(data))
        have = _done(db, station, sitting)
        for path, (sha, _) in wanted.items():
            if path in have and have[path] != sha:
                raise Refused(path, "path_taken", "该场次下这个文件已存有不同内容，已封存的数据不会被覆盖。",
                              "A different file is already stored under this path; sealed data is never "
                              "overwritten.")
        outcome.files = len(wanted)
        outcome.bytes = sum(size for _, size in wanted.values())
        todo = [p for p in wanted if p not in have]
        if not todo:
            outcome.status = "already"
            return outcome
        sealed_incidents = (staged[INCIDENTS].read_bytes() if INCIDENTS in staged and INCIDENTS in todo
                            else None)
        # The manifest last, as over the network: a sitting is never listed before its files.
        todo.sort(key=lambda p: p == contract.MANIFEST)
        for path in todo:
            sha, size = wanted[path]
            storage.put(staged[path], safe_key(station, sitting, path))
            now = now_iso()
            db.insert("uploads", {"id": "usb-" + os.urandom(12).hex(), "station": station,
                                  "sitting": sitting, "path": path, "sha256": sha,
                                  "length": size, "offset": size, "state": "done",
                                  "created_at": now, "finished_at": now, "via": "usb",
                                  "signature": signature if path == contract.MANIFEST else None})
        with db.transaction(sittings.lock(station, sitting)):
            if not known:  # recorded as come by hand, or not at all
                sittings.record_manifest(db, station, sitting, data, check)
                db.update("sittings", {"station": station, "sitting": sitting}, {"via": "usb"})
            sittings.update_completeness(db, station, sitting)
        _keep_incidents(db, station, sealed_incidents)
        outcome.status = "stored"
        return outcome
    except Refused as exc:
        outcome.status = "refused"
        outcome.problems.append(exc.problem)
        return outcome
    except OSError as exc:
        outcome.status = "refused"
        outcome.problems.append({"path": getattr(exc, "filename", None) or shown, "code": "io",
                                 "zh": f"读取或保存失败：{exc.strerror or exc}。请检查 U 盘和磁盘空间后重试。",
                                 "en": f"Reading or storing failed: {exc.strerror or exc}. Check the stick "
                                       f"and the free disk space, then try again."})
        return outcome
    finally:
        shutil.rmtree(staging, ignore_errors=True)
