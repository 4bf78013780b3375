"""The PE store: every write of a state goes through the state table, and a decision made
elsewhere meanwhile is never overwritten."""
import pytest

from devices import drivers
from devices.drivers import qm_frame
from pe_station.messages import FlowError
from pe_station.states import Refused
from pe_station.store import Store


@pytest.fixture
def attempt(make_flow):
    flow = make_flow("sit_and_reach")
    flow.scan("0001", "张老师")
    (reading,) = drivers.get("qm-frame").feed(
        qm_frame.format_frame("SR-1", "sit_and_reach", "", "12.5", "cm"), at=1763800000.0)
    flow.stored = flow.on_reading(reading, "SR-1")["attempt"]
    return flow


def test_a_decision_made_elsewhere_meanwhile_is_never_overwritten(attempt, db):
    """Two flows on one sitting (the page and `station pe run`): a decision on an attempt
    that was decided since it was read is refused, and the first decision stands."""
    flow = attempt
    seen = flow.attempt(flow.stored["id"])                  # what the other page read
    flow.void(seen["id"], "李老师")
    store = Store(db, flow.sitting)
    with pytest.raises(FlowError) as refused:
        with store.transaction():
            store.decide(seen, "confirm", "张老师", "now")
    assert "另一处" in refused.value.zh and "elsewhere" in refused.value.en
    assert flow.attempt(seen["id"])["state"] == "voided"


def test_the_store_refuses_a_move_the_table_does_not_allow(attempt, db):
    flow = attempt
    flow.void(flow.stored["id"], "张老师")
    voided = flow.attempt(flow.stored["id"])
    with pytest.raises(Refused):
        with Store(db, flow.sitting).transaction():
            Store(db, flow.sitting).decide(voided, "confirm", "张老师", "now")
    assert flow.attempt(voided["id"])["state"] == "voided"


def test_turns_count_pending_and_confirmed_attempts_only(attempt, db):
    flow = attempt
    store = Store(db, flow.sitting)
    assert store.turns_used("0001", "sit_and_reach") == 1
    flow.void(flow.stored["id"], "张老师")
    assert store.turns_used("0001", "sit_and_reach") == 0
    assert store.counted_values("0001", "sit_and_reach") == []
