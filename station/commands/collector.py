"""station collector serve | add-station | admin-token: the district's side."""
from __future__ import annotations

import os
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


def serve(args) -> int:
    from uploader.collector import cli

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert 和 --tls-key 需要一起给出。\n--tls-cert and --tls-key go together.")
    folder = data_dir(args.data)
    scheme = "https" if args.tls_cert else "http"
    print(f"区县汇集服务器已启动 / collector running: {scheme}://{args.host}:{args.port}/  "
          f"（数据 / data: {folder}）", flush=True)
    cli.serve(args.host, args.port, folder, storage=args.storage, tls_cert=args.tls_cert,
              tls_key=args.tls_key, max_upload_bytes=args.max_upload_mib * 1024 * 1024,
              s3_endpoint_url=args.s3_endpoint_url,
              expected_station_version=args.expected_station_version,
              patch_idle_timeout=args.patch_idle_timeout, header_timeout=args.header_timeout,
              max_connections=args.max_connections)
    return 0


def add_station(args) -> int:
    from uploader.collector import cli

    try:
        token = cli.add_station(args.station_id, data_dir(args.data), args.school, args.room)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"工作站 {args.station_id} 的上传令牌如下，请填入该工作站 station.toml 的 [upload] token"
          f"（再次运行会作废旧令牌）。\nThe upload token of station {args.station_id} follows: put it "
          f"in that station's station.toml under [upload] token (running this again voids it).")
    print(token)
    return 0


def admin_token(args) -> int:
    from uploader.collector import cli

    token = cli.admin_token(data_dir(args.data))
    print("区县信息中心管理令牌（用于登录汇总看板；旧令牌已作废）：\n"
          "The district admin token (for the dashboard login; the old one is void):")
    print(token)
    return 0
