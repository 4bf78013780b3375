"""station pe drivers | listen | sniff | export | replay (``station pe run``: ``pe_run``)"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from station.commands.output import print_json, table
from station.context import Station
from station.errors import UsageError


def drivers(args) -> int:
    from devices import drivers as registry

    rows = []
    for name in registry.NAMES:
        cls = registry.driver_class(name)
        rows.append({"name": name, "baud": cls.baud, "bytesize": cls.bytesize, "parity": cls.parity,
                     "stopbits": cls.stopbits,
                     "description": (sys.modules[cls.__module__].__doc__ or "").strip().split("\n")[0]})
    if args.json:
        print_json(rows)
    else:
        table("驱动 / drivers", ["名称 name", "串口设置 line", "说明 about"],
              [(r["name"], f"{r['baud']} {r['bytesize']}{r['parity']}{r['stopbits']:g}", r["description"])
               for r in rows])
    return 0


def _print_reading(reading, port: str, as_json: bool) -> None:
    doc = reading.to_json(port)
    if as_json:
        print(json.dumps(doc, ensure_ascii=False), flush=True)
    else:
        mark = "稳定 stable" if doc["stable"] else "变动 moving"
        extra = " ".join(f"{k}={doc[k]}" for k in ("code", "item", "channel", "flag", "lane") if doc.get(k))
        print(f"{doc['at']}  {doc['value_text']:>10} {doc['unit']:<5} {mark}  {extra}  {doc['raw']}",
              flush=True)


SERIAL_KEYS = ("baud", "bytesize", "parity", "stopbits", "flow_control")
DRIVER_KEYS = ("pattern", "stable_when", "repeat", "unit")


def _device_entry(args) -> dict:
    """A ``[[pe.devices]]`` entry from the command line, over the one named by --device."""
    entry: dict = {}
    if getattr(args, "device", None):
        configured = Station.open(args.data_dir).config["pe.devices"]
        found = [d for d in configured if d.get("name") == args.device]
        if not found:
            names = ", ".join(d.get("name") or d["port"] for d in configured) or "无 / none"
            raise UsageError(f"station.toml 中没有名为 {args.device} 的 [[pe.devices]]（有：{names}）。",
                             f"station.toml has no [[pe.devices]] named {args.device} (there are: {names}).")
        entry = dict(found[0])
    for key in ("driver", "port", *SERIAL_KEYS, *DRIVER_KEYS, "pairing"):
        value = getattr(args, key, None)
        if value is not None:
            entry[key] = value
    for key in ("driver", "port"):
        if not entry.get(key):
            raise UsageError(f"请用 --{key} 指定{'驱动' if key == 'driver' else '串口'}，或用 --device 选 station.toml 中的设备。",
                             f"Give --{key}, or --device to use a device of station.toml.")
    if isinstance(entry.get("stopbits"), float) and entry["stopbits"].is_integer():
        entry["stopbits"] = int(entry["stopbits"])
    return entry


def _device(args):
    """The command line's device, checked as station.toml's would be."""
    from devices import drivers as registry
    from devices.ports import SettingsError
    from pe_station.service import Device

    entry = _device_entry(args)
    try:
        device = Device.from_config({"name": entry["port"], **entry})
        registry.get(device.driver, **device.options)
    except (SettingsError, registry.UnknownDriver, registry.PatternError) as exc:
        raise UsageError.of(exc) from None
    return device


def listen(args) -> int:
    from devices import ports

    device = _device(args)
    try:
        driver = ports.listen(device.driver, device.port, args.seconds,
                              lambda r: _print_reading(r, device.port, args.json),
                              settings=device.settings, driver_options=device.options)
    except ports.PortError as exc:
        raise UsageError.of(exc) from None
    if not args.json:
        print(f"帧计数 / frame counts: {driver.counters.as_dict()}", file=sys.stderr)
    return 0


def sniff(args) -> int:
    """Show what an unknown device sends, with timing, and propose its [[pe.devices]]."""
    import time

    from devices import drivers as registry, ports, sniff as analysis

    entry = _device_entry(argparse_namespace(args, driver="line"))
    try:
        settings = ports.PortSettings.from_config(entry)
        port = ports.open_port(args.port, registry.driver_class("line"), settings)
    except (ports.SettingsError, ports.PortError) as exc:
        raise UsageError.of(exc) from None
    chunks: list[tuple[float, bytes]] = []
    start = time.monotonic()
    if not args.json:
        print(f"正在听 {args.port}（{settings.describe(registry.driver_class('line'))}），"
              f"{args.seconds:g} 秒…… / listening to {args.port} for {args.seconds:g} s …", flush=True)
    try:
        while time.monotonic() - start < args.seconds:
            data = port.read(port.in_waiting or 1)
            if data:
                chunks.append((time.monotonic() - start, data))
                if not args.json:
                    print(f"+{chunks[-1][0]:7.3f}s  {registry.escape_raw(data)}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        port.close()
    report = analysis.analyse(chunks)
    shown = {k: entry[k] for k in SERIAL_KEYS if entry.get(k) is not None}
    if args.json:
        print_json(report.as_json(args.port, shown))
        return 0
    if not chunks:
        print("没有收到任何数据：请确认设备已开机、在发送数据，并检查波特率等设置（--baud）。\n"
              "Nothing was received: check the device is on and sending, and the line settings (--baud).")
        return 1
    print(f"\n共 {len(report.data)} 字节 / {len(report.data)} bytes. 分帧 framing: "
          f"{report.framing_zh} / {report.framing}")
    if report.driver:
        print(f"可用驱动 / driver that reads it: {report.driver}（{report.readings} 条读数 / readings）")
    else:
        print("没有驱动能读懂这些数据：请检查波特率、校验位，或把上面的原始数据交给技术支持。\n"
              "No driver reads these bytes: check the baud rate and parity, or send the raw bytes above "
              "to support.")
    print("\n建议写入 station.toml 的设备配置 / proposed entry for station.toml:\n")
    print(report.toml(args.port, shown))
    print("\n粘贴后用 station pe listen --device device-1 验证。/ "
          "After pasting it, prove it with: station pe listen --device device-1")
    return 0


def argparse_namespace(args, **defaults):
    """``args`` with attributes it lacks taken from ``defaults``."""
    import argparse

    values = {**defaults, **vars(args)}
    return argparse.Namespace(**values)


def replay(args) -> int:
    from devices import drivers as registry, rawlog

    try:
        head = rawlog.header(args.file)
        readings = rawlog.replay(args.file, args.driver)
    except FileNotFoundError:
        raise UsageError(f"找不到文件 {args.file}，请检查路径。", f"{args.file}: no such file; check the path.") from None
    except (rawlog.RawLogError, registry.UnknownDriver) as exc:
        raise UsageError.of(exc) from None
    for reading in readings:
        _print_reading(reading, head.get("port", ""), args.json)
    return 0


def _lookup(station: Station):
    from station import roster

    return lambda code: roster.lookup(station.db, code)


def export(args) -> int:
    from pe_station import export as exporter
    from station import sittings

    station = Station.open(args.data_dir)
    sitting = sittings.get(station.db, args.session)
    if sitting["kind"] != "pe":
        raise UsageError(f"场次 {args.session} 不是体育场次，没有体育成绩可导出。",
                         f"Sitting {args.session} is not a PE sitting; it has no PE results.")
    from pe_station import rules

    try:
        items = rules.load(station.config["pe.items_file"] or None)
    except rules.RulesError as exc:
        raise UsageError.of(exc) from None
    document = exporter.results(station.db, args.session, _lookup(station), items=items)
    if args.csv:
        path = Path(args.csv)
        if not path.parent.exists():
            raise UsageError(f"文件夹 {path.parent} 不存在，请换一个保存位置。",
                             f"The folder {path.parent} does not exist; choose another place.")
        exporter.write_csv(document, path)
    if args.json:
        print_json(document)
    elif args.csv:
        print(f"已导出 {len(document['results'])} 名学生的成绩到 / exported {len(document['results'])} "
              f"student(s) to: {args.csv}")
    else:
        table(f"场次 {args.session} 成绩 / results", ["学籍号 code", "姓名 name", "成绩 value", "状态 status",
                                                     "次数 attempts"],
              [(r["student"].get("code"), r["student"].get("name", ""), r["value"] or "",
                " ".join(exporter.STATUS[r["status"]]), len(r["attempts"])) for r in document["results"]])
        if document["unassigned"]:
            print(f"另有 {len(document['unassigned'])} 条未分配的读数。/ "
                  f"{len(document['unassigned'])} unassigned reading(s) as well.")
    return 0
