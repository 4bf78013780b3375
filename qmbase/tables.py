"""Tables the schools and the district exchange in Excel: read a CSV (UTF-8, UTF-8 with BOM,
GBK/GB18030) or an XLSX as rows of text, and keep a written cell from running as a formula.

One place for both rules, since rosters (station), expected schools and the district's forms
(collector) all pass through Excel.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from qmbase.refusal import Refusal


class TableError(Refusal, ValueError):
    """A file that cannot be read as a table."""

    status = 400


def decode(data: bytes, path: Path) -> str:
    # UTF-8 is tried first (strictly), since GB18030 would "decode" UTF-8 bytes into
    # nonsense without an error; a BOM is dropped either way.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError(f"{path}: 无法识别文件编码。请在 Excel 中“另存为 CSV UTF-8”后重新导入。",
                     f"{path}: the encoding is not UTF-8 or GBK/GB18030; save it from Excel as "
                     f"\"CSV UTF-8\" and import again.")


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def read_rows(path: Path | str) -> list[list[str]]:
    """All rows of a CSV or XLSX file as text cells (the first row is the header)."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: 找不到文件，请检查路径。", f"{path}: no such file; check the path.")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise TableError(f"{path}: 无法打开这个 Excel 文件（{type(exc).__name__}）。"
                             f"请用 Excel 打开确认无误后另存为 .xlsx 再导入。",
                             f"{path}: cannot open this Excel file ({exc}).") from None
        sheet = book.worksheets[0]
        rows = [[cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        book.close()
        return rows
    if path.suffix.lower() == ".xls":
        raise TableError(f"{path}: 不支持旧版 .xls 格式，请在 Excel 中另存为 .xlsx 或 CSV。",
                         f"{path}: the old .xls format is not read; save it as .xlsx or CSV.")
    text = decode(path.read_bytes(), path)
    # Excel writes commas, or tabs for "Unicode text"; the header line tells which.
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def safe_cell(value) -> str:
    """Excel runs a cell that starts with = + - @ as a formula: a negative number is
    fine, anything else starting so (a name, a reason) is quoted with an apostrophe."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text
