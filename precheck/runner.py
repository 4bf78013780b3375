"""Run the pre-check: each check under its own time limit, independent groups side by side.

A *group* is a list of checks that must run one after another (the audio checks share
one headset; the network checks share one collector). Groups run concurrently, so the
network is probed while the headset plays its tone and the whole run stays well under
15 s on a ready station.

Each check runs in its own daemon thread. When it overruns its limit the runner stops
waiting, reports ``fail`` ("检查超时 / the check timed out") under the check's declared id
and moves on; the thread is abandoned. Daemon threads on purpose: ``concurrent.futures``
workers are joined at interpreter exit, so one hung serial driver or PortAudio call would
keep ``station precheck`` from ever exiting.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from precheck.check import Check, CheckResult
from precheck.context import Context
from precheck.registry import standard_groups
from precheck.report import Report


def timed_out(check: Check) -> CheckResult:
    limit = check.timeout_s
    return CheckResult(
        check.id, "fail",
        "检查超时", "the check timed out",
        {"timeout_s": limit},
        fix_zh=f"该项在 {limit:g} 秒内没有完成：请检查设备连接后重新运行设备检查。",
        fix_en=f"This check did not finish within {limit:g} s: check the device "
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


def run_one(check: Check, ctx: Context) -> CheckResult:
    """Run one check in a daemon thread; give up on it after its limit.

    Whatever happens, the result carries the declared id: a timeout, a crash and a result
    under another id are all reported as ``check.id``.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = check.fn(ctx)
        except BaseException as exc:  # noqa: BLE001 - a check's crash is reported, not raised
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"precheck-{check.id}", daemon=True)
    worker.start()
    worker.join(check.timeout_s)
    if worker.is_alive():
        return timed_out(check)
    if "error" in box:
        return crashed(check, box["error"])
    result = box.get("result")
    if not isinstance(result, CheckResult):
        return crashed(check, TypeError(f"returned {result!r}, not a CheckResult"))
    if result.id != check.id:
        return crashed(check, ValueError(f"reported as {result.id!r}, declared as {check.id!r}"))
    return result


def run(groups: Mapping[str, Sequence[Check]] | Sequence[Sequence[Check]],
        ctx: Context | None = None, *,
        on_result: Callable[[CheckResult], None] | None = None) -> Report:
    """Run every group concurrently, the checks of a group in order; return the report.

    ``on_result`` is called once per result as soon as it is known (for the live page),
    one call at a time. The report lists results in the order the checks were given,
    whatever order they finished in.
    """
    ctx = Context() if ctx is None else ctx
    group_list = list(groups.values()) if isinstance(groups, Mapping) else list(groups)
    slots: list[list[CheckResult | None]] = [[None] * len(g) for g in group_list]
    callback_lock = threading.Lock()
    started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.monotonic()

    def run_group(index: int) -> None:
        for position, check in enumerate(group_list[index]):
            result = slots[index][position] = run_one(check, ctx)
            if on_result is not None:
                with callback_lock:
                    try:
                        on_result(result)
                    except Exception:  # noqa: BLE001 - a broken live page must not stop the check
                        pass

    threads = [threading.Thread(target=run_group, args=(i,), daemon=True,
                                name=f"precheck-group-{i}") for i in range(len(group_list))]
    for t in threads:
        t.start()
    for t in threads:
        # A group thread never hangs itself: every check inside it is bounded by run_one.
        t.join()
    checks = [r for group in slots for r in group if r is not None]
    return Report(station_id=ctx.station_id, started_at=started_at,
                  duration_s=round(time.monotonic() - t0, 3), checks=checks)


def run_precheck(ctx: Context, *, network: bool = True, audio: bool = True,
                 on_result: Callable[[CheckResult], None] | None = None) -> Report:
    """``station precheck``: the whole non-interactive pre-check of this station."""
    return run(standard_groups(ctx, network=network, audio=audio), ctx, on_result=on_result)
