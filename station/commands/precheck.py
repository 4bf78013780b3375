"""station precheck: is this computer ready for test day?"""
from __future__ import annotations

import sys
from pathlib import Path

from station import precheck
from station.commands.output import console, print_json
from station.context import Station


def _ask(text: str) -> None:
    # Interactive mode: the check waits for the operator to be ready, then listens.
    print(text, file=sys.stderr, flush=True)
    input("按回车开始 / press Enter to start ")


def run(args) -> int:
    from precheck import report, report_console, report_html

    station = Station.open(args.data_dir)
    ctx = precheck.context(station, args.audio_in, args.audio_out, args.interactive,
                           _ask if args.interactive else None)
    live = None
    if not args.json and sys.stdout.isatty():
        live = console()
        live.print("正在检查，约需 10 秒… / checking, about 10 s…")
    result = precheck.run(station, ctx, network=not args.no_network)
    precheck.save(station, result)
    sent, waiting = (0, 0) if args.no_network else precheck.send_pending(station)
    if getattr(args, "open_report", False) and not args.html:
        args.html = str(station.path("reports") / "设备检查报告.html")
    if args.html:
        report_html.write_html(result, args.html)
        if getattr(args, "open_report", False):
            import webbrowser

            webbrowser.open(Path(args.html).resolve().as_uri())
    if args.json:
        print_json(report.to_json(result))
    else:
        report_console.print_table(result)
        if args.html:
            print(f"检查报告已保存 / report written: {args.html}")
        if waiting:
            print(f"汇集服务器暂时连不上，报告已保存，稍后自动发送（{waiting} 份待发）。\n"
                  f"The collector cannot be reached now; the report is kept and will be sent "
                  f"later ({waiting} waiting).", file=sys.stderr)
        elif sent:
            print("检查结果已报送区县 / report sent to the district collector.")
    return result.exit_code
