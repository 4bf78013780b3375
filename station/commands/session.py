"""station session open | close | list | sheet"""
from __future__ import annotations

from pe_station.items import ITEMS
from station import sealing, sittings
from station.commands.output import print_json, table
from station.context import Station

STATE_ZH = {"open": "进行中 open", "closed": "已关闭 closed"}


def _describe(s: dict) -> str:
    kind_zh, kind_en = sittings.KINDS[s["kind"]]
    if s["item"]:
        item_zh, item_en = ITEMS[s["item"]]
        return f"{kind_zh}·{item_zh} / {kind_en}, {item_en}"
    return f"{kind_zh} / {kind_en}"


def open_(args) -> int:
    station = Station.open(args.data_dir)
    s = sittings.open_sitting(station.db, args.kind, args.item, station.operator(args.by))
    if args.json:
        print_json(s)
    else:
        print(f"已打开场次 / opened sitting: {_describe(s)}")
        print(s["id"])  # last line: the id, for scripts
    return 0


def close(args) -> int:
    station = Station.open(args.data_dir)
    who = station.operator(args.by)
    s = sealing.close_and_seal(station, args.id, who)
    if args.json:
        print_json(s)
    else:
        print(f"场次 {s['id']} 已关闭（{s['closed_at']}，{s['closed_by']}）。电子封签：{s['seal_code']}\n"
              f"Sitting {s['id']} closed at {s['closed_at']} by {s['closed_by']}. "
              f"Seal code: {s['seal_code']}")
    return 0


def list_(args) -> int:
    station = Station.open(args.data_dir)
    rows = sittings.list_sittings(station.db, "open" if args.open else None)
    if args.json:
        print_json(rows)
        return 0
    table("场次 / sittings", ["编号 id", "类型 kind", "状态 state", "打开 opened", "关闭 closed"],
          [(s["id"], _describe(s), STATE_ZH[s["state"]], f"{s['opened_at'][:19]} {s['opened_by']}",
            f"{(s['closed_at'] or '')[:19]} {s['closed_by'] or ''}") for s in rows])
    return 0


def sheet(args) -> int:
    """The printable sitting sheet: a text summary, or with --html a page to print and sign."""
    from station import sheet as sheet_mod

    station = Station.open(args.data_dir)
    data = sheet_mod.sheet_data(station, args.id)
    if args.html:
        path = sheet_mod.write_html(data, args.html)
        print(f"已写出场次记录单：{path}（用浏览器打开后打印，监测员和见证人签字）。电子封签：{data['seal_code']}\n"
              f"Wrote the sitting sheet to {path}: open it in a browser, print it, and sign it. "
              f"Seal code: {data['seal_code']}")
    else:
        print(sheet_mod.render_text(data))
    return 0
