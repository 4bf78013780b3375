"""The sitting sheet (场次记录单): one printable page that stays at the school with the seal code.

The proctor and a witness sign it; the seal code printed on it is the short hash of the
bundle's manifest, so the district can match this paper to the data it received. The page
is self-contained (inline CSS, no script, no web font) because it is printed from whatever
browser the test room has, often offline. Both languages are on the page at once, Chinese
first: the strings are in ``sheet_i18n/zh.json`` and ``en.json``, one key in each.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from qmbase.platform import write_private_text
from station import roster, sealing, sittings
from station.context import Station
from station.errors import UsageError

HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    return json.loads((HERE / "sheet_i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def both(key: str, **values) -> tuple[str, str]:
    """(Chinese, English) for a catalog key."""
    return tuple(catalog(lang)[key].format(**values) for lang in ("zh", "en"))


def _when(stamp: str | None) -> str:
    # Stored as local ISO time with its offset; the wall-clock part is what the proctor saw.
    return (stamp or "")[:19].replace("T", " ")


def _pe_students(station: Station, sitting: dict) -> list[dict]:
    """One row per student; a sitting measuring several items (height, weight and the BMI
    derived from them) shows each item's value in the one result cell."""
    from pe_station import export, rules
    from pe_station.items import ITEMS

    items = rules.load(station.config["pe.items_file"] or None)
    doc = export.results(station.db, sitting["id"], lambda code: roster.lookup(station.db, code),
                         include_names=True, items=items)
    by_student: dict[str, list[dict]] = {}
    for r in doc["results"]:
        by_student.setdefault(r["student"].get("code", ""), []).append(r)
    rows = []
    for code, results in by_student.items():
        several = len(results) > 1
        result = tuple(" · ".join(_pe_value(r, ITEMS.get(r["item"], (r["item"],) * 2)[lang] if several else "")
                                  for r in results) for lang in (0, 1))
        # The status of the sitting's own item (the BMI): done only when all its inputs are.
        mine = next((r for r in results if r["item"] == sitting["item"]), results[0])
        rows.append({"code": code, "name": results[0]["student"].get("name", ""), "result": result,
                     "status": export.STATUS.get(mine["status"], (mine["status"],) * 2),
                     "tries": sum(len(r["attempts"]) for r in results)})
    return rows


def _pe_value(result: dict, label: str) -> str:
    value = f"{result['value']} {result['unit']}".strip() if result["value"] not in (None, "") else "–"
    return f"{label} {value}".strip()


def _singing_students(station: Station, sitting: dict) -> list[dict]:
    cur = station.db.execute("SELECT student_code, attempt, state, verdict, counts FROM takes "
                             "WHERE sitting_id = ? ORDER BY student_code, attempt", [sitting["id"]])
    takes: dict[str, list[tuple]] = {}
    for row in cur.fetchall():
        takes.setdefault(row[0], []).append(row)
    rows = []
    for code, mine in takes.items():
        # The take that counts, else the last one: what the proctor saw at the end.
        chosen = next((t for t in mine if t[4]), mine[-1])
        student = roster.lookup(station.db, code) or {}
        rows.append({"code": code, "name": student.get("name", ""),
                     "result": both(f"verdict.{chosen[3] or 'none'}"),
                     "status": both(f"take.{chosen[2]}"), "tries": len(mine)})
    return rows


def sheet_data(station: Station, sitting_id: str) -> dict:
    """Everything the sheet shows; refuses a sitting still open (its results may still change)."""
    from uploader.bundle import BundleError, read_manifest

    sitting = sittings.get(station.db, sitting_id)
    if sitting["state"] != "closed":
        raise UsageError(
            f"场次 {sitting_id} 还在进行中，不能打印记录单：成绩和录音还可能变化，也还没有电子封签。"
            f"请先关闭场次（station session close {sitting_id}），再打印。",
            f"Sitting {sitting_id} is still open, so it has no seal code yet and its results may "
            f"still change. Close it first (station session close {sitting_id}), then print the sheet.")
    try:
        if sealing.seal_code(station, sitting_id) is None:
            sealing.seal_and_queue(station, sitting_id)  # closed but never sealed (a crash at closing)
        manifest, _ = read_manifest(sealing.bundle_dir(station, sitting_id))
    except BundleError as e:
        raise UsageError.of(e) from None
    students = (_pe_students if sitting["kind"] == "pe" else _singing_students)(station, sitting)
    kind = sittings.KINDS[sitting["kind"]]
    item = None
    if sitting["item"]:
        from pe_station.items import ITEMS

        item = ITEMS.get(sitting["item"], (sitting["item"],) * 2)
    return {
        "school": station.config["school"], "room": station.config["room"],
        "station_id": station.station_id, "sitting": sitting["id"], "kind": kind, "item": item,
        "opened_at": _when(sitting["opened_at"]), "opened_by": sitting["opened_by"],
        "closed_at": _when(sitting["closed_at"]), "closed_by": sitting["closed_by"],
        "seal_code": sealing.seal_code(station, sitting_id),
        "files": len(manifest["files"]), "bytes": sum(int(f["size"]) for f in manifest["files"]),
        "students": students,
    }


def _label(key: str, **values) -> Markup:
    zh, en = both(key, **values)
    return Markup('<span class="zh">{}</span> <span class="en" lang="en">{}</span>').format(zh, en)


def _pair(pair: tuple[str, str] | None) -> Markup:
    if not pair:
        return Markup("")
    zh, en = pair
    if zh == en:
        return escape(zh)
    return Markup('{} <span class="en" lang="en">{}</span>').format(zh, en)


def _size(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


_env = Environment(loader=FileSystemLoader(str(HERE / "sheet_templates")),
                   autoescape=select_autoescape(["html"]))


def render_html(data: dict) -> str:
    return _env.get_template("sheet.html").render(d=data, L=_label, pair=_pair, size=_size)


def render_text(data: dict) -> str:
    """The plain-text summary `station session sheet ID` prints; the seal code is the last line."""
    def lab(key: str) -> str:
        return " ".join(both(key))

    def pair(p) -> str:
        return " / ".join(dict.fromkeys(p)) if p else ""

    kind = pair(data["kind"]) + (f" · {pair(data['item'])}" if data["item"] else "")
    lines = [
        lab("title"),
        f"{lab('school')}: {data['school'] or '-'}    {lab('room')}: {data['room'] or '-'}    "
        f"{lab('station')}: {data['station_id']}",
        f"{lab('sitting')}: {data['sitting']}    {lab('kind')}: {kind}",
        f"{lab('opened')}: {data['opened_at']} {data['opened_by']}",
        f"{lab('closed')}: {data['closed_at']} {data['closed_by']}",
        f"{lab('sealed')}: {pair(both('files_bytes', files=data['files'], size=_size(data['bytes'])))}",
        f"{lab('students')}: {len(data['students'])}",
    ]
    for s in data["students"]:
        lines.append(f"  {s['code']}  {s['name']}  {pair(s['result']) or '-'}  {pair(s['status'])}")
    lines.append(f"{lab('seal_code')}: {data['seal_code']}")
    return "\n".join(lines)


def write_html(data: dict, path: Path | str) -> Path:
    path = Path(path)
    try:
        write_private_text(path, render_html(data))  # children's names and results
    except OSError as e:
        raise UsageError(f"无法写入记录单文件 {path}（{e.strerror}）：请换一个文件夹或文件名。",
                         f"Cannot write the sheet to {path} ({e.strerror}); choose another folder or name.") from None
    return path
