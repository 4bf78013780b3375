"""Checks of the computer itself: free disk, clock against the collector, software version.

Each check is ``fn(ctx) -> CheckResult``; they read ``ctx.data_dir``, ``ctx.plan`` (the
day's recordings, :mod:`precheck.dayplan`), ``ctx.version`` and, through :mod:`network`, the
collector's health answer.
"""
from __future__ import annotations

from email.utils import parsedate_to_datetime
from pathlib import Path

from qmbase.platform import clock_fix_hint, free_bytes
from precheck import network
from precheck.check import CheckResult
from precheck.context import Context
from precheck.dayplan import expected_day_bytes, human_bytes

CLOCK_WARN_S = 2.0
CLOCK_FAIL_S = 60.0
DISK_MARGIN = 3          # the issue: room for three times the day's recordings


# --- disk.free -------------------------------------------------------------------------

def check_disk_free(ctx: Context) -> CheckResult:
    data_dir = Path(ctx.data_dir or ".")
    day = expected_day_bytes(ctx.plan)
    need = DISK_MARGIN * day
    free = free_bytes(data_dir)
    details = {"path": str(data_dir), "free_bytes": free, "day_bytes": day,
               "required_bytes": need}
    have, want = human_bytes(free), human_bytes(need)
    if free >= need:
        return CheckResult("disk.free", "pass", f"磁盘剩余 {have}，足够", f"{have} free on disk, enough",
                           details)
    fix_zh = "请删除不需要的文件或把数据目录移到空间更大的磁盘，然后重新检查。"
    fix_en = "Delete files you do not need, or move the data folder to a bigger disk, then check again."
    if free >= day:
        return CheckResult("disk.free", "warn",
                           f"磁盘剩余 {have}，够今天用但余量不足（建议 {want}）",
                           f"{have} free: enough for today but no margin ({want} advised)",
                           details, fix_zh, fix_en)
    return CheckResult("disk.free", "fail",
                       f"磁盘空间不足：剩余 {have}，需要 {want}",
                       f"Not enough disk space: {have} free, {want} needed",
                       details, fix_zh, fix_en)


# --- clock.skew ------------------------------------------------------------------------

def clock_skew_s(date_header: str, sent_at: float, received_at: float) -> float:
    """Server clock minus ours, in seconds (positive: our clock is behind).

    ``Date`` has whole seconds and is stamped somewhere between our send and receive,
    so compare its mid-second against the midpoint of the round trip.
    """
    server = parsedate_to_datetime(date_header).timestamp() + 0.5
    return server - (sent_at + received_at) / 2


def check_clock_skew(ctx: Context) -> CheckResult:
    if not ctx.link.url:
        return network.not_configured("clock.skew")
    health = network.collector_health(ctx)
    if not health.date_header:
        return CheckResult("clock.skew", "warn",
                           "无法核对时钟：汇总服务器没有应答", "Clock not checked: the collector did not answer",
                           {"error": health.error},
                           "请先解决“汇总服务器连接”一项，再重新检查。",
                           "Fix the network.collector check first, then check again.")
    try:
        skew = clock_skew_s(health.date_header, health.sent_at, health.received_at)
    except (TypeError, ValueError) as exc:
        return CheckResult("clock.skew", "warn",
                           "无法核对时钟：服务器时间格式不对", "Clock not checked: the collector's Date is unreadable",
                           {"date_header": health.date_header, "error": str(exc)},
                           "请联系区县信息中心检查汇总服务器。", "Ask the district to check the collector.")
    details = {"skew_s": round(skew, 2), "date_header": health.date_header,
               "warn_over_s": CLOCK_WARN_S, "fail_over_s": CLOCK_FAIL_S}
    direction_zh = "慢" if skew > 0 else "快"
    direction_en = "behind" if skew > 0 else "ahead of"
    where_zh, where_en = clock_fix_hint()
    fix_zh = f"请把本机时间与汇总服务器同步（{where_zh}），然后重新检查。"
    fix_en = f"Set this computer's clock from the network ({where_en}), then check again."
    text_zh = f"本机时钟比服务器{direction_zh} {abs(skew):.1f} 秒"
    text_en = f"This clock is {abs(skew):.1f} s {direction_en} the collector"
    if abs(skew) > CLOCK_FAIL_S:
        return CheckResult("clock.skew", "fail", text_zh, text_en, details, fix_zh, fix_en)
    if abs(skew) > CLOCK_WARN_S:
        return CheckResult("clock.skew", "warn", text_zh, text_en, details, fix_zh, fix_en)
    return CheckResult("clock.skew", "pass", f"时钟准确（相差 {abs(skew):.1f} 秒）",
                       f"Clock is right ({abs(skew):.1f} s off)", details)


# --- software.version ------------------------------------------------------------------

def station_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qm-station")
    except PackageNotFoundError:
        return "0+unknown"


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as a is older than, the same as, or newer than b (PEP 440)."""
    try:
        from packaging.version import Version  # ships with matplotlib, which we depend on

        va, vb = Version(a), Version(b)
    except Exception:  # not PEP 440 text: only equality can be judged
        return 0 if a == b else -1
    return (va > vb) - (va < vb)


def check_software_version(ctx: Context) -> CheckResult:
    mine = ctx.version or station_version()
    if not ctx.link.url:
        return network.not_configured("software.version")
    health = network.collector_health(ctx)
    if health.json is None:
        return CheckResult("software.version", "warn",
                           f"本机版本 {mine}；未能向汇总服务器核对", f"Version {mine}; not checked with the collector",
                           {"version": mine, "error": health.error},
                           "请先解决“汇总服务器连接”一项，再重新检查。",
                           "Fix the network.collector check first, then check again.")
    expected = health.json.get("expected_station_version")
    details = {"version": mine, "expected": expected}
    if not expected:
        return CheckResult("software.version", "skip",
                           f"本机版本 {mine}；服务器未规定版本", f"Version {mine}; the collector names no version",
                           details)
    order = compare_versions(mine, str(expected))
    if order == 0:
        return CheckResult("software.version", "pass", f"软件版本 {mine}，符合要求",
                           f"Software version {mine} is the one expected", details)
    fix_zh = f"请安装区县指定的 {expected} 版本，然后重新检查。"
    fix_en = f"Install version {expected}, the one the district names, then check again."
    if order > 0:
        return CheckResult("software.version", "warn",
                           f"本机版本 {mine} 比要求的 {expected} 新", f"Version {mine} is newer than the expected {expected}",
                           details, fix_zh, fix_en)
    return CheckResult("software.version", "fail",
                       f"软件版本过旧：{mine}，要求 {expected}", f"Software too old: {mine}, {expected} expected",
                       details, fix_zh, fix_en)
