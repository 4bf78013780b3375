"""The roster (学生名册): who may be tested on this station, read from the school's files.

Schools export class lists from Excel: CSV in UTF-8, UTF-8 with a BOM, or GBK/GB18030
(what Excel writes on Chinese Windows), or XLSX, with Chinese or English headers. A bad
row is reported with the file, the row as Excel numbers it, and the field; the import is
all or nothing unless the caller asks to skip bad rows. Re-importing a file changes nothing.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import sqlite_utils

from station import audit
from qmbase.db import transaction
from qmbase.refusal import Refusal
from station.db import now

# Header spellings, normalised (lower case, no spaces). Any of 学籍号/考号/条码 is the code.
HEADERS = {
    "code": ("code", "学籍号", "考号", "条码", "条形码", "学号", "studentcode", "barcode", "id"),
    "name": ("name", "姓名", "学生姓名"),
    "gender": ("gender", "性别", "sex"),
    "grade": ("grade", "年级"),
    "class": ("class", "班级", "班"),
    "school": ("school", "学校", "学校名称"),
}
REQUIRED = ("code", "name", "gender", "grade")
FIELD_ZH = {"code": "学籍号/考号", "name": "姓名", "gender": "性别", "grade": "年级",
            "class": "班级", "school": "学校"}

GENDERS = {"男": "M", "男生": "M", "m": "M", "male": "M", "1": "M", "boy": "M",
           "女": "F", "女生": "F", "f": "F", "female": "F", "2": "F", "girl": "F"}
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


@dataclass(frozen=True)
class Student:
    code: str
    name: str
    gender: str        # "M" or "F"
    grade: int
    cls: str = ""
    school: str = ""

    def row(self) -> dict:
        d = asdict(self)
        d["class"] = d.pop("cls")
        return d


@dataclass
class RowError:
    file: str
    row: int           # as Excel numbers it: the header is row 1
    field: str
    zh: str
    en: str

    def __str__(self) -> str:
        return (f"{self.file} 第 {self.row} 行，{FIELD_ZH.get(self.field, self.field)}：{self.zh}\n"
                f"{self.file} row {self.row}, {self.field}: {self.en}")


class RosterError(Refusal):
    """The file cannot be read as a roster at all (format, encoding, headers)."""

    code, status = "roster", 400


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)


def _norm_header(text: str) -> str:
    return re.sub(r"[\s_\-（）()*:：]", "", str(text or "")).lower()


def read_rows(path: Path) -> list[list[str]]:
    """All rows of a CSV or XLSX file as text cells (the first row is the header)."""
    from qmbase.tables import TableError, read_rows as read_table

    try:
        return read_table(path)
    except TableError as exc:
        raise RosterError.of(exc) from None


def _columns(header: list[str], path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, text in enumerate(header):
        key = _norm_header(text)
        for fieldname, spellings in HEADERS.items():
            if key in spellings and fieldname not in found:
                found[fieldname] = index
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        zh = "、".join(FIELD_ZH[f] for f in missing)
        raise RosterError(
            f"{path}: 第 1 行（表头）缺少列：{zh}。表头可用中文（学籍号/考号/条码、姓名、性别、年级、"
            f"班级、学校）或英文（code, name, gender, grade, class, school）。",
            f"{path}: row 1 (the header) lacks the column(s) {', '.join(missing)}.")
    return found


def parse_grade(text: str) -> int | None:
    """'4', '4年级', '四年级', '八年级', '初二', 'Grade 8' -> the grade number."""
    t = text.strip().lower().replace(" ", "")
    m = re.fullmatch(r"(?:grade)?(\d{1,2})(?:年级)?", t)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"(?:小学)?([一二三四五六七八九])年级", t)
    if m:
        return _CN_DIGITS[m.group(1)]
    m = re.fullmatch(r"初(?:中)?([一二三])(?:年级)?", t)
    if m:
        return 6 + _CN_DIGITS[m.group(1)]
    return None


def _student(cells: list[str], cols: dict[str, int], where: tuple[str, int],
             grades: Iterable[int]) -> Student | RowError:
    file, row = where

    def get(name: str) -> str:
        i = cols.get(name)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    code = get("code")
    if not code:
        return RowError(file, row, "code", "缺少学籍号/考号，请补上后重新导入。",
                        "the student code is missing; fill it in and import again.")
    if re.fullmatch(r"\d(\.\d+)?e\+\d+", code.lower()):
        return RowError(file, row, "code",
                        f"“{code}”被 Excel 改成了科学计数法，请把该列设为“文本”格式后重新填写。",
                        f"\"{code}\" was turned into scientific notation by Excel; format the column "
                        f"as text and enter the codes again.")
    if not re.fullmatch(r"[0-9A-Za-z\-]{1,40}", code):
        return RowError(file, row, "code", f"“{code}”含有不能用于条码的字符（只允许字母、数字和 -）。",
                        f"\"{code}\" has characters a barcode cannot carry (letters, digits, - only).")
    name = get("name")
    if not name:
        return RowError(file, row, "name", "缺少姓名。", "the name is missing.")
    gender = GENDERS.get(get("gender").lower())
    if gender is None:
        return RowError(file, row, "gender", f"无法识别的性别“{get('gender')}”，请填写“男”或“女”。",
                        f"unknown gender \"{get('gender')}\"; write 男 (male) or 女 (female).")
    grade = parse_grade(get("grade"))
    allowed = sorted(grades)
    if grade is None or grade not in allowed:
        zh_allowed = "、".join(f"{g} 年级" for g in allowed)
        return RowError(file, row, "grade",
                        f"年级“{get('grade')}”不是本次监测的年级（{zh_allowed}）。",
                        f"grade \"{get('grade')}\" is not a grade monitored here "
                        f"({', '.join(map(str, allowed))}).")
    return Student(code, name, gender, grade, get("class"), get("school"))


def parse(path: Path, grades: Iterable[int] = (4, 8)) -> tuple[list[Student], list[RowError]]:
    """Read and check a roster file without touching the database."""
    path = Path(path)
    rows = read_rows(path)
    header_at = next((i for i, r in enumerate(rows) if any(r)), None)
    if header_at is None:
        raise RosterError(f"{path}: 文件是空的。", f"{path}: the file is empty.")
    cols = _columns(rows[header_at], path)
    students: list[Student] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for index in range(header_at + 1, len(rows)):
        cells = rows[index]
        if not any(cells):
            continue  # Excel leaves blank rows at the end
        row = index + 1
        got = _student(cells, cols, (path.name, row), grades)
        if isinstance(got, RowError):
            errors.append(got)
        elif got.code in seen:
            errors.append(RowError(path.name, row, "code",
                                   f"学籍号 {got.code} 与第 {seen[got.code]} 行重复。",
                                   f"code {got.code} repeats row {seen[got.code]}."))
        else:
            seen[got.code] = row
            students.append(got)
    return students, errors


def import_file(db: sqlite_utils.Database, path: Path, who: str, grades: Iterable[int] = (4, 8),
                skip_bad: bool = False) -> ImportResult:
    """Import a roster: all or nothing, unless ``skip_bad``; returns what changed."""
    students, errors = parse(path, grades)
    result = ImportResult(errors=errors)
    if errors and not skip_bad:
        return result
    result.skipped = len(errors)
    source = Path(path).name
    with transaction(db):
        for s in students:
            new = s.row()
            old = lookup(db, s.code)
            if old is not None:
                old_fields = {k: old[k] for k in new}
                if old_fields == new:
                    result.unchanged += 1
                    continue
                db.execute("UPDATE students SET name=?, gender=?, grade=?, class=?, school=?, "
                           "imported_at=?, source=? WHERE code=?",
                           [s.name, s.gender, s.grade, s.cls, s.school, now(), source, s.code])
                audit.record(db, who, "roster.update", "student", s.code, old_fields, new)
                result.updated += 1
            else:
                db.execute("INSERT INTO students (code, name, gender, grade, class, school, "
                           "imported_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [s.code, s.name, s.gender, s.grade, s.cls, s.school, now(), source])
                audit.record(db, who, "roster.add", "student", s.code, None, new)
                result.added += 1
    return result


def outcome(result: ImportResult, skip_bad: bool = False) -> tuple[bool, str, str]:
    """(imported, zh, en): what an import did, as the CLI and the roster page both say it."""
    if result.errors and not skip_bad:
        return (False,
                f"名册有 {len(result.errors)} 行错误，整个文件都没有导入。请改正后重新导入，"
                f"或选择只导入正确的行（--skip-bad）。",
                f"{len(result.errors)} bad row(s): nothing was imported. Correct them and import "
                f"again, or import the good rows only (--skip-bad).")
    return (True,
            f"导入完成：新增 {result.added}，更新 {result.updated}，未变 {result.unchanged}，跳过 {result.skipped}。",
            f"Imported: {result.added} added, {result.updated} updated, {result.unchanged} unchanged, "
            f"{result.skipped} skipped.")


def lookup(db: sqlite_utils.Database, code: str) -> dict | None:
    return next(db.query("SELECT code, name, gender, grade, class, school FROM students WHERE code = ?",
                         [code.strip()]), None)


def students(db: sqlite_utils.Database, grade: int | None = None) -> list[dict]:
    sql = "SELECT code, name, gender, grade, class, school FROM students"
    args: list = []
    if grade is not None:
        sql += " WHERE grade = ?"
        args.append(grade)
    return list(db.query(sql + " ORDER BY grade, class, code", args))


def count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM students").fetchone()[0]
