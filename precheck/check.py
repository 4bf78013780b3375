"""What a pre-check is: one declaration (fixed id, title, time limit, function) and its result.

A check is a function ``check(ctx: Context) -> CheckResult``, declared once in
``precheck.registry`` with the id it reports under. The runner gives each its own time limit
and thread; when a check hangs or crashes the runner reports it under the *declared* id, so
the JSON keeps ``audio.loopback`` exactly when a device hangs. A check never raises for a
device fault: it returns ``fail`` with the reason and the fix, in words a teacher understands.
"""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

if TYPE_CHECKING:
    from precheck.context import Context

Status = Literal["pass", "warn", "fail", "skip"]


@dataclass
class CheckResult:
    id: str                      # dotted: audio.input, serial.COM3, network.tls …
    status: Status
    summary_zh: str              # one line: what was found
    summary_en: str
    details: dict[str, Any] = field(default_factory=dict)
    fix_zh: str = ""             # what to do, when status is warn or fail
    fix_en: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


CheckFn = Callable[["Context"], CheckResult]


@dataclass(frozen=True)
class Check:
    """One check as the runner and the report know it."""

    id: str
    title_zh: str                # what the check is called, for people
    title_en: str
    timeout_s: float
    fn: CheckFn


def lazy(module: str, name: str, *leading: Any) -> CheckFn:
    """``module.name(*leading, ctx)``, imported when the check runs.

    The import happens in the check's own thread, under its time limit and id: declaring the
    checks loads no numpy, sounddevice, pyserial or httpx (``station --help`` stays fast), and a
    module that cannot load is a failed check, not a crashed run.
    """
    def fn(ctx: "Context") -> CheckResult:
        return getattr(importlib.import_module(module), name)(*leading, ctx)
    fn.__qualname__ = fn.__name__ = f"{module}.{name}"
    return fn
