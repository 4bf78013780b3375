"""station sing verify | record | salvage"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from station.commands.output import console, print_json, table
from station.context import Station
from station.errors import EXIT_FAILED, UsageError
from station.singing import (TakePlan, TakeRefused, input_level_dbfs, plan_take, record_plan,
                             run_salvage, take_summary, thresholds)

VERDICT_ZH = {"accept": "[green]合格 accept[/green]", "retake": "[yellow]需重录 retake[/yellow]",
              "reject": "[red]不合格 reject[/red]"}


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


def _print_verdict(summary: dict, student: dict) -> None:
    take = summary["take"]
    print(f"考生 {student['code']} 第 {take['attempt']} 次录音 / take {take['attempt']} of {student['code']}: "
          f"{take['duration_s']:.1f} s → {take['path']}")
    console().print(VERDICT_ZH.get(take["verdict"] or "", "[red]未能检查 not verified[/red]"))
    for r in summary["reasons"]:
        print(f"  - {r['zh']}\n    {r['en']}")


def _terminal_meter(plan: TakePlan):
    """One status line, rewritten in place: time left and the microphone level."""
    total = plan.song_seconds

    def show(recorder) -> None:
        elapsed = recorder.captured / recorder.rate
        level = input_level_dbfs(recorder)
        bar = "#" * int(max(0.0, min(60.0, level + 60.0)) / 3)
        left = f"剩余 {max(0.0, total - elapsed):4.0f} s left" if total else f"{elapsed:4.0f} s"
        print(f"\r{left}  音量 level {level:6.1f} dBFS [{bar:<20}]", end="", file=sys.stderr, flush=True)

    return show


def record(args) -> int:
    import signal
    import threading

    station = Station.open(args.data_dir)
    try:
        plan = plan_take(station, args.student, args.song, args.seconds)
    except TakeRefused as exc:
        raise UsageError.of(exc) from None
    stop = threading.Event()
    # Ctrl-C is the proctor's stop: the take ends and is kept, not torn off mid-file.
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not args.json:
        print(f"开始录音：考生 {plan.student['code']}，场次 {plan.sitting_id}"
              f"{'，歌曲 ' + plan.song.id if plan.song else ''}。按 Ctrl-C 结束。\n"
              f"Recording student {plan.student['code']} in sitting {plan.sitting_id}; Ctrl-C stops.",
              file=sys.stderr, flush=True)
    try:
        outcome = record_plan(station, plan, stop=stop,
                              progress=_terminal_meter(plan) if sys.stderr.isatty() else None)
    finally:    # a refused take ends in run_guarded: its words on stderr, exit 1

        signal.signal(signal.SIGINT, previous)
        if sys.stderr.isatty():
            print(file=sys.stderr)
    summary = take_summary(outcome)
    if args.json:
        print_json(summary)
    else:
        _print_verdict(summary, plan.student)
    return 0 if summary["verdict"] == "accept" else EXIT_FAILED


def salvage(args) -> int:
    station = Station.open(args.data_dir)
    results = run_salvage(station)
    if args.json:
        print_json(results)
    elif not results:
        print("没有需要修复的录音。\nNo interrupted takes to repair.")
    else:
        for r in results:
            print(f"[{r['status']}] {r['zh']}\n    {r['en']}")
    bad = any(r["status"] in ("failed", "unreadable") for r in results)
    return EXIT_FAILED if bad else 0
