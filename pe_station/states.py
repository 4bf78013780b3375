"""Every state an attempt or a result can be in and every move between them, in one table.

As in h11's ``_state.py``: a transition not written here is refused, so a voided attempt is
never confirmed and a confirmed one never silently goes back to pending, whoever asks
(the proctor, the device, the timer). Each write of a state goes through ``attempt_after``
or ``result_after``; the SQL takes the state as a parameter and never spells one.

The database's CHECK constraints (``schema.py``) list the same words: they are the last
guard, this table is the rule.
"""
from __future__ import annotations

# An attempt: one value given to one student for one item.
PENDING = "pending"          # waits for the proctor (a result counts only once confirmed)
CONFIRMED = "confirmed"
VOIDED = "voided"            # by the proctor, a retest or the timer; kept, never counted
REJECTED = "rejected"        # outside the hard limits; kept with the reason, never counted
NEW = None                   # not stored yet

ATTEMPT: dict[str | None, dict[str, str]] = {
    NEW: {"measured": PENDING, "refused": REJECTED},
    PENDING: {"confirm": CONFIRMED, "void": VOIDED, "retest": VOIDED, "correct": CONFIRMED,
              "timer_corrected": PENDING, "timer_refused": REJECTED, "timer_withdrawn": VOIDED},
    # The timer corrects a confirmed run: the proctor confirms the new time again.
    CONFIRMED: {"void": VOIDED, "retest": VOIDED, "correct": CONFIRMED,
                "timer_corrected": PENDING, "timer_refused": REJECTED, "timer_withdrawn": VOIDED},
    # A refused value the proctor knows to be right (typed with a reason) is their decision.
    REJECTED: {"correct": CONFIRMED},
    VOIDED: {},
}
ATTEMPT_LABELS = {PENDING: ("待确认", "pending"), CONFIRMED: ("已确认", "confirmed"),
                  VOIDED: ("已作废", "voided"), REJECTED: ("已拒绝", "rejected")}
TAKES_A_TURN = (PENDING, CONFIRMED)      # counted against the item's attempts
COUNTS = (CONFIRMED,)                    # the values the result is the best of

# A student's result for one item of the sitting.
DONE = "done"
ABSENT = "absent"
EXEMPT = "exempt"
HELD = (ABSENT, EXEMPT)                  # the proctor's mark stands until they are tested
_MARKS = {"absent": ABSENT, "exempt": EXEMPT}
RESULT: dict[str | None, dict[str, str]] = {
    NEW: {"open": PENDING, "complete": DONE, "incomplete": PENDING, **_MARKS},
    PENDING: {"open": PENDING, "complete": DONE, "incomplete": PENDING, **_MARKS},
    DONE: {"open": DONE, "complete": DONE, "incomplete": PENDING, **_MARKS},
    # Marked absent but tested after all (arrived late): pending again; a confirmation or
    # a void in the meantime leaves the mark as it is.
    ABSENT: {"open": PENDING, "complete": ABSENT, "incomplete": ABSENT, **_MARKS},
    EXEMPT: {"open": PENDING, "complete": EXEMPT, "incomplete": EXEMPT, **_MARKS},
}
RESULT_LABELS = {PENDING: ("未完成", "pending"), DONE: ("已完成", "done"),
                 ABSENT: ("缺考", "absent"), EXEMPT: ("免测", "exempt")}


class Refused(Exception):
    """An event the state does not allow; ``state`` and ``event`` say which."""

    def __init__(self, table: str, state: str | None, event: str):
        super().__init__(f"{table}: {event!r} is not allowed in state {state!r}")
        self.table, self.state, self.event = table, state, event


def _after(table: dict, name: str, state: str | None, event: str) -> str:
    try:
        return table[state][event]
    except KeyError:
        raise Refused(name, state, event) from None


def attempt_after(state: str | None, event: str) -> str:
    """The attempt's state after ``event``, or ``Refused``."""
    return _after(ATTEMPT, "attempt", state, event)


def result_after(status: str | None, event: str) -> str:
    """The result's status after ``event``, or ``Refused``."""
    return _after(RESULT, "result", status, event)


def allows(state: str | None, event: str) -> bool:
    return event in ATTEMPT.get(state, {})


def new_attempt(verdict: str) -> str:
    """A value's first state: a refused one is kept, but never waits for a confirmation."""
    return attempt_after(NEW, "refused" if verdict == "reject" else "measured")


def timer_event(verdict: str) -> str:
    return "timer_refused" if verdict == "reject" else "timer_corrected"
