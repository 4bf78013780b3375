"""``station``: the one command every test-room computer runs.

Only argparse is imported here: each command's module is imported when that command
runs, so ``station --help`` answers at once and numpy, librosa, sounddevice and fastapi
load only for the commands that need them.

Exit codes: 0 success; 1 the job ran and found a failure; 2 bad usage or bad input.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from station import __version__

from station.errors import EXIT_OK, EXIT_USAGE


def _add(sub, name: str, handler: str, help: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(handler=handler)
    return parser


def _serial_flags(p) -> None:
    """The line settings a device's manual gives; checked by devices.ports.PortSettings."""
    p.add_argument("--baud", type=int, help="波特率，如 9600 / baud rate, e.g. 9600")
    p.add_argument("--bytesize", type=int, help="数据位 5-8 / data bits 5-8")
    p.add_argument("--parity", help="校验 N/E/O（无/偶/奇）/ parity N/E/O")
    p.add_argument("--stopbits", type=float, help="停止位 1/1.5/2 / stop bits 1/1.5/2")
    p.add_argument("--flow-control", help="流控 none/rtscts/xonxoff/dsrdtr / flow control")


def _driver_flags(p) -> None:
    """The line driver's description of an unknown device (as [[pe.devices]] keys)."""
    p.add_argument("--pattern", help="line 驱动：正则，命名组 value/unit/code/stable / line driver: the regex")
    p.add_argument("--stable-when", help="line 驱动：stable 组表示稳定的文字（正则）/ text of `stable` meaning stable")
    p.add_argument("--repeat", type=int, help="line 驱动：相同读数连续几次才算稳定 / equal values in a row to be stable")
    p.add_argument("--unit", help="line 驱动：行中没有单位时的单位 / unit when the line has none")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="一个 JSON 文档输出到标准输出 / print one JSON document")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station",
        description="国家义务教育质量监测 测试室工作站 / qm-station: station software for the "
                    "test rooms of the national compulsory-education quality monitoring.")
    parser.add_argument("--version", action="version", version=f"qm-station {__version__}")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="数据目录（默认：用户数据目录，或环境变量 STATION_DATA_DIR）/ data dir")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _add(sub, "serve", "station.commands.serve:serve", "启动工作站网页界面 / start the station's web app")
    p.add_argument("--host", help="监听地址（默认 127.0.0.1）/ address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="端口（默认 8080）/ port (default 8080)")
    p.add_argument("--simulate", action="store_true",
                   help="演练模式：模拟设备、演示名册和本机汇集服务器，数据放在数据目录的 rehearsal/ 中 / "
                        "rehearsal mode: simulated devices, demo roster, local collector; data in rehearsal/")
    p.add_argument("--open", action="store_true",
                   help="启动后在浏览器中打开页面 / open the pages in the browser once running")
    p.add_argument("--reset", action="store_true",
                   help="与 --simulate 一起用：清空上次的演练数据 / with --simulate: start the rehearsal afresh")
    p.add_argument("--no-browser", action="store_true",
                   help="不自动打开浏览器（登录链接仍会显示）/ do not open the browser (the login link is still printed)")
    p.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                   help="数据目录（同 station --data-dir）/ data dir (as station --data-dir)")

    p = _add(sub, "devices", "station.commands.devices:devices", "本机的音频设备和串口 / audio devices and serial ports seen now")
    _json_flag(p)

    p = _add(sub, "precheck", "station.commands.precheck:run", "设备检查：本机是否准备就绪 / equipment pre-check")
    _json_flag(p)
    p.add_argument("--html", metavar="FILE", help="写出可打印的检查报告 / write a printable report")
    p.add_argument("--open-report", action="store_true",
                   help="在浏览器中打开检查报告（默认保存在数据目录 reports/ 中）/ open the report in the browser")
    p.add_argument("--no-network", action="store_true", help="不检查网络，不报送 / skip the network checks")
    p.add_argument("--audio-in", metavar="DEV", help="麦克风名称中的一段文字 / part of the microphone's name")
    p.add_argument("--audio-out", metavar="DEV", help="耳机名称中的一段文字 / part of the earphones' name")
    p.add_argument("--interactive", action="store_true", help="请操作人员说“一二三四五” / ask the operator to speak")

    config = sub.add_parser("config", help="查看或生成配置文件 / show or write the configuration")
    csub = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _add(csub, "show", "station.commands.config:show", "显示生效的配置及其来源 / effective values and where each came from")
    _json_flag(p)
    p = _add(csub, "init", "station.commands.config:init", "生成带注释的配置文件 / write a commented station.toml")
    p.add_argument("--force", action="store_true", help="覆盖已有文件 / overwrite an existing file")

    roster = sub.add_parser("roster", help="学生名册 / the student roster")
    rsub = roster.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _add(rsub, "import", "station.commands.roster:import_", "导入名册（CSV 或 XLSX）/ import a roster (CSV or XLSX)")
    p.add_argument("file")
    p.add_argument("--skip-bad", action="store_true", help="跳过有错误的行，导入其余 / import the good rows, skip the bad")
    _json_flag(p)
    p = _add(rsub, "list", "station.commands.roster:list_", "列出名册 / list the roster")
    p.add_argument("--grade", type=int)
    _json_flag(p)
    p = _add(rsub, "lookup", "station.commands.roster:lookup", "按学籍号/考号查找学生 / find a student by code")
    p.add_argument("code")
    _json_flag(p)

    session = sub.add_parser("session", help="场次 / sittings")
    ssub = session.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _add(ssub, "open", "station.commands.session:open_", "打开场次 / open a sitting")
    p.add_argument("--kind", required=True, choices=["singing", "pe"])
    p.add_argument("--item", help="体育项目编号，如 run_50m / PE item id")
    p.add_argument("--by", help="操作人员 / operator")
    _json_flag(p)
    p = _add(ssub, "close", "station.commands.session:close", "关闭场次（不可撤销）/ close a sitting (final)")
    p.add_argument("id")
    p.add_argument("--by", help="操作人员 / operator")
    _json_flag(p)
    p = _add(ssub, "list", "station.commands.session:list_", "列出场次 / list sittings")
    p.add_argument("--open", action="store_true", help="只列出未关闭的 / only open sittings")
    _json_flag(p)
    p = _add(ssub, "sheet", "station.commands.session:sheet", "场次记录单（含电子封签）/ the sitting sheet, with its seal code")
    p.add_argument("id")
    p.add_argument("--html", metavar="FILE", help="写出可打印的记录单 / write a printable page")

    pe = sub.add_parser("pe", help="体育现场测试 / PE field test")
    psub = pe.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _add(psub, "drivers", "station.commands.pe:drivers", "列出设备驱动 / list device drivers")
    _json_flag(p)
    p = _add(psub, "listen", "station.commands.pe:listen", "显示设备发来的每个读数 / print each reading a device sends")
    p.add_argument("--driver", help="驱动名称，见 station pe drivers / driver name")
    p.add_argument("--port", help="串口，如 COM3 或 /dev/ttyUSB0 / serial port")
    p.add_argument("--device", help="用 station.toml 中这台 [[pe.devices]] 的设置 / use this [[pe.devices]] entry of station.toml")
    p.add_argument("--seconds", type=float, help="听多少秒（默认直到 Ctrl-C）/ how long (default: until Ctrl-C)")
    _serial_flags(p)
    _driver_flags(p)
    _json_flag(p)
    p = _add(psub, "run", "station.commands.pe_run:run", "终端测试站 / terminal station")
    p.add_argument("--item", required=True, help="体育项目编号，如 sit_and_reach / PE item id")
    p.add_argument("--driver", help="驱动名称 / driver name")
    p.add_argument("--port", help="串口 / serial port")
    p.add_argument("--device", help="用 station.toml 中这台 [[pe.devices]] 的设置 / use this [[pe.devices]] entry of station.toml")
    p.add_argument("--session", help="场次编号（默认：该项目进行中的场次，没有则新开）/ sitting id")
    p.add_argument("--by", help="操作人员 / operator")
    p.add_argument("--pairing", choices=["bib", "sequence"],
                   help="计时器：按号码或按顺序配对起终点 / timer: pair start and finish by bib or in sequence")
    _serial_flags(p)
    _driver_flags(p)
    p = _add(psub, "sniff", "station.commands.pe:sniff",
             "显示未知设备发来的原始数据并建议配置 / show what an unknown device sends, propose its config")
    p.add_argument("--port", required=True, help="串口 / serial port")
    p.add_argument("--seconds", type=float, default=10.0, help="听多少秒（默认 10）/ how long (default 10)")
    _serial_flags(p)
    _json_flag(p)
    p = _add(psub, "export", "station.commands.pe:export", "导出场次成绩 / export a sitting's results")
    p.add_argument("--session", required=True, help="场次编号 / sitting id")
    p.add_argument("--csv", metavar="FILE", help="写出 Excel 可打开的 CSV / write a CSV for Excel")
    _json_flag(p)
    p = _add(psub, "replay", "station.commands.pe:replay", "重放原始数据记录 / replay a raw log")
    p.add_argument("file", help="*.rawlog.jsonl")
    p.add_argument("--driver", help="驱动名称（默认用记录中的）/ driver (default: the log's)")
    _json_flag(p)

    sing = sub.add_parser("sing", help="演唱测试 / the singing test")
    gsub = sing.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _add(gsub, "verify", "station.commands.sing:verify", "检查录音文件 / verify recordings")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--song", help="歌曲编号（用于旋律匹配和串音检测）/ song id for the melody and bleed checks")
    p.add_argument("--plot", metavar="PNG", help="画出波形、电平和音高 / draw waveform, level and pitch")
    _json_flag(p)
    p = _add(gsub, "record", "station.commands.sing:record", "录制一名考生的演唱 / record one student's take")
    p.add_argument("--student", required=True, metavar="CODE", help="学籍号/考号 / the student's code")
    p.add_argument("--song", metavar="ID", help="歌曲编号（默认：配置项 singing.song）/ song id (default: singing.song)")
    p.add_argument("--seconds", type=float, metavar="N", help="最长录音秒数 / record at most N seconds")
    _json_flag(p)
    p = _add(gsub, "salvage", "station.commands.sing:salvage", "修复中断的录音 / repair interrupted takes")
    _json_flag(p)

    upload = sub.add_parser("upload", help="上传到区县汇集服务器 / upload to the district collector")
    usub = upload.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _add(usub, "status", "station.commands.upload:status", "上传进度 / upload progress")
    _json_flag(p)
    p = _add(usub, "run", "station.commands.upload:run", "开始上传（一直重试直到完成）/ upload, retrying until done")
    p.add_argument("--once", action="store_true", help="只尝试一遍 / one pass over what is due")
    p = _add(usub, "enqueue", "station.commands.upload:enqueue", "封存已关闭的场次并加入上传队列 / seal a closed sitting and queue it")
    p.add_argument("session", metavar="SESSION_ID")
    p = _add(usub, "export", "station.commands.upload:export",
             "把已封存的场次导出到 U 盘（无网络的学校用）/ write sealed sittings to a USB stick")
    p.add_argument("--to", required=True, metavar="DIR", help="U 盘上的文件夹 / a folder on the stick")
    p.add_argument("sittings", nargs="*", metavar="SITTING", help="场次编号（默认：全部已封存的）/ sitting ids (default: all sealed)")

    incident = sub.add_parser("incident", help="应急事件 / incidents")
    isub = incident.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _add(isub, "add", "station.commands.incident:add", "上报应急事件 / file an incident")
    p.add_argument("--category", required=True,
                   choices=["equipment", "power", "network", "unwell", "absent", "disturbance", "other"],
                   help="设备故障 equipment、停电 power、网络中断 network、学生身体不适 unwell、"
                        "缺考或迟到 absent、秩序干扰 disturbance、其他 other")
    p.add_argument("--text", required=True, help="事件经过 / what happened")
    p.add_argument("--sitting", metavar="ID", help="场次编号 / sitting id")
    p.add_argument("--students", metavar="CODE,CODE", help="涉及学生的学籍号/考号 / student codes")
    p.add_argument("--action", help="处置措施 / what was done")
    _json_flag(p)
    p = _add(isub, "list", "station.commands.incident:list_", "列出本机的应急事件 / this station's incidents")
    _json_flag(p)

    collector = sub.add_parser("collector", help="区县数据汇集服务器 / the district collector")
    ksub = collector.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _add(ksub, "serve", "station.commands.collector:serve", "启动汇集服务器和看板 / run the collector and dashboard")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--data", metavar="DIR", help="汇集服务器数据目录 / collector data dir")
    p.add_argument("--db", metavar="URL", help="索引数据库：postgresql://…（多实例）或 sqlite:///FILE（默认：数据目录里的 collector.db）/ the index database")
    p.add_argument("--storage", help="file:DIR 或 s3://BUCKET/PREFIX（默认：数据目录）/ where finished files go")
    p.add_argument("--s3-endpoint-url", help="S3 兼容存储地址（MinIO、Ceph…）/ S3-compatible endpoint")
    p.add_argument("--tls-cert", metavar="F")
    p.add_argument("--tls-key", metavar="F")
    p.add_argument("--max-upload-mib", type=int, default=4096, help="单个文件上限 MiB / largest file, MiB")
    p.add_argument("--expected-station-version", help="工作站应有的软件版本 / the station version expected")
    p.add_argument("--patch-idle-timeout", type=float, default=20.0, metavar="S",
                   help="上传中断多少秒后释放（默认 20）/ seconds before a stalled upload is let go")
    p.add_argument("--timezone", default="Asia/Shanghai", help="看板显示时间的时区 / the dashboard's time zone")
    p.add_argument("--silent-minutes", type=float, default=5.0, metavar="N",
                   help="多少分钟没有心跳算失联（默认 5）/ minutes without a heartbeat before a station counts as silent")
    p.add_argument("--header-timeout", type=float, default=15.0, metavar="S",
                   help="连接须在多少秒内发完请求头（默认 15）/ seconds a connection has to send its headers")
    p.add_argument("--max-connections", type=int, default=1000, metavar="N",
                   help="同时打开的连接上限（默认 1000）/ most connections open at once")
    p = _add(ksub, "add-station", "station.commands.collector:add_station", "登记工作站并生成令牌 / register a station, print its token")
    p.add_argument("station_id", metavar="STATION_ID")
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--db", metavar="URL", help="索引数据库：postgresql://…（多实例）或 sqlite:///FILE（默认：数据目录里的 collector.db）/ the index database")
    p.add_argument("--school")
    p.add_argument("--room")
    p = _add(ksub, "admin-token", "station.commands.collector:admin_token", "生成看板管理令牌 / new dashboard admin token")
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--db", metavar="URL", help="索引数据库：postgresql://…（多实例）或 sqlite:///FILE（默认：数据目录里的 collector.db）/ the index database")
    schools = ksub.add_parser("schools", help="本区县应参加的学校 / the district's expected schools")
    hsub = schools.add_subparsers(dest="schools_action", metavar="ACTION", required=True)
    p = _add(hsub, "import", "station.commands.collector:schools_import",
             "导入学校名单（CSV 或 XLSX：学校代码、学校名称、工作站数、联系人、电话）/ import the schools")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--db", metavar="URL", help="索引数据库：postgresql://…（多实例）或 sqlite:///FILE（默认：数据目录里的 collector.db）/ the index database")
    p = _add(ksub, "report", "station.commands.collector:report",
             "生成上报表（数据上传情况 / 应急事件）/ write the district's forms")
    p.add_argument("form", choices=["upload-status", "incidents"])
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--db", metavar="URL", help="索引数据库：postgresql://…（多实例）或 sqlite:///FILE（默认：数据目录里的 collector.db）/ the index database")
    p.add_argument("--xlsx", metavar="FILE")
    p.add_argument("--csv", metavar="FILE")
    p.add_argument("--timezone", default="Asia/Shanghai", help="表中时间的时区 / time zone of the times shown")
    p = _add(ksub, "import", "station.commands.collector:import_stick",
             "导入 U 盘上的已封存场次（与网络上传同样校验）/ import sealed sittings from a USB stick")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--db", metavar="URL", help="索引数据库：postgresql://…（多实例）或 sqlite:///FILE（默认：数据目录里的 collector.db）/ the index database")
    p.add_argument("--storage", help="同 serve 的 --storage / as serve's --storage")
    p.add_argument("--s3-endpoint-url")
    _json_flag(p)
    return parser


def _run(args: argparse.Namespace) -> int:
    module_name, func_name = args.handler.split(":")
    handler = getattr(importlib.import_module(module_name), func_name)
    return handler(args) or EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from qmbase.platform import configure_console

    configure_console()  # a GB18030-only name must not crash output piped on a GBK console
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    from station.errors import run_guarded

    return run_guarded(_run, args)


if __name__ == "__main__":
    sys.exit(main())
