"""station pe run: a terminal station on the PE runtime the /pe page uses, one device, keys."""
from __future__ import annotations

import json
import sys
import threading

from station.commands.output import console
from station.commands.pe import _device
from station.context import Station
from station.errors import UsageError

KEYS_HELP = ("扫描或输入学籍号后回车；+ 确认  - 作废  r 重测  a 缺考  e 免测  q 退出\n"
             "Scan or type a code, then Enter; + confirm  - void  r retest  a absent  e exempt  q quit")


def _sitting_for(station: Station, item: str, session: str | None, who: str) -> dict:
    from station import sittings

    if session:
        s = sittings.require_open(station.db, session)
        if s["kind"] != "pe" or s["item"] != item:
            raise UsageError(f"场次 {session} 不是“{item}”的体育场次。", f"Sitting {session} is not a PE "
                             f"sitting of {item}.")
        return s
    for s in sittings.list_sittings(station.db, "open"):
        if s["kind"] == "pe" and s["item"] == item:
            return s
    return sittings.open_sitting(station.db, "pe", item, who)


def _view(flow, service, message: list[str]):
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    state = flow.state()
    device = service.status()[0]
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}.get(device["light"], "grey50")
    live = state["live"].get(device["name"])
    head = Text()
    head.append("● ", style=colour)
    head.append(f"{device['name']} {device['port']} {device['status']}   ")
    head.append(f"{live['value']} {live['unit']}" if live else "--", style="bold" if live and live["stable"] else "dim")
    parts = [head]
    for _, cur in state["current"].items():
        s = cur["student"]
        t = Table(title=f"{s.get('name', '')} {s['code']}", title_justify="left")
        for column in ("#", "项目 item", "成绩 value", "状态 state", "说明 note"):
            t.add_column(column)
        for n, a in enumerate(cur["attempts"], start=1):
            t.add_row(str(n), a["item"], f"{a['rounded']} {a['unit']}", a["state"], a["reason_zh"])
        parts.append(t)
        derived = cur["result"] if state["derived"] else None
        if derived and derived["value"]:
            parts.append(Text(f"{flow.item.name_zh} / {flow.item.name_en}: {derived['value']} "
                              f"{state['unit']}  {derived['reason_zh']}", style="bold"))
    if not state["current"]:
        parts.append(Text("请扫描下一位学生 / scan the next student", style="bold"))
    p = state["progress"]
    parts.append(Text(f"完成 done {p['done']}  未完成 pending {p['pending']}  缺考 absent {p['absent']}  "
                      f"免测 exempt {p['exempt']}  未分配 unassigned {len(state['unassigned'])}"))
    if message:
        parts.append(Text(message[-1], style="bold red"))
    parts.append(Text(KEYS_HELP, style="dim"))
    return Panel(Group(*parts), title=f"{flow.item.name_zh} / {flow.item.name_en} · {flow.sitting}")


def _latest_pending(flow, last_code: list[str]) -> dict | None:
    """The attempt a key press means: the scanned student's newest pending one, else the newest."""
    pending = flow.state()["pending"]
    mine = [a for a in pending if last_code and a["student"] == last_code[-1]]
    return (mine or pending or [None])[-1]


def _command(flow, line: str, who: str, last_code: list[str]) -> str:
    """Do what one typed line asks; returns what to tell the proctor (zh / en)."""
    from pe_station.messages import FlowError

    line = line.strip()
    try:
        if line == "+":
            a = _latest_pending(flow, last_code)
            if not a:
                return "没有待确认的成绩。/ Nothing to confirm."
            a = flow.confirm(a["id"], who)
            return f"已确认 confirmed: {a['student']} {a['rounded']} {a['unit']}"
        if line == "-":
            a = _latest_pending(flow, last_code)
            if not a:
                return "没有待确认的成绩可作废。/ Nothing to void."
            flow.void(a["id"], who)
            return f"已作废 voided: {a['student']} {a['rounded']}"
        if line in ("r", "a", "e"):
            if not last_code:
                return "请先扫描学生。/ Scan a student first."
            code = last_code[-1]
            if line == "r":
                flow.retest(code, who)
                return f"重测 retest: {code}"
            (flow.absent if line == "a" else flow.exempt)(code, who)
            return f"{'缺考 absent' if line == 'a' else '免测 exempt'}: {code}"
        student = flow.scan(line, who)
        last_code.append(student["code"])
        return f"当前学生 current: {student['code']} {student.get('name', '')}"
    except FlowError as exc:
        return str(exc)


def run(args) -> int:
    from pe_station import rules
    from station.pe import runtime_for

    station = Station.open(args.data_dir)
    who = station.operator(args.by)
    device = _device(args)
    try:
        items = rules.load(station.config["pe.items_file"] or None)
    except rules.RulesError as exc:
        raise UsageError.of(exc) from None
    if args.item not in items:
        raise UsageError(f"未知的体育项目“{args.item}”。可用项目：{', '.join(items)}。",
                         f"Unknown PE item \"{args.item}\"; items: {', '.join(items)}.")
    try:
        rules.measured(items, args.item)
    except rules.RulesError as exc:
        raise UsageError.of(exc) from None
    sitting = _sitting_for(station, args.item, args.session, who)
    lock = threading.Lock()
    events: list[dict] = []

    def on_event(event: dict) -> None:
        with lock:
            events.append(event)

    # The same runtime as the /pe page's, reading the one device of the command line: a BMI
    # sitting's one device gives each reading to the item it names (qm-frame) or whose unit
    # it has (kg: weight, cm: height).
    runtime = runtime_for(station, items)
    device.name = args.device or device.driver
    service = runtime.start(sitting["id"], args.item, on_event=on_event, devices=[device])
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    print(f"场次 / sitting {sitting['id']}", flush=True)
    try:
        if interactive:
            _run_live(service.flow, service, who)
        else:
            _run_lines(service.flow, who, events, lock)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
    print(f"已退出；场次 {sitting['id']} 仍然打开，关闭请用 station session close {sitting['id']}。\n"
          f"Stopped; sitting {sitting['id']} stays open (close it with station session close).", flush=True)
    return 0


def _run_live(flow, service, who: str) -> None:
    from rich.live import Live

    message: list[str] = []
    last_code: list[str] = []
    with Live(get_renderable=lambda: _view(flow, service, message), console=console(),
              refresh_per_second=8, screen=False):
        for line in sys.stdin:
            if line.strip() == "q":
                break
            if line.strip():
                message.append(_command(flow, line, who, last_code))


def _run_lines(flow, who: str, events: list[dict], lock: threading.Lock) -> None:
    """Without a terminal (a script, a test): one line in, one line of news out."""
    last_code: list[str] = []
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(0.05):
            with lock:
                batch, events[:] = list(events), []
            for event in batch:
                if event["type"] in ("attempt", "unassigned", "device"):
                    print(json.dumps(event, ensure_ascii=False), flush=True)

    printer = threading.Thread(target=report, daemon=True)
    printer.start()
    try:
        for line in sys.stdin:
            if line.strip() == "q":
                break
            if line.strip():
                print(_command(flow, line, who, last_code), flush=True)
    finally:
        stop.set()
        printer.join(1)
        report_rest = [e for e in events if e["type"] in ("attempt", "unassigned")]
        for event in report_rest:
            print(json.dumps(event, ensure_ascii=False), flush=True)
