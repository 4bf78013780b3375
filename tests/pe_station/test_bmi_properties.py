"""Whatever order heights, weights, voids and corrections come in, the BMI on record is
the one computed from the confirmed height and weight, or none while one is missing; and
a converted value is exactly the device's value in the item's unit."""
import sqlite3
from decimal import Decimal as D

import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import drivers
from devices.drivers import qm_frame
from pe_station import rules, schema
from pe_station.flow import Flow, FlowError

from .conftest import ROSTER

ITEMS = rules.load()
CODES = ["0001", "0002", "9999"]

ops = st.lists(st.one_of(
    st.tuples(st.just("scan"), st.sampled_from(CODES)),
    st.tuples(st.just("height"), st.decimals(min_value=70, max_value=230, places=2)),
    st.tuples(st.just("weight"), st.decimals(min_value=5, max_value=210, places=2)),
    st.tuples(st.sampled_from(["confirm", "void"]), st.integers(1, 10)),
    st.tuples(st.just("correct"), st.integers(1, 10), st.decimals(min_value=20, max_value=150, places=1)),
    st.tuples(st.sampled_from(["absent", "retest"]), st.sampled_from(CODES)),
), max_size=25)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_bmi_always_follows_the_confirmed_height_and_weight(sequence):
    db = sqlite_utils.Database(sqlite3.connect(":memory:", isolation_level=None))
    for migration in schema.MIGRATIONS:
        migration(db)
    flow = Flow(db, "S", ITEMS["bmi"], lookup_student=ROSTER.get, measured=rules.measured(ITEMS, "bmi"))
    machine = drivers.get("qm-frame")
    for op in sequence:
        try:
            if op[0] == "scan":
                flow.scan(op[1], "t")
            elif op[0] in ("height", "weight"):
                unit = "cm" if op[0] == "height" else "kg"
                (reading,) = machine.feed(qm_frame.format_frame("HW", op[0], "", op[1], unit))
                flow.on_reading(reading, "HW")
            elif op[0] == "confirm":
                flow.confirm(op[1], "t")
            elif op[0] == "void":
                flow.void(op[1], "t")
            elif op[0] == "correct":
                flow.correct(op[1], str(op[2]), "typo", "t")
            elif op[0] == "absent":
                flow.absent(op[1], "t")
            else:
                flow.retest(op[1], "t")
        except FlowError:
            pass
    for code in ("0001", "0002"):
        bmi = flow.result(code)
        if bmi is None or bmi["status"] in ("absent", "exempt"):
            continue
        h, w = flow.result(code, "height"), flow.result(code, "weight")
        if h["status"] == w["status"] == "done":
            want = rules.bmi(D(h["value"]), D(w["value"]), ITEMS["bmi"])
            assert (bmi["status"], bmi["value"]) == ("done", format(want, "f"))
        else:
            assert (bmi["status"], bmi["value"]) == ("pending", None)


@given(st.decimals(min_value=-10**6, max_value=10**6, places=3),
       st.sampled_from([("g", "weight", 1000), ("mm", "height", 10), ("ms", "run_50m", 1000)]))
def test_conversion_is_exact(value, case):
    unit, item, per = case
    assert rules.convert(value, unit, ITEMS[item]) * per == value


@given(st.decimals(min_value=-10**6, max_value=10**6, places=3),
       st.sampled_from([("m", "long_jump", 100), ("l", "vital_capacity", 1000)]))
def test_conversion_up_is_exact(value, case):
    unit, item, per = case
    assert rules.convert(value, unit, ITEMS[item]) == value * per
