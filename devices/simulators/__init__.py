"""Device simulators: what each PE device would send, as a timed script of byte chunks.

Pure generators (a seed in, the same script out) so a test can compute what the station
should read from the very script ``scripts/simulate-device`` writes to a PTY. Each script
is a list of `Emit`: bytes, what they are, and how long to wait before writing them.

    for emit in script("mt-sics", count=3, seed=1): ...
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterator

from devices.drivers import alge_timy, kern, line, mt_sics, qm_frame

# Kinds of chunk.
FINAL = "final"        # a frame the station must read as a final (stable) reading
LIVE = "live"          # an unstable reading: shown, never final
STATUS = "status"      # busy / overload: well-formed, not a reading
GARBAGE = "garbage"    # line noise between frames
DAMAGED = "damaged"    # a frame with a bad checksum or cut short: must yield nothing

# Noise bytes: high bytes and control characters, none of which can start or end a frame
# of any driver, so noise never makes a frame appear or vanish by itself.
_NOISE = bytes([0x00, 0x07, 0x11, 0x13, 0x1B, 0x7F] + list(range(0x80, 0x100)))


@dataclass(frozen=True)
class Emit:
    data: bytes
    kind: str
    delay: float = 0.0             # seconds to wait before writing
    value: Decimal | None = None
    code: str | None = None


@dataclass
class Options:
    count: int = 10                # results (a run, a weighing, a throw) to produce
    seed: int | None = None
    rate: float = 5.0              # frames per second
    garbage: float = 0.0           # chance of noise before a frame
    bad_checksum: float = 0.0      # chance of a damaged frame before a good one
    pause: float = 0.0             # chance of a 1-3 s pause (a student stepping off)
    code: str = "0001"             # first student or bib code; the next ones count up
    item: str | None = None        # qm-frame: which item the meter measures
    form: str | None = None        # kern: "kb" (18-byte KB/FKB lines) instead of sigrok's;
                                   # alge-timy: "sequence" (numbered impulses, not bibs)


def _codes(first: str) -> Iterator[str]:
    width, n = len(first), int(first) if first.isdigit() else 1
    while True:
        yield str(n).zfill(width)
        n += 1


def _d(value: float, places: int) -> Decimal:
    return Decimal(f"{value:.{places}f}")


def _alge(rng: random.Random, o: Options) -> Iterator[tuple[str, bytes, Decimal, str | None]]:
    clock = Decimal(9 * 3600)                              # the PE lesson starts at 9:00
    impulse = 0
    for bib in _codes(o.code):
        clock += _d(rng.uniform(20, 40), 4)
        run = _d(rng.uniform(7.2, 11.5), 4)                # 50 m, grade 4 to grade 8
        if o.form == "sequence":                           # the timer counts its impulses
            start, finish, bib = f"{impulse + 1:04d}", f"{impulse + 2:04d}", None
            impulse += 2
        else:
            start = finish = bib
        yield FINAL, alge_timy.format_line(start, "C0", clock), clock, bib
        yield FINAL, alge_timy.format_line(finish, "C1", clock + run), clock + run, bib


def _scale_weighings(rng: random.Random, o: Options, frame: Callable, step: str):
    for _ in _codes(o.code):
        target = _d(rng.uniform(20, 65), 1) + Decimal(rng.choice(["0.00", "0.05"]))
        if rng.random() < 0.2:
            yield STATUS, None, None, None                 # busy while the child steps on
        for k in range(rng.randint(2, 5)):                 # the weight settles
            wobble = _d(rng.uniform(-1.5, 1.5) / (k + 1), 2)
            live = (target + wobble).quantize(Decimal(step))
            yield LIVE, frame(live, False), live, None
        yield FINAL, frame(target, True), target, None


def _sics(rng, o):
    for kind, data, value, code in _scale_weighings(
            rng, o, lambda v, s: mt_sics.format_line(f"{v:.2f}", "kg", s), "0.01"):
        yield kind, (b"S I\r\n" if kind == STATUS else data), value, code


def _kern(rng, o):
    if o.form == "kb":          # KB/DS/FKB: a moving value has no unit; "Error" is a status
        frame, busy = (lambda v, s: kern.format_kb(f"{v:.2f}", "kg", s)), b"       Error\r\n"
    else:
        frame, busy = (lambda v, s: kern.format_frame(f"{v:.2f}", b"kg", s)), b"+  99999kg E\r\n"
    for kind, data, value, code in _scale_weighings(rng, o, frame, "0.01"):
        yield kind, (busy if kind == STATUS else data), value, code


# item: (device name, low, high, decimal places, unit)
ITEMS = {
    "sit_and_reach": ("QM-SR", -10, 25, 1, "cm"),
    "rope_skip_1min": ("QM-RS", 60, 190, 0, ""),
    "situps_1min": ("QM-SU", 15, 55, 0, ""),
    "vital_capacity": ("QM-VC", 900, 4200, 0, "ml"),
    "grip": ("QM-GR", 8, 45, 1, "kg"),
    "long_jump": ("QM-LJ", 110, 260, 0, "cm"),
    "height": ("QM-HT", 120, 185, 1, "cm"),
}


def _qm(rng, o):
    item = o.item or "sit_and_reach"
    device, low, high, places, unit = ITEMS[item]
    for code in _codes(o.code):
        value = _d(rng.uniform(low, high), places)
        yield FINAL, qm_frame.format_frame(device, item, code, value, unit), value, code


def _line(rng, o):
    # A line carries no stability flag: the line driver takes a value as final once it
    # has come the configured number of times in a row (3 by default), so the meter
    # repeats it, as a stadiometer streaming its display does.
    for code in _codes(o.code):
        value = _d(rng.uniform(120, 185), 1)
        frame = f"{code},{value} cm\r\n".encode()
        for _ in range(line.DEFAULT_REPEAT - 1):
            yield LIVE, frame, value, code
        yield FINAL, frame, value, code


def _damage(rng: random.Random, driver: str, frame: bytes) -> bytes:
    """A copy of ``frame`` that must not read: a bad checksum where there is one,
    otherwise cut short by noise."""
    if driver == "alge-timy":                              # checksum chars are 26, 27
        return frame[:26] + bytes([frame[26] ^ 0x01]) + frame[27:]
    if driver == "qm-frame":
        return frame[:-1] + bytes([frame[-1] ^ 0x55])
    if driver == "line":
        return frame[:2] + bytes([rng.choice(_NOISE[6:])]) + frame[2:]
    return frame[:rng.randint(3, len(frame) - 4)]


FORMS = {"kern": (None, "sigrok", "kb"), "alge-timy": (None, "bib", "sequence")}
_FRAMES = {"alge-timy": _alge, "mt-sics": _sics, "kern": _kern, "qm-frame": _qm, "line": _line}
NAMES = tuple(_FRAMES)


def script(driver: str, **options) -> list[Emit]:
    """Everything the simulated device sends, in order, with the wait before each chunk."""
    if driver not in _FRAMES:
        raise ValueError(f"没有 {driver} 的模拟器，可用：{', '.join(NAMES)}。/ "
                         f"No simulator for {driver}; there are: {', '.join(NAMES)}.")
    o = Options(**options)
    if o.form not in FORMS.get(driver, (None,)):
        raise ValueError(f"{driver} 模拟器没有 {o.form} 格式，可用：{', '.join(f for f in FORMS.get(driver, ()) if f)}。/ "
                         f"The {driver} simulator has no form {o.form}.")
    if o.item is not None and o.item not in ITEMS:
        raise ValueError(f"qm-frame 模拟器不认识项目 {o.item}，可用：{', '.join(ITEMS)}。/ "
                         f"The qm-frame simulator knows no item {o.item}; "
                         f"it knows: {', '.join(ITEMS)}.")
    rng = random.Random(o.seed)
    interval = 1.0 / o.rate
    out: list[Emit] = []
    results = 0
    per_result = 2 if driver == "alge-timy" else 1          # a run is two impulses
    for kind, data, value, code in _FRAMES[driver](rng, o):
        if results >= o.count * per_result:
            break
        delay = interval
        if o.pause and rng.random() < o.pause:
            delay += rng.uniform(1, 3)
        if o.garbage and rng.random() < o.garbage:
            noise = bytes(rng.choice(_NOISE) for _ in range(rng.randint(1, 8)))
            # A line device's noise is a line of its own; elsewhere it sits between frames.
            out.append(Emit(noise + (b"\r\n" if driver == "line" else b""), GARBAGE, delay))
            delay = 0.0
        if kind == FINAL and o.bad_checksum and rng.random() < o.bad_checksum:
            out.append(Emit(_damage(rng, driver, data), DAMAGED, delay))
            delay = interval
        out.append(Emit(data, kind, delay, value, code))
        if kind == FINAL:
            results += 1
    return out
