"""Roster import: every encoding Excel writes, XLSX, bad rows reported and nothing lost."""
import json

import pytest

from tests.station.fakes import csv_text, students


def import_(station, path, *extra):
    return station("roster", "import", str(path), *extra)


def listed(station):
    return json.loads(station("roster", "list", "--json", check=True).stdout)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_each_encoding(station, tmp_path, encoding):
    rows = students(5, seed=3)
    if encoding == "gb18030":
        rows[0]["姓名"] = "王䶮"  # CJK extension A: in GB18030, not in GBK
    path = tmp_path / "名册.csv"
    path.write_bytes(csv_text(rows).encode(encoding))
    result = import_(station, path)
    assert result.returncode == 0, result.stderr
    got = {s["code"]: s for s in listed(station)}
    assert len(got) == 5
    first = got[rows[0]["学籍号"]]
    assert first["name"] == rows[0]["姓名"]
    assert first["gender"] == {"男": "M", "女": "F"}[rows[0]["性别"]]
    assert first["grade"] == 4 and first["school"] == "测试实验小学"


def test_english_headers_and_tabs(station, tmp_path):
    path = tmp_path / "roster.txt"
    path.write_text("code\tname\tgender\tgrade\tclass\n0001\t李子涵\tF\t8\t2\n0002\t周一鸣\tmale\tGrade 8\t2\n",
                    encoding="utf-8")
    assert import_(station, path).returncode == 0
    assert [s["code"] for s in listed(station)] == ["0001", "0002"]  # leading zeros kept


def test_xlsx(station, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["考号", "姓名", "性别", "年级", "班级"])
    sheet.append([440101200001, "赵欣怡", "女", "八年级", "1班"])  # a number cell, as Excel keeps it
    sheet.append(["440101200002", "孙浩宇", "男", "初二", "1班"])
    path = tmp_path / "roster.xlsx"
    book.save(path)
    assert import_(station, path).returncode == 0
    got = {s["code"]: s for s in listed(station)}
    assert got["440101200001"]["name"] == "赵欣怡" and got["440101200002"]["grade"] == 8


@pytest.mark.parametrize("field,value,zh,en", [
    ("学籍号", "", "缺少学籍号", "code is missing"),
    ("性别", "未知", "无法识别的性别", "unknown gender"),
    ("年级", "五年级", "不是本次监测的年级", "is not a grade monitored"),
])
def test_bad_row_is_reported_and_nothing_imported(station, tmp_path, field, value, zh, en):
    rows = students(4, seed=5)
    rows[2][field] = value
    path = tmp_path / "bad.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    result = import_(station, path)
    assert result.returncode == 2
    assert "bad.csv 第 4 行" in result.stderr and zh in result.stderr   # header is row 1
    assert "bad.csv row 4" in result.stderr and en in result.stderr
    assert "Traceback" not in result.stderr
    assert listed(station) == []  # all or nothing


def test_duplicate_code_names_both_rows(station, tmp_path):
    rows = students(3, seed=7)
    rows[2]["学籍号"] = rows[0]["学籍号"]
    path = tmp_path / "dup.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    result = import_(station, path)
    assert result.returncode == 2
    assert "第 4 行" in result.stderr and "与第 2 行重复" in result.stderr and "repeats row 2" in result.stderr


def test_skip_bad_imports_the_good_rows(station, tmp_path):
    rows = students(4, seed=9)
    rows[1]["性别"] = "?"
    path = tmp_path / "some-bad.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    result = import_(station, path, "--skip-bad", "--json")
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["added"] == 3 and doc["skipped"] == 1 and doc["errors"][0]["row"] == 3
    assert len(listed(station)) == 3


def test_missing_column_is_named(station, tmp_path):
    path = tmp_path / "nogender.csv"
    path.write_text("学籍号,姓名,年级\n1,王一,四年级\n", encoding="utf-8")
    result = import_(station, path)
    assert result.returncode == 2 and "性别" in result.stderr and "gender" in result.stderr


def test_reimport_changes_nothing_and_a_change_is_audited(station, data_dir, tmp_path):
    rows = students(6, seed=11)
    path = tmp_path / "r.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    assert import_(station, path).returncode == 0
    before = listed(station)
    again = json.loads(import_(station, path, "--json").stdout)
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 6)
    assert listed(station) == before
    rows[0]["班级"] = "3班"
    path.write_text(csv_text(rows), encoding="utf-8")
    changed = json.loads(import_(station, path, "--json").stdout)
    assert (changed["added"], changed["updated"]) == (0, 1)

    from station.audit import entries
    from station.db import open_db
    log = entries(open_db(data_dir), "student", rows[0]["学籍号"])
    assert [e["action"] for e in log] == ["roster.add", "roster.update"]
    assert json.loads(log[1]["new"])["class"] == "3班"


def test_lookup(station, tmp_path):
    path = tmp_path / "r.csv"
    rows = students(2, seed=13)
    path.write_text(csv_text(rows), encoding="utf-8")
    assert import_(station, path).returncode == 0
    found = station("roster", "lookup", rows[1]["学籍号"])
    assert found.returncode == 0 and rows[1]["姓名"] in found.stdout
    missing = station("roster", "lookup", "NO-SUCH-CODE")
    assert missing.returncode == 1 and "名册中没有" in missing.stderr


def test_missing_file_and_garbage_file(station, tmp_path):
    assert import_(station, tmp_path / "nope.csv").returncode == 2
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"\x00\x01not a zip")
    result = import_(station, junk)
    assert result.returncode == 2 and "无法打开" in result.stderr and "Traceback" not in result.stderr
