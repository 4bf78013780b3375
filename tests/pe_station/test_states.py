"""The attempt and result state table: every move it allows, and every one it refuses.

The expected table is written out here by hand, from the test room's rules, so that a
change to ``states.py`` has to be made twice, on purpose.
"""
from __future__ import annotations

import itertools

import pytest

from pe_station import states
from pe_station.states import Refused

P, C, V, R, NEW = "pending", "confirmed", "voided", "rejected", None

# (state, event) -> the state after it; everything else is refused.
ATTEMPT_ALLOWED = {
    (NEW, "measured"): P,
    (NEW, "refused"): R,
    (P, "confirm"): C,
    (P, "void"): V,
    (P, "retest"): V,
    (P, "correct"): C,
    (P, "timer_corrected"): P,
    (P, "timer_refused"): R,
    (P, "timer_withdrawn"): V,
    (C, "void"): V,
    (C, "retest"): V,
    (C, "correct"): C,
    (C, "timer_corrected"): P,          # the proctor confirms the corrected time again
    (C, "timer_refused"): R,
    (C, "timer_withdrawn"): V,
    (R, "correct"): C,                  # the proctor typed the right value, with a reason
}
ATTEMPT_STATES = [NEW, P, C, V, R]
ATTEMPT_EVENTS = ["measured", "refused", "confirm", "void", "retest", "correct",
                  "timer_corrected", "timer_refused", "timer_withdrawn"]

D, A, E = "done", "absent", "exempt"
RESULT_ALLOWED = {
    (NEW, "open"): P, (P, "open"): P, (D, "open"): D, (A, "open"): P, (E, "open"): P,
    (NEW, "complete"): D, (P, "complete"): D, (D, "complete"): D, (A, "complete"): A, (E, "complete"): E,
    (NEW, "incomplete"): P, (P, "incomplete"): P, (D, "incomplete"): P,
    (A, "incomplete"): A, (E, "incomplete"): E,
    **{(s, "absent"): A for s in (NEW, P, D, A, E)},
    **{(s, "exempt"): E for s in (NEW, P, D, A, E)},
}
RESULT_STATES = [NEW, P, D, A, E]
RESULT_EVENTS = ["open", "complete", "incomplete", "absent", "exempt", "confirm", "void"]


@pytest.mark.parametrize("state,event", list(itertools.product(ATTEMPT_STATES, ATTEMPT_EVENTS)))
def test_attempt_transition(state, event):
    expected = ATTEMPT_ALLOWED.get((state, event))
    if expected is None:
        with pytest.raises(Refused) as refused:
            states.attempt_after(state, event)
        assert (refused.value.state, refused.value.event) == (state, event)
        assert not states.allows(state, event)
    else:
        assert states.attempt_after(state, event) == expected
        assert states.allows(state, event)


@pytest.mark.parametrize("state,event", list(itertools.product(RESULT_STATES, RESULT_EVENTS)))
def test_result_transition(state, event):
    expected = RESULT_ALLOWED.get((state, event))
    if expected is None:
        with pytest.raises(Refused):
            states.result_after(state, event)
    else:
        assert states.result_after(state, event) == expected


def test_the_table_has_no_move_the_tests_do_not_know():
    written = {(s, e) for s, moves in states.ATTEMPT.items() for e in moves}
    assert written == set(ATTEMPT_ALLOWED)
    written = {(s, e) for s, moves in states.RESULT.items() for e in moves}
    assert written == set(RESULT_ALLOWED)


def test_a_voided_attempt_is_final():
    for event in ATTEMPT_EVENTS:
        assert not states.allows(V, event)


@pytest.mark.parametrize("verdict,first,timer", [("ok", P, P), ("confirm", P, P), ("reject", R, R)])
def test_a_verdict_picks_the_event(verdict, first, timer):
    assert states.new_attempt(verdict) == first
    assert states.attempt_after(C, states.timer_event(verdict)) == timer


def test_labels_name_every_state():
    assert set(states.ATTEMPT_LABELS) == {P, C, V, R}
    assert set(states.RESULT_LABELS) == {P, D, A, E}
    assert set(states.TAKES_A_TURN) | {V, R} == set(states.ATTEMPT_LABELS)
