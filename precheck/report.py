"""The pre-check report three ways: a terminal table, JSON (DESIGN's shape), a printable page.

The page is one self-contained HTML file (inline CSS, the input picture as a PNG data
URI): information-center staff print it, sign it and file it with the room's papers,
on computers that may have no network at all.
"""
from __future__ import annotations

import base64
import functools
import io
import json
import math
from pathlib import Path
from typing import Any

from precheck.check import CheckResult
from precheck.runner import Report

# What each check is called, for people. Serial ports get "串口设备 COM3".
TITLES: dict[str, tuple[str, str]] = {
    "audio.output": ("耳机播放", "Earphones"),
    "audio.input": ("麦克风录音", "Microphone"),
    "audio.loopback": ("耳机回路", "Headset loopback"),
    "audio.sample_rate": ("采样率", "Sample rate"),
    "network.dns": ("域名解析", "DNS"),
    "network.collector": ("汇总服务器连接", "Collector"),
    "network.tls": ("服务器证书", "TLS certificate"),
    "network.throughput": ("上传速度", "Upload speed"),
    "clock.skew": ("时钟", "Clock"),
    "disk.free": ("磁盘空间", "Disk space"),
    "software.version": ("软件版本", "Software version"),
}
STATUS_TEXT = {"pass": ("通过", "pass"), "warn": ("注意", "warning"),
               "fail": ("未通过", "FAIL"), "skip": ("跳过", "skipped")}
STATUS_STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "skip": "dim"}
OVERALL_TEXT = {"pass": ("全部通过，可以使用", "All checks passed: ready"),
                "warn": ("可以使用，但有需要注意的项目", "Usable, with warnings to look at"),
                "fail": ("有项目未通过，请按提示处理后重新检查", "Some checks failed: fix them and check again")}


def title(check_id: str) -> tuple[str, str]:
    if check_id in TITLES:
        return TITLES[check_id]
    if check_id.startswith("serial."):
        port = check_id.split(".", 1)[1]
        if "://" in port:          # a pyserial URL: a simulated or networked device
            return f"串口设备 {port}（网络地址）", f"Serial device at {port} (network address)"
        return f"串口设备 {port}", f"Serial device {port}"
    return check_id, check_id


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


# --- terminal --------------------------------------------------------------------------

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


# --- printable page --------------------------------------------------------------------

def _series(details: dict, *names: str) -> list[float] | None:
    for name in names:
        value = details.get(name)
        if isinstance(value, (list, tuple)) and value:
            return [float("nan") if v is None else float(v) for v in value]
    return None


def input_picture(report: Report) -> str | None:
    """The recorded input's level envelope and spectrum as a PNG data URI, if recorded."""
    audio = next((c for c in report.checks if c.id == "audio.input"), None)
    if audio is None:
        return None
    d = plain(audio.details)          # numpy arrays from a live run, lists from JSON
    spectrum = d.get("spectrum") if isinstance(d.get("spectrum"), dict) else {}
    envelope = _series(d, "envelope_dbfs", "level_envelope_dbfs", "envelope", "level_dbfs")
    spec_db = _series(d, "spectrum_db") or _series(spectrum, "db", "spectrum_db")
    spec_hz = (_series(d, "spectrum_hz", "spectrum_freqs_hz", "freqs_hz")
               or _series(spectrum, "freq_hz", "hz", "freqs_hz", "frequencies_hz"))
    if envelope is None and spec_db is None:
        return None

    import matplotlib

    matplotlib.use("Agg")  # no display on a station; also safe inside the web app's threads
    from matplotlib.figure import Figure

    # Figure, not pyplot: pyplot keeps global state that is not thread-safe.
    fig = Figure(figsize=(9, 2.6), dpi=110)
    axes = fig.subplots(1, 2)
    # Axis labels in English: a station may have no CJK font for matplotlib; the page's
    # caption says it in Chinese.
    if envelope is not None:
        seconds = float(d.get("seconds") or d.get("duration_s") or len(envelope))
        step = seconds / len(envelope)
        axes[0].plot([i * step for i in range(len(envelope))], envelope, color="#1f5fa8")
        axes[0].set_xlabel("time (s)" if d.get("seconds") or d.get("duration_s") else "block")
        axes[0].set_ylabel("level (dBFS)")
        axes[0].set_ylim(max(-100.0, min((v for v in envelope if v == v), default=-100) - 5), 0)
        axes[0].set_title("Input level")
        axes[0].grid(alpha=0.3)
    else:
        axes[0].set_axis_off()
    if spec_db is not None:
        xs = spec_hz if spec_hz and len(spec_hz) == len(spec_db) else list(range(1, len(spec_db) + 1))
        axes[1].plot(xs, spec_db, color="#a8321f")
        if spec_hz:
            axes[1].set_xscale("log")
            axes[1].set_xlabel("frequency (Hz)")
        axes[1].set_ylabel("dB")
        axes[1].set_title("Spectrum")
        axes[1].grid(alpha=0.3, which="both")
    else:
        axes[1].set_axis_off()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def short_details(details: dict) -> str:
    """The scalar facts of a check, for the page (long series are drawn, not listed)."""
    parts = []
    for key, value in plain(details).items():
        if isinstance(value, (list, dict)) or value in (None, ""):
            continue
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>设备检查报告 Pre-check report · {{ r.station_id }}</title>
<style>
body { font-family: "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif;
       margin: 2em; color: #111; }
h1 { font-size: 1.4em; margin-bottom: .2em; }
.meta { color: #444; margin-bottom: 1em; }
.overall { font-size: 1.15em; font-weight: bold; padding: .4em .6em; border-radius: 4px;
           display: inline-block; margin-bottom: 1em; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { border: 1px solid #bbb; padding: .35em .5em; vertical-align: top; text-align: left; }
th { background: #eee; }
.en { color: #555; }
.pass { color: #176b2c; } .warn { color: #8a6100; } .fail { color: #b00020; } .skip { color: #777; }
.overall.pass { background: #e3f4e6; } .overall.warn { background: #fff4d6; }
.overall.fail { background: #fde3e6; }
.details { color: #555; font-size: .85em; word-break: break-all; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; }
.sign { margin-top: 2.5em; display: flex; gap: 3em; }
.sign span { border-bottom: 1px solid #000; display: inline-block; min-width: 12em; }
@media print {
  body { margin: 1cm; font-size: 10pt; }
  .overall, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  tr { page-break-inside: avoid; }
}
</style></head><body>
<h1>设备检查报告 <span class="en">Equipment pre-check report</span></h1>
<div class="meta">站点 Station: <b>{{ r.station_id }}</b> · 检查时间 Time: {{ r.started_at }}
 · 用时 Duration: {{ "%.1f"|format(r.duration_s) }} s</div>
<div class="overall {{ r.overall }}">{{ overall[0] }} <span class="en">/ {{ overall[1] }}</span></div>
<table>
<thead><tr><th>状态 Status</th><th>检查项 Check</th><th>结果 Result</th><th>处理办法 Fix</th></tr></thead>
<tbody>
{% for c in checks %}<tr id="{{ c.id }}">
<td class="{{ c.status }}"><b>{{ c.status_zh }}</b><br><span class="en">{{ c.status_en }}</span></td>
<td>{{ c.title_zh }}<br><span class="en">{{ c.title_en }}</span><br><code>{{ c.id }}</code></td>
<td>{{ c.summary_zh }}<br><span class="en">{{ c.summary_en }}</span>
{% if c.details %}<div class="details">{{ c.details }}</div>{% endif %}</td>
<td>{% if c.fix_zh %}{{ c.fix_zh }}<br><span class="en">{{ c.fix_en }}</span>{% endif %}</td>
</tr>
{% endfor %}</tbody></table>
{% if picture %}<figure><img src="{{ picture }}" alt="input level and spectrum">
<figcaption>麦克风录到的声音：音量随时间变化（左）与频谱（右）<br>
<span class="en">What the microphone recorded: level over time (left) and spectrum (right)</span></figcaption>
</figure>{% endif %}
<div class="sign"><div>检查人签字 Checked by: <span></span></div>
<div>日期 Date: <span></span></div></div>
</body></html>
"""


@functools.lru_cache(maxsize=1)
def page_template():
    import jinja2

    return jinja2.Environment(autoescape=True).from_string(PAGE)


def to_html(report: Report) -> str:
    """One self-contained printable page: station, time, every check, the input picture."""
    rows = []
    for c in report.checks:
        s_zh, s_en = STATUS_TEXT[c.status]
        t_zh, t_en = title(c.id)
        show_fix = c.status in ("warn", "fail")
        rows.append({"id": c.id, "status": c.status, "status_zh": s_zh, "status_en": s_en,
                     "title_zh": t_zh, "title_en": t_en, "summary_zh": c.summary_zh,
                     "summary_en": c.summary_en, "details": short_details(c.details),
                     "fix_zh": c.fix_zh if show_fix else "", "fix_en": c.fix_en if show_fix else ""})
    return page_template().render(r=report, overall=OVERALL_TEXT[report.overall],
                                        checks=rows, picture=input_picture(report))


def write_html(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(to_html(report), encoding="utf-8")
    return path
