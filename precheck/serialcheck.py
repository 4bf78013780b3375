"""``serial.<port>``: a configured PE device answers on its port with a valid frame.

The check opens the port as the station will on test day (``devices.ports``: the same line
settings from ``[[pe.devices]]``, the same exclusive open, a URL for a simulated or networked
device), so a vendor tool still holding it shows up now; it sends the driver's probe command
where the device has one (SICS ``S``: "send me a stable weight"), and waits for one frame the
driver accepts. The driver parses; this file only says what the port's answer means.

One check per configured device (``precheck.registry.serial``), so each port gets its own
time limit and a silent timer on COM4 does not hold up the scale on COM3.
"""
from __future__ import annotations

import dataclasses
import errno
import time
from typing import Any, Mapping

from devices import drivers, ports
from qmbase.platform import WINDOWS
from precheck.check import CheckResult
from precheck.context import Context
from precheck.registry import serial_id

PROBE_EVERY_S = 1.0     # ask again: the first probe may land while the scale is busy
READ_S = 0.1            # one read's wait: the probe is repeated and the deadline kept on time


# --- opening the port ------------------------------------------------------------------

class PortProblem(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind          # missing | busy | denied | other


def classify(exc: BaseException) -> str:
    """What went wrong opening a port, from pyserial's exception on either OS."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT or "FileNotFoundError" in text or "No such file" in text:
        return "missing"
    # A port named by URL (socket://host:port, as the rehearsal's simulated devices are):
    # nothing listening there is a device that is not plugged in.
    if code == errno.ECONNREFUSED or "Connection refused" in text or "actively refused" in text:
        return "missing"
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text:
        return "busy"
    if code == errno.EACCES or "PermissionError" in text or "Access is denied" in text:
        # Windows opens COM ports with no sharing: "access denied" means another
        # program holds the port. On Linux it means the user is not in `dialout`.
        return "busy" if WINDOWS else "denied"
    return "other"


def open_port(port: str, driver, settings: ports.PortSettings):
    """``devices.ports.open_port``, its failure sorted into what the operator should do."""
    try:
        return ports.open_port(port, driver, dataclasses.replace(settings, read_timeout=READ_S))
    except ports.PortError as exc:
        cause = exc.__cause__ or exc
        raise PortProblem(classify(cause), f"{type(cause).__name__}: {cause}") from exc


PORT_PROBLEMS = {
    "missing": ("找不到串口 {port}", "Serial port {port} not found",
                "请检查设备的 USB 线或串口线是否插好、设备是否开机；在设备管理器中查看端口号，与 station.toml 中的 port 核对，然后重新检查。",
                "Check that the device's USB or serial cable is plugged in and the device is on; "
                "look up the port name in Device Manager and compare it with `port` in "
                "station.toml, then check again."),
    "busy": ("串口 {port} 被其他程序占用", "Serial port {port} is in use by another program",
             "请关闭占用该串口的程序（如设备厂家的软件，或另一个正在运行的本软件），然后重新检查。",
             "Close the program holding the port (the device maker's software, or another "
             "copy of this station), then check again."),
    "denied": ("没有权限打开串口 {port}", "No permission to open serial port {port}",
               "请让管理员把当前用户加入 dialout 组（Linux），重新登录后再检查。",
               "Ask the administrator to add this user to the dialout group (Linux), log in "
               "again and check again."),
    "other": ("无法打开串口 {port}", "Cannot open serial port {port}",
              "请拔下设备再插上，然后重新检查；仍然不行请更换 USB 口。",
              "Unplug the device and plug it in again, then check again; if that fails, "
              "try another USB socket."),
}


# --- the check -------------------------------------------------------------------------

def check_serial_device(device: Mapping[str, Any], ctx: Context) -> CheckResult:
    port = str(device.get("port") or "")
    check_id = serial_id(device)
    name = device.get("name") or port
    details: dict[str, Any] = {"name": name, "port": port, "driver": device.get("driver")}
    try:
        driver = drivers.get(device.get("driver") or "", **(device.get("options") or {}))
    except drivers.UnknownDriver as exc:
        return CheckResult(check_id, "fail", f"设备 {name} 的驱动配置有误", f"Device {name}: wrong driver in the config",
                           details, str(exc), str(exc))
    if not port:
        return CheckResult(check_id, "fail", f"设备 {name} 没有配置串口", f"Device {name} has no port configured",
                           details, "请在 station.toml 的 [[pe.devices]] 中填写 port（如 COM3 或 /dev/ttyUSB0）。",
                           "Set `port` for this device in station.toml [[pe.devices]] (e.g. COM3 or /dev/ttyUSB0).")
    try:
        settings = ports.PortSettings.from_config(dict(device))
    except ports.SettingsError as exc:
        details.update(problem="settings", error=str(exc))
        return CheckResult(check_id, "fail", f"设备 {name} 的串口参数有误", f"Device {name}: wrong serial settings",
                           details, str(exc), str(exc))
    try:
        connection = open_port(port, driver, settings)
    except PortProblem as problem:
        zh, en, fix_zh, fix_en = PORT_PROBLEMS[problem.kind]
        details.update(problem=problem.kind, error=str(problem))
        return CheckResult(check_id, "fail", zh.format(port=port), en.format(port=port),
                           details, fix_zh, fix_en)
    wait_s = float(device.get("wait_s", ctx.serial_wait_s))
    try:
        with connection:
            reading, received = wait_for_reading(connection, driver, wait_s)
    except OSError as exc:   # SerialException is an OSError: the cable came out mid-check
        details.update(problem="disconnected", error=f"{type(exc).__name__}: {exc}")
        return CheckResult(check_id, "fail", f"检查中串口 {port} 断开", f"Serial port {port} went away during the check",
                           details, PORT_PROBLEMS["missing"][2], PORT_PROBLEMS["missing"][3])
    details.update(bytes_received=received, counters=driver.counters.as_dict(),
                   probe=driver.probe_command is not None)
    if reading is not None:
        details["reading"] = reading.to_json(port=port, item=device.get("item"))
        shown = f"{format(reading.value, 'f')} {reading.unit}".strip()
        unstable_zh, unstable_en = ("（未稳定）", " (not yet stable)") if not reading.stable else ("", "")
        return CheckResult(check_id, "pass", f"{name}（{driver.name}）读数 {shown}{unstable_zh}",
                           f"{name} ({driver.name}) reads {shown}{unstable_en}", details)
    if received == 0:
        how_zh = "设备对查询命令没有应答" if driver.probe_command else "设备没有发送数据"
        how_en = "the device did not answer its query" if driver.probe_command else "the device sent nothing"
        return CheckResult(check_id, "fail", f"{name}：{how_zh}", f"{name}: {how_en}", details,
                           "请检查设备电源和连线；不会自动发送的设备，请在检查时按一下设备上的测量或打印键。",
                           "Check the device's power and cable; for a device that does not send by "
                           "itself, press its measure or print key while the check runs.")
    if driver.counters.status_frames and not driver.counters.checksum_failures:
        return CheckResult(check_id, "warn", f"{name} 有应答，但没有给出读数（设备忙或超量程）",
                           f"{name} answers but gave no reading (busy or out of range)", details,
                           "请让设备处于可测量状态（如清空秤台并归零），然后重新检查。",
                           "Put the device in a ready state (e.g. empty the scale and zero it), "
                           "then check again.")
    return CheckResult(check_id, "fail", f"{name} 发来的数据无法识别", f"{name} sends data that cannot be read",
                       details,
                       f"请核对 station.toml 中该设备的驱动（{driver.name}）和波特率（baud）是否与设备设置一致。",
                       f"Check that the driver ({driver.name}) and baud rate in station.toml match "
                       "the device's settings.")


def wait_for_reading(connection, driver, wait_s: float):
    """Read until the driver yields a reading or ``wait_s`` runs out: (reading, bytes seen)."""
    connection.reset_input_buffer()      # a stale frame from before the check proves nothing
    received = 0
    deadline = time.monotonic() + wait_s
    next_probe = time.monotonic()
    while time.monotonic() < deadline:
        if driver.probe_command and time.monotonic() >= next_probe:
            connection.write(driver.probe_command)
            next_probe = time.monotonic() + PROBE_EVERY_S
        chunk = connection.read(max(1, connection.in_waiting))   # blocks at most 0.1 s
        if not chunk:
            continue
        received += len(chunk)
        readings = driver.feed(chunk, at=time.time())
        if readings:
            # A stable reading is the better proof; take the first otherwise.
            return next((r for r in readings if r.stable), readings[0]), received
    return None, received
