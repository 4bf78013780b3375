"""The schools the district expects on its test day (`station collector schools import FILE`).

The district's list is a CSV (UTF-8 or GBK) or an XLSX with the headers 学校代码/code,
学校名称/name, 工作站数/stations, 联系人/contact, 电话/phone. A bad row is named by file, row
(as Excel numbers it) and field, and nothing is imported; importing again updates each school.
Stations are bound to a school by its code when they are added (`add-station --school CODE`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from qmbase.refusal import Refusal
from qmbase.tables import TableError, read_rows

from .index import Index
from .store import now_iso

HEADERS = {
    "code": ("学校代码", "学校编码", "学校编号", "code", "schoolcode"),
    "name": ("学校名称", "学校", "name", "schoolname"),
    "stations": ("工作站数", "工作站数量", "测试室数", "考场数", "stations", "rooms"),
    "contact": ("联系人", "contact"),
    "phone": ("电话", "联系电话", "手机", "phone", "tel"),
}
FIELD_ZH = {"code": "学校代码", "name": "学校名称", "stations": "工作站数", "contact": "联系人",
            "phone": "电话"}
REQUIRED = ("code", "name", "stations")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SchoolsError(Refusal, ValueError):
    """The file cannot be imported; the message says where and what to do."""


@dataclass(frozen=True)
class School:
    code: str
    name: str
    stations_expected: int
    contact: str = ""
    phone: str = ""


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-（）()*:：/]", "", str(text or "")).lower()


def _columns(header: list[str], path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, title in enumerate(header):
        for key, spellings in HEADERS.items():
            if key not in found and _norm(title) in {_norm(s) for s in spellings}:
                found[key] = index
    missing = [k for k in REQUIRED if k not in found]
    if missing:
        zh = "、".join(FIELD_ZH[k] for k in missing)
        raise SchoolsError(f"{path}: 第 1 行（表头）缺少列：{zh}。表头应为 学校代码、学校名称、工作站数、联系人、电话。",
                           f"{path}: row 1 (the header) lacks the column(s) {', '.join(missing)}; "
                           f"use 学校代码/code, 学校名称/name, 工作站数/stations, 联系人/contact, 电话/phone.")
    return found


def parse(path: Path | str) -> list[School]:
    path = Path(path)
    try:
        rows = read_rows(path)
    except TableError as exc:
        raise SchoolsError.of(exc) from None
    if not rows:
        raise SchoolsError(f"{path}: 文件是空的。", f"{path}: the file is empty.")
    cols = _columns(rows[0], path)
    schools: dict[str, School] = {}
    problems: list[str] = []
    for number, cells in enumerate(rows[1:], start=2):
        def get(key: str) -> str:
            i = cols.get(key)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        if not any(c.strip() for c in cells):
            continue
        code, name, count = get("code"), get("name"), get("stations")
        where = f"{path}: 第 {number} 行 / row {number}"
        if not CODE.match(code):
            problems.append(f"{where}, 学校代码 code: “{code}”不合规（字母、数字、_ . -，最长 64 个字符） / "
                            f"'{code}' is not a valid school code (letters, digits, _ . -; at most 64)")
        elif code in schools:
            problems.append(f"{where}, 学校代码 code: “{code}”重复出现 / '{code}' appears twice")
        if not name:
            problems.append(f"{where}, 学校名称 name: 不能为空 / must not be empty")
        if not count.isdigit():
            problems.append(f"{where}, 工作站数 stations: “{count}”应为非负整数 / "
                            f"'{count}' must be a whole number, 0 or more")
        if CODE.match(code) and name and count.isdigit() and code not in schools:
            schools[code] = School(code, name, int(count), get("contact"), get("phone"))
    if problems:
        # Each row's problem is bilingual already: listed once, after both headings.
        raise SchoolsError("未导入任何学校，请改正以下各行后重新导入：",
                           "Nothing was imported; correct these rows and import again:\n"
                           + "\n".join(problems))
    return list(schools.values())


def import_file(db: Index, path: Path | str) -> tuple[int, int]:
    """Import (or update) every school of the file, all or nothing; (added, updated)."""
    schools = parse(path)
    existing = {r["code"] for r in db.query("SELECT code FROM schools")}
    now = now_iso()
    with db.transaction():  # every school of the file, or none
        for school in schools:
            db.upsert("schools", {**school.__dict__, "imported_at": now}, pk=("code",))
    added = sum(1 for s in schools if s.code not in existing)
    return added, len(schools) - added


def check_school(db: Index, code: str | None) -> None:
    """A station may name a school only from the district's list, once there is one."""
    if code is None or not db.count("schools"):
        return
    if not db.count("schools", "code = ?", [code]):
        raise ValueError(f"学校代码“{code}”不在本区县的学校名单中。请检查代码，或先用 station collector schools "
                         f"import 导入学校名单。\nThe school code '{code}' is not in the district's list of "
                         f"schools. Check the code, or import the list first (station collector schools import).")
