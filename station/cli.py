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
    return parser


def _run(args: argparse.Namespace) -> int:
    module_name, func_name = args.handler.split(":")
    handler = getattr(importlib.import_module(module_name), func_name)
    return handler(args) or EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    from station.errors import run_guarded

    return run_guarded(_run, args)


if __name__ == "__main__":
    sys.exit(main())
