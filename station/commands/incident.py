"""station incident add | list"""
from __future__ import annotations

from station import incidents
from station.commands.output import print_json, table
from station.context import Station
from uploader.collector.incidents import CATEGORIES


def add(args) -> int:
    station = Station.open(args.data_dir)
    doc = incidents.add(station, args.category, args.text, args.sitting,
                        incidents.parse_students(args.students), args.action or "")
    sent, waiting = incidents.send_now(station)
    doc["delivered"] = bool(station.config["upload.collector_url"]) and waiting == 0
    if args.json:
        print_json(doc)
        return 0
    zh, en = CATEGORIES[doc["category"]]
    print(f"已记录应急事件 {station.station_id}-{doc['id']}（{zh}），时间 {doc['at'][:19]}。\n"
          f"Incident {station.station_id}-{doc['id']} ({en}) recorded at {doc['at'][:19]}.")
    if not station.config["upload.collector_url"]:
        print("本机没有配置区县汇集服务器，事件只保存在本机。\nNo collector is configured: the incident is kept on "
              "this station only.")
    elif doc["delivered"]:
        print("已报送区县。\nSent to the district.")
    else:
        print("暂时无法报送区县，网络恢复后会自动补报。\nCould not reach the district now; it is sent by itself "
              "once the network is back.")
    if doc["sealed_already"]:
        print(f"场次 {doc['sitting']} 已封存，本事件不在其封存包内（已单独报送）。\n"
              f"Sitting {doc['sitting']} is already sealed: this incident is not in its bundle (it is "
              f"reported on its own).")
    return 0


def list_(args) -> int:
    station = Station.open(args.data_dir)
    rows = incidents.list_all(station)
    if args.json:
        print_json(rows)
        return 0
    table("应急事件 / incidents", ["编号 id", "时间 time", "类别 category", "场次 sitting",
                                  "学生 students", "经过 what happened", "处置 action", "上报人 by"],
          [(f"{r['station']}-{r['id']}", r["at"][:19], " / ".join(CATEGORIES[r["category"]]),
            r["sitting"] or "", "、".join(r["students"]), r["text"], r["action"], r["filed_by"])
           for r in rows])
    return 0
