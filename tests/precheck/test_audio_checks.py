"""The four audio pre-checks on the real virtual headset, and their analysis on generated data.

Like tests/devices/test_audio.py these run on a private PulseAudio server started by
``scripts/virtual-audio`` with its own ``QM_AUDIO_RUNTIME``: they mute the microphone, load
a loopback and stop the server, none of which may touch the session's shared headset.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from devices import audio
from precheck import audio as checks
from precheck import signals
from precheck.context import Context
from tests.devices.headset import RATE, ROOT, PrivateHeadset


def noise(seconds: float, level_dbfs: float, seed: int = 1) -> np.ndarray:
    rms = 10 ** (level_dbfs / 20) / np.sqrt(2)  # AES17 level, as the checks report it
    return (np.random.default_rng(seed).normal(0, rms, int(seconds * RATE))).astype(np.float32)


@pytest.fixture
def quiet_room(on_headset, tmp_path):
    """A real microphone always hears something: a null sink's monitor alone is exact zeros."""
    on_headset.into_mic(noise(60, -60), tmp_path / "room.wav")
    return on_headset


@pytest.fixture
def loopback(on_headset):
    """The earpiece held to the microphone: PulseAudio copies the earphones into the mic."""
    module = on_headset.pactl("load-module", "module-loopback", "source=qm_ear.monitor",
                              "sink=qm_mic", "latency_msec=20")
    yield
    on_headset.pactl("unload-module", module)


def speech(level_dbfs: float = -12.0) -> np.ndarray:
    """Five voiced syllables, 'yi er san si wu' in rhythm: harmonics of a falling pitch."""
    out = []
    for f0 in (220, 205, 190, 200, 180):
        t = np.arange(int(0.28 * RATE)) / RATE
        voice = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 11))
        out += [voice * np.hanning(len(t)), np.zeros(int(0.12 * RATE))]
    y = np.concatenate(out)
    return (y / np.max(np.abs(y)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def passed(result) -> bool:
    """Pass, or the output check's warning that the tone broke up: on a test machine whose
    cores are busy with other tests the virtual sound server can miss a deadline, and the
    check is right to say so. Any other warning still fails the test."""
    return result.status == "pass" or (result.id == "audio.output" and result.status == "warn"
                                       and result.details.get("underflows_in_tone", 0) > 0)


def no_nan_json(result) -> dict:
    return json.loads(json.dumps(result.to_json(), allow_nan=False, ensure_ascii=False))


# ---------------------------------------------------------------- on the virtual headset

@pytest.mark.audio
def test_all_audio_checks_pass_on_the_virtual_headset(quiet_room, loopback):
    results = {r.id: r for r in checks.run_audio_checks(Context())}
    assert all(passed(r) for r in results.values()) and len(results) == 4, \
        [(r.id, r.status, r.summary_en) for r in results.values()]

    out = no_nan_json(results["audio.output"])["details"]
    assert out["samplerate"] == 48000 and out["tone_hz"] == 1000 and out["tone_dbfs"] == -20

    mic = no_nan_json(results["audio.input"])["details"]
    assert -66 < mic["noise_floor_dbfs"] < -54  # the room noise played at -60 dBFS
    assert 95 <= len(mic["envelope_dbfs"]) <= 100
    assert len(mic["spectrum"]["freq_hz"]) == len(mic["spectrum"]["db"]) == 128

    loop = no_nan_json(results["audio.loopback"])["details"]
    assert loop["found"] and loop["correlation"] > 0.9
    assert 0 < loop["latency_ms"] < 500
    assert abs(loop["gain_db"]) < 3  # PulseAudio's loopback at 100 %: what went out came back

    rates = no_nan_json(results["audio.sample_rate"])["details"]
    assert rates["input_hz"] == rates["output_hz"] == [48000, 44100, 16000]


@pytest.mark.audio
def test_a_tone_on_the_earphones_is_what_the_output_check_plays(on_headset, monkeypatch):
    monkeypatch.setenv("PULSE_SOURCE", "qm_ear.monitor")  # record what the student hears
    ears = audio.open_duplex(audio.find_device("", "input"), False, RATE)
    monkeypatch.delenv("PULSE_SOURCE")
    try:
        result = checks.check_output(Context())
    finally:
        ears.close()
    heard = ears.read_all()[:, 0]
    assert passed(result), result.summary_en
    levels = signals.frame_levels(heard, RATE)
    assert np.sum(levels > -24) * signals.FRAME_SECONDS >= 0.4  # most of the 0.6 s tone
    peak = np.argmax(np.abs(np.fft.rfft(heard))) * RATE / len(heard)
    assert abs(peak - 1000) < 5


@pytest.mark.audio
def test_loopback_without_a_path_is_skipped_and_says_how_to_test_the_mic(quiet_room):
    result = checks.check_loopback(Context())
    assert result.status == "skip"
    assert "麦克风" in result.summary_zh and "microphone" in result.summary_en
    assert "--interactive" in result.fix_zh and "--interactive" in result.fix_en
    assert no_nan_json(result)["details"]["found"] is False


@pytest.mark.audio
def test_loopback_expected_but_not_found_fails(quiet_room):
    result = checks.check_loopback(Context(loopback_expected=True))
    assert result.status == "fail"
    assert result.fix_zh and result.fix_en


@pytest.mark.audio
def test_muted_microphone_fails_with_the_privacy_explanation(quiet_room):
    quiet_room.pactl("set-source-mute", "qm_mic.monitor", "1")
    try:
        result = checks.check_input(Context(input_seconds=1.0))
    finally:
        quiet_room.pactl("set-source-mute", "qm_mic.monitor", "0")
    assert result.status == "fail"
    assert result.details["verdict"] == "zeros" and result.details["zero_ratio"] == 1.0
    assert "静音" in result.summary_zh and "隐私" in result.summary_zh
    assert "muted" in result.summary_en and "privacy" in result.summary_en
    assert "隐私" in result.fix_zh and "Privacy" in result.fix_en


@pytest.mark.audio
def test_noisy_room_is_a_warning(on_headset, tmp_path):
    on_headset.into_mic(noise(30, -25), tmp_path / "noisy.wav")
    result = checks.check_input(Context(input_seconds=1.0))
    assert result.status == "warn"
    assert result.details["verdict"] == "noisy"
    assert "噪声" in result.summary_zh and "noise" in result.summary_en


@pytest.mark.audio
def test_a_microphone_name_not_present_fails_naming_what_is_there(quiet_room):
    result = checks.check_input(Context(audio_input="Logitech H390"))
    assert result.status == "fail"
    assert "Logitech H390" in result.summary_zh and "'pulse'" in result.summary_en
    assert result.fix_zh and result.fix_en


@pytest.mark.audio
def test_checks_fail_with_a_reason_when_pulseaudio_stops_under_them(on_headset):
    """The devices were enumerated, then the sound server went away: no hang, no traceback."""
    on_headset.script("stop")
    try:
        results = checks.run_audio_checks(Context())
    finally:
        on_headset.script("start")
    assert [r.status for r in results] == ["fail"] * 4, [(r.id, r.summary_en) for r in results]
    for r in results:
        assert "没有找到" in r.summary_zh and "not found" in r.summary_en
        assert r.fix_zh and r.fix_en


@pytest.mark.audio
def test_audio_checks_with_pulseaudio_stopped_exit_1_without_traceback(tmp_path):
    """`python -m precheck.audio` in a fresh process that finds no sound server."""
    dead = PrivateHeadset(tmp_path / "stopped")  # its server was never started
    env = {**os.environ, **dead.env}
    proc = subprocess.run([sys.executable, "-m", "precheck.audio"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    results = json.loads(proc.stdout)
    assert [r["id"] for r in results] == ["audio.output", "audio.input", "audio.loopback",
                                          "audio.sample_rate"]
    for r in results:
        assert r["status"] == "fail"
        assert "没有找到" in r["summary_zh"] and "not found" in r["summary_en"]
        assert "耳机" in r["fix_zh"] and "headset" in r["fix_en"]


@pytest.mark.audio
def test_interactive_speech_passes_with_level_and_snr(quiet_room, tmp_path):
    def operator(text: str) -> str:  # reads the instruction, then says 一二三四五
        assert "一二三四五" in text
        # Said twice: wherever the driver's start-up pause puts the 3 s window, it hears speech.
        quiet_room.into_mic(np.tile(speech(-12), 2), tmp_path / "speech.wav")
        return ""

    result = checks.check_loopback(Context(interactive=True, prompt=operator, speech_seconds=3))
    details = no_nan_json(result)["details"]
    assert result.status == "pass", result.summary_en
    assert details["mode"] == "speech"
    assert -16 < details["peak_dbfs"] < -8
    assert details["snr_db"] >= 30  # speech near -15 dBFS over a -60 dBFS room
    assert -66 < details["noise_floor_dbfs"] < -54


@pytest.mark.audio
def test_interactive_speech_too_quiet_fails_with_the_reason(quiet_room, tmp_path):
    def operator(text: str) -> str:
        quiet_room.into_mic(speech(-42), tmp_path / "mumble.wav")
        return ""

    result = checks.check_loopback(Context(interactive=True, prompt=operator, speech_seconds=2,
                                    noise_floor_dbfs=-60.0))
    assert result.status == "fail"
    assert [r["code"] for r in result.details["reasons"]][0] == "too_quiet"
    assert "太小" in result.summary_zh and "too quiet" in result.summary_en


@pytest.mark.audio
def test_interactive_output_fails_when_the_operator_heard_nothing(on_headset):
    result = checks.check_output(Context(interactive=True, prompt=lambda text: "n"))
    assert result.status == "fail"
    assert "没有听到" in result.summary_zh and "did not hear" in result.summary_en


# ---------------------------------------------------------------- analysis, without a device

def test_constant_and_zero_signals_are_told_apart():
    assert signals.analyse_input(np.zeros(RATE), RATE)["verdict"] == "zeros"
    assert signals.analyse_input(np.full(RATE, 0.25), RATE)["verdict"] == "constant"
    assert signals.analyse_input(np.full(RATE, -1 / 32768), RATE)["verdict"] == "constant"
    assert signals.analyse_input(noise(1, -60), RATE)["verdict"] == "ok"
    assert signals.analyse_input(noise(1, -30), RATE)["verdict"] == "noisy"
    clipped = noise(1, -60)
    clipped[100] = 1.0
    assert signals.analyse_input(clipped, RATE)["verdict"] == "clipped"


def test_noise_floor_ignores_a_cough():
    x = noise(3, -60)
    x[RATE:RATE + RATE // 5] += noise(0.2, -10, seed=2)
    assert abs(signals.analyse_input(x, RATE)["noise_floor_dbfs"] + 60) < 2


def test_test_signal_is_found_at_its_delay_and_level():
    ref = signals.chirp(signals.CHIRP_SECONDS, RATE)
    offset, delay = int(0.25 * RATE), 1234
    rec = noise(1.5, -60)
    rec[offset + delay:offset + delay + len(ref)] += 0.5 * ref  # -6 dB on the way back
    found = signals.find_test_signal(rec, ref, RATE, offset)
    assert found["found"] and found["correlation"] > 0.95
    assert found["latency_ms"] == round(delay * 1000 / RATE, 1)
    assert abs(found["gain_db"] + 6) < 0.5


def test_no_test_signal_in_noise_or_silence():
    ref = signals.chirp(signals.CHIRP_SECONDS, RATE)
    assert signals.find_test_signal(noise(1.5, -40), ref, RATE, 0)["found"] is False
    assert signals.find_test_signal(np.zeros(RATE), ref, RATE, 0)["found"] is False
    assert signals.find_test_signal(np.zeros(10), ref, RATE, 0)["found"] is False


def test_speech_thresholds_are_configurable():
    x = np.concatenate([noise(0.5, -60), speech(-12) + noise(2.0, -60)[:len(speech())]])
    assert signals.analyse_speech(x, RATE, -60.0)["ok"]
    loud = signals.analyse_speech(x, RATE, -60.0, peak_max=-20)
    assert [r["code"] for r in loud["reasons"]] == ["too_loud"]
    noisy = signals.analyse_speech(x, RATE, -25.0)
    assert [r["code"] for r in noisy["reasons"]] == ["low_snr"]
    assert signals.analyse_speech(x, RATE, -25.0, snr_min=5)["ok"]


def test_envelope_and_spectrum_show_a_tone_where_it_is():
    x = signals.tone(1000, 2.0, RATE)
    env = signals.level_envelope(x, RATE)
    assert len(env) == 100 and abs(np.median(env) + 20) < 0.5
    spec = signals.spectrum(x, RATE)
    assert len(spec["freq_hz"]) == 128
    peak = spec["freq_hz"][int(np.argmax(spec["db"]))]
    assert 940 < peak < 1060 and abs(max(spec["db"]) + 20) < 2


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.integers(0, 3000),
              elements=st.floats(-1, 1, width=32, allow_nan=False)))
def test_input_analysis_takes_any_samples_and_stays_json(x):
    found = signals.analyse_input(x, 8000)
    assert found["verdict"] in {"zeros", "constant", "clipped", "noisy", "ok"}
    json.dumps(found, allow_nan=False)
    json.dumps(signals.level_envelope(x, 8000), allow_nan=False)
    json.dumps(signals.spectrum(x, 8000), allow_nan=False)


@pytest.mark.parametrize("n, nperseg", [(144000, 8192), (5000, 5000), (7001, 301), (20001, 8192)])
def test_welch_is_scipys(n, nperseg):
    from scipy.signal import welch

    x = noise(n / RATE, -30, seed=n)[:n].astype(np.float64)
    f_scipy, p_scipy = welch(x, fs=RATE, nperseg=nperseg)
    f_ours, p_ours = signals.welch(x, RATE, nperseg)
    np.testing.assert_allclose(f_ours, f_scipy)
    np.testing.assert_allclose(p_ours, p_scipy, rtol=1e-9)


def test_chirp_and_correlation_are_scipys():
    from scipy.signal import chirp, correlate

    t = np.arange(int(signals.CHIRP_SECONDS * RATE)) / RATE
    f0, f1 = signals.CHIRP_HZ
    ours = signals.chirp(signals.CHIRP_SECONDS, RATE, level_dbfs=0)
    theirs = signals._fade(chirp(t, f0, signals.CHIRP_SECONDS, f1, method="logarithmic"), RATE)
    np.testing.assert_allclose(ours, theirs.astype(np.float32), atol=1e-6)
    rec, ref = noise(1.0, -20, seed=5).astype(np.float64), noise(0.2, -20, seed=6).astype(np.float64)
    np.testing.assert_allclose(signals._correlate_valid(rec, ref),
                               correlate(rec, ref, mode="valid", method="fft"), atol=1e-9)


def test_the_audio_checks_do_not_import_scipy_signal():
    # Importing scipy.signal takes 6-8 s under Wine: most of the microphone check's 10 s.
    code = ("import sys, numpy as np; from precheck import audio, signals as a; "
            "x = np.random.default_rng(1).standard_normal(48000) * 0.01; "
            "a.analyse_input(x, 48000); a.spectrum(x, 48000); a.level_envelope(x, 48000); "
            "a.find_test_signal(x, a.chirp(0.4, 48000), 48000, 0); "
            "print('scipy.signal' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_timed_out_audio_check_keeps_its_id():
    """A microphone that never delivers its samples, under the registry's declaration and the
    real runner: the report says audio.input, not the function's name."""
    import dataclasses
    import threading

    from precheck import registry
    from precheck.runner import run

    assert [c.id for c in registry.AUDIO] == \
        ["audio.output", "audio.input", "audio.loopback", "audio.sample_rate"]
    release = threading.Event()

    @checks._device_fault("audio.input")
    def check_input(ctx):
        release.wait()

    hung = dataclasses.replace(registry.BY_ID["audio.input"], fn=check_input, timeout_s=0.2)
    try:
        report = run({"audio": [hung]}, Context())
    finally:
        release.set()
    [result] = report.checks
    assert (result.id, result.status, result.summary_en) == ("audio.input", "fail", "the check timed out")
