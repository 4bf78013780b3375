"""Every check of the pre-check, declared once: its fixed id, its name for people, its time
limit and its function. The runner, the JSON, the terminal table, the printable page and the
/precheck page all take ids and names from here.

Groups are the checks that must run one after another because they share something (one
headset; one collector and its health answer); groups run side by side.
"""
from __future__ import annotations

from typing import Any, Mapping

from precheck.check import Check, lazy
from precheck.context import Context

LIMIT_S = 10.0          # a check that has not finished by then is reported as timed out
SERIAL_GRACE_S = 5.0    # a serial check's limit: the device's wait plus opening and closing


def _declare(module: str, *rows: tuple[str, str, str, str]) -> tuple[Check, ...]:
    return tuple(Check(check_id, zh, en, LIMIT_S, lazy(f"precheck.{module}", fn))
                 for check_id, zh, en, fn in rows)


#: In the order a run uses: the input check leaves its noise floor for the speech test.
AUDIO = _declare(
    "audio",
    ("audio.output", "耳机播放", "Earphones", "check_output"),
    ("audio.input", "麦克风录音", "Microphone", "check_input"),
    ("audio.loopback", "耳机回路", "Headset loopback", "check_loopback"),
    ("audio.sample_rate", "采样率", "Sample rate", "check_sample_rate"),
)
#: One collector: its health answer is fetched once and read by the last three.
NETWORK = _declare(
    "network",
    ("network.dns", "域名解析", "DNS", "check_dns"),
    ("network.collector", "汇总服务器连接", "Collector", "check_collector"),
    ("network.tls", "服务器证书", "TLS certificate", "check_tls"),
    ("network.throughput", "上传速度", "Upload speed", "check_throughput"),
) + _declare(
    "system",
    ("clock.skew", "时钟", "Clock", "check_clock_skew"),
    ("software.version", "软件版本", "Software version", "check_software_version"),
)
DISK = _declare("system", ("disk.free", "磁盘空间", "Disk space", "check_disk_free"))

BY_ID: dict[str, Check] = {c.id: c for c in (*AUDIO, *NETWORK, *DISK)}


def serial_id(device: Mapping[str, Any]) -> str:
    return f"serial.{device.get('port') or '?'}"


def serial_title(port: str) -> tuple[str, str]:
    if "://" in port:          # a pyserial URL: a simulated or networked device
        return f"串口设备 {port}（网络地址）", f"Serial device at {port} (network address)"
    return f"串口设备 {port}", f"Serial device {port}"


def serial(device: Mapping[str, Any], ctx: Context) -> Check:
    """``serial.<port>``: one check per configured device, so each port has its own limit."""
    check_id = serial_id(device)
    zh, en = serial_title(check_id.split(".", 1)[1])
    wait_s = float(device.get("wait_s", ctx.serial_wait_s))
    return Check(check_id, zh, en, wait_s + SERIAL_GRACE_S,
                 lazy("precheck.serialcheck", "check_serial_device", device))


def title(check_id: str) -> tuple[str, str]:
    """What a check is called, in Chinese and English (also for reports read back from JSON)."""
    if check_id in BY_ID:
        return BY_ID[check_id].title_zh, BY_ID[check_id].title_en
    if check_id.startswith("serial."):
        return serial_title(check_id.split(".", 1)[1])
    return check_id, check_id


def standard_groups(ctx: Context, *, network: bool = True, audio: bool = True,
                    serial_ports: bool = True) -> dict[str, list[Check]]:
    """Every non-interactive check, grouped so that what shares a device runs in order:
    audio (one headset) | network, clock and version (one collector) | disk | each port."""
    groups: dict[str, list[Check]] = {}
    if audio:
        groups["audio"] = list(AUDIO)
    if network:
        groups["network"] = list(NETWORK)
    groups["disk"] = list(DISK)
    if serial_ports:
        for device in ctx.serial_devices:
            check = serial(device, ctx)
            groups[check.id] = [check]
    return groups
