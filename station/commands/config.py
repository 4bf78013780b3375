"""station config show | init"""
from __future__ import annotations

from qmbase.platform import write_private_text
from station import config as config_mod
from station.commands.output import print_json, table
from station.context import Station
from station.errors import UsageError


def show(args) -> int:
    station = Station.open(args.data_dir)
    cfg = station.config
    if args.json:
        print_json({"data_dir": str(station.data_dir), "data_dir_source": station.data_dir_source,
                    "file": str(cfg.path) if cfg.path else None,
                    "values": {k: config_mod.shown(k, v) for k, v in cfg.values.items()},
                    "sources": cfg.sources})
        return 0
    table(f"数据目录 / data dir: {station.data_dir}  （来源 / from: {station.data_dir_source}）",
          ["配置项 / key", "值 / value", "来源 / from"],
          [(k, repr(v) if isinstance(v, str) else v, _short(cfg.sources[k], cfg))
           for k, v in ((k, config_mod.shown(k, v)) for k, v in cfg.values.items())])
    return 0


def _short(source: str, cfg) -> str:
    # The file's full path is in the title; each row names only its line.
    return source.replace(str(cfg.path), cfg.path.name) if cfg.path else source


def init(args) -> int:
    station = Station.open(args.data_dir)
    path = station.data_dir / config_mod.FILE_NAME
    if path.exists() and not args.force:
        raise UsageError(f"{path} 已存在，未做改动。如要重新生成，请加 --force（原文件会被覆盖）。",
                         f"{path} exists and was left alone; add --force to overwrite it.")
    write_private_text(path, config_mod.template())
    print(f"已写入 / written: {path}")
    return 0
