"""station serve: the web pages, device loops and the upload worker of one station."""
from __future__ import annotations

import ipaddress
import socket

from station.context import Station
from station.errors import UsageError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"端口 {port} 已被占用或地址 {host} 不可用（{exc.strerror}）。可能工作站已经在运行："
                f"请打开 http://{host}:{port}/ ，或用 --port 换一个端口。\n"
                f"Port {port} on {host} cannot be used ({exc.strerror}); the station may already be "
                f"running. Open http://{host}:{port}/ or choose another --port.") from None


def serve(args) -> int:
    station = Station.open(args.data_dir)
    host = args.host or station.config["web.host"]
    port = args.port or station.config["web.port"]
    if not _is_loopback(host) and not station.config["web.pin"]:
        raise UsageError(
            f"网页界面要对其他计算机开放（{host}），必须先在 station.toml 中设置监测员口令 [web] pin。\n"
            f"The pages would be reachable from other computers ({host}): set a proctor PIN "
            f"([web] pin in station.toml) first.")
    _check_port_free(host, port)
    import uvicorn

    from station.web.app import create_app

    station.db  # create and upgrade the database before the first request
    print(f"工作站已启动，请在浏览器中打开 / station running, open: http://{host}:{port}/", flush=True)
    uvicorn.run(create_app(station), host=host, port=port, log_level="warning")
    return 0
