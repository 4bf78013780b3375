"""The national standard's rules for each PE item: unit, rounding, attempts, limits.

Values are ``Decimal`` from the device's text to the stored result, so that "any non-zero
hundredth rounds up" (非0进1) is exact: 8.10 stays 8.1, 8.11 becomes 8.2, and a float's
8.1000000001 never turns into 8.2. The rules live in ``items.toml`` beside this file; a
school may name its own copy in ``[pe] items_file``.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Iterable, Literal

from pe_station.items import ITEMS
from qmbase.refusal import Refusal

BUILTIN = Path(__file__).with_name("items.toml")
Verdict = Literal["ok", "confirm", "reject"]


class RulesError(Refusal):
    """An items file that cannot be used; the message names the file, item and key."""

    code = "items_file"


@dataclass(frozen=True)
class Item:
    id: str
    unit: str
    precision: Decimal
    rounding: Literal["half_up", "up"]
    better: Literal["higher", "lower"]
    attempts: int
    limits: tuple[Decimal, Decimal]
    usual: dict[str, dict[str, tuple[Decimal, Decimal]]] = field(default_factory=dict)
    display: str = ""
    derived: str = ""           # a formula of other items (bmi): computed, never measured

    @property
    def inputs(self) -> tuple[str, ...]:
        """The items a derived item is computed from, in the standard's order (height, weight)."""
        names = set(re.findall(r"[a-z_]+", self.derived))
        return tuple(i for i in ITEMS if i in names)

    @property
    def name_zh(self) -> str:
        return ITEMS[self.id][0]

    @property
    def name_en(self) -> str:
        return ITEMS[self.id][1]

    def applies_to(self, grade: int, gender: str) -> bool:
        """Grade 8 boys do pull-ups and 1000 m, girls sit-ups and 800 m, and so on."""
        return gender in self.usual.get(f"g{grade}", {})


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    value: Decimal
    zh: str = ""
    en: str = ""


def _decimal(value, where: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise RulesError(f"{where}: “{value}”不是数字。", f"{where}: \"{value}\" is not a number.") from None


def _range(pair, where: str) -> tuple[Decimal, Decimal]:
    if not (isinstance(pair, list) and len(pair) == 2):
        raise RulesError(f"{where}: 应写成 [最小值, 最大值]。", f"{where}: write it as [min, max].")
    low, high = (_decimal(v, where) for v in pair)
    if low > high:
        raise RulesError(f"{where}: 最小值大于最大值。", f"{where}: min is above max.")
    return low, high


def _item(item_id: str, table: dict, source: str) -> Item:
    where = f"{source} [{item_id}]"
    if item_id not in ITEMS:
        raise RulesError(f"{where}: 未知项目。可用项目：{', '.join(ITEMS)}。", f"{where}: unknown item.")
    try:
        rounding, better = table["rounding"], table["better"]
        if rounding not in ("half_up", "up") or better not in ("higher", "lower"):
            raise RulesError(f"{where}: rounding 只能是 half_up 或 up，better 只能是 higher 或 lower。",
                             f"{where}: rounding is half_up or up; better is higher or lower.")
        usual = {grade: {gender: _range(r, f"{where} usual.{grade}.{gender}")
                         for gender, r in genders.items()}
                 for grade, genders in table.get("usual", {}).items()}
        derived = str(table.get("derived", ""))
        if derived and item_id not in DERIVE:
            raise RulesError(f"{where}: 只有 {', '.join(DERIVE)} 可以由其他项目计算（derived）。",
                             f"{where}: only {', '.join(DERIVE)} can be derived from other items.")
        return Item(item_id, table["unit"], _decimal(table["precision"], f"{where} precision"),
                    rounding, better, int(table["attempts"]), _range(table["limits"], f"{where} limits"),
                    usual, table.get("display", ""), derived)
    except KeyError as exc:
        raise RulesError(f"{where}: 缺少 {exc.args[0]}。", f"{where}: {exc.args[0]} is missing.") from None


def load(path: Path | str | None = None) -> dict[str, Item]:
    """The items of the built-in standard, or of a school's own file."""
    source = Path(path) if path else BUILTIN
    try:
        table = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"{source}: 找不到项目规则文件。", f"{source}: no such items file.") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: 项目规则文件格式错误（{exc}）。", f"{source}: not valid TOML ({exc}).") from None
    return {item_id: _item(item_id, t, str(source)) for item_id, t in table.items()}


def round_value(item: Item, value: Decimal) -> Decimal:
    """Record ``value`` to the item's precision by the standard's rule.

    "up" is 非0进1: any non-zero digit below the step rounds up (8.11 s -> 8.2 s, a
    3'25.1" run -> 3'26"). "half_up" is ordinary rounding, half away from zero, so a
    negative sit-and-reach rounds like a positive one.
    """
    mode = ROUND_CEILING if item.rounding == "up" else ROUND_HALF_UP
    rounded = (Decimal(value) / item.precision).to_integral_value(rounding=mode) * item.precision
    # quantize: an exact quotient (39.2 / 1.96) is Decimal('2E+1'), which prints as "20".
    return rounded.quantize(item.precision) + 0  # -0.0 becomes 0.0


def check(item: Item, value: Decimal, grade: int | None = None, gender: str | None = None) -> Check:
    """Round ``value`` and judge it: refused outside the hard limits, confirmed outside the usual range."""
    rounded = round_value(item, value)
    low, high = item.limits
    shown = format_value(item, rounded)
    if not low <= rounded <= high:
        return Check("reject", rounded,
                     f"{item.name_zh} {shown} 超出可能范围（{format_value(item, low)}～{format_value(item, high)}），"
                     f"不能记录。请检查设备后重测。",
                     f"{item.name_en} {shown} is outside the possible range "
                     f"({format_value(item, low)} to {format_value(item, high)}) and cannot be recorded; "
                     f"check the device and test again.")
    usual = item.usual.get(f"g{grade}", {}).get(gender or "") if grade else None
    if usual and not usual[0] <= rounded <= usual[1]:
        return Check("confirm", rounded,
                     f"{item.name_zh} {shown} 不在该年级常见范围内（{format_value(item, usual[0])}～"
                     f"{format_value(item, usual[1])}），请监测员确认。",
                     f"{item.name_en} {shown} is outside the usual range for this grade "
                     f"({format_value(item, usual[0])} to {format_value(item, usual[1])}); the proctor "
                     f"must confirm it.")
    return Check("ok", rounded)


def best(item: Item, values: Iterable[Decimal]) -> Decimal | None:
    """The attempt that counts: the highest, or the lowest for timed runs."""
    values = list(values)
    if not values:
        return None
    return max(values) if item.better == "higher" else min(values)


def bmi(height_cm: Decimal, weight_kg: Decimal, item: Item) -> Decimal:
    metres = Decimal(height_cm) / 100
    return round_value(item, Decimal(weight_kg) / (metres * metres))


# How a derived item is computed from its inputs' values, in their units. The formula
# text in items.toml documents it; evaluating school-edited formulas is not worth the risk.
DERIVE: dict[str, Callable[[dict[str, Decimal], Item], Decimal]] = {
    "bmi": lambda v, item: bmi(v["height"], v["weight"], item),
}


def derive(item: Item, values: dict[str, Decimal]) -> Decimal:
    """The derived item's value (rounded), from the values that count of its inputs."""
    return DERIVE[item.id](values, item)


def derived_check(item: Item, inputs: dict[str, dict | None], grade: int | None = None,
                  gender: str | None = None) -> Check | None:
    """A derived item's value judged, from its inputs' results ({"status", "value"}); None
    while one is not done. Outside the usual range (or the limits) it is still derived, from
    values the proctor confirmed, and the check's reason is kept for the proctor to see."""
    from pe_station.states import DONE

    if not all(r and r["status"] == DONE and r["value"] is not None for r in inputs.values()):
        return None
    return check(item, derive(item, {i: Decimal(r["value"]) for i, r in inputs.items()}), grade, gender)


def measured(items: dict[str, Item], item_id: str) -> dict[str, Item]:
    """What a sitting of ``item_id`` measures: the item itself, or a derived item's inputs
    (a BMI sitting measures height and weight)."""
    item = items[item_id]
    if not item.derived:
        return {item_id: item}
    missing = [i for i in item.inputs if i not in items]
    if missing:
        raise RulesError(f"[{item_id}] 由 {', '.join(missing)} 计算，但规则文件中没有这些项目。",
                         f"[{item_id}] is derived from {', '.join(missing)}, which the items file lacks.")
    return {i: items[i] for i in item.inputs}


# --- units ------------------------------------------------------------------------------
# Device unit -> (item unit, factor): exact, as Decimal, so 31450 g is 31.45 kg to the digit.
CONVERSIONS: dict[tuple[str, str], Decimal] = {
    ("g", "kg"): Decimal("0.001"),
    ("mm", "cm"): Decimal("0.1"),
    ("m", "cm"): Decimal("100"),
    ("l", "ml"): Decimal("1000"),
    ("ms", "s"): Decimal("0.001"),
}
# What devices print for a unit, as the items file spells it.
UNIT_ALIASES = {"次": "count", "个": "count", "times": "count", "pcs": "count",
                "kg/m²": "kg/m2", "kg/m^2": "kg/m2", "sec": "s", "公斤": "kg", "千克": "kg",
                "克": "g", "厘米": "cm", "毫米": "mm", "米": "m", "毫升": "ml", "升": "l",
                "秒": "s", "毫秒": "ms"}


def normal_unit(unit: str | None) -> str:
    """A device's unit as the items file spells it: ' G' and 'KG' are g and kg."""
    text = (unit or "").strip()
    return UNIT_ALIASES.get(text, UNIT_ALIASES.get(text.lower(), text.lower()))


def convert(value: Decimal, unit: str | None, item: Item) -> Decimal | None:
    """``value`` in the item's unit, exactly; None when the device's unit cannot be converted.

    A reading with no unit is taken as the item's unit (counters send none).
    """
    got, want = normal_unit(unit), normal_unit(item.unit)
    if got in ("", want):
        return Decimal(value)
    factor = CONVERSIONS.get((got, want))
    return None if factor is None else Decimal(value) * factor


def convertible(unit: str | None, item: Item) -> bool:
    return convert(Decimal(0), unit, item) is not None


def format_value(item: Item, value: Decimal) -> str:
    """As a proctor writes it: 8.2, -3.5, 3'26" for the middle-distance runs."""
    if item.display == "min:s":
        seconds = int(value)
        return f"{seconds // 60}'{seconds % 60:02d}\""
    return str(Decimal(value).quantize(item.precision)) if item.precision < 1 else str(int(value))
