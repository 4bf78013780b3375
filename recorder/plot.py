"""A picture of one take for a person to look at: waveform, level, pitch over the melody.

matplotlib is imported only here, and only when a picture is asked for (Agg backend: no
display needed). Labels are bilingual when the machine has a Chinese font (Windows ships
Microsoft YaHei and SimHei; Linux often has Noto Sans CJK or WenQuanYi); otherwise they
are English only, because without a font the Chinese would print as empty boxes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CJK_FONTS = ("Microsoft YaHei", "SimHei", "Noto Sans CJK SC", "Noto Sans SC",
             "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "PingFang SC")


def _cjk_font() -> str | None:
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in CJK_FONTS if n in names), None)


def plot(path_or_result: str | Path | dict[str, Any], png_path: str | Path, song=None,
         thresholds=None) -> Path:
    """Write a PNG of the take; returns its path. Raises ValueError for an unreadable take."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .analysis import levels
    from .analysis.audio_io import UnreadableAudio, load
    from .analysis.melody import to_midi
    from .verify import Thresholds, analyse

    path = path_or_result.get("path") if isinstance(path_or_result, dict) else path_or_result
    try:
        if path is None:
            raise UnreadableAudio("no path in the result")
        audio = load(path)
    except UnreadableAudio as exc:
        raise ValueError(f"无法读取录音 {path}，不能作图。 / Cannot read the take {path}, "
                         f"so it cannot be plotted ({exc}).") from None
    t = thresholds or Thresholds()
    a = analyse(audio, t, song=song, path=path)
    font = _cjk_font()
    zh = font is not None

    def label(cn: str, en: str) -> str:
        return f"{cn} / {en}" if zh else en

    with plt.rc_context({"font.family": [font, "DejaVu Sans"] if zh else ["DejaVu Sans"],
                         "axes.unicode_minus": False}):
        fig, (ax_w, ax_l, ax_p) = plt.subplots(3, 1, figsize=(12, 8), sharex=True,
                                               gridspec_kw={"height_ratios": [1, 1, 1.6]})
        hop = a.track.hop_s
        times = np.arange(len(a.frame_db)) * hop

        # waveform as a min/max envelope per frame: a minute of samples draws in no time
        n = max(1, int(round(a.rate * levels.FRAME_S)))
        frames = a.mono[: len(a.mono) // n * n].reshape(-1, n)
        if len(frames):
            ax_w.fill_between(np.arange(len(frames)) * n / a.rate, frames.min(axis=1),
                              frames.max(axis=1), color="#4477aa", linewidth=0)
        ax_w.set_ylim(-1.05, 1.05)
        ax_w.set_ylabel(label("波形", "Waveform"))

        ax_l.plot(times, a.frame_db, color="#228833", linewidth=0.8)
        ax_l.axhline(t.silence_dbfs, color="grey", linestyle=":",
                     label=label("静音线", "silence"))
        ax_l.axhline(t.quiet_dbfs, color="#ee6677", linestyle="--",
                     label=label("太小线", "too quiet"))
        ax_l.set_ylim(max(levels.DB_FLOOR, t.silence_dbfs - 20), 3)
        ax_l.set_ylabel(label("电平 dBFS", "Level dBFS"))
        ax_l.legend(loc="lower right", fontsize=8)

        sung = np.where(a.voiced, to_midi(np.where(a.voiced, a.track.f0_hz, 440.0)),
                        np.nan)
        ax_p.plot(times, sung, ".", markersize=2, color="#aa3377", label=label("演唱音高", "sung pitch"))
        notes = getattr(song, "melody", None) or ()
        if notes and a.voiced.any():
            # the reference is drawn in the key the child sang in (the match is key-free)
            ref = np.array([nt.midi for nt in notes])
            shift = float(np.nanmedian(sung)) - float(np.median(ref))
            shift = round(shift)
            for nt in notes:
                ax_p.plot([nt.start, nt.start + nt.duration], [nt.midi + shift] * 2,
                          color="#ccbb44", linewidth=4, solid_capstyle="butt", alpha=0.8)
            ax_p.plot([], [], color="#ccbb44", linewidth=4,
                      label=label("参考旋律（已移调）", f"reference melody ({shift:+d} st)"))
        ax_p.set_ylabel(label("音高 (MIDI)", "Pitch (MIDI)"))
        ax_p.set_xlabel(label("时间 (秒)", "Time (s)"))
        ax_p.legend(loc="upper right", fontsize=8)
        ax_p.grid(True, alpha=0.3)

        r = a.result
        codes = ", ".join(x["code"] for x in r["reasons"] + r["flags"]) or "-"
        extra = "" if r.get("melody_score") is None else f"  melody {r['melody_score']:.2f}"
        fig.suptitle(f"{Path(str(path)).name}   {label('结论', 'verdict')}: {r['verdict']}   "
                     f"[{codes}]   RMS {r['rms_dbfs']:.1f} dBFS   F0 {r['median_f0_hz']} Hz{extra}",
                     fontsize=10)
        fig.tight_layout()
        png = Path(png_path)
        fig.savefig(png, dpi=100)
        plt.close(fig)
    return png
