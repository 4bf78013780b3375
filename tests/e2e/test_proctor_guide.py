"""The proctor's guide: both languages, every picture it shows is there, the same pictures.

The pictures are the whole-test-day test's screenshots
(``QM_SCREENSHOTS=docs/proctor-guide scripts/test tests/e2e``), so a page that changes
shape shows up here as a stale or missing picture rather than as a guide that lies.
"""
from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
PICTURE = re.compile(r"!\[[^\]]+\]\(([^)]+\.png)\)")


def pictures(name: str) -> list[str]:
    return PICTURE.findall((DOCS / name).read_text(encoding="utf-8"))


def test_every_picture_of_the_guide_is_there_in_both_languages():
    zh, en = pictures("proctor-guide.zh.md"), pictures("proctor-guide.en.md")
    assert zh and zh == en
    missing = [p for p in zh if not (DOCS / p).is_file()]
    assert missing == []


def test_the_guide_covers_what_a_proctor_meets_on_test_day():
    zh = (DOCS / "proctor-guide.zh.md").read_text(encoding="utf-8")
    for heading in ("首次设置", "导入学生名册", "设备检查", "演唱测试考场", "体育测试站", "上传",
                    "出错了怎么办", "演练模式"):
        assert heading in zh
    en = (DOCS / "proctor-guide.en.md").read_text(encoding="utf-8")
    for heading in ("First-run set-up", "student roster", "pre-check", "singing room", "PE stations",
                    "Upload", "What an error means"):
        assert heading in en
