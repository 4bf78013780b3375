"""What every pre-check returns, whatever it checks.

A check is a plain function ``check(ctx: dict) -> CheckResult`` (or a list of them, for
checks that expand per port). The runner gives each its own timeout, so a hung device
never hangs the run; a check never raises for a device fault, it returns ``fail`` with
the reason and the fix, in words a teacher understands.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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
