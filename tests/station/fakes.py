"""Generated students: names built from common characters, never real people."""
from __future__ import annotations

import random

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "子涵浩宇欣怡梓轩雨桐诗琪俊杰思远嘉怡晨曦一鸣若彤"


def students(n: int, seed: int = 1, grade: str = "四年级", start: int = 1) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        out.append({"学籍号": f"G44010120{i:06d}", "姓名": name, "性别": rng.choice("男女"),
                    "年级": grade, "班级": f"{rng.randint(1, 3)}班", "学校": "测试实验小学"})
    return out


def csv_text(rows: list[dict], header: list[str] | None = None) -> str:
    header = header or list(rows[0])
    lines = [",".join(header)]
    lines += [",".join(str(r.get(h, "")) for h in header) for r in rows]
    return "\r\n".join(lines) + "\r\n"
