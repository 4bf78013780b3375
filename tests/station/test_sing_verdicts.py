"""The verdicts a proctor relies on, through the real virtual headset: a clipped melody is
`clipped`, white noise is `no_singing` (the silent and accepted cases are in test_sing_cli)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from recorder.analysis import synth

RATE = 48000


@pytest.fixture
def room(station, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("学籍号,姓名,性别,年级\n5001,测试丙,男,八年级\n5002,测试丁,女,八年级\n", encoding="utf-8")
    station("roster", "import", str(roster), check=True)
    station("session", "open", "--kind", "singing", check=True)


def record(station, code: str) -> dict:
    done = station("sing", "record", "--student", code, "--seconds", "6", "--json")
    assert done.returncode == 1, done.stderr  # not accepted
    return json.loads(done.stdout)


def codes(doc: dict) -> set[str]:
    return {r["code"] for r in doc["reasons"]}


@pytest.mark.audio
def test_a_clipped_melody_is_flagged_clipped(room, station, sing_into_mic):
    notes = [(62 + (i * 5) % 9, 0.2 + i * 0.45, 0.4) for i in range(60)]
    loud = np.clip(synth.voice(notes, RATE, amplitude=3.0), -1.0, 1.0)  # a child too close to the mic
    sing_into_mic(loud, RATE)
    doc = record(station, "5001")
    assert "clipped" in codes(doc) and doc["verdict"] in ("retake", "reject")


@pytest.mark.audio
def test_white_noise_is_no_singing(room, station, sing_into_mic):
    noise = np.random.default_rng(7).normal(0, 0.2, RATE * 30).clip(-1, 1)
    sing_into_mic(noise, RATE)
    doc = record(station, "5002")
    assert "no_singing" in codes(doc) and doc["verdict"] == "reject"
