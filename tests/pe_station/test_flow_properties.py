"""Whatever the devices send and the proctor scans, no reading is lost and no student
gets more turns than the item allows."""
import sqlite3

import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import drivers
from devices.drivers import qm_frame
from pe_station import rules, schema
from pe_station.flow import Flow, FlowError

from .conftest import ROSTER

ITEMS = rules.load()
CODES = ["", "0001", "0002", "0003", "9999"]

ops = st.lists(st.one_of(
    st.tuples(st.just("scan"), st.sampled_from(CODES)),
    st.tuples(st.just("read"), st.sampled_from(CODES),
              st.decimals(min_value=-80, max_value=80, places=2, allow_nan=False, allow_infinity=False)),
    st.tuples(st.just("confirm"), st.integers(1, 12)),
    st.tuples(st.just("retest"), st.sampled_from(CODES)),
), max_size=30)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_no_reading_lost_and_no_extra_turns(sequence):
    db = sqlite_utils.Database(sqlite3.connect(":memory:", isolation_level=None))
    for migration in schema.MIGRATIONS:
        migration(db)
    flow = Flow(db, "S", ITEMS["sit_and_reach"], lookup_student=ROSTER.get)
    meter = drivers.get("qm-frame")
    reads = 0
    for op in sequence:
        try:
            if op[0] == "scan":
                flow.scan(op[1], "t")
            elif op[0] == "read":
                (reading,) = meter.feed(qm_frame.format_frame("M", "sit_and_reach", op[1], op[2], "cm"))
                reads += 1
                flow.on_reading(reading, "M")
            elif op[0] == "confirm":
                flow.confirm(op[1], "t")
            else:
                flow.retest(op[1], "t")
        except FlowError:
            pass                     # refused with a reason: allowed, and nothing half-done
    assert db.execute("SELECT count(*) FROM pe_readings").fetchone()[0] == reads
    assert db.execute("SELECT count(*) FROM pe_readings WHERE student IS NULL AND note = ''").fetchone()[0] == 0
    for code, used in db.execute("SELECT student, count(*) FROM pe_attempts WHERE state IN "
                                 "('pending', 'confirmed') GROUP BY student").fetchall():
        assert used <= ITEMS["sit_and_reach"].attempts, code
    for code, value in db.execute("SELECT student, value FROM pe_results WHERE value IS NOT NULL"):
        best = db.execute("SELECT max(CAST(rounded AS REAL)) FROM pe_attempts WHERE student = ? "
                          "AND state = 'confirmed'", [code]).fetchone()[0]
        assert float(value) == best
