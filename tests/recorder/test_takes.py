"""Takes: retake limit, which take counts, the proctor's choice; pure logic on a temp db."""
from __future__ import annotations

import pytest

from recorder import takes

SITTING = "20261122-01"


def take(db, student="S0001", verdict="accept", state="kept", retakes=2, policy="last_accepted"):
    attempt = takes.next_attempt(db, SITTING, student, retakes=retakes)
    take_id = f"{student}-{attempt}"
    takes.begin(db, take_id=take_id, sitting_id=SITTING, student_code=student, attempt=attempt,
                started_at=f"2026-11-22T09:0{attempt}:00Z", song_id="song-a", sample_rate=48000)
    fields = dict(path=f"/r/{take_id}.flac", sha256="0" * 64, verdict=verdict,
                  reasons=[{"code": "too_quiet", "zh": "声音太小", "en": "too quiet"}]
                  if verdict != "accept" else [], overflow_count=0)
    if state == "kept":
        return takes.keep(db, take_id, policy=policy, **fields)
    if state == "interrupted":
        return takes.mark_interrupted(db, take_id, policy=policy, **fields)
    if state == "failed":
        return takes.mark_failed(db, take_id, policy=policy)
    return takes.get(db, take_id)


def counting(db, student="S0001"):
    return [t.attempt for t in takes.takes_of(db, SITTING, student) if t.counts]


def test_a_started_take_is_in_the_table_before_any_audio(db):
    t = take(db, state="recording")
    assert t.state == "recording" and t.attempt == 1 and t.path is None and not t.counts


def test_one_take_plus_two_retakes_by_default_then_a_clear_refusal(db):
    for _ in range(3):
        take(db, verdict="retake")
    with pytest.raises(takes.TakeError) as err:
        takes.next_attempt(db, SITTING, "S0001")
    assert err.value.code == "retake_limit"
    assert "重录上限" in err.value.zh and "retake limit" in err.value.en
    assert len(takes.takes_of(db, SITTING, "S0001")) == 3   # every take is kept


def test_configured_limit_and_other_students_are_independent(db):
    take(db, retakes=0)
    with pytest.raises(takes.TakeError):
        takes.next_attempt(db, SITTING, "S0001", retakes=0)
    assert takes.next_attempt(db, SITTING, "S0002", retakes=0) == 1
    assert takes.next_attempt(db, "20261122-02", "S0001", retakes=0) == 1


def test_station_faults_do_not_use_up_a_retake(db):
    take(db, state="interrupted", verdict="retake")
    take(db, state="failed")
    take(db, verdict="retake")
    take(db, verdict="retake")
    # Two interrupted/failed takes, two sung: the third sung one is still allowed.
    assert takes.next_attempt(db, SITTING, "S0001") == 5
    take(db, verdict="retake")
    with pytest.raises(takes.TakeError):
        takes.next_attempt(db, SITTING, "S0001")


def test_the_last_accepted_take_counts_by_default(db):
    take(db, verdict="accept")
    assert counting(db) == [1]
    take(db, verdict="reject")
    assert counting(db) == [1]          # a worse retake does not replace an accepted take
    take(db, verdict="accept")
    assert counting(db) == [3]
    assert takes.get(db, "S0001-3").counts_by == "rule"


def test_first_accepted_policy(db):
    take(db, verdict="retake", policy="first_accepted")
    take(db, verdict="accept", policy="first_accepted")
    take(db, verdict="accept", policy="first_accepted")
    assert counting(db) == [2]


def test_no_accepted_take_means_none_counts(db):
    take(db, verdict="retake")
    take(db, verdict="reject")
    assert counting(db) == []


def test_an_accepted_interrupted_take_can_count(db):
    take(db, state="interrupted", verdict="accept")
    assert counting(db) == [1]
    t = takes.get(db, "S0001-1")
    assert t.interrupted and t.state == "interrupted"
    assert [x.id for x in takes.interrupted_takes(db)] == ["S0001-1"]


def test_the_proctors_choice_stands_over_the_rule(db):
    take(db, verdict="accept")
    take(db, verdict="retake")
    assert takes.choose(db, "S0001-2").counts_by == "proctor"
    assert counting(db) == [2]
    take(db, verdict="accept")
    assert counting(db) == [2]


def test_a_take_without_a_file_cannot_be_chosen(db):
    take(db, state="failed")
    with pytest.raises(takes.TakeError) as err:
        takes.choose(db, "S0001-1")
    assert err.value.code == "no_file" and "录音文件" in err.value.zh and "no kept" in err.value.en
    assert counting(db) == []


def test_overflows_flag_dropouts_and_reasons_round_trip(db):
    t = take(db, verdict="retake")
    assert t.reasons == [{"code": "too_quiet", "zh": "声音太小", "en": "too quiet"}]
    assert not t.dropouts
    takes.keep(db, t.id, overflow_count=3)
    assert takes.get(db, t.id).dropouts


def test_unknown_take_and_unknown_policy_are_clear_errors(db):
    with pytest.raises(takes.TakeError) as err:
        takes.get(db, "nope")
    assert err.value.code == "unknown_take"
    with pytest.raises(takes.TakeError) as err:
        takes.counting_take([], policy="best")
    assert err.value.code == "bad_policy" and "last_accepted" in err.value.en


def test_a_failed_update_leaves_the_row_as_it_was(db):
    t = take(db, state="recording")
    with pytest.raises(Exception):
        takes.keep(db, t.id, verdict="maybe")     # the CHECK constraint refuses it
    assert takes.get(db, t.id).state == "recording"


def test_stream_restarts_flag_dropouts_too(db):
    t = take(db, verdict="retake")
    assert takes.keep(db, t.id, stream_restarts=1).dropouts


def test_audio_lost_beyond_a_quarter_second_flags_dropouts(db):
    t = take(db, verdict="retake")
    assert not takes.keep(db, t.id, lost_s=0.1).dropouts
    assert takes.keep(db, t.id, lost_s=0.6).dropouts
