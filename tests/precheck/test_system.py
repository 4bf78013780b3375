"""disk.free on the real disk, and the day's estimate it rests on."""
from __future__ import annotations

import shutil

from precheck.context import Context
from precheck.dayplan import DayPlan, expected_day_bytes
from precheck.system import check_disk_free


def test_day_estimate_names_its_assumptions():
    # 30 students x 1.5 takes x 90 s x 48 000 x 2 bytes x 0.6 FLAC ratio
    assert expected_day_bytes(DayPlan()) == int(30 * 1.5 * 90 * 48000 * 2 * 0.6)
    assert expected_day_bytes(DayPlan(students=0)) == 0
    assert expected_day_bytes(DayPlan(students=60)) == 2 * expected_day_bytes(DayPlan())


def test_disk_free_passes_with_a_tiny_day(tmp_path):
    result = check_disk_free(Context(data_dir=tmp_path, plan=DayPlan(students=1, song_seconds=1)))
    assert result.status == "pass"
    assert result.details["free_bytes"] >= result.details["required_bytes"]


def test_disk_free_fails_with_a_huge_day_and_says_what_to_do(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    per_student = 1.5 * 90 * 48000 * 2 * 0.6
    students = int(2 * free / per_student)     # the day is about twice the free space
    result = check_disk_free(Context(data_dir=tmp_path, plan=DayPlan(students=students)))
    assert result.status == "fail"
    assert "磁盘空间不足" in result.summary_zh and "Not enough disk" in result.summary_en
    assert result.fix_zh and result.fix_en


def test_disk_free_warns_with_room_for_one_day_but_not_three(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    per_student = 1.5 * 90 * 48000 * 2 * 0.6
    students = int(free / per_student / 2)     # the day is about half the free space
    result = check_disk_free(Context(data_dir=tmp_path, plan=DayPlan(students=students)))
    assert result.status == "warn"


def test_disk_free_on_a_data_dir_not_yet_created(tmp_path):
    result = check_disk_free(Context(data_dir=tmp_path / "not" / "yet", plan=DayPlan(students=1)))
    assert result.status == "pass"
