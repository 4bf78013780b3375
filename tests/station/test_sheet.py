"""`station session sheet`: the printable sitting sheet with the seal code, as a proctor runs it."""
import json
import re
from pathlib import Path

import pytest

from devices import drivers
from devices.drivers import mt_sics, qm_frame
from pe_station import rules
from pe_station.flow import Flow
from station import roster
from station.context import Station

CATALOGS = Path(__file__).resolve().parents[2] / "station" / "sheet_i18n"
TEMPLATE = Path(__file__).resolve().parents[2] / "station" / "sheet_templates" / "sheet.html"

# Generated names, not real people.
ROSTER = "学籍号,姓名,性别,年级\n0001,王子涵,男,四年级\n0002,李欣怡,女,四年级\n0003,赵一鸣,男,四年级\n"


@pytest.fixture
def school(station, data_dir, tmp_path):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text('station_id = "S07"\nschool = "测试实验小学"\nroom = "体育馆"\n',
                                           encoding="utf-8")
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    station("roster", "import", str(path), check=True)
    return station


def open_sitting(station, *args) -> str:
    return station("session", "open", *args, "--by", "张老师", check=True).stdout.strip().splitlines()[-1]


def close(station, sitting: str) -> dict:
    return json.loads(station("session", "close", sitting, "--by", "张老师", "--json", check=True).stdout)


@pytest.fixture
def pe_sitting(school, data_dir):
    """A sit-and-reach sitting: 0001 measured by the meter (its frame through the real driver), 0002 absent."""
    sitting = open_sitting(school, "--kind", "pe", "--item", "sit_and_reach")
    st = Station.open(str(data_dir))
    flow = Flow(st.db, sitting, rules.load()["sit_and_reach"], lookup_student=lambda c: roster.lookup(st.db, c))
    meter = drivers.get("qm-frame")
    flow.scan("0001", "张老师", device="SR-1")
    for value in ("12.34", "13.0"):  # best of two attempts
        (reading,) = meter.feed(qm_frame.format_frame("SR-1", "sit_and_reach", "", value, "cm"), at=1763800000.0)
        attempt = flow.on_reading(reading, "SR-1", "/dev/ttyUSB0")["attempt"]
        if attempt["state"] == "pending":
            flow.confirm(attempt["id"], "张老师")
    flow.absent("0002", "张老师")
    return sitting, close(school, sitting)


def test_html_sheet_has_the_seal_code_and_every_student(school, pe_sitting, tmp_path):
    sitting, closed = pe_sitting
    out = tmp_path / "sheet.html"
    result = school("session", "sheet", sitting, "--html", str(out))
    assert result.returncode == 0, result.stderr
    assert closed["seal_code"] and closed["seal_code"] in result.stdout
    page = out.read_text(encoding="utf-8")
    assert re.search(rf'id="seal-code">{re.escape(closed["seal_code"])}<', page)
    assert "测试实验小学" in page and "体育馆" in page and "S07" in page and sitting in page
    assert "坐位体前屈" in page and "张老师" in page
    rows = re.findall(r"<tr><td class=\"n\">\d+</td><td>(\d+)</td><td>([^<]*)</td><td>(.*?)</td>\s*<td>(.*?)</td>",
                      page, flags=re.S)
    by_code = {code: (name, res, status) for code, name, res, status in rows}
    assert by_code["0001"][0] == "王子涵" and "13.0 cm" in by_code["0001"][1] and "已完成" in by_code["0001"][2]
    assert by_code["0002"][0] == "李欣怡" and "缺考" in by_code["0002"][2]
    assert "0003" not in by_code  # never tested in this sitting
    # Printable on its own: A4, print styles, signature lines, nothing fetched from elsewhere.
    assert "size: A4" in page and "@media print" in page
    assert "监测员签字" in page and "见证人签字" in page and "Proctor" in page
    assert not re.search(r'(?:src|href)="', page) and "http" not in page


def test_text_summary_ends_with_the_seal_code(school, pe_sitting):
    sitting, closed = pe_sitting
    result = school("session", "sheet", sitting)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].endswith(closed["seal_code"]) and "电子封签" in lines[-1]
    assert any("0001" in l and "王子涵" in l and "13.0" in l for l in lines)
    assert any("0002" in l and "缺考" in l and "absent" in l for l in lines)


def test_an_open_sitting_is_refused(school, tmp_path):
    sitting = open_sitting(school, "--kind", "singing")
    out = tmp_path / "sheet.html"
    result = school("session", "sheet", sitting, "--html", str(out))
    assert result.returncode == 2
    assert "还在进行中" in result.stderr and "still open" in result.stderr and "session close" in result.stderr
    assert not out.exists()
    # Refusing did not close or seal it.
    listed = json.loads(school("session", "list", "--json", check=True).stdout)
    assert [s["state"] for s in listed if s["id"] == sitting] == ["open"]


def test_an_unknown_sitting_is_refused(school):
    result = school("session", "sheet", "20990101-01")
    assert result.returncode == 2 and "20990101-01" in result.stderr and "session list" in result.stderr


def test_an_unwritable_file_is_refused_clearly(school, pe_sitting, tmp_path):
    sitting, _ = pe_sitting
    result = school("session", "sheet", sitting, "--html", str(tmp_path / "no-such-folder" / "sheet.html"))
    assert result.returncode == 2
    assert "无法写入" in result.stderr and "Cannot write" in result.stderr


def test_singing_sheet_shows_each_students_recording_verdict(school, data_dir, tmp_path):
    sitting = open_sitting(school, "--kind", "singing")
    st = Station.open(str(data_dir))
    # Takes as the recorder leaves them (no audio needed for the sheet): 0001 retook and the
    # second take counts; 0003's only take was rejected.
    takes = [("0001", 1, "kept", "retake", 0), ("0001", 2, "kept", "accept", 1), ("0003", 1, "kept", "reject", 0)]
    with st.db.conn:
        for code, n, state, verdict, counts in takes:
            st.db.execute("INSERT INTO takes (id, student_code, sitting_id, attempt, state, verdict, counts, "
                          "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, '2026-11-22T09:00:00')",
                          [f"t{code}{n}", code, sitting, n, state, verdict, counts])
    closed = close(school, sitting)
    out = tmp_path / "sheet.html"
    school("session", "sheet", sitting, "--html", str(out), check=True)
    page = out.read_text(encoding="utf-8")
    assert closed["seal_code"] in page and "演唱测试" in page
    row1 = re.search(r"<td>0001</td><td>王子涵</td>(.*?)</tr>", page, flags=re.S).group(1)
    row3 = re.search(r"<td>0003</td><td>赵一鸣</td>(.*?)</tr>", page, flags=re.S).group(1)
    assert "合格" in row1 and "不合格" not in row1 and ">2<" in row1
    assert "不合格" in row3


def test_sheet_catalogs_match_and_cover_the_template():
    zh = json.loads((CATALOGS / "zh.json").read_text("utf-8"))
    en = json.loads((CATALOGS / "en.json").read_text("utf-8"))
    assert zh.keys() == en.keys()
    used = set(re.findall(r"""L\(\s*["']([a-z_.]+)["']""", TEMPLATE.read_text("utf-8")))
    assert used and used <= zh.keys()


def test_a_height_and_weight_sitting_shows_each_students_height_weight_and_bmi_in_one_row(school, data_dir):
    sitting = open_sitting(school, "--kind", "pe", "--item", "bmi")
    st = Station.open(str(data_dir))
    items = rules.load()
    flow = Flow(st.db, sitting, items["bmi"], lookup_student=lambda c: roster.lookup(st.db, c),
                measured=rules.measured(items, "bmi"), device_items={"H-1": "height", "W-1": "weight"})
    scale = drivers.get("mt-sics")
    flow.scan("0001", "张老师")
    for device, frame in (("H-1", mt_sics.format_line("140.0", "cm")),
                          ("W-1", mt_sics.format_line("39.2", "kg"))):
        (reading,) = scale.feed(frame, at=1763800000.0)
        flow.confirm(flow.on_reading(reading, device, "/dev/ttyUSB0")["attempt"]["id"], "张老师")
    closed = close(school, sitting)
    lines = school("session", "sheet", sitting, check=True).stdout.strip().splitlines()
    (row,) = [line for line in lines if "0001" in line]
    assert "身高 140.0 cm" in row and "体重 39.2 kg" in row and "20.0 kg/m2" in row and "已完成" in row
    assert lines[-1].endswith(closed["seal_code"])
