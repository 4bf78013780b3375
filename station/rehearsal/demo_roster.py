"""The demo roster: generated children, never real people, the same on every laptop.

Names are a surname and a one- or two-character given name drawn from short lists with a
fixed seed, so a trainer's handout and every rehearsal show the same class lists.
"""
from __future__ import annotations

import csv
import random
from pathlib import Path

from station.roster import Student

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN_BOYS = "浩宇轩博文杰子涵俊豪明辰睿晨泽阳宁嘉毅乐航铭"
GIVEN_GIRLS = "欣怡雨涵梓琪佳思婷诗悦语彤可馨雅萱晓梦紫妍若"

# (grade, class, first code): two classes of grade 4 and one of grade 8.
CLASSES = ((4, "四年级1班", 4010001), (4, "四年级2班", 4020001), (8, "八年级1班", 8010001))
PER_CLASS = 16
SCHOOL = "演练学校"
SEED = 20261122


def _name(rng: random.Random, given: str, used: set[str]) -> str:
    while True:
        name = rng.choice(SURNAMES) + "".join(rng.choice(given) for _ in range(rng.choice((1, 2))))
        if name not in used:
            used.add(name)
            return name


def students(per_class: int = PER_CLASS, seed: int = SEED) -> list[Student]:
    """Every demo student: boys and girls alternating, codes of digits unique per student."""
    rng = random.Random(seed)
    used: set[str] = set()
    out = []
    for grade, cls, first in CLASSES:
        for n in range(per_class):
            gender = "M" if n % 2 == 0 else "F"
            name = _name(rng, GIVEN_BOYS if gender == "M" else GIVEN_GIRLS, used)
            out.append(Student(code=str(first + n), name=name, gender=gender, grade=grade,
                               cls=cls, school=SCHOOL))
    return out


def write_csv(path: Path, roster: list[Student] | None = None) -> Path:
    """The roster as a school would export it (UTF-8 with BOM, Chinese headers), for `roster import`."""
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["学籍号", "姓名", "性别", "年级", "班级", "学校"])
        for s in roster or students():
            w.writerow([s.code, s.name, "男" if s.gender == "M" else "女", s.grade, s.cls, s.school])
    return path
