"""What a simulated device sends for ONE measurement: pure, a seed in, the same bytes out.

Built on `devices.simulators.script` (the same frames `scripts/simulate-device` writes),
with the values a trainer expects from a 10-year-old: a seed is taken only when its value
lies in the item's range, the waits are shortened so a measurement takes about a second,
and a frame that names a student carries the code given (or none: the scanned student).
"""
from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import replace
from decimal import Decimal

from devices import simulators
from devices.drivers import alge_timy, mt_sics, qm_frame
from devices.simulators import FINAL, Emit

# item: (lowest, highest) final value the rehearsal shows
RANGES = {
    "run_50m": (Decimal("7.5"), Decimal("11.0")),
    "sit_and_reach": (Decimal("-5"), Decimal("25")),
    # Inside the usual range of both grade 4 and grade 8 (items.toml), so a rehearsal is not
    # a stream of "outside the usual range" questions; the standard's checks are tested elsewhere.
    "height": (Decimal("140"), Decimal("158")),
    "weight": (Decimal("30"), Decimal("48")),
}
RATE = 8.0           # frames per second: a scale settles in well under a second
RUN_WALL_S = 1.0     # wall time between a run's start and finish impulses
LANE_BIB = "0001"    # a timing gate's lane, not a student: the scanned student ran in it


class NoSimulation(ValueError):
    """No simulation for this driver and item."""


def seed_for(name: str, n: int) -> int:
    """The n-th measurement of device ``name``: different per device, the same per run."""
    return zlib.crc32(name.encode()) * 1000 + n


def measurement(driver: str, item: str, seed: int, code: str | None = None,
                now: dt.datetime | None = None) -> list[Emit]:
    """The chunks of one measurement, in order, with the wait before each."""
    low, high = RANGES.get(item, (None, None))
    for attempt in range(1000):
        emits = _one(driver, item, seed * 1000 + attempt, code, now)
        value = final_value(emits)
        if low is None or (value is not None and low <= value <= high):
            return emits
    raise NoSimulation(f"no seed gives {item} in range")   # pragma: no cover - ranges overlap the simulators'


def final_value(emits: list[Emit]) -> Decimal | None:
    """What the station should record: the stable value, or a run's time from its impulses."""
    finals = [e for e in emits if e.kind == FINAL]
    if len(finals) == 2 and all(e.code for e in finals):     # start and finish impulses
        return finals[1].value - finals[0].value
    return finals[-1].value if finals else None


def _one(driver: str, item: str, seed: int, code: str | None, now) -> list[Emit]:
    if driver == "alge-timy":
        return _run(seed, code, now)
    if driver == "qm-frame":
        return _meter(item, seed, code)
    if driver in ("mt-sics", "kern"):
        return _scale(driver, item, seed)
    raise NoSimulation(f"演练模式没有 {driver} 设备的模拟。/ Rehearsal mode has no simulation for {driver}.")


def _run(seed: int, code: str | None, now: dt.datetime | None) -> list[Emit]:
    start, finish = simulators.script("alge-timy", count=1, seed=seed)
    run = finish.value - start.value
    # The impulses carry today's time of day, as a real timer's do; the run itself lasts
    # its simulated seconds only in the frames.
    now = now or dt.datetime.now()
    clock = Decimal(now.hour * 3600 + now.minute * 60 + now.second) + Decimal(now.microsecond // 100) / 10000
    clock = min(clock, Decimal(86400 - 60))
    bib = (code or LANE_BIB)[-4:].rjust(4, "0")
    return [Emit(alge_timy.format_line(bib, "C0", clock), FINAL, 0.0, clock, bib),
            Emit(alge_timy.format_line(bib, "C1", clock + run), FINAL, RUN_WALL_S, clock + run, bib)]


def _meter(item: str, seed: int, code: str | None) -> list[Emit]:
    if item not in simulators.ITEMS:
        raise NoSimulation(f"qm-frame 模拟器不认识项目 {item}。/ The qm-frame simulator knows no item {item}.")
    (emit,) = simulators.script("qm-frame", count=1, seed=seed, item=item)
    device, _, _, _, unit = simulators.ITEMS[item]
    # The meter sends the code typed on it, or none: then the scanned student is measured.
    data = qm_frame.format_frame(device, item, code or "", emit.value, unit)
    return [replace(emit, data=data, code=code or None, delay=0.0)]


def _height_cm(kg: Decimal) -> Decimal:
    """The simulators' scales weigh (20-65 kg); a height meter on the same protocol sends cm:
    the weight's place in its range becomes the height's place in 120-175 cm."""
    return (Decimal(120) + (kg - 20) * Decimal(55) / Decimal("45.05")).quantize(Decimal("0.1"))


def _scale(driver: str, item: str, seed: int) -> list[Emit]:
    emits = simulators.script(driver, count=1, seed=seed, rate=RATE)
    emits[0] = replace(emits[0], delay=0.0)
    if item != "height":
        return emits
    if driver != "mt-sics":
        raise NoSimulation("演练模式的身高计使用 mt-sics 协议。/ The rehearsal height meter speaks mt-sics.")
    out = []
    for e in emits:
        if e.value is None:           # a busy line says nothing about units
            out.append(e)
            continue
        cm = _height_cm(e.value)
        out.append(replace(e, value=cm, data=mt_sics.format_line(f"{cm:.1f}", "cm", e.kind == FINAL)))
    return out


def idle_answer(driver: str, item: str) -> bytes | None:
    """What a scale answers to the "S" query when nothing is on it (an empty, zeroed scale)."""
    if driver != "mt-sics":
        return None
    return mt_sics.format_line("0.0" if item == "height" else "0.00", "cm" if item == "height" else "kg", True)

