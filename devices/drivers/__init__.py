"""PE device drivers: pure parsers, bytes in, readings out (see DESIGN.md, "drivers").

    from devices import drivers
    d = drivers.get("mt-sics")
    for reading in d.feed(chunk): ...

``NAMES`` lists what ``get`` accepts. Options are the driver's own (``pattern`` for
``line``, ``require_checksum`` for ``alge-timy``); serial settings are class attributes
(``baud``, ``parity`` …) that the port config may override.
"""
from __future__ import annotations

from qmbase.refusal import Refusal

from .alge_timy import AlgeTimy, RunTime, RunTimer
from .base import Counters, Driver, Reading, escape_raw
from .kern import Kern
from .line import Line, PatternError
from .mt_sics import MtSics
from .qm_frame import QmFrame

_REGISTRY: dict[str, type[Driver]] = {
    cls.name: cls for cls in (AlgeTimy, MtSics, Kern, QmFrame, Line)}
NAMES: tuple[str, ...] = tuple(_REGISTRY)


class UnknownDriver(Refusal, ValueError):
    status = 400


def driver_class(name: str) -> type[Driver]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownDriver(
            f"没有名为 {name!r} 的驱动，可用的驱动：{', '.join(NAMES)}。请检查配置或命令中的驱动名。",
            f"There is no driver named {name!r}; the drivers are: {', '.join(NAMES)}. "
            f"Check the driver name in the config or command.") from None


def get(name: str, **options) -> Driver:
    """A fresh driver (each port needs its own: a driver keeps the partial frame)."""
    cls = driver_class(name)
    try:
        return cls(**options)
    except TypeError as e:          # an option this driver does not have
        raise UnknownDriver(
            f"驱动 {name} 不接受这些选项：{sorted(options)}，请检查配置。",
            f"Driver {name} does not take the options {sorted(options)}; check the config.") from e


__all__ = ["NAMES", "get", "driver_class", "Driver", "Reading", "Counters", "RunTimer",
           "RunTime", "escape_raw", "UnknownDriver", "PatternError"]
