"""station sing verify | record | salvage"""
from __future__ import annotations

import json
from pathlib import Path

from station.commands.output import console, print_json, table
from station.context import Station
from station.errors import EXIT_FAILED

VERDICT_ZH = {"accept": "[green]合格 accept[/green]", "retake": "[yellow]需重录 retake[/yellow]",
              "reject": "[red]不合格 reject[/red]"}


def thresholds(station: Station):
    from recorder.verify import Thresholds

    return Thresholds.from_config(station.config.section("recorder.verify"))


def _sidecar(path: Path) -> dict:
    """The take's JSON sidecar, when the file is one of ours: song, offset, overflow count."""
    side = path.with_suffix(".json")
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _song(song_id: str | None):
    if not song_id:
        return None
    from recorder.songs import SongCatalog, SongNotFound

    try:
        return SongCatalog().get(song_id)
    except SongNotFound:
        return None


def _plot_path(base: str, index: int, many: bool) -> str:
    if not many:
        return base
    p = Path(base)
    return str(p.with_name(f"{p.stem}-{index + 1}{p.suffix or '.png'}"))


def verify(args) -> int:
    from recorder.verify import plot, verify_file

    station = Station.open(args.data_dir)
    limits = thresholds(station)
    results = []
    for index, name in enumerate(args.files):
        path = Path(name)
        side = _sidecar(path)
        song = _song(args.song or side.get("song"))
        result = verify_file(path, limits, song=song, dropouts=int(side.get("overflows") or 0),
                             offset_s=side.get("offset_s"))
        results.append(result)
        if args.plot and "error" not in result:  # an unreadable file has nothing to draw
            plot(path, _plot_path(args.plot, index, len(args.files) > 1), song=song, thresholds=limits)
    if args.json:
        print_json(results[0] if len(results) == 1 else results)
    else:
        table("录音检查 / take verification",
              ["文件 file", "时长 s", "电平 dBFS", "结论 verdict", "原因 reasons"],
              [(r["path"], f"{r['duration_s']:.1f}" if r.get("duration_s") is not None else "",
                f"{r['rms_dbfs']:.0f}" if r.get("rms_dbfs") is not None else "",
                VERDICT_ZH[r["verdict"]],
                "\n".join(f"{x['zh']}\n{x['en']}" for x in r["reasons"]) or "—")
               for r in results])
    return 0 if all(r["verdict"] == "accept" for r in results) else EXIT_FAILED
