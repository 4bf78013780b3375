"""The district's test day on the collector: its schools imported (CSV in GBK, XLSX), stations
bound to them, incidents received and marked handled, and both forms written by `station
collector report` and checked cell by cell with openpyxl, against a real uvicorn."""
from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import openpyxl
import pytest

from tests.uploader.collector.test_stations import seal_of, signed_manifest
from uploader.collector.cli import add_station

STATION = str(Path(sys.executable).with_name("station"))


def station_cmd(*args: str, db_url: str | None = None) -> subprocess.CompletedProcess:
    """``db_url``: the collector's index when it is not SQLite in --data (QM_COLLECTOR_DB)."""
    env = {**os.environ, **({"QM_COLLECTOR_DB": db_url} if db_url else {})}
    return subprocess.run([STATION, *args], capture_output=True, text=True, timeout=120, env=env)


def write_xlsx(path: Path, rows: list[list]) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


SCHOOLS = [["学校代码", "学校名称", "工作站数", "联系人", "电话"],
           ["4401001", "第一实验小学", 2, "张老师", "13800000001"],
           ["4401002", "第二中学", 1, "李老师", "13800000002"],
           ["4401003", "山区小学", 1, "王老师", ""]]


def test_schools_import_csv_gbk_and_xlsx_and_bind_stations(tmp_path):
    data = tmp_path / "collector"
    gbk = tmp_path / "学校.csv"
    gbk.write_bytes("\n".join(",".join(map(str, r)) for r in SCHOOLS).encode("gbk"))
    out = station_cmd("collector", "schools", "import", str(gbk), "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert "新增 3 所" in out.stdout
    # The same list as XLSX with English headers and one school renamed: updated, not doubled.
    rows = [["code", "name", "stations", "contact", "phone"]] + [list(r) for r in SCHOOLS[1:]]
    rows[2][1] = "第二中学（初中部）"
    out = station_cmd("collector", "schools", "import", str(write_xlsx(tmp_path / "s.xlsx", rows)),
                      "--data", str(data))
    assert out.returncode == 0 and "更新 3 所" in out.stdout
    bound = station_cmd("collector", "add-station", "S01", "--school", "4401001", "--data", str(data))
    assert bound.returncode == 0
    unknown = station_cmd("collector", "add-station", "S09", "--school", "9999999", "--data", str(data))
    assert unknown.returncode == 2 and "9999999" in unknown.stderr and "学校名单" in unknown.stderr


def test_a_bad_schools_file_names_row_and_field_and_imports_nothing(tmp_path):
    data = tmp_path / "collector"
    bad = tmp_path / "bad.csv"
    bad.write_text("学校代码,学校名称,工作站数\n4401001,第一实验小学,2\n4401002,,1\n4401003,山区小学,两台\n",
                   encoding="utf-8")
    out = station_cmd("collector", "schools", "import", str(bad), "--data", str(data))
    assert out.returncode == 2
    assert "第 3 行" in out.stderr and "学校名称" in out.stderr
    assert "第 4 行" in out.stderr and "工作站数" in out.stderr and "两台" in out.stderr
    good = tmp_path / "good.csv"
    good.write_text("学校代码,学校名称,工作站数\n4401009,另一所,1\n", encoding="utf-8")
    assert station_cmd("collector", "schools", "import", str(good), "--data", str(data)).returncode == 0
    form = tmp_path / "f.csv"
    assert station_cmd("collector", "report", "upload-status", "--data", str(data), "--csv", str(form)).returncode == 0
    assert [r[1] for r in csv.reader(io.StringIO(form.read_text("utf-8-sig")))][1:] == ["4401009"]


def incident(**fields) -> dict:
    body = {"id": 1, "uid": uuid.uuid4().hex, "category": "equipment", "at": "2026-05-20T09:05:00+08:00",
            "sitting": None, "students": [], "text": "耳机无声", "action": "更换耳机", "filed_by": "张老师"}
    body.update(fields)
    return body


@pytest.fixture
def district(collector_factory, tmp_path):
    """A collector with three expected schools; S01 at school 4401001 (with a sealed sitting)."""
    data = tmp_path / "district"
    data.mkdir()
    xlsx = write_xlsx(tmp_path / "schools.xlsx", SCHOOLS)
    server = collector_factory(data_dir=data, stations=(), start=False)
    assert station_cmd("collector", "schools", "import", str(xlsx), "--data", str(data),
                       db_url=server.db_url).returncode == 0
    server.tokens = {"S01": add_station("S01", data, school="4401001", room="201", db_url=server.db_url),
                     "S02": add_station("S02", data, school="4401002", room="101", db_url=server.db_url)}
    return server.start()


def post(server, station: str, path: str, body: dict, **kw) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=30,
                      headers={"Authorization": f"Bearer {server.tokens[station]}"}, **kw)


def test_incidents_are_kept_once_and_marked_handled_by_the_district(district):
    body = incident(students=["0001", "0002"], text="停电十分钟", category="power")
    first = post(district, "S01", "/api/stations/S01/incidents", body)
    assert first.status_code == 200 and first.json()["stored"] is True
    again = post(district, "S01", "/api/stations/S01/incidents", body)   # the outbox resending
    assert again.json()["stored"] is False
    assert post(district, "S02", "/api/stations/S01/incidents", body).status_code == 403
    bad = post(district, "S01", "/api/stations/S01/incidents", {**incident(), "category": "alien"})
    assert bad.status_code == 422 and "category" in bad.json()["message_en"]

    admin = {"Authorization": f"Bearer {district.admin}"}
    doc = httpx.get(district.url + "/api/dashboard", headers=admin).json()
    [row] = doc["incidents"]
    assert row["category_zh"] == "停电" and row["students"] == ["0001", "0002"] and not row["handled"]
    assert doc["summary"]["incidents_open"] == 1
    url = f"{district.url}/api/incidents/S01/{body['uid']}/handled"
    # Only the district, as JSON, from its own page.
    assert httpx.post(url, json={}, headers={"Authorization": f"Bearer {district.tokens['S01']}"}).status_code == 401
    assert httpx.post(url, content=b"by=x", headers={**admin, "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert httpx.post(url, json={}, headers={**admin, "Origin": "http://evil.example"}).status_code == 403
    assert httpx.post(url, json={"by": "赵主任"}, headers=admin).status_code == 200
    doc = httpx.get(district.url + "/api/dashboard", headers=admin).json()
    assert doc["incidents"][0]["handled"] and doc["incidents"][0]["handled_by"] == "赵主任"
    assert doc["summary"]["incidents_open"] == 0


def test_both_forms_cell_by_cell(district, tus_for, tmp_path):
    tus = tus_for("S01", district)
    files = {"results.csv": "学籍号,成绩\n0001,12.5\n".encode(), "results.json": b"[]"}
    manifest, signature = signed_manifest(district.tokens["S01"], "S01", "20260520-01", files)
    for path, data in files.items():
        tus.upload(data, path=path, sitting="20260520-01")
    tus.upload(manifest, path="manifest.json", sitting="20260520-01", signature=signature)
    handled = incident(id=2, category="unwell", students=["0001"], sitting="20260520-01",
                       text="=学生头晕", action="送医务室", at="2026-05-20T09:30:00+08:00")
    post(district, "S01", "/api/stations/S01/incidents", handled)
    post(district, "S02", "/api/stations/S02/incidents", incident(at="2026-05-20T08:10:00+08:00"))
    httpx.post(f"{district.url}/api/incidents/S01/{handled['uid']}/handled", json={"by": "赵主任"},
               headers={"Authorization": f"Bearer {district.admin}"}).raise_for_status()

    form = tmp_path / "upload.xlsx"
    out = station_cmd("collector", "report", "upload-status", "--data", str(district.data_dir),
                      "--xlsx", str(form), db_url=district.db_url)
    assert out.returncode == 0, out.stderr
    sheet = openpyxl.load_workbook(form).active
    assert sheet["A1"].value == "样本校测试工具回邮、数据上传情况上报表"
    assert sheet["A2"].value.startswith("生成时间：") and "Asia/Shanghai" in sheet["A2"].value
    assert [c.value for c in sheet[3]] == [
        "序号", "学校代码", "学校名称", "应有工作站数", "已登记工作站数", "工作站", "已封存场次数",
        "已收齐场次数", "电子封签", "已到文件数", "应到文件数", "已到数据量（MB）", "应到数据量（MB）",
        "状态", "缺少", "收齐时间", "上传方式", "联系人", "电话"]
    first = [c.value for c in sheet[4]]
    assert first[:13] == [1, "4401001", "第一实验小学", 2, 1, "S01", 1, 1, seal_of(manifest), 3, 3,
                          round(sum(map(len, files.values())) / 1e6, 2),
                          round(sum(map(len, files.values())) / 1e6, 2)]
    assert first[13] == "已收齐"   # its one sitting is in, though a station is still missing
    assert first[14].startswith("工作站未登记 1 台") and "从未做设备检查：S01" in first[14]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", first[15])   # local time, no offset
    assert first[16:] == ["网络", "张老师", "13800000001"]
    second = [c.value for c in sheet[5]]
    assert second[:11] == [2, "4401002", "第二中学", 1, 1, "S02", 0, 0, None, 0, 0]
    assert second[13] == "未收齐" and second[16] == "—"
    third = [c.value for c in sheet[6]]
    assert third[:6] == [3, "4401003", "山区小学", 1, 0, None] and "工作站未登记 1 台" in third[14]
    assert sheet.max_row == 6

    form = tmp_path / "incidents.xlsx"
    assert station_cmd("collector", "report", "incidents", "--data", str(district.data_dir),
                       "--xlsx", str(form), db_url=district.db_url).returncode == 0
    sheet = openpyxl.load_workbook(form).active
    assert sheet["A1"].value == "应急事件上报表"
    assert [c.value for c in sheet[3]] == [
        "序号", "事件编号", "学校代码", "学校名称", "工作站", "发生时间", "事件类别", "场次",
        "涉及学生（学籍号）", "事件经过", "处置措施", "上报人", "收到时间", "处理状态", "处理时间",
        "处理人", "处理说明"]
    early = [c.value for c in sheet[4]]   # in the order they happened
    assert early[:12] == [1, "S02-1", "4401002", "第二中学", "S02", "2026-05-20 08:10:00", "设备故障",
                          None, None, "耳机无声", "更换耳机", "张老师"]
    assert early[13:15] == ["未处理", None]
    late = [c.value for c in sheet[5]]
    assert late[:12] == [2, "S01-2", "4401001", "第一实验小学", "S01", "2026-05-20 09:30:00",
                         "学生身体不适", "20260520-01", "0001", "=学生头晕", "送医务室", "张老师"]
    assert sheet.cell(5, 10).data_type == "s"          # text, never a formula
    assert late[13] == "已处理" and late[14] and late[15] == "赵主任"

    # The same forms as CSV, and from the dashboard.
    csv_form = tmp_path / "incidents.csv"
    assert station_cmd("collector", "report", "incidents", "--data", str(district.data_dir),
                       "--csv", str(csv_form), db_url=district.db_url).returncode == 0
    rows = list(csv.reader(io.StringIO(csv_form.read_text("utf-8-sig"))))
    assert rows[0][:3] == ["序号", "事件编号", "学校代码"] and rows[2][9] == "'=学生头晕"
    download = httpx.get(district.url + "/reports/upload-status.xlsx",
                         headers={"Authorization": f"Bearer {district.admin}"})
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    assert openpyxl.load_workbook(io.BytesIO(download.content)).active["B4"].value == "4401001"
    assert httpx.get(district.url + "/reports/incidents.csv").status_code == 401
    assert station_cmd("collector", "report", "incidents", "--data", str(district.data_dir),
                       db_url=district.db_url).returncode == 2
