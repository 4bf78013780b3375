"""Each student's result for each item of a sitting: opened at the first scan or attempt,
marked absent or exempt by the proctor, refreshed on every decision, derived (BMI).

The result counts the best *confirmed* attempt; the student is done once they have as many
confirmed attempts as the item allows. Called inside the flow's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pe_station import rules, states
from pe_station.store import Store

Audit = Callable[..., None]         # (who, action, entity, entity_id, old, new)


@dataclass
class Results:
    store: Store
    item: rules.Item                    # the sitting's item (derived or measured)
    measured: dict[str, rules.Item]
    lookup_student: Callable[[str], "dict | None"]
    audit: Audit

    @property
    def derived(self) -> rules.Item | None:
        return self.item if self.item.derived else None

    @property
    def items(self) -> list[str]:
        """The items that get a result row per student: the measured ones and the derived one."""
        return [*self.measured, *([self.item.id] if self.derived else [])]

    def open(self, code: str, who: str, audited: bool = True) -> None:
        """A pending result row for each item that has none; a student marked absent or
        exempt who is tested after all (arrived late) is pending again."""
        for item_id in self.items:
            result = self.store.result(code, item_id)
            old = result and result["status"]
            status = states.result_after(old, "open")
            if result is not None and status == old:
                continue
            self.store.set_result(code, item_id, status, result and result["value"], who)
            if result is not None and audited:
                self.audit(who, "pe.result.status", "pe_result", code,
                           {"status": old, "item": item_id}, {"status": status, "item": item_id})

    def mark(self, code: str, who: str, mark: str) -> None:
        """Absent or exempt: from every item of the sitting (height, weight and BMI alike)."""
        for item_id in self.items:
            old = self.store.result(code, item_id)
            status = states.result_after(old and old["status"], mark)
            self.store.set_result(code, item_id, status, old and old["value"], who)
            self.audit(who, f"pe.result.{status}", "pe_result", code,
                       {"status": old["status"]} if old else None,
                       {"status": status, **({"item": item_id} if self.derived else {})})

    def refresh(self, code: str, item_id: str, who: str) -> None:
        """The value that counts and whether the student is done, after a decision."""
        item = self.measured.get(item_id, self.item)
        counted = self.store.counted_values(code, item.id)
        best = rules.best(item, counted)
        old = self.store.result(code, item.id)
        status = states.result_after(old and old["status"],
                                     "complete" if len(counted) >= item.attempts else "incomplete")
        self.store.set_result(code, item.id, status, None if best is None else format(best, "f"), who)
        if self.derived is not None:
            self._derive(code, who)

    def _derive(self, code: str, who: str) -> None:
        """BMI from the confirmed height and weight, or cleared while one is missing."""
        item = self.derived
        old = self.store.result(code, item.id)
        if old and old["status"] in states.HELD:
            return
        student = self.lookup_student(code) or {}
        check = rules.derived_check(item, {i: self.store.result(code, i) for i in item.inputs},
                                    student.get("grade"), student.get("gender"))
        if check is None:
            self.store.set_result(code, item.id, states.result_after(old and old["status"], "incomplete"),
                                  None, who)
            return
        self.store.set_result(code, item.id, states.result_after(old and old["status"], "complete"),
                              format(check.value, "f"), who, check.verdict, check.zh, check.en)
