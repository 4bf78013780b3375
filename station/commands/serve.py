"""station serve: the web pages, device loops and the upload worker of one station.

With ``--simulate`` it serves a rehearsal station instead (see `station.rehearsal`):
kept in ``<data dir>/rehearsal/``, with simulated devices and a local collector, all of
which stop with it.
"""
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


def _address(args, station_config) -> tuple[str, int]:
    host = args.host or station_config["web.host"]
    port = args.port or station_config["web.port"]
    if not _is_loopback(host) and not station_config["web.pin"]:
        raise UsageError(
            f"网页界面要对其他计算机开放（{host}），必须先在 station.toml 中设置监测员口令 [web] pin。\n"
            f"The pages would be reachable from other computers ({host}): set a proctor PIN "
            f"([web] pin in station.toml) first.")
    _check_port_free(host, port)
    return host, port


def serve(args) -> int:
    if getattr(args, "reset", False) and not getattr(args, "simulate", False):
        raise UsageError("--reset 只能与 --simulate 一起使用（它清空演练数据，不会动正式数据）。\n"
                         "--reset goes with --simulate only (it clears rehearsal data, never real data).")
    if getattr(args, "simulate", False):
        return _serve_rehearsal(args)
    station = Station.open(args.data_dir)
    host, port = _address(args, station.config)
    station.db  # create and upgrade the database before the first request
    print(f"工作站已启动，请在浏览器中打开 / station running, open: http://{host}:{port}/", flush=True)
    _run(station, host, port, open_browser=getattr(args, "open", False))
    return 0


def _serve_rehearsal(args) -> int:
    from station.config import load
    from station.context import resolve_data_dir
    from station.rehearsal.rig import Rig, RehearsalError

    _exit_on_sigterm()
    real_dir, _ = resolve_data_dir(args.data_dir)
    # The web address is the real station's (or --host/--port): checked before anything starts.
    host, port = _address(args, load(real_dir))
    try:
        rig = Rig.start(args.data_dir, reset=args.reset)
    except RehearsalError as exc:
        raise UsageError(str(exc)) from None
    try:
        rig.announce(f"http://{host}:{port}/")
        _run(rig.station, host, port, rehearsal=rig, open_browser=getattr(args, "open", False))
    finally:
        rig.stop()
        print("演练已结束，模拟设备和演练汇集服务器已停止。/ Rehearsal ended: simulated devices and "
              "the rehearsal collector are stopped.", flush=True)
    return 0


def _exit_on_sigterm() -> None:
    """SIGTERM ends the rehearsal through its ``finally``, as Ctrl-C does: uvicorn re-raises
    the signal once it has shut down, and the default action would skip stopping the children."""
    import signal

    def exit_(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, exit_)


def _open_when_up(url: str, host: str, port: int) -> None:
    """Open the browser once the pages answer (the launchers' double-click), not before."""
    import threading
    import time
    import webbrowser

    def wait_then_open() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=1).close()
            except OSError:
                time.sleep(0.3)
                continue
            webbrowser.open(url)
            return

    threading.Thread(target=wait_then_open, name="open-browser", daemon=True).start()


def _run(station: Station, host: str, port: int, rehearsal=None, open_browser: bool = False) -> None:
    import logging

    import uvicorn

    # The station's own warnings (a refused collector, a failed upload, a device that went
    # away) go to stderr from the first one on, whatever handlers a library adds later;
    # without this they relied on logging's last-resort handler.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from station.web.app import create_app

    app = create_app(station, rehearsal=rehearsal is not None)
    app.state.rehearsal_rig = rehearsal
    if rehearsal is not None:
        from station.web.pe.hub import Hub

        def busy() -> set[str]:
            return {d.name for s in Hub.of(app).running().values() for d in s.devices}

        app.state.on_precheck_started = lambda: rehearsal.press_during_precheck(busy)
    if open_browser:
        _open_when_up(f"http://{host}:{port}/", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
