"""station upload status | run | enqueue"""
from __future__ import annotations

from station.context import Station
from station.errors import UsageError


def _collector(station: Station):
    from station.rehearsal import guard

    if (why := guard.refused(station.config)) is not None:
        raise UsageError("\n".join(why))
    link = station.collector_link()
    if (why := link.refusal()) is not None:
        raise UsageError("\n".join(why))
    return link


def status(args) -> int:
    from uploader import queue, status_view

    station = Station.open(args.data_dir)
    rows = queue.status(station.db)
    if args.json:
        print(status_view.to_json(rows))
    else:
        status_view.print_status(rows)
    return 0


def run(args) -> int:
    from uploader import status_view, worker

    station = Station.open(args.data_dir)
    link = _collector(station)
    rate = station.config["upload.bandwidth_kbps"] * 1000 or None
    from station import precheck

    precheck.send_pending(station)  # reports that waited for the network go first: they are small
    with status_view.LiveProgress() as live:
        counts = worker.run(station.db, link, once=args.once, on_progress=live.update,
                            rate_limit=rate)
    left = counts.get("queued", 0) + counts.get("uploading", 0) + counts.get("failed", 0)
    if args.once and left:
        print(f"还有 {left} 个文件等待上传，稍后会自动重试。\n{left} file(s) still waiting; they will be retried.")
    return 0


def enqueue(args) -> int:
    from station import sealing

    station = Station.open(args.data_dir)
    row = sealing.seal_and_queue(station, args.session)
    print(f"场次 {row['sitting']} 已加入上传队列，电子封签 {row['seal_code']}。\n"
          f"Sitting {row['sitting']} queued for upload; seal code {row['seal_code']}.")
    return 0
