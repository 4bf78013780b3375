"""The PE items of the National Student Physical Fitness Standard (2014) that the monitoring tests.

Only the ids and names live here for now; units, precision, rounding, attempts and limits
come with the PE field test.
"""
from __future__ import annotations

# id: (Chinese name, English name)
ITEMS: dict[str, tuple[str, str]] = {
    "height": ("身高", "height"),
    "weight": ("体重", "weight"),
    "bmi": ("体重指数（BMI）", "BMI"),
    "vital_capacity": ("肺活量", "vital capacity"),
    "run_50m": ("50 米跑", "50 m run"),
    "sit_and_reach": ("坐位体前屈", "sit-and-reach"),
    "rope_skip_1min": ("1 分钟跳绳", "1-min rope skip"),
    "situps_1min": ("1 分钟仰卧起坐", "1-min sit-ups"),
    "long_jump": ("立定跳远", "standing long jump"),
    "pullups": ("引体向上", "pull-ups"),
    "run_800m": ("800 米跑", "800 m run"),
    "run_1000m": ("1000 米跑", "1000 m run"),
    "grip": ("握力", "grip"),
}
