"""Run the pre-check: each check under its own timeout, independent groups side by side.

A *group* is a list of checks that must run one after another (the audio checks share
one headset; the network checks share one collector). Groups run concurrently, so the
network is probed while the headset plays its tone and the whole run stays well under
15 s on a ready station.

Each check runs in its own daemon thread. When it overruns its timeout the runner stops
waiting, reports ``fail`` ("检查超时 / the check timed out") and moves on; the thread is
abandoned. Daemon threads on purpose: ``concurrent.futures`` workers are joined at
interpreter exit, so one hung serial driver or PortAudio call would keep
``station precheck`` from ever exiting.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from precheck.check import CheckResult

CheckFn = Callable[[dict], "CheckResult | list[CheckResult]"]
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    """A check function with the id it reports under when it times out or crashes."""

    id: str
    fn: CheckFn
    timeout_s: float | None = None   # None: the runner's default


@dataclass
class Report:
    station_id: str
    started_at: str                  # ISO 8601, local time with its UTC offset
    duration_s: float
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def overall(self) -> str:
        return overall(self.checks)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 when something failed (warnings do not fail the run)."""
        return 1 if self.overall == "fail" else 0


def overall(results: Iterable[CheckResult]) -> str:
    statuses = {r.status for r in results}
    if "fail" in statuses:
        return "fail"
    if "warn" in statuses:
        return "warn"
    return "pass"


def as_check(item: Check | CheckFn) -> Check:
    """Accept a bare function too: its id is ``fn.check_id`` or its name."""
    if isinstance(item, Check):
        return item
    return Check(getattr(item, "check_id", item.__name__), item)


def timed_out(check: Check, timeout_s: float) -> CheckResult:
    return CheckResult(
        check.id, "fail",
        "检查超时", "the check timed out",
        {"timeout_s": timeout_s},
        fix_zh=f"该项在 {timeout_s:g} 秒内没有完成：请检查设备连接后重新运行设备检查。",
        fix_en=f"This check did not finish within {timeout_s:g} s: check the device "
               "and its cable, then run the pre-check again.")


def crashed(check: Check, exc: BaseException) -> CheckResult:
    # The exception text names a device or an address, never a student: safe to show.
    return CheckResult(
        check.id, "fail",
        "检查程序出错", "the check itself went wrong",
        {"error": f"{type(exc).__name__}: {exc}"},
        fix_zh="请重新运行设备检查；仍然出错请把本报告交给技术支持。",
        fix_en="Run the pre-check again; if it still goes wrong, give this report "
               "to technical support.")


def run_one(check: Check, ctx: dict, timeout_s: float) -> list[CheckResult]:
    """Run one check in a daemon thread; give up on it after ``timeout_s``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = check.fn(ctx)
        except BaseException as exc:  # noqa: BLE001 - a check's crash is reported, not raised
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"precheck-{check.id}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return [timed_out(check, timeout_s)]
    if "error" in box:
        return [crashed(check, box["error"])]
    result = box.get("result")
    results = result if isinstance(result, list) else [result]
    if not results or not all(isinstance(r, CheckResult) for r in results):
        return [crashed(check, TypeError(f"returned {result!r}, not a CheckResult"))]
    return results


def run(groups: Mapping[str, Sequence[Check | CheckFn]] | Sequence[Sequence[Check | CheckFn]],
        ctx: dict | None = None, *, station_id: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_result: Callable[[CheckResult], None] | None = None) -> Report:
    """Run every group concurrently, the checks of a group in order; return the report.

    ``on_result`` is called once per result as soon as it is known (for the live page),
    one call at a time. The report lists results in the order the checks were given,
    whatever order they finished in.
    """
    ctx = {} if ctx is None else ctx
    ctx.setdefault("station_id", station_id)
    group_list = list(groups.values()) if isinstance(groups, Mapping) else list(groups)
    slots: list[list[list[CheckResult]]] = [[[] for _ in g] for g in group_list]
    callback_lock = threading.Lock()
    started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.monotonic()

    def run_group(index: int) -> None:
        for position, item in enumerate(group_list[index]):
            check = as_check(item)
            results = run_one(check, ctx, check.timeout_s or timeout_s)
            slots[index][position] = results
            if on_result is not None:
                with callback_lock:
                    for r in results:
                        try:
                            on_result(r)
                        except Exception:  # noqa: BLE001 - a broken live page must not stop the check
                            pass

    threads = [threading.Thread(target=run_group, args=(i,), daemon=True,
                                name=f"precheck-group-{i}") for i in range(len(group_list))]
    for t in threads:
        t.start()
    for t in threads:
        # A group thread never hangs itself: every check inside it is bounded by run_one.
        t.join()
    checks = [r for group in slots for position in group for r in position]
    return Report(station_id=ctx.get("station_id") or station_id, started_at=started_at,
                  duration_s=round(time.monotonic() - t0, 3), checks=checks)


# --- the station's standard run --------------------------------------------------------

def context_from_config(config: Mapping[str, Any], data_dir: str | None = None) -> dict:
    """The ctx the checks read, from station.toml's keys (DESIGN.md, "Config").

    ``[precheck]`` (optional) adds the day plan and thresholds: ``students_expected``,
    ``song_seconds``, ``takes_per_student``, ``flac_ratio``, ``serial_wait_s``,
    ``http_timeout_s``, ``loopback_expected``.
    """
    audio = config.get("audio") or {}
    upload = config.get("upload") or {}
    ctx: dict[str, Any] = {
        "station_id": config.get("station_id") or "",
        "audio_input": audio.get("input") or "",
        "audio_output": audio.get("output") or "",
        "collector_url": upload.get("collector_url") or "",
        "token": upload.get("token") or "",
        "ca_bundle": upload.get("ca_bundle") or "",
        "pe_devices": list((config.get("pe") or {}).get("devices") or []),
        "data_dir": data_dir,
    }
    ctx.update(config.get("precheck") or {})
    return ctx


def unavailable(check_id: str, exc: BaseException) -> Check:
    def fn(ctx: dict) -> CheckResult:
        return CheckResult(check_id, "fail", "无法加载声音设备检查", "The audio checks could not load",
                           {"error": f"{type(exc).__name__}: {exc}"},
                           "请确认已安装声音驱动（Linux：libportaudio2），然后重新检查。",
                           "Make sure the sound library is installed (Linux: libportaudio2), "
                           "then check again.")
    return Check(check_id, fn)


def standard_groups(ctx: dict, *, network: bool = True, audio: bool = True,
                    serial: bool = True) -> dict[str, list[Check | CheckFn]]:
    """Every non-interactive check, grouped so that what shares a device runs in order.

    audio (one headset) | network, clock and version (one collector, one health answer) |
    disk | one group per serial port.
    """
    from precheck import network as net, system

    groups: dict[str, list[Check | CheckFn]] = {}
    if audio:
        try:
            from precheck.audio import AUDIO_CHECKS
            groups["audio"] = list(AUDIO_CHECKS)
        except Exception as exc:  # noqa: BLE001 - no PortAudio is a finding, not a crash
            groups["audio"] = [unavailable("audio.output", exc)]
    if network:
        groups["network"] = [*net.CHECKS, system.check_clock_skew, system.check_software_version]
    groups["disk"] = [system.check_disk_free]
    if serial:
        from precheck.serialcheck import serial_checks

        for check in serial_checks(ctx.get("pe_devices") or []):
            groups[check.id] = [check]
    return groups


def run_precheck(ctx: dict, *, network: bool = True, audio: bool = True,
                 on_result: Callable[[CheckResult], None] | None = None) -> Report:
    """``station precheck``: the whole non-interactive pre-check of this station."""
    return run(standard_groups(ctx, network=network, audio=audio), ctx,
               station_id=ctx.get("station_id") or "", on_result=on_result)
