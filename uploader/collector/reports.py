"""The district's two forms, filled from what arrived, as XLSX or CSV with Chinese headers:

- 样本校测试工具回邮、数据上传情况上报表 (`report upload-status`): one row per school, the
  district's list first; its stations, sittings sealed and complete, seal codes, files and data
  arrived out of expected, complete or what is missing, when complete, by network or by hand.
- 应急事件上报表 (`report incidents`): one row per incident.

Times are the district's local time. CSV is UTF-8 with a BOM (Excel on a Chinese Windows opens
it as is); its cells are guarded against running as formulas, as the XLSX cells are typed text.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

from qmbase.tables import safe_cell

from . import incidents, overview
from .index import Index
from .messages import UI

UPLOAD_TITLE = "样本校测试工具回邮、数据上传情况上报表"
UPLOAD_HEADERS = ["序号", "学校代码", "学校名称", "应有工作站数", "已登记工作站数", "工作站",
                  "已封存场次数", "已收齐场次数", "电子封签", "已到文件数", "应到文件数",
                  "已到数据量（MB）", "应到数据量（MB）", "状态", "缺少", "收齐时间", "上传方式",
                  "联系人", "电话"]
INCIDENT_TITLE = "应急事件上报表"
INCIDENT_HEADERS = ["序号", "事件编号", "学校代码", "学校名称", "工作站", "发生时间", "事件类别",
                    "场次", "涉及学生（学籍号）", "事件经过", "处置措施", "上报人", "收到时间",
                    "处理状态", "处理时间", "处理人", "处理说明"]
VIA_ZH = {"network": "网络", "usb": "U盘"}


def _mb(n: int) -> float:
    return round(n / 1e6, 2)


def _missing_zh(school: dict) -> str:
    parts = []
    if school["stations_missing"]:
        parts.append(f"{UI['missing_stations_missing'][0]} {school['stations_missing']} 台")
    for m in school["missing"]:
        parts.append(f"{UI['missing_' + m['code']][0]}：{'、'.join(m['stations'])}")
    return "；".join(parts)


def upload_status_rows(db: Index, zone_name: str = overview.DEFAULT_TIMEZONE,
                       silent_minutes: float = overview.DEFAULT_SILENT_MINUTES) -> list[list]:
    zone = overview.local_zone(zone_name)
    rows = []
    for n, s in enumerate(overview.overview(db, silent_minutes)["schools"], start=1):
        rows.append([
            n, s["code"], s["name"], s["stations_expected"], s["stations_registered"],
            "、".join(st["id"] for st in s["stations"]), s["sittings_sealed"],
            s["sittings_complete"], " ".join(s["seal_codes"]), s["files_arrived"],
            s["files_expected"], _mb(s["bytes_arrived"]), _mb(s["bytes_expected"]),
            "已收齐" if s["complete"] else "未收齐", _missing_zh(s),
            overview.local_time(s["completed_at"], zone),
            "+".join(VIA_ZH[v] for v in s["via"]) or "—", s["contact"], s["phone"]])
    return rows


def incident_rows(db: Index, zone_name: str = overview.DEFAULT_TIMEZONE) -> list[list]:
    zone = overview.local_zone(zone_name)
    ordered = sorted(incidents.rows(db), key=lambda r: (r["at"], r["station"], r["local_id"]))
    return [[n, f"{r['station']}-{r['local_id']}", r["school_code"] or "",
             r["school_name"] or r["school_code"] or "", r["station"],
             overview.local_time(r["at"], zone), r["category_zh"], r["sitting"] or "",
             "、".join(r["students"]), r["text"], r["action"], r["filed_by"],
             overview.local_time(r["received_at"], zone), "已处理" if r["handled"] else "未处理",
             overview.local_time(r["handled_at"], zone), r["handled_by"] or "", r["handled_note"] or ""]
            for n, r in enumerate(ordered, start=1)]


FORMS = {
    "upload-status": (UPLOAD_TITLE, UPLOAD_HEADERS, upload_status_rows),
    "incidents": (INCIDENT_TITLE, INCIDENT_HEADERS, incident_rows),
}


def to_csv(headers: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([v if isinstance(v, (int, float)) else safe_cell(v) for v in row])
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(title: str, headers: list[str], rows: list[list], zone_name: str) -> bytes:
    """Row 1 the form's title, row 2 when it was made, row 3 the headers, then one row each."""
    import openpyxl
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title[:31]
    made = overview.local_time(datetime.now(timezone.utc).isoformat(), overview.local_zone(zone_name))
    sheet.append([title])
    sheet.append([f"生成时间：{made}（{zone_name}）"])
    sheet.append(headers)
    sheet["A1"].font = Font(bold=True, size=14)
    for cell in sheet[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"   # typed text: a cell starting with '=' is never a formula
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A4"
    for index, header in enumerate(headers, start=1):
        longest = max([len(header) * 2] + [min(40, len(str(r[index - 1])) + 2) for r in rows])
        sheet.column_dimensions[get_column_letter(index)].width = max(8, longest)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def render(db: Index, form: str, fmt: str,
           zone_name: str = overview.DEFAULT_TIMEZONE) -> bytes:
    title, headers, make_rows = FORMS[form]
    rows = make_rows(db, zone_name)
    return to_xlsx(title, headers, rows, zone_name) if fmt == "xlsx" else to_csv(headers, rows)


def write(db: Index, form: str, fmt: str, path: Path | str,
          zone_name: str = overview.DEFAULT_TIMEZONE) -> Path:
    path = Path(path)
    data = render(db, form, fmt, zone_name)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
