"""The pre-check report as a printable page: one self-contained HTML file (inline CSS, the
input picture as a PNG data URI). Information-center staff print it, sign it and file it with
the room's papers, on computers that may have no network at all.
"""
from __future__ import annotations

import base64
import functools
import io
from pathlib import Path

from precheck.registry import title
from precheck.report import OVERALL_TEXT, STATUS_TEXT, Report, plain


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
