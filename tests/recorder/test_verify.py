"""Take verification on files synthesized here: each verdict a proctor would see."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder import verify
from recorder.analysis import pitch, reasons, synth
from recorder.analysis.verdict import Thresholds, judge
from recorder.songs import SongCatalog

RATE = 48000
DESIGN_FIELDS = {"path", "duration_s", "sample_rate", "channels", "rms_dbfs", "peak_dbfs",
                 "clipped_ratio", "silence_ratio", "snr_db", "voiced_ratio", "median_f0_hz",
                 "dropouts", "verdict", "reasons"}
TUNE = [60, 62, 64, 60, 64, 65, 67, 67, 69, 67, 65, 64, 60, 62, 55, 60]


def phrase_notes(total_s: float = 12.0, start: float = 0.5) -> list[tuple[float, float, float]]:
    """A little tune repeated with breaths between phrases, as (midi, start, duration)."""
    notes, t = [], start
    while True:
        for i, m in enumerate(TUNE):
            d = 0.9 if i % 4 == 3 else 0.45
            if t + d > total_s - 0.5:
                return notes
            notes.append((m, t, 0.9 * d))
            t += d + (0.3 if i % 4 == 3 else 0.0)


def sung(total_s: float = 12.0, seed: int = 1, noise_db: float = -65.0) -> np.ndarray:
    """A child-like voice singing the tune, over a faint room noise (a real mic has hiss)."""
    x = synth.voice(phrase_notes(total_s), RATE, amplitude=0.3, total_s=total_s, seed=seed)
    rng = np.random.default_rng(seed + 100)
    return (x + rng.normal(0, 10 ** (noise_db / 20), len(x))).astype(np.float32)


def write(tmp_path, name: str, samples, rate: int = RATE, subtype: str = "PCM_16"):
    path = tmp_path / name
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def codes(result) -> list[str]:
    return [r["code"] for r in result["reasons"]]


def check_shape(result) -> None:
    assert DESIGN_FIELDS <= result.keys()
    json.dumps(result, allow_nan=False)  # the CLI prints it with --json
    for r in result["reasons"] + result["flags"]:
        assert r["zh"] and r["en"] and r["code"] in reasons.CATALOG


# -- the verdicts of the issue ----------------------------------------------------------------

def test_sung_melody_with_vibrato_and_harmonics_is_accepted(tmp_path):
    result = verify.verify_file(write(tmp_path, "take.wav", sung()))
    check_shape(result)
    assert result["verdict"] == "accept", result["reasons"]
    assert result["reasons"] == []
    assert result["duration_s"] == pytest.approx(12.0, abs=0.01)
    assert result["sample_rate"] == RATE and result["channels"] == 1
    assert result["voiced_ratio"] > 0.8
    # the tune spans G3..A4 (196..440 Hz) and sits mostly around E4 (330 Hz)
    assert 250 < result["median_f0_hz"] < 400
    assert -25 < result["rms_dbfs"] < -10 and result["peak_dbfs"] < -6
    assert result["snr_db"] > 30
    assert 0.05 < result["silence_ratio"] < 0.5  # the breaths between phrases


def test_silence_is_rejected_as_silent(tmp_path):
    result = verify.verify_file(write(tmp_path, "silent.wav", np.zeros(RATE * 10)))
    check_shape(result)
    assert result["verdict"] == "reject"
    assert codes(result) == ["silent"]
    assert result["rms_dbfs"] == -120.0  # a number, not -inf, for JSON


def test_faint_singing_is_too_quiet_not_silent(tmp_path):
    result = verify.verify_file(write(tmp_path, "quiet.wav", sung() * 0.05))  # ~ -44 dBFS
    assert result["verdict"] == "retake"
    assert codes(result) == ["too_quiet"]


def test_clipped_melody_is_retaken(tmp_path):
    loud = np.clip(sung() * 5, -1.0, 1.0)
    result = verify.verify_file(write(tmp_path, "clipped.wav", loud))
    assert result["verdict"] == "retake"
    assert codes(result) == ["clipped"]
    assert result["clipped_ratio"] > 0.01


def test_single_full_scale_peaks_are_not_clipping(tmp_path):
    x = sung()
    x[RATE * np.arange(1, 10)] = 1.0  # ten lone samples at full scale: loud, intact
    result = verify.verify_file(write(tmp_path, "peaks.wav", x, subtype="FLOAT"))
    assert result["clipped_ratio"] == 0.0
    assert result["verdict"] == "accept"


def test_short_take_is_too_short(tmp_path):
    result = verify.verify_file(write(tmp_path, "short.wav", sung(3.0)))
    assert result["verdict"] == "retake"
    assert codes(result) == ["too_short"]


def test_white_noise_is_no_singing(tmp_path):
    noise = np.random.default_rng(7).normal(0, 0.1, RATE * 10)
    result = verify.verify_file(write(tmp_path, "noise.wav", noise))
    assert result["verdict"] == "reject"
    assert codes(result) == ["no_singing"]
    assert result["voiced_ratio"] < 0.05


@pytest.mark.parametrize("mains_hz", [50, 60])
def test_mains_hum_is_periodic_but_not_singing(tmp_path, mains_hz):
    t = np.arange(RATE * 10) / RATE
    hum = sum(a * np.sin(2 * np.pi * mains_hz * k * t) for k, a in ((1, 0.1), (2, 0.04), (3, 0.03)))
    result = verify.verify_file(write(tmp_path, "hum.wav", hum))
    assert codes(result) == ["no_singing"]  # below any child's voice


def test_broken_voice_singing_low_is_singing(tmp_path):
    low = [(m - 14, s, d) for m, s, d in phrase_notes()]  # the tune down to F2..G3: 87-196 Hz
    x = synth.voice(low, RATE, total_s=12.0, seed=9)
    result = verify.verify_file(write(tmp_path, "low.wav", x))
    assert result["verdict"] == "accept", result["reasons"]
    assert 130 < result["median_f0_hz"] < 170
    assert result["voiced_ratio"] > 0.8


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: p.write_bytes(bytes(random.Random(3).randrange(256) for _ in range(5000))),
                 id="garbage"),
    pytest.param(lambda p: p.write_bytes(b""), id="empty"),
    pytest.param(lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), id="header-only"),
    pytest.param(lambda p: None, id="missing"),
])
def test_unreadable_files_are_rejected_without_traceback(tmp_path, make):
    path = tmp_path / "take.wav"
    make(path)
    result = verify.verify_file(path)
    check_shape(result)
    assert result["verdict"] == "reject"
    assert codes(result) == ["unreadable"]
    assert result["path"] == str(path)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_truncated_file_is_unreadable(tmp_path, fmt):
    whole = write(tmp_path, f"whole.{fmt}", sung())
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: len(data) // 2])
    assert verify.verify_file(whole)["verdict"] == "accept"
    result = verify.verify_file(cut)
    assert codes(result) == ["unreadable"]
    assert "truncated" in result["error"] or "lost sync" in result["error"]


@pytest.mark.parametrize("size, verdict", [(0xFFFFFFFF, "accept"), (0, "reject")])
def test_wav_header_left_unfinished_by_a_crash(tmp_path, size, verdict):
    path = write(tmp_path, "take.wav", sung(6.0))
    data = bytearray(path.read_bytes())
    at = data.find(b"data")
    data[at + 4:at + 8] = size.to_bytes(4, "little")  # what a recorder killed mid-take leaves
    path.write_bytes(bytes(data))
    result = verify.verify_file(path)
    assert result["verdict"] == verdict
    if verdict == "accept":  # the streaming convention: read to the end of the file
        assert result["duration_s"] == pytest.approx(6.0, abs=0.01)
    else:  # a zero size would read as an empty take; "silent" would be a lie
        assert codes(result) == ["unreadable"] and "not finalised" in result["error"]


def test_empty_but_valid_file_is_silent_and_too_short(tmp_path):
    result = verify.verify_file(write(tmp_path, "empty.wav", np.zeros(0)))
    check_shape(result)
    assert result["verdict"] == "reject" and codes(result) == ["too_short", "silent"]
    assert result["duration_s"] == 0.0 and result["median_f0_hz"] is None


def test_non_finite_samples_are_unreadable(tmp_path):
    x = sung()
    x[1000] = np.nan
    result = verify.verify_file(write(tmp_path, "nan.wav", x, subtype="FLOAT"))
    assert codes(result) == ["unreadable"]


# -- dropouts -----------------------------------------------------------------------------

def test_holes_cut_into_singing_are_dropouts(tmp_path):
    x = sung()
    for second in (2.3, 5.1, 8.7):  # lost 20 ms buffers, filled with zeros by the driver
        i = int(second * RATE)
        x[i:i + 960] = 0.0
    result = verify.verify_file(write(tmp_path, "holes.wav", x, subtype="FLOAT"))
    assert result["dropouts"] == 3
    assert codes(result) == ["dropouts"]


def test_exact_zero_pauses_faded_into_are_not_dropouts(tmp_path):
    x = synth.voice(phrase_notes(), RATE, total_s=12.0, seed=2)  # no hiss: pauses are 0.0
    result = verify.verify_file(write(tmp_path, "clean.wav", x, subtype="FLOAT"))
    assert result["dropouts"] == 0
    assert result["verdict"] == "accept"


def test_dropouts_reported_by_the_capture_count():
    result = verify.verify_samples(sung(), RATE, dropouts=2)
    assert result["dropouts"] == 2
    assert codes(result) == ["dropouts"]
    assert result["path"] is None


# -- inputs ---------------------------------------------------------------------------------

def test_int16_capture_and_float_file_agree(tmp_path):
    x = sung()
    pcm = (x * 32767).astype(np.int16)
    from_capture = verify.verify_samples(pcm, RATE)
    from_file = verify.verify_file(write(tmp_path, "take.wav", x))
    for key in ("verdict", "duration_s", "voiced_ratio", "median_f0_hz"):
        assert from_capture[key] == from_file[key]
    assert from_capture["rms_dbfs"] == pytest.approx(from_file["rms_dbfs"], abs=0.05)


def test_stereo_44k_file(tmp_path):
    x = synth.voice(phrase_notes(), 44100, total_s=12.0, seed=4)
    result = verify.verify_file(write(tmp_path, "stereo.flac", np.stack([x, 0.5 * x], 1), 44100))
    assert result["channels"] == 2 and result["sample_rate"] == 44100
    assert result["verdict"] == "accept"


def test_pitch_tracker_follows_the_known_pitch():
    # from a low broken voice (grade-8 boy) to a high child's voice
    for midi in (42, 45, 57, 69, 81):  # 92.5, 110, 220, 440, 880 Hz
        x = synth.voice([(midi, 0.0, 2.0)], RATE, vibrato_st=0.0, drift_st=0.0, seed=5)
        track = pitch.track(x, RATE)
        middle = track.f0_hz[20:80]
        cents = 1200 * np.log2(middle / synth.midi_to_hz(midi))
        assert np.all(track.aperiodicity[20:80] < 0.2)
        assert np.max(np.abs(cents)) < 25, (midi, np.max(np.abs(cents)))  # quarter tone


# -- thresholds and the verdict function ------------------------------------------------------

def test_thresholds_from_config_change_the_verdict():
    short = sung(3.0)
    assert codes(verify.verify_samples(short, RATE)) == ["too_short"]
    relaxed = Thresholds.from_config({"min_duration_s": 2, "dropouts_max": 1})
    assert relaxed.min_duration_s == 2.0 and relaxed.dropouts_max == 1
    assert verify.verify_samples(short, RATE, relaxed)["verdict"] == "accept"
    assert Thresholds.from_config(None) == Thresholds() == Thresholds.from_config({})


@pytest.mark.parametrize("config, word", [
    ({"min_duraton_s": 3}, "min_duraton_s"),
    ({"quiet_dbfs": "loud"}, "quiet_dbfs"),
    ({"dropouts_max": 1.5}, "dropouts_max"),
    ({"clip_level": True}, "clip_level"),
])
def test_bad_threshold_config_is_a_clear_error(config, word):
    with pytest.raises(ValueError) as err:
        Thresholds.from_config(config)
    message = str(err.value)
    assert word in message and "配置项" in message and "setting" in message.lower()


def metrics(**over):
    base = {"duration_s": 30.0, "level_p95_dbfs": -15.0, "voiced_ratio": 0.8, "voiced_s": 20.0,
            "clipped_ratio": 0.0, "dropouts": 0, "bleed": None, "melody_score": None}
    return {**base, **over}


def test_judge_worst_reason_wins_and_flags_leave_the_verdict():
    t = Thresholds()
    assert judge(metrics(), t) == ("accept", [], [])
    assert judge(metrics(clipped_ratio=0.1, voiced_ratio=0.0), t)[:2] == \
        ("reject", ["no_singing", "clipped"])
    assert judge(metrics(level_p95_dbfs=-80.0, voiced_ratio=0.0), t)[:2] == ("reject", ["silent"])
    assert judge(metrics(melody_score=0.2), t) == ("accept", [], ["wrong_melody"])
    assert judge(metrics(bleed={"score": 0.6}), t)[:2] == ("retake", ["accompaniment_bleed"])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(duration=st.floats(0, 120), level=st.floats(-120, 0), voiced=st.floats(0, 1),
       clipped=st.floats(0, 1), drops=st.integers(0, 5),
       worse=st.sampled_from(["duration_s", "level_p95_dbfs", "voiced_ratio", "clipped_ratio",
                              "dropouts"]))
def test_judge_never_improves_when_a_measure_gets_worse(duration, level, voiced, clipped,
                                                        drops, worse):
    t = Thresholds()
    m = metrics(duration_s=duration, level_p95_dbfs=level, voiced_ratio=voiced,
                voiced_s=voiced * duration, clipped_ratio=clipped, dropouts=drops)
    bad = dict(m)
    bad[worse] = {"duration_s": 0.0, "level_p95_dbfs": -120.0, "voiced_ratio": 0.0,
                  "clipped_ratio": 1.0, "dropouts": 99}[worse]
    order = {"accept": 0, "retake": 1, "reject": 2}
    assert order[judge(bad, t)[0]] >= order[judge(m, t)[0]]
    assert judge(bad, t)[0] != "accept"


def test_reason_catalog_is_complete_and_bilingual():
    for code in ("silent", "too_quiet", "clipped", "too_short", "no_singing", "dropouts",
                 "unreadable", "wrong_melody", "accompaniment_bleed"):
        r = reasons.reason(code)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r["zh"]), code
        assert r["en"].isascii() and len(r["en"]) > 20, code


# -- against a song: melody and bleed ---------------------------------------------------------

@pytest.fixture(scope="module")
def demo():
    return SongCatalog().get("demo")


def sing_song(song, transpose=0.0, tempo=1.0, notes=None, seed=6):
    acc, rate = song.load_accompaniment()
    assert rate == RATE
    voice = synth.voice(notes or song.melody, RATE, amplitude=0.3, transpose=transpose,
                        tempo=tempo, total_s=len(acc) / RATE, seed=seed)
    return voice, acc


def test_right_tune_in_another_key_and_tempo_matches(demo):
    voice, _ = sing_song(demo, transpose=2.5, tempo=1.1)
    result = verify.verify_samples(voice, RATE, song=demo)
    assert result["melody_score"] > 0.8
    assert result["flags"] == [] and result["verdict"] == "accept"
    assert result["song_id"] == "demo"


def test_wrong_tune_is_flagged_but_kept(demo):
    rng = np.random.default_rng(8)
    pitches = rng.permutation([n.midi for n in demo.melody])
    wrong = [(p, n.start, n.duration) for p, n in zip(pitches, demo.melody)]
    voice, _ = sing_song(demo, notes=wrong)
    result = verify.verify_samples(voice, RATE, song=demo)
    assert result["melody_score"] < 0.7
    assert [f["code"] for f in result["flags"]] == ["wrong_melody"]
    assert result["verdict"] == "accept"


def test_accompaniment_leaking_into_the_mic_is_retaken(demo):
    voice, acc = sing_song(demo)
    lag = int(0.15 * RATE)  # playback reaches the capture 150 ms late
    leaked = voice.copy()
    leaked[lag:] += 1.5 * acc[: len(voice) - lag]  # speakers, not a headset
    result = verify.verify_samples(leaked, RATE, song=demo, offset_s=0.14)
    assert codes(result) == ["accompaniment_bleed"] and result["verdict"] == "retake"
    assert result["bleed"]["lag_s"] == pytest.approx(0.15, abs=0.002)
    unknown_offset = verify.verify_samples(leaked, RATE, song=demo)
    assert codes(unknown_offset) == ["accompaniment_bleed"]

    clean = verify.verify_samples(voice, RATE, song=demo, offset_s=0.15)
    assert clean["bleed"]["score"] < Thresholds().bleed_max / 2
    assert clean["verdict"] == "accept"


# -- robustness ----------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(samples=st.lists(st.floats(-1.0, 1.0, width=32), max_size=3000),
       rate=st.sampled_from([8000, 16000, 44100, 48000]))
def test_any_samples_get_a_verdict(samples, rate):
    result = verify.verify_samples(np.array(samples, dtype=np.float32), rate)
    assert result["verdict"] in ("accept", "retake", "reject")
    assert result["reasons"] or result["verdict"] == "accept"
    json.dumps(result, allow_nan=False)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tail=st.binary(max_size=400), with_header=st.booleans())
def test_any_bytes_get_a_verdict(tmp_path, tail, with_header):
    # a valid 48 kHz 16-bit mono WAV header followed by random data, or random bytes alone
    path = tmp_path / "fuzz.wav"
    header = b"RIFF" + (36 + len(tail)).to_bytes(4, "little") + b"WAVEfmt \x10\x00\x00\x00" \
        + b"\x01\x00\x01\x00\x80\xbb\x00\x00\x00w\x01\x00\x02\x00\x10\x00data" \
        + len(tail).to_bytes(4, "little")
    path.write_bytes(header + tail if with_header else tail)
    result = verify.verify_file(path)
    assert result["verdict"] in ("accept", "retake", "reject")
    json.dumps(result, allow_nan=False)


def test_warm_up_then_verify():
    verify.warm_up()
    assert verify.verify_samples(sung(6.0), RATE)["verdict"] == "accept"


# -- the picture ----------------------------------------------------------------------------------

def test_plot_draws_a_png_with_the_melody(tmp_path, demo):
    voice, _ = sing_song(demo, transpose=2.0)
    take = write(tmp_path, "take.wav", voice)
    png = verify.plot(verify.verify_file(take), tmp_path / "take.png", song=demo)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_plot_of_an_unreadable_take_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nothing")
    with pytest.raises(ValueError) as err:
        verify.plot(bad, tmp_path / "bad.png")
    assert "无法读取" in str(err.value) and "Cannot read" in str(err.value)
    assert not (tmp_path / "bad.png").exists()


def test_song_whose_audio_vanished_still_judges_the_take(tmp_path):
    from recorder.songs import load_song

    sf.write(str(tmp_path / "s.flac"), synth.keys([(60, 0, 1)], RATE, total_s=12.0), RATE)
    (tmp_path / "s.json").write_text(json.dumps(
        {"id": "s", "title": "歌", "audio": "s.flac",
         "melody": [{"note": 60 + i, "start": i, "duration": 0.5} for i in range(8)]}),
        encoding="utf-8")
    song = load_song(tmp_path / "s.json")
    (tmp_path / "s.flac").unlink()  # a USB stick with the songs pulled out
    result = verify.verify_samples(sung(), RATE, song=song)
    assert result["verdict"] == "accept" and result["bleed"] is None
    assert "song_error" in result


def test_importing_verify_stays_light():
    # `station sing verify --help` and the CLI's start must not pay for the analysis stack
    import subprocess
    import sys

    code = ("import sys, recorder.verify; "
            "print(sorted(m for m in ('librosa', 'scipy', 'matplotlib', 'soundfile', 'numba') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_samples_the_wrong_way_round_are_a_programming_error():
    with pytest.raises(ValueError, match="frames, channels"):
        verify.verify_samples(np.zeros((2, RATE), dtype=np.float32), RATE)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(f0=st.lists(st.one_of(st.none(), st.floats(60.0, 1200.0)), max_size=400),
       ref=st.lists(st.tuples(st.integers(40, 90), st.floats(0.05, 2.0)), max_size=40))
def test_melody_match_is_a_score_or_none(f0, ref):
    from recorder.analysis import melody
    from recorder.songs import Note

    f0_hz = np.array([np.nan if v is None else v for v in f0], dtype=float)
    voiced = ~np.isnan(f0_hz)
    notes = [Note(m, i * 0.5, d) for i, (m, d) in enumerate(ref)]
    score = melody.match(f0_hz, voiced, 0.02, notes)
    assert score is None or 0.0 <= score <= 1.0
