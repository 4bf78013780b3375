"""station serve: the web pages, device loops and the upload worker of one station.

With ``--simulate`` it serves a rehearsal station instead (see `station.rehearsal`):
kept in ``<data dir>/rehearsal/``, with simulated devices and a local collector, all of
which stop with it.

Either way it prints a login link carrying the install's secret (``station.web.session``)
and opens the browser with it where there is one, so the proctor at this computer starts
with no extra step while another account on it cannot read the pages.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import sys

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
                f"请打开 http://{host}:{port}/ ，或用 --port 换一个端口。",
                f"Port {port} on {host} cannot be used ({exc.strerror}); the station may already be "
                f"running. Open http://{host}:{port}/ or choose another --port.") from None


def _address(args, station_config) -> tuple[str, int]:
    host = args.host or station_config["web.host"]
    port = args.port or station_config["web.port"]
    if not _is_loopback(host) and not station_config["web.pin"]:
        raise UsageError(
            f"网页界面要对其他计算机开放（{host}），必须先在 station.toml 中设置监测员口令 [web] pin。",
            f"The pages would be reachable from other computers ({host}): set a proctor PIN "
            f"([web] pin in station.toml) first.")
    from station.web import pin

    pin.check_setting(station_config["web.pin"])
    _check_port_free(host, port)
    return host, port


def serve(args) -> int:
    if getattr(args, "reset", False) and not getattr(args, "simulate", False):
        raise UsageError("--reset 只能与 --simulate 一起使用（它清空演练数据，不会动正式数据）。",
                         "--reset goes with --simulate only (it clears rehearsal data, never real data).")
    if getattr(args, "simulate", False):
        return _serve_rehearsal(args)
    station = Station.open(args.data_dir)
    host, port = _address(args, station.config)
    station.db  # create and upgrade the database before the first request
    link = _login_link(station, host, port)
    print(f"工作站已启动，请在浏览器中打开 / station running, open: {link}", flush=True)
    print("（此链接含本机登录码，请勿发给他人 / the link carries this computer's sign-in code: "
          "do not share it）", flush=True)
    _run(station, host, port, link=link, browser=_wants_browser(args))
    return 0


def _login_link(station: Station, host: str, port: int) -> str:
    from station.web.session import install_token, login_link

    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return login_link(f"http://{shown}:{port}", install_token(station.data_dir))


def _has_display() -> bool:
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _wants_browser(args) -> bool:
    """``--open`` (the launchers' double-click) always; otherwise where a desktop can show one."""
    if getattr(args, "open", False):
        return True
    return not getattr(args, "no_browser", False) and _has_display()


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
        raise UsageError.of(exc) from None
    try:
        link = _login_link(rig.station, host, port)
        rig.announce(link)
        _run(rig.station, host, port, rehearsal=rig, link=link, browser=_wants_browser(args))
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


def _run(station: Station, host: str, port: int, rehearsal=None, link: str = "", browser: bool = False) -> None:
    import logging

    import uvicorn

    # The station's own warnings (a refused collector, a failed upload, a device that went
    # away) go to stderr from the first one on, whatever handlers a library adds later;
    # without this they relied on logging's last-resort handler.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from station.web.app import create_app

    app = create_app(station, rehearsal=rehearsal is not None, host=host)
    app.state.rehearsal_rig = rehearsal
    if rehearsal is not None:
        from station.web.pe.hub import Hub

        def busy() -> set[str]:
            return {d.name for s in Hub.of(app).running().values() for d in s.devices}

        app.state.on_precheck_started = lambda: rehearsal.press_during_precheck(busy)
    if browser and link:
        _open_when_up(link, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
