"""Whose reading is this, and for which item: the test room's rules, with no I/O.

* the proctor scans a student; the next *stable* reading of that device is theirs, until
  they have had all their attempts (sit-and-reach: 2, vital capacity: 3 …);
* a device that sends a code (qm-frame CODE, a timing gate's bib) names the student itself;
* a timing gate set up for lanes sends the lane as its bib: the proctor scans a student
  *for a lane*, and the lane's finish is that student's;
* a BMI sitting measures height and weight: a reading goes to the item its device names,
  else the device's configured item, else the one its unit fits (kg weight, cm height).

Each function answers (the answer, None) or (None, why) with ``why`` a message pair from
``messages``: a reading nobody can be given is stored as unassigned with that reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from devices.drivers import Reading
from pe_station import rules
from pe_station.messages import (NO_LANE_STUDENT, NO_STUDENT, OTHER_ITEM, WHICH_ITEM, fmt)

Why = tuple[str, str] | None


def lane_slot(lane: int) -> str:
    """The key of a lane's current student in ``Flow.state()["current"]``."""
    return f"lane-{lane}"


def slot_lane(slot: str | None) -> int | None:
    return int(slot[5:]) if slot and slot.startswith("lane-") else None


def lane_of(code: str | None, lanes: int) -> int | None:
    """The lane a timing gate's bib names, when the gate is set up for lanes."""
    if lanes and code and code.isdigit() and 1 <= int(code) <= lanes:
        return int(code)
    return None


@dataclass
class Slots:
    """Who is being tested where: by device (None: every device of the sitting) or lane.

    A student who has made every attempt leaves ``current`` (readings are no longer
    theirs) but stays ``finished`` until the next scan, so their card stays on the page
    where the result appeared (a 50 m time, a BMI) for the proctor to confirm it there.
    """

    current: dict[str | None, str] = field(default_factory=dict)
    finished: dict[str | None, str] = field(default_factory=dict)

    def of(self, device: str | None = None) -> str | None:
        return self.current.get(device) or self.current.get(None)

    def put(self, slot: str | None, code: str, lane: int | None = None) -> None:
        """``code`` is tested at ``slot`` now; a student runs in one lane, so a lane moves them."""
        if lane is not None:
            self.leave(code)
        if slot is None:
            self.finished.clear()
        else:
            self.finished.pop(slot, None)
        self.current[slot] = code

    def again(self, slot: str | None, code: str, lane: int | None = None) -> None:
        """A retest: ``code`` is current at ``slot`` again and no longer shown as finished."""
        if lane is not None:
            self.leave(code)
        for key in [k for k, v in self.finished.items() if v == code]:
            del self.finished[key]
        self.current[slot] = code

    def leave(self, code: str) -> None:
        for slots in (self.current, self.finished):
            for key in [k for k, v in slots.items() if v == code]:
                del slots[key]

    def finish(self, code: str) -> None:
        for key in [k for k, v in self.current.items() if v == code]:
            self.finished[key] = self.current.pop(key)

    def shown(self) -> list[tuple[str | None, str, bool]]:
        """(slot, student, finished) for each card on the page."""
        return [(k, v, False) for k, v in self.current.items()] + \
               [(k, v, True) for k, v in self.finished.items() if k not in self.current]


def item_for(measured: dict[str, rules.Item], said: str | None, configured: str | None,
             unit: str | None) -> tuple[rules.Item | None, Why]:
    """Which measured item a final reading is for: the one the device names, else the
    device's configured item, else the sitting's only one, else the one its unit fits."""
    wanted = ", ".join(measured)
    if said:
        if said in measured:
            return measured[said], None
        return None, fmt(OTHER_ITEM, got=said, want=wanted)
    if configured in measured:
        return measured[configured], None
    if len(measured) == 1:
        return next(iter(measured.values())), None
    # One device for height and weight that does not say which: kg is weight, cm height.
    fits = [i for i in measured.values() if rules.normal_unit(unit) and rules.convertible(unit, i)]
    if len(fits) == 1:
        return fits[0], None
    return None, fmt(WHICH_ITEM, items=wanted)


def whose(reading: Reading, device: str, lanes: int, slots: Slots,
          in_roster: Callable[[str], bool]) -> tuple[str | None, Why]:
    """The student a final reading of ``device`` (timing ``lanes``) names or was scanned for."""
    lane = lane_of(reading.code, lanes) if reading.channel is not None else None
    if lane is not None:
        code = slots.current.get(lane_slot(lane))
        return (code, None) if code else (None, fmt(NO_LANE_STUDENT, lane=lane))
    current = slots.of(device)
    if reading.code:
        # A timing gate's bib may be a lane number rather than a student code: then the
        # scanned student ran in it.
        if reading.channel is not None and current and not in_roster(reading.code):
            return current, None
        return reading.code, None
    return (current, None) if current else (None, NO_STUDENT)


def timer_feed(reading: Reading, lanes: int) -> tuple[int | None, list[Reading], bool]:
    """What the run timer is fed for one impulse of a gate with ``lanes``: (the lane it
    names, the impulses to feed, whether the last one's run is this impulse's)."""
    lane = lane_of(reading.code, lanes)
    if lane is not None:
        # "0001" and "1" are the same lane: pair start and finish by the lane number.
        return lane, [replace(reading, code=str(lane))], True
    if lanes and reading.channel.upper() == "C0":
        # One starting gun for every lane: a start without a lane number starts them all.
        return None, [replace(reading, code=str(n)) for n in range(1, lanes + 1)], False
    return None, [reading], True


def run_reading(reading: Reading, run_code: str | None, lanes: int) -> Reading:
    """The finish impulse as the run's reading: its code is the run's (a bib the timer
    paired by), unless it names a lane (the lane's scanned student ran)."""
    if run_code != reading.code and lane_of(reading.code, lanes) is None:
        return replace(reading, code=run_code)
    return reading


def items_left(measured: dict[str, rules.Item], used: Callable[[str], int]) -> list[str]:
    """The measured items a student still has attempts at (``used``: turns taken per item)."""
    return [i for i, item in measured.items() if used(i) < item.attempts]
