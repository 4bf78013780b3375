"""The pre-check report in the terminal: one rich table, Chinese first, English beside it."""
from __future__ import annotations

from precheck.registry import title
from precheck.report import OVERALL_TEXT, STATUS_TEXT, Report

STATUS_STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "skip": "dim"}


def table(report: Report):
    """A rich Table: one row a check, Chinese first with the English beside it."""
    from rich.table import Table
    from rich.text import Text

    zh, en = OVERALL_TEXT[report.overall]
    t = Table(title=f"设备检查 Equipment pre-check · {report.station_id} · {report.started_at}",
              caption=Text(f"{zh} / {en}（{report.duration_s:.1f} s）",
                           style=STATUS_STYLE[report.overall]),
              show_lines=False, expand=False)
    t.add_column("状态 Status", no_wrap=True)
    t.add_column("检查项 Check")
    t.add_column("结果 Result")
    t.add_column("处理办法 Fix")
    for c in report.checks:
        s_zh, s_en = STATUS_TEXT[c.status]
        name_zh, name_en = title(c.id)
        fix = f"{c.fix_zh} / {c.fix_en}" if c.status in ("warn", "fail") and c.fix_zh else ""
        t.add_row(Text(f"{s_zh} {s_en}", style=STATUS_STYLE[c.status]),
                  f"{name_zh} {name_en}",
                  f"{c.summary_zh} / {c.summary_en}",
                  Text(fix, style="yellow" if c.status == "warn" else "red"))
    return t


def print_table(report: Report, console=None) -> None:
    from rich.console import Console

    (console or Console()).print(table(report))
