"""station upload status | run | enqueue"""
from __future__ import annotations

from station.context import Station
from station.errors import UsageError


def _collector(station: Station):
    from station.rehearsal import guard

    if (why := guard.refused(station.config)) is not None:
        raise UsageError(*why)
    link = station.collector_link()
    if (why := link.refusal()) is not None:
        raise UsageError(*why)
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
    from station import outbox
    from station.services.district import heartbeat

    # What waits in the outbox (incidents, pre-check reports, a fresh heartbeat) goes first,
    # all of it, whatever its backoff says: it is small, and the user asked for it now.
    outbox.put(station.db, "heartbeat", f"/api/stations/{station.station_id}/heartbeat",
               heartbeat(station), replace=True)
    sent, waiting = outbox.deliver(station, due_only=False)
    if sent or waiting:
        print(f"已报送 {sent} 条消息（应急事件、设备检查、心跳），{waiting} 条等待重试。\n"
              f"Delivered {sent} message(s) (incidents, pre-checks, heartbeat); {waiting} waiting.")
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


def export(args) -> int:
    """Sealed sittings to a USB stick, with a printable list of seal codes; exit 1 if any refused."""
    from pathlib import Path

    from station import sealing, sittings
    from uploader import export as export_mod

    station = Station.open(args.data_dir)
    sealing.seal_pending(station)      # a sitting closed while sealing failed is sealed now
    stick = Path(args.to)
    try:
        stick.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"无法在 {stick} 建立文件夹：{exc.strerror}。请检查 U 盘是否插好、是否写保护。",
                         f"Cannot make the folder {stick}: {exc.strerror}. Check the stick is plugged in "
                         f"and not write-protected.") from None
    token = station.config["upload.token"]
    if not token:
        raise UsageError("没有上传令牌：请向区县信息中心索取本机的令牌（station collector add-station），"
                         "填入 [upload] token。", "No upload token: ask the district for this station's token "
                         "and set [upload] token.")
    results = export_mod.export(station.db, stick, token, args.sittings or None)
    kinds = {s["id"]: s["kind"] + (f"/{s['item']}" if s["item"] else "")
             for s in sittings.list_sittings(station.db)}
    page, text = export_mod.seal_list(results, station.station_id, station.config["school"], kinds)
    folder = stick / station.station_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"封签清单-{station.station_id}.html").write_text(page, encoding="utf-8")
    (folder / f"封签清单-{station.station_id}.txt").write_text(text, encoding="utf-8-sig")
    for r in results:
        word = {"exported": "已导出 exported", "already": "已在U盘 already", "refused": "未导出 REFUSED"}[r["status"]]
        print(f"{word:<16} {r['sitting']:<16} {r['seal_code'] or '':<12} {r['zh']} / {r['en']}")
    print(text)
    print(f"请打印 {folder / f'封签清单-{station.station_id}.html'}，签字后与 U 盘一同交给区县。\n"
          f"Print that list, sign it and hand it in with the stick.")
    if not results:
        print("本机还没有已封存的场次。\nThere is no sealed sitting on this station yet.")
    return 1 if any(r["status"] == "refused" for r in results) else 0
