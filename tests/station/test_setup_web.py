"""The set-up and roster pages' JSON under a real `station serve`: what they refuse, in both
languages, and that a refusal leaves station.toml as it was."""
from __future__ import annotations

import base64
import tomllib

import pytest

from tests.station.servers import station_serve, wait_for

GOOD = {"station_id": "S03", "school": "测试学校", "room": "", "collector_url": "", "token": "",
        "audio_input": "", "audio_output": "", "devices": []}


@pytest.fixture
def served(data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text('[singing]\nretake_limit = 3\n[upload]\ntoken = "kept-token"\n',
                                           encoding="utf-8")
    server = station_serve()
    with server.client() as client:
        yield client
    server.stop()


def _config(data_dir) -> dict:
    return tomllib.loads((data_dir / "station.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("change,words", [
    ({"station_id": "S 03"}, "工作站编号"),
    ({"station_id": ""}, "工作站编号"),
    ({"collector_url": "collector.example"}, "http://"),
    ({"devices": [{"port": "COM3", "driver": "no-such"}]}, "驱动"),
    ({"devices": [{"port": "", "driver": "mt-sics"}]}, "串口"),
    ({"devices": [{"port": "COM3", "driver": "mt-sics", "baud": "fast"}]}, "波特率"),
    ({"devices": [{"port": "COM3", "driver": "mt-sics", "item": "chess"}]}, "项目"),
    ({"devices": [{"name": "a", "port": "COM3", "driver": "mt-sics"},
                  {"name": "b", "port": "COM3", "driver": "kern"}]}, "同一个串口"),
    ({"devices": "COM3"}, "体育设备"),
])
def test_a_refused_setting_says_why_and_leaves_the_file_alone(served, data_dir, change, words):
    before = (data_dir / "station.toml").read_bytes()
    r = served.post("/api/setup/save", json={**GOOD, **change})
    assert r.status_code == 400 and words in r.json()["zh"] and r.json()["en"], r.text
    assert (data_dir / "station.toml").read_bytes() == before


def test_saving_keeps_what_the_page_does_not_show_and_an_empty_token_keeps_the_saved_one(served, data_dir):
    assert "setup-needed" in served.get("/").text
    r = served.post("/api/setup/save", json={**GOOD, "devices": [
        {"name": "gate", "port": "socket://127.0.0.1:9", "driver": "alge-timy", "item": "run_50m", "baud": "9600"}]})
    assert r.status_code == 200 and r.json()["set_up"] is True, r.text
    config = _config(data_dir)
    assert config["singing"] == {"retake_limit": 3} and config["upload"]["token"] == "kept-token"
    assert config["pe"]["devices"] == [{"name": "gate", "port": "socket://127.0.0.1:9", "driver": "alge-timy",
                                        "item": "run_50m", "baud": 9600}]
    assert served.get("/api/health").json()["station_id"] == "S03"
    assert "setup-needed" not in served.get("/").text
    html = served.get("/setup", params={"lang": "en"}).text
    assert "Station set-up" in html and "socket://127.0.0.1:9" in html


def test_a_watched_port_that_is_not_there_says_so_in_both_languages(served):
    r = served.post("/api/setup/device/watch", json={"port": "socket://127.0.0.1:9", "driver": "mt-sics"})
    assert r.status_code == 200, r.text

    def down():
        doc = served.get("/api/setup/device/watch", params={"port": "socket://127.0.0.1:9"}).json()
        return doc if doc["status"] == "disconnected" else None
    doc = wait_for(down, 30, "the watch to report the port missing")
    assert "打不开串口" in doc["zh"] and "Cannot open serial port" in doc["en"]
    assert served.post("/api/setup/device/unwatch", json={"port": "socket://127.0.0.1:9"}).json()["stopped"]
    assert served.get("/api/setup/device/watch", params={"port": "socket://127.0.0.1:9"}).json()["status"] == "stopped"


def _b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode("ascii")


def test_the_roster_upload_refuses_what_it_cannot_read(served):
    for body, words in (({"filename": "名册.doc", "content_base64": _b64("x")}, "CSV"),
                        ({"filename": "名册.csv", "content_base64": "not base64!"}, "重新选择文件"),
                        ({"filename": "名册.csv", "content_base64": ""}, "空的"),
                        ({"filename": "名册.csv", "content_base64": _b64("姓名,性别\n张三,男\n")}, "缺少列")):
        r = served.post("/api/roster/import", json=body)
        assert r.status_code == 400 and words in r.json()["zh"] and r.json()["en"], (body, r.text)


def test_a_gbk_roster_with_a_bad_row_imports_the_good_rows_when_asked(served):
    csv = "学籍号,姓名,性别,年级\n4010001,赵一,男,4\n4010002,钱二,男,5\n"
    body = {"filename": "名册.csv", "content_base64": _b64(csv, "gbk")}
    refused = served.post("/api/roster/import", json=body).json()
    assert refused["imported"] is False and refused["count"] == 0
    assert [(e["row"], e["field"]) for e in refused["errors"]] == [(3, "grade")]
    assert refused["errors"][0]["file"] == "名册.csv"
    done = served.post("/api/roster/import", json={**body, "skip_bad": True}).json()
    assert done["imported"] is True and (done["added"], done["skipped"], done["count"]) == (1, 1, 1)


def test_an_xlsx_roster_is_imported_from_the_page_as_the_cli_imports_it(served, tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["code", "name", "gender", "grade", "class"])
    sheet.append([8010001, "孙八一", "女", "八年级", "八年级1班"])        # a number cell, as Excel keeps codes
    sheet.append(["8010002", "", "男", "8", "八年级1班"])
    path = tmp_path / "grade8.xlsx"
    book.save(path)
    body = {"filename": path.name, "content_base64": base64.b64encode(path.read_bytes()).decode("ascii")}
    refused = served.post("/api/roster/import", json=body).json()
    assert [(e["row"], e["field"], e["field_zh"]) for e in refused["errors"]] == [(3, "name", "姓名")]
    assert refused["imported"] is False and "nothing was imported" in refused["en"]
    sheet["B3"] = "李八二"
    book.save(path)
    body["content_base64"] = base64.b64encode(path.read_bytes()).decode("ascii")
    done = served.post("/api/roster/import", json=body).json()
    assert done["imported"] is True and done["added"] == 2 and done["count"] == 2
    again = served.post("/api/roster/import", json=body).json()
    assert (again["added"], again["unchanged"]) == (0, 2)       # the same file again changes nothing
