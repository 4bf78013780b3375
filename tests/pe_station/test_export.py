"""Exports a teacher opens in Excel and the district reads as JSON."""
import csv
import io
import json

from devices import drivers
from devices.drivers import qm_frame
from pe_station import export

from .conftest import ROSTER


def _sitting_with_results(make_flow):
    flow = make_flow("sit_and_reach")
    meter = drivers.get("qm-frame")

    def send(value, code=""):
        (r,) = meter.feed(qm_frame.format_frame("SR-1", "sit_and_reach", code, value, "cm"))
        return flow.on_reading(r, "SR-1", "COM3")

    flow.scan("0001", "张老师")
    a1 = send("8.2")["attempt"]
    a2 = send("-2.35")["attempt"]
    flow.confirm(a1["id"], "张老师")
    flow.void(a2["id"], "张老师")
    flow.correct(a1["id"], "8.4", "=抄错", "王主任")
    flow.absent("0002", "张老师")
    send("5.0")                                    # nobody scanned: unassigned
    return flow


def test_json_has_every_attempt_the_value_that_counts_and_corrections(make_flow):
    flow = _sitting_with_results(make_flow)
    doc = export.results(flow.db, flow.sitting, ROSTER.get)
    json.dumps(doc)                                # JSON-ready
    by_code = {r["student"]["code"]: r for r in doc["results"]}
    one = by_code["0001"]
    assert one["value"] == "8.4" and one["status"] == "pending" and one["unit"] == "cm"
    assert [(a["value"], a["state"]) for a in one["attempts"]] == [("8.4", "confirmed"), ("-2.4", "voided")]
    assert one["attempts"][0]["corrections"][0]["old_value"] == "8.2"
    assert one["attempts"][0]["device"] == "SR-1" and one["attempts"][0]["measured_at"]
    assert by_code["0002"]["status"] == "absent" and by_code["0002"]["attempts"] == []
    assert [u["value"] for u in doc["unassigned"]] == ["5.0"]


def test_names_can_be_left_out_for_upload(make_flow):
    flow = _sitting_with_results(make_flow)
    doc = export.results(flow.db, flow.sitting, ROSTER.get, include_names=False)
    assert "测试甲" not in json.dumps(doc, ensure_ascii=False)


def test_csv_opens_in_excel_with_chinese_and_negative_values(make_flow, tmp_path):
    flow = _sitting_with_results(make_flow)
    path = export.write_csv(export.results(flow.db, flow.sitting, ROSTER.get), tmp_path / "r.csv")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0]["姓名 name"] == "测试甲" and rows[0]["有效成绩 value that counts"] == "8.4"
    assert rows[1]["本次成绩 attempt value"] == "-2.4"          # a negative number stays a number
    assert rows[0]["更正记录 corrections"].startswith("8.2 → 8.4 (=抄错, 王主任")
    absent = [r for r in rows if r["学籍号 code"] == "0002"]
    assert absent[0]["结果状态 status"] == "缺考 absent" and absent[0]["第几次 attempt"] == ""


def test_write_results_for_the_uploader(make_flow, tmp_path):
    flow = _sitting_with_results(make_flow)
    paths = export.write_results(flow.db, flow.sitting, tmp_path / "pe", ROSTER.get)
    assert sorted(p.name for p in paths) == ["results.csv", "results.json"]
    assert json.loads(paths[1].read_text("utf-8"))["sitting"] == flow.sitting


def test_a_cell_that_looks_like_a_formula_does_not_run():
    assert export._safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert export._safe_cell("-cmd") == "'-cmd"
    assert export._safe_cell("-3.5") == "-3.5"
