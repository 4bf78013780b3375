"""The one bilingual refusal: its fields, its text for the command line, its JSON for a page."""
from __future__ import annotations

import pytest

from qmbase.refusal import Refusal


def test_the_text_is_chinese_then_english_with_what_to_do():
    r = Refusal("没有插耳机", "No headset is plugged in", "请插好耳机后重试。", "Plug it in and try again.")
    assert str(r) == "没有插耳机。请插好耳机后重试。\nNo headset is plugged in. Plug it in and try again."
    assert r.answer() == {"error": "refused", "zh": "没有插耳机。请插好耳机后重试。",
                          "en": "No headset is plugged in. Plug it in and try again."}


def test_a_sentence_that_ends_already_gets_no_second_stop():
    r = Refusal("文件是空的。", "The file is empty.", "请另选文件。", "Choose another file.")
    assert r.text_zh == "文件是空的。请另选文件。" and r.text_en == "The file is empty. Choose another file."


def test_a_subclass_says_its_code_status_and_exit_code_once():
    class Closed(Refusal):
        code, status, exit_code = "closed", 409, 1

    r = Closed("场次已关闭。", "The sitting is closed.")
    assert (r.code, r.status, r.exit_code) == ("closed", 409, 1)
    assert r.answer()["error"] == "closed"
    named = Closed("场次已关闭。", "The sitting is closed.", code="sealed", status=410)
    assert (named.code, named.status) == ("sealed", 410)
    with pytest.raises(Closed):          # ``except SittingError`` keeps working
        raise named


def test_of_carries_the_words_over_to_another_class():
    class UsageLike(Refusal):
        status = 400

    source = Refusal("第 3 行缺少姓名。", "Row 3 has no name.", "请补上。", "Fill it in.")
    moved = UsageLike.of(source, "r.csv: ")
    assert isinstance(moved, UsageLike) and moved.status == 400
    assert (moved.zh, moved.en, moved.fix_zh, moved.fix_en) == (
        "r.csv: 第 3 行缺少姓名。", "r.csv: Row 3 has no name.", "请补上。", "Fill it in.")
    foreign = UsageLike.of(ValueError("unknown time zone 'Mars/Base'"))
    assert str(foreign) == "unknown time zone 'Mars/Base'"      # one text, said once


def test_it_mixes_with_the_builtin_class_it_replaces():
    class PortLike(Refusal, OSError):
        pass

    r = PortLike("打不开串口 COM3。", "Cannot open COM3.")
    assert isinstance(r, OSError) and str(r) == "打不开串口 COM3。\nCannot open COM3."


def test_a_subclass_with_its_own_arguments_survives_pickle_and_copy():
    import copy
    import pickle

    r = CodeFirst("retake_limit", "重录次数已用完。", "No retakes left.")
    for again in (pickle.loads(pickle.dumps(r)), copy.copy(r)):
        assert type(again) is CodeFirst and again.answer() == r.answer() and str(again) == str(r)


class CodeFirst(Refusal):
    """As recorder.takes.TakeError: the code comes first."""

    def __init__(self, code: str, zh: str, en: str):
        super().__init__(zh, en, code=code)
