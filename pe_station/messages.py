"""What the PE station tells the proctor, Chinese first, each saying what to do.

Each entry is a (zh, en) pair, formatted with ``fmt``; a refusal is raised as ``FlowError``.
"""
from __future__ import annotations

from qmbase.refusal import Refusal


class FlowError(Refusal):
    """A request the proctor cannot make now; the message says why and what to do (zh, en)."""

    def __init__(self, zh: str, en: str):
        super().__init__(zh, en)


def fmt(pair: tuple[str, str], **values) -> tuple[str, str]:
    return pair[0].format(**values), pair[1].format(**values)


def refuse(pair: tuple[str, str], **values) -> FlowError:
    return FlowError(*fmt(pair, **values))


# --- why a reading is unassigned (stored with it; the page shows both) ------------------
NO_STUDENT = ("未扫描学生条码，读数未分配。请先扫描学生，再把这条读数分配给学生或让学生重测。",
              "No student was scanned, so the reading is unassigned: scan the student, then assign "
              "the reading or let the student test again.")
UNKNOWN_CODE = ("设备发送的编号 {code} 不在名册中，读数未分配。请核对学生条码或号码布。",
                "The device sent code {code}, which is not in the roster; the reading is unassigned. "
                "Check the student's barcode or bib.")
OTHER_ITEM = ("设备报告的项目是 {got}，本场次测的是 {want}，读数未分配。请检查设备设置。",
              "The device reports item {got} but this sitting tests {want}; the reading is "
              "unassigned. Check the device's setting.")
WRONG_UNIT = ("设备发送的单位是 {got}，本项目的单位是 {want}，读数未分配。请把设备设置为 {want}。",
              "The device sent the unit {got} but this item is measured in {want}; the reading is "
              "unassigned. Set the device to {want}.")
WHICH_ITEM = ("无法判断这条读数属于哪个项目（{items}），读数未分配。请在 station.toml 的 [[pe.devices]] "
              "中为这台设备写上 item。",
              "Cannot tell which item ({items}) this reading is for; it is unassigned. Add item = "
              "to this device's [[pe.devices]] in station.toml.")
NO_LANE_STUDENT = ("第 {lane} 道没有扫描学生，读数未分配。请先为第 {lane} 道扫描学生，再把这条读数分配给学生。",
                   "No student was scanned for lane {lane}, so the reading is unassigned: scan the "
                   "lane's student, then assign the reading.")
ALL_DONE = ("学生 {code} 已完成全部 {n} 次测试，读数未分配。如需重测请点“重测”。",
            "Student {code} has had all {n} attempts; the reading is unassigned. Press Retest "
            "to test again.")

# --- refusals ---------------------------------------------------------------------------
NOT_MEASURED = ("本场次不测项目 {got}（测 {want}），请选择本场次的项目。",
                "This sitting does not measure {got} (it measures {want}); choose one of its items.")
HAD_ALL = ("{name}（{code}）已完成全部 {n} 次{item_zh}测试。如需重测，请点“重测”。",
           "{code} has had all {n} attempts at {item_en}; press Retest to test again.")
MEASURED_ALL = ("{name}（{code}）的{items_zh}都已测完。如需重测，请点“重测”。",
                "{code} has been measured for {items_en}; press Retest to test again.")
NO_LANES = ("本场次的计时器没有设置分道，请直接扫描学生。",
            "This sitting's timer has no lanes; scan the student without a lane.")
BAD_LANE = ("道次只能是 1～{lanes}。", "The lane is 1 to {lanes}.")
NOT_IN_ROSTER = ("学籍号/考号“{code}”不在名册中。请核对条码，或先导入名册。",
                 "The code \"{code}\" is not in the roster; check the barcode or import the roster first.")
NOT_THEIR_ITEM = ("{grade} 年级{gender_zh}生不测{item_zh}，请核对学生或场次项目。",
                  "Grade {grade} {gender_en} do not take {item_en}; check the student or the sitting's item.")
NOT_UNASSIGNED = ("读数 {reading} 不是本场次未分配的读数。",
                  "Reading {reading} is not an unassigned reading of this sitting.")
NEEDS_REASON = ("更正成绩必须填写原因。", "A correction needs a reason; write why.")
NOT_A_NUMBER = ("“{value}”不是数字，请输入成绩数值，例如 8.2 或 -3.5。",
                "\"{value}\" is not a number; enter the value, e.g. 8.2 or -3.5.")
VOIDED_FINAL = ("第 {attempt} 条成绩已作废，不能更正。", "Attempt {attempt} is voided and cannot be corrected.")
WRONG_STATE = ("第 {attempt} 条成绩当前状态是“{state_zh}”，不能这样操作。",
               "Attempt {attempt} is {state}; that cannot be done to it now.")
CHANGED = ("第 {attempt} 条成绩刚刚被另一处操作更改，请刷新页面后再决定。",
           "Attempt {attempt} was changed elsewhere just now; reload the page, then decide.")
NO_ATTEMPT = ("本场次没有第 {attempt} 条成绩，请刷新页面。",
              "This sitting has no attempt {attempt}; reload the page.")
NO_OPEN_SITTING = ("没有进行中的体育场次。请先打开场次（页面上的“打开场次”或 station session open --kind pe --item 项目）。",
                   "No PE sitting is open; open one first (Open sitting on this page, or "
                   "station session open --kind pe --item ITEM).")
SEVERAL_OPEN = ("有多个体育场次正在进行，请选择其中一个。", "Several PE sittings are open; choose one.")
NOT_PE = ("场次 {sitting} 不是体育场次。", "Sitting {sitting} is not a PE sitting.")

# --- the timer corrected a run the station already took (``who`` is the timer) -----------
TIMER = "timer"
TIMER_REASON = "计时器上更正了时间 / the time was corrected on the timer"
TIMER_WITHDRAWN = ("计时器上清除了这次计时，成绩已作废，请让学生重测。",
                   "The timer cleared this run; the attempt is voided: let the student run again.")
TIMER_CORRECTED = ("计时器上更正了时间（原为 {old}），请重新确认。",
                   "The time was corrected on the timer (it was {old}); confirm it again.")
