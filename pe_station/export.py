"""A sitting's PE results as CSV (for Excel) and JSON (for the district).

The CSV has one row per attempt (a student with none, e.g. absent, gets one row) and
starts with a UTF-8 BOM: Excel on Chinese Windows otherwise reads UTF-8 as GBK and shows
mojibake. Headers are bilingual, Chinese first.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable

import sqlite_utils

from pe_station import rules, states
from pe_station.items import ITEMS
from pe_station.store import Store
from qmbase.platform import write_private_bytes, write_private_text
from qmbase.tables import safe_cell as _safe_cell

LookupStudent = Callable[[str], "dict | None"]

STATUS = states.RESULT_LABELS
ATTEMPT_STATE = states.ATTEMPT_LABELS

COLUMNS = [
    ("sitting", "场次 sitting"), ("code", "学籍号 code"), ("name", "姓名 name"),
    ("gender", "性别 gender"), ("grade", "年级 grade"), ("class", "班级 class"),
    ("item", "项目 item"), ("attempt", "第几次 attempt"), ("attempt_value", "本次成绩 attempt value"),
    ("attempt_raw", "设备原值 device value"), ("attempt_state", "本次状态 attempt state"),
    ("corrected", "更正记录 corrections"), ("value", "有效成绩 value that counts"),
    ("unit", "单位 unit"), ("status", "结果状态 status"), ("device", "设备 device"),
    ("measured_at", "测试时间 measured at"), ("decided_by", "确认人 decided by"),
    ("decided_at", "确认时间 decided at"), ("note", "说明 note"),
]


def results(db: sqlite_utils.Database, sitting: str, lookup_student: LookupStudent,
            include_names: bool = True, items: dict[str, rules.Item] | None = None) -> dict:
    """The sitting's results as one JSON-ready document (the ``--json`` shape).

    Each student has a row per item (a BMI sitting: height, weight and bmi, in that order).
    ``items`` gives the unit of a result with no attempts (bmi, an absent student); by
    default the built-in standard's.
    """
    items = items if items is not None else rules.load()
    order = {item_id: n for n, item_id in enumerate(ITEMS)}
    store = Store(db, sitting)
    attempts = store.all_attempts()
    corrections = store.all_corrections()
    by_attempt: dict[int, list[dict]] = {}
    for c in corrections:
        by_attempt.setdefault(c["attempt"], []).append(
            {"old_value": c["old_value"], "new_value": c["new_value"], "reason": c["reason"],
             "who": c["who"], "at": c["at"]})
    by_student: dict[tuple[str, str], list[dict]] = {}
    for a in attempts:
        by_student.setdefault((a["student"], a["item"]), []).append(a)
    out = []
    rows = store.all_results()
    rows.sort(key=lambda r: (r["student"], order.get(r["item"], len(order)), r["item"]))
    for r in rows:
        student = dict(lookup_student(r["student"]) or {"code": r["student"]})
        if not include_names:
            student.pop("name", None)
        mine = by_student.get((r["student"], r["item"]), [])
        unit = mine[0]["unit"] if mine else (items[r["item"]].unit if r["item"] in items else "")
        out.append({
            "student": student, "item": r["item"], "unit": unit,
            "value": r["value"], "status": r["status"], "updated_at": r["updated_at"],
            "updated_by": r["updated_by"], "verdict": r.get("verdict"),
            "reason_zh": r.get("reason_zh") or "", "reason_en": r.get("reason_en") or "",
            "attempts": [{"n": n, "id": a["id"], "value": a["rounded"], "device_value": a["value"],
                          "state": a["state"], "verdict": a["verdict"], "reason_zh": a["reason_zh"],
                          "reason_en": a["reason_en"], "device": a["device"],
                          "started_at": a["started_at"], "measured_at": a["created_at"],
                          "decided_by": a["decided_by"], "decided_at": a["decided_at"],
                          "corrections": by_attempt.get(a["id"], [])}
                         for n, a in enumerate(mine, start=1)],
        })
    return {"sitting": sitting, "results": out, "unassigned": store.all_unassigned()}


def flat_rows(document: dict) -> list[dict]:
    """One flat row per attempt (or per student without one), keyed by ``COLUMNS``' keys:
    the ``results`` rows ``uploader.bundle.write_bundle`` takes (students by ``code``)."""
    rows = []
    for r in document["results"]:
        s = r["student"]
        item_zh, item_en = ITEMS.get(r["item"], (r["item"], r["item"]))
        common = {"sitting": document["sitting"], "code": s.get("code"), "name": s.get("name", ""),
                  "gender": {"M": "男", "F": "女"}.get(s.get("gender"), s.get("gender", "")),
                  "grade": s.get("grade", ""), "class": s.get("class", ""),
                  "item": f"{item_zh} {item_en}", "value": r["value"] or "", "unit": r["unit"],
                  "status": " ".join(STATUS[r["status"]]),
                  "note": " / ".join(t for t in (r.get("reason_zh"), r.get("reason_en")) if t)}
        if "name" not in s:
            del common["name"]
        for a in r["attempts"] or [None]:
            row = dict(common)
            if a:
                row.update({"attempt": a["n"], "attempt_value": a["value"],
                            "attempt_raw": a["device_value"],
                            "attempt_state": " ".join(ATTEMPT_STATE[a["state"]]),
                            "corrected": "; ".join(f"{c['old_value']} → {c['new_value']} "
                                                   f"({c['reason']}, {c['who']}, {c['at']})"
                                                   for c in a["corrections"]),
                            "device": a["device"], "measured_at": a["measured_at"],
                            "decided_by": a["decided_by"] or "", "decided_at": a["decided_at"] or ""})
            rows.append(row)
    return rows


def to_csv(document: dict) -> str:
    """The results document as CSV text (without the BOM; ``write_csv`` adds it)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")     # what Excel writes and expects
    writer.writerow([title for _, title in COLUMNS])
    for row in flat_rows(document):
        writer.writerow([_safe_cell(row.get(key, "")) for key, _ in COLUMNS])
    return buf.getvalue()


def write_csv(document: dict, path: Path | str) -> Path:
    path = Path(path)
    write_private_bytes(path, b"\xef\xbb\xbf" + to_csv(document).encode("utf-8"))  # children's results
    return path


def write_json(document: dict, path: Path | str) -> Path:
    path = Path(path)
    write_private_text(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    return path


def write_results(db: sqlite_utils.Database, sitting: str, directory: Path | str,
                  lookup_student: LookupStudent, include_names: bool = True,
                  items: dict[str, rules.Item] | None = None) -> list[Path]:
    """results.csv and results.json in ``directory``: what a closed sitting hands the uploader."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    document = results(db, sitting, lookup_student, include_names, items)
    return [write_csv(document, directory / "results.csv"),
            write_json(document, directory / "results.json")]


def bundle_files(db: sqlite_utils.Database, sitting: str, staging: Path | str,
                 lookup_student: LookupStudent, rawlog_dir: Path, include_names: bool = True,
                 items: dict[str, rules.Item] | None = None) -> dict[str, Path]:
    """What a closed PE sitting hands the sealer, by name in the bundle: its results
    (written to ``staging``) and every raw byte its devices sent, so that a result can be
    audited against the device."""
    files = {p.name: p for p in write_results(db, sitting, staging, lookup_student,
                                              include_names, items)}
    # Named by devices.rawlog.path_for: <sitting>_<port>.rawlog.jsonl
    for raw in sorted(Path(rawlog_dir).glob(f"{sitting}_*.rawlog.jsonl")):
        files[f"rawlogs/{raw.name}"] = raw
    return files
