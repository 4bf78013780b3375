"""The report: JSON in DESIGN's shape, the printable page, the terminal table."""
from __future__ import annotations

import io
import json
import math

import numpy as np

from precheck import report as rp
from precheck import report_console, report_html
from precheck.check import CheckResult
from precheck.report import Report


def sample_report(with_audio: bool = True) -> Report:
    checks = [
        CheckResult("network.collector", "pass", "汇总服务器正常（12 毫秒）", "Collector OK (12 ms)",
                    {"latency_ms": 12.3}),
        CheckResult("clock.skew", "fail", "本机时钟比服务器慢 90.0 秒", "This clock is 90.0 s behind",
                    {"skew_s": 90.0}, "请同步时钟", "Sync the clock"),
        CheckResult("serial.COM3", "warn", "秤应答慢", "Scale slow", {"driver": "mt-sics"},
                    "检查连线", "Check the cable"),
        CheckResult("disk.free", "skip", "未检查", "not checked", {}),
    ]
    if with_audio:
        t = np.linspace(0, 3, 100)
        checks.insert(0, CheckResult(
            "audio.input", "pass", "麦克风正常", "Microphone OK",
            {"rms_dbfs": np.float64(-21.5), "seconds": 3.0,
             "envelope_dbfs": (-30 + 10 * np.sin(t)).astype(np.float32),
             # the shape precheck/audio.py gives
             "spectrum": {"freq_hz": list(np.geomspace(50, 20000, 128)), "db": [-60.0] * 128},
             "peak_dbfs": -math.inf}))
    return Report("S01", "2026-11-22T09:00:00+08:00", 4.2, checks)


def test_json_has_the_design_shape_and_is_plain_json():
    data = rp.to_json(sample_report())
    assert set(data) == {"station_id", "started_at", "duration_s", "overall", "checks"}
    assert data["overall"] == "fail" and data["station_id"] == "S01"
    for check in data["checks"]:
        assert {"id", "status", "summary_zh", "summary_en", "details"} <= set(check)
        assert check["status"] in ("pass", "warn", "fail", "skip")
    audio = data["checks"][0]["details"]
    assert audio["rms_dbfs"] == -21.5 and len(audio["envelope_dbfs"]) == 100
    assert audio["peak_dbfs"] is None              # -inf is not JSON
    again = json.loads(json.dumps(data, allow_nan=False))
    assert rp.from_json(again).overall == "fail"
    assert [c.id for c in rp.from_json(again).checks] == [c["id"] for c in data["checks"]]


def test_html_page_has_station_every_check_fix_picture_and_signature():
    page = report_html.to_html(sample_report())
    assert "S01" in page and "2026-11-22T09:00:00+08:00" in page
    for check_id in ("audio.input", "network.collector", "clock.skew", "serial.COM3", "disk.free"):
        assert f'id="{check_id}"' in page
    assert "请同步时钟" in page and "Sync the clock" in page
    assert 'src="data:image/png;base64,' in page
    assert "检查人签字" in page and "@media print" in page
    assert "http://" not in page and "https://" not in page   # nothing fetched when printed


def test_html_without_audio_has_no_picture():
    page = report_html.to_html(sample_report(with_audio=False))
    assert "data:image/png" not in page and 'id="clock.skew"' in page


def test_html_escapes_what_devices_send():
    report = Report("S<1>", "now", 1.0, [CheckResult(
        "serial.COM9", "fail", "收到 <script>x</script>", "got <script>x</script>", {})])
    page = report_html.to_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_terminal_table_is_chinese_first_with_the_fixes():
    from rich.console import Console

    out = io.StringIO()
    report_console.print_table(sample_report(), Console(file=out, width=220, color_system=None))
    text = out.getvalue()
    assert "时钟 Clock" in text and "未通过 FAIL" in text
    assert text.index("本机时钟比服务器慢") < text.index("This clock is 90.0 s behind")
    assert "请同步时钟 / Sync the clock" in text
    assert "串口设备 COM3" in text
    assert "有项目未通过" in text


# Whatever a check puts in its details (device text, numbers, NaN), the JSON is strict
# JSON and the page renders with the text escaped.
from hypothesis import given, settings, strategies as st  # noqa: E402

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
details_strategy = st.dictionaries(st.text(max_size=8), st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10), max_size=5)


@settings(max_examples=60, deadline=None)
@given(details=details_strategy,
       summary=st.one_of(st.text(max_size=40), st.just("<script>alert(1)</script>")),
       status=st.sampled_from(["pass", "warn", "fail", "skip"]))
def test_any_details_give_strict_json_and_an_escaped_page(details, summary, status):
    report = Report("S01", "t", 1.0, [CheckResult("serial.COM3", status, summary, summary, details,
                                                  "修", "fix")])
    json.dumps(rp.to_json(report), allow_nan=False)
    page = report_html.to_html(report)
    assert 'id="serial.COM3"' in page
    assert "<script" not in page           # the template has none: any would be injected
