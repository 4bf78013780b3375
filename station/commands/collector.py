"""station collector serve | add-station | admin-token | schools import | report | import: the district's side."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from qmbase.platform import make_private_dir
from station.errors import UsageError


def data_dir(given: str | None) -> Path:
    """The collector's data dir: --data, else QM_COLLECTOR_DATA, else the user data dir."""
    if given:
        path = Path(given)
    elif os.environ.get("QM_COLLECTOR_DATA"):
        path = Path(os.environ["QM_COLLECTOR_DATA"])
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("qm-collector", appauthor=False))
    return make_private_dir(path.expanduser().resolve())


def db_url(args) -> str | None:
    """The index database: --db, else QM_COLLECTOR_DB, else SQLite in the data dir."""
    return args.db or os.environ.get("QM_COLLECTOR_DB") or None


def serve(args) -> int:
    from uploader.collector import cli

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert 和 --tls-key 需要一起给出。", "--tls-cert and --tls-key go together.")
    from uploader.collector.overview import local_zone

    try:
        local_zone(args.timezone)
    except ValueError as exc:
        raise UsageError.of(exc) from None
    if args.silent_minutes <= 0:
        raise UsageError("--silent-minutes 须大于 0。", "--silent-minutes must be more than 0.")
    folder = data_dir(args.data)
    scheme = "https" if args.tls_cert else "http"
    index = db_url(args)
    if index:
        from uploader.collector.index import redact

        where = f"索引 / index: {redact(index)}，本机数据 / local data: {folder}"
    else:
        where = f"数据 / data: {folder}"
    print(f"区县汇集服务器已启动 / collector running: {scheme}://{args.host}:{args.port}/  "
          f"（{where}）", flush=True)
    cli.serve(args.host, args.port, folder, storage=args.storage, tls_cert=args.tls_cert,
              tls_key=args.tls_key, max_upload_bytes=args.max_upload_mib * 1024 * 1024,
              s3_endpoint_url=args.s3_endpoint_url,
              expected_station_version=args.expected_station_version,
              patch_idle_timeout=args.patch_idle_timeout, header_timeout=args.header_timeout,
              max_connections=args.max_connections, silent_minutes=args.silent_minutes,
              zone=args.timezone, db_url=db_url(args))
    return 0


def add_station(args) -> int:
    from uploader.collector import cli

    try:
        token = cli.add_station(args.station_id, data_dir(args.data), args.school, args.room,
                                db_url(args))
    except ValueError as exc:
        raise UsageError.of(exc) from None
    print(f"工作站 {args.station_id} 的上传令牌如下，请填入该工作站 station.toml 的 [upload] token"
          f"（再次运行会作废旧令牌）。\nThe upload token of station {args.station_id} follows: put it "
          f"in that station's station.toml under [upload] token (running this again voids it).")
    print(token)
    return 0


def admin_token(args) -> int:
    from uploader.collector import cli

    token = cli.admin_token(data_dir(args.data), db_url(args))
    print("区县信息中心管理令牌（用于登录汇总看板；旧令牌已作废）：\n"
          "The district admin token (for the dashboard login; the old one is void):")
    print(token)
    return 0


def schools_import(args) -> int:
    from uploader.collector import cli
    from uploader.collector.schools import SchoolsError

    try:
        added, updated = cli.import_schools(args.file, data_dir(args.data), db_url(args))
    except SchoolsError as exc:
        raise UsageError.of(exc) from None
    print(f"已导入学校名单：新增 {added} 所，更新 {updated} 所。\n"
          f"Schools imported: {added} added, {updated} updated.")
    return 0


def report(args) -> int:
    from uploader.collector import cli

    if bool(args.xlsx) == bool(args.csv):
        raise UsageError("请给出 --xlsx FILE 或 --csv FILE 之一。", "Give one of --xlsx FILE or --csv FILE.")
    fmt, target = ("xlsx", args.xlsx) if args.xlsx else ("csv", args.csv)
    try:
        path = cli.report(args.form, fmt, target, data_dir(args.data), args.timezone,
                          db_url(args))
    except ValueError as exc:          # an unknown time zone
        raise UsageError.of(exc) from None
    except OSError as exc:
        raise UsageError(f"无法写出 {target}：{exc.strerror}。请检查文件夹和文件是否被 Excel 打开。",
                         f"Cannot write {target}: {exc.strerror}. Check the folder, and that Excel "
                         f"does not hold the file open.") from None
    print(f"已写出 / written: {path}")
    return 0


def import_stick(args) -> int:
    """Exit 0 when every sitting on the stick is stored or already here; 1 when any is refused."""
    from station.commands.output import print_json
    from uploader.collector import cli

    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"找不到文件夹 {folder}：请检查 U 盘是否已插好、路径是否正确。",
                         f"No folder {folder}: check the stick is plugged in and the path is right.")
    outcomes = cli.import_stick(folder, data_dir(args.data), args.storage, args.s3_endpoint_url,
                                db_url(args))
    if args.json:
        print_json({"sittings": [o.as_dict() for o in outcomes]})
    else:
        if not outcomes:
            print(f"{folder} 中没有找到已封存的场次（manifest.json）。请确认 U 盘是用 station upload export 导出的。\n"
                  f"No sealed sitting (manifest.json) found in {folder}. Check the stick was written "
                  f"by station upload export.")
        for o in outcomes:
            if o.status == "stored":
                print(f"已保存 stored    {o.station} 场次 {o.sitting}  电子封签 {o.seal_code}  {o.files} 个文件 files")
            elif o.status == "already":
                print(f"已有 already     {o.station} 场次 {o.sitting}  电子封签 {o.seal_code}（此前已收到，未重复保存 / "
                      f"already here, not stored twice）")
            else:
                for p in o.problems:
                    print(f"拒收 REFUSED     {o.station or '?'} 场次 {o.sitting}  文件 {p['path']}：{p['zh']}\n"
                          f"                 {o.station or '?'} sitting {o.sitting}, file {p['path']}: {p['en']}")
    refused = [o for o in outcomes if o.status == "refused"]
    if refused:
        print(f"有 {len(refused)} 个场次被拒收，未保存其任何内容。请让学校在工作站上重新导出后再导入。\n"
              f"{len(refused)} sitting(s) refused; nothing of them was stored. Ask the school to export "
              f"again on the station, then import again.", file=sys.stderr)
        return 1
    return 0
