"""Sealed sittings onto a USB stick, for a school without a network (`station upload export`).

Each bundle is checked before it leaves (the manifest's canonical form and every file's SHA-256,
as the collector will check them; a qm-bundle/1 bundle is re-sealed first, as for an upload),
signed as an upload is signed (``manifest.sig`` beside the manifest, made now with the
station's token, ``uploader.contract``), copied to `<stick>/<station>/<sitting>/` through a
`.partial` folder renamed into place, and read back from the stick and checked again: a stick that loses bytes is found
here, at the school, not at the district. Beside the bundles, `封签清单-<station>.html` and
`.txt` list every sitting with its seal code, to print, sign and hand in with the stick.
"""
from __future__ import annotations

import html
import os
import shutil
from datetime import datetime
from pathlib import Path

import sqlite_utils

from qmbase.platform import fsync_dir

from . import contract
from .bundle import MANIFEST, BundleError, read_manifest, verify_bundle
from .queue import upgrade_legacy_sitting


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())


def _write(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as fout:
        fout.write(data)
        fout.flush()
        os.fsync(fout.fileno())


def export_one(db: sqlite_utils.Database, row: dict, stick: Path, token: str) -> dict:
    """Copy one queued sitting's bundle to the stick; a dict saying what happened."""
    row = upgrade_legacy_sitting(db, row)   # sealed by an older version: today's form, as uploads do
    source = Path(row["bundle_dir"])
    out = {"sitting": row["sitting"], "station": row["station"], "seal_code": row["seal_code"],
           "files": row["file_count"], "bytes": row["total_bytes"], "status": "refused",
           "zh": "", "en": ""}
    check = verify_bundle(source)
    if not check.ok:
        p = check.problems[0]
        out.update(zh=f"本机的封存包有问题，未导出：{p.zh}", en=f"The bundle on this station is not sound; "
                   f"not exported: {p.en}")
        return out
    target = stick / row["station"] / row["sitting"]
    manifest, data = read_manifest(source)
    signature = contract.sign(data, contract.signing_key(token)).encode("ascii")
    if (target / MANIFEST).exists():
        if (target / MANIFEST).read_bytes() == data and verify_bundle(target).ok:
            if not (target / contract.SIGNATURE_FILE).is_file() \
                    or (target / contract.SIGNATURE_FILE).read_bytes() != signature:
                _write(target / contract.SIGNATURE_FILE, signature)   # the station's token changed
            out.update(status="already", zh="U 盘上已有这个场次，内容一致。", en="Already on the stick, identical.")
            return out
        shutil.rmtree(target)     # an older or damaged copy of the same sitting: write it afresh
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for entry in manifest["files"]:
        _copy(source / entry["path"], staging / entry["path"])
    _copy(source / MANIFEST, staging / MANIFEST)
    _write(staging / contract.SIGNATURE_FILE, signature)
    os.replace(staging, target)
    fsync_dir(target.parent)
    again = verify_bundle(target)   # read back from the stick itself
    if not again.ok or (target / contract.SIGNATURE_FILE).read_bytes() != signature:
        why = again.problems[0] if again.problems else None
        out.update(zh=f"写入 U 盘后校验失败（{why.zh if why else contract.SIGNATURE_FILE}）。请换一个 U 盘重试。",
                   en=f"The copy on the stick does not check ({why.en if why else contract.SIGNATURE_FILE}). "
                      f"Try another stick.")
        shutil.rmtree(target, ignore_errors=True)
        return out
    out.update(status="exported", zh="已导出并校验。", en="Exported and checked.")
    return out


def export(db: sqlite_utils.Database, stick: Path | str, token: str,
           sittings: list[str] | None = None) -> list[dict]:
    """Export the named sealed sittings (default: every one queued); unknown ids are refused."""
    stick = Path(stick)
    rows = {r["sitting"]: r for r in db.query("SELECT * FROM upload_sittings ORDER BY enqueued_at, sitting")}
    wanted = sittings or list(rows)
    results = []
    for sitting in wanted:
        if sitting not in rows:
            results.append({"sitting": sitting, "station": None, "seal_code": None, "files": 0,
                            "bytes": 0, "status": "refused",
                            "zh": "没有这个已封存的场次。场次关闭后才会封存（station session close）。",
                            "en": "No sealed sitting with this id; a sitting is sealed when it closes."})
            continue
        try:
            results.append(export_one(db, rows[sitting], stick, token))
        except (OSError, BundleError) as exc:
            results.append({**{k: rows[sitting][k] for k in ("sitting", "station", "seal_code")},
                            "files": 0, "bytes": 0, "status": "refused",
                            "zh": f"写入 U 盘失败：{exc}。请检查 U 盘是否插好、空间是否足够。",
                            "en": f"Writing to the stick failed: {exc}. Check the stick and its free space."})
    return results


def seal_list(results: list[dict], station: str, school: str, kinds: dict[str, str]) -> tuple[str, str]:
    """The printable list of seal codes (HTML, text) of what is on the stick."""
    made = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    on_stick = [r for r in results if r["status"] in ("exported", "already")]
    lines = [f"电子封签清单 / Seal codes — 工作站 {station}  学校 {school}  导出时间 {made}", "",
             "场次 sitting          类型 kind        文件 files   字节 bytes     电子封签 seal code"]
    for r in on_stick:
        lines.append(f"{r['sitting']:<20} {kinds.get(r['sitting'], ''):<14} {r['files']:>9}   "
                     f"{r['bytes']:>12}   {r['seal_code']}")
    lines += ["", "监测员签字 / proctor: ____________    学校负责人签字 / school: ____________",
              "区县接收人签字 / received by: ____________    接收时间 / at: ____________"]
    rows = "".join(f"<tr><td>{html.escape(r['sitting'])}</td><td>{html.escape(kinds.get(r['sitting'], ''))}</td>"
                   f"<td class=n>{r['files']}</td><td class=n>{r['bytes']}</td>"
                   f"<td class=seal>{html.escape(r['seal_code'] or '')}</td></tr>" for r in on_stick)
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>电子封签清单 {html.escape(station)}</title>
<style>body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2cm}}
table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #000;padding:.3rem .5rem}}
.n{{text-align:right}}.seal{{font-family:monospace;font-size:1.2rem;letter-spacing:.05em}}
.sign{{margin-top:2rem;line-height:2.5}}</style></head><body>
<h1>电子封签清单 <small>Seal codes</small></h1>
<p>工作站 Station <strong>{html.escape(station)}</strong> · 学校 School {html.escape(school)} · 导出时间 Exported {made}</p>
<table><thead><tr><th>场次 Sitting</th><th>类型 Kind</th><th>文件 Files</th><th>字节 Bytes</th><th>电子封签 Seal code</th></tr></thead>
<tbody>{rows}</tbody></table>
<p class="sign">监测员签字 Proctor: ________________ 学校负责人签字 School: ________________<br>
区县接收人签字 Received by: ________________ 接收时间 At: ________________</p>
</body></html>
"""
    return page, "\n".join(lines) + "\n"
