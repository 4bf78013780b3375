"""A pre-check's report: its results, the overall verdict, the JSON shape of DESIGN.md.

Rendering lives apart and takes a report only: ``report_console`` (the terminal table),
``report_html`` (the printable page with its picture). Check names come from the registry.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from precheck.check import CheckResult

STATUS_TEXT = {"pass": ("通过", "pass"), "warn": ("注意", "warning"),
               "fail": ("未通过", "FAIL"), "skip": ("跳过", "skipped")}
OVERALL_TEXT = {"pass": ("全部通过，可以使用", "All checks passed: ready"),
                "warn": ("可以使用，但有需要注意的项目", "Usable, with warnings to look at"),
                "fail": ("有项目未通过，请按提示处理后重新检查", "Some checks failed: fix them and check again")}


@dataclass
class Report:
    station_id: str
    started_at: str                  # ISO 8601, local time with its UTC offset
    duration_s: float
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def overall(self) -> str:
        return overall(self.checks)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 when something failed (warnings do not fail the run)."""
        return 1 if self.overall == "fail" else 0


def overall(results: Iterable[CheckResult]) -> str:
    statuses = {r.status for r in results}
    if "fail" in statuses:
        return "fail"
    if "warn" in statuses:
        return "warn"
    return "pass"


# --- JSON ------------------------------------------------------------------------------

def plain(value: Any) -> Any:
    """JSON-safe copy: numpy numbers and arrays (from the audio checks), paths, NaN."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):          # numpy array or scalar, without importing numpy
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None                       # JSON has no NaN/inf; -inf dBFS is "no signal"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def to_json(report: Report) -> dict[str, Any]:
    """The DESIGN shape (each check also carries ``fix_zh`` and ``fix_en``)."""
    return {
        "station_id": report.station_id,
        "started_at": report.started_at,
        "duration_s": report.duration_s,
        "overall": report.overall,
        "checks": [plain(c.to_json()) for c in report.checks],
    }


def dumps(report: Report) -> str:
    return json.dumps(to_json(report), ensure_ascii=False, indent=2)


def from_json(data: dict[str, Any]) -> Report:
    """Back from JSON (the station app keeps the last report and renders it later)."""
    fields = ("id", "status", "summary_zh", "summary_en", "details", "fix_zh", "fix_en")
    checks = [CheckResult(**{k: c[k] for k in fields if k in c}) for c in data["checks"]]
    return Report(data["station_id"], data["started_at"], data["duration_s"], checks)
