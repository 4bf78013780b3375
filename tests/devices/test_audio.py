"""devices/audio.py on the real virtual headset: listing, choosing, rates, playing, recording.

These tests run on their own PulseAudio server (``scripts/virtual-audio`` with a private
``QM_AUDIO_RUNTIME``), not on the session's shared one: they stop it, and other tests
playing into the shared microphone at the same time would land in these recordings.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from devices import audio
from devices.levels import rms_dbfs
from tests.devices.headset import RATE, ROOT

pytestmark = pytest.mark.audio


def tone(freq: float, seconds: float, amplitude: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * RATE / len(x))


def longest_loud_run(x: np.ndarray, threshold_dbfs: float = -40, frame: int = 480) -> np.ndarray:
    """The longest stretch of consecutive frames louder than the threshold (the tone)."""
    loud = [rms_dbfs(x[i:i + frame]) > threshold_dbfs for i in range(0, len(x) - frame + 1, frame)]
    best, start = (0, 0), None
    for i, is_loud in enumerate(loud + [False]):
        if is_loud and start is None:
            start = i
        elif not is_loud and start is not None:
            best = max(best, (i - start, start))
            start = None
    length, first = best
    return x[first * frame:(first + length) * frame]


def record_until(stream: audio.DuplexStream, proc: subprocess.Popen) -> np.ndarray:
    """Everything the stream records until ``proc`` (the player) has finished, plus a tail."""
    proc.wait(30)
    time.sleep(0.3)  # PulseAudio still holds the last few blocks
    stream.close()
    return stream.read_all()[:, 0]


# ---------------------------------------------------------------- listing and choosing

def test_list_audio_devices_names_defaults_and_channels(on_headset):
    devices = audio.list_audio_devices()
    json.dumps(devices)  # `station devices --json` prints it as is
    assert {d["name"] for d in devices} >= {"pulse", "default"}
    assert sum(d["is_default_input"] for d in devices) == 1
    assert sum(d["is_default_output"] for d in devices) == 1
    default = next(d for d in devices if d["is_default_input"])
    assert default["host_api"] == "ALSA"
    assert default["max_input_channels"] > 0 and default["max_output_channels"] > 0
    assert default["default_samplerate"] > 0


def test_find_device_by_case_insensitive_substring_or_default(on_headset):
    devices = {d["name"]: d for d in audio.list_audio_devices()}
    assert audio.find_device("PULS", "input") == devices["pulse"]["index"]
    assert audio.find_device("Defa", "output") == devices["default"]["index"]
    default_out = next(d for d in devices.values() if d["is_default_output"])
    assert audio.find_device("", "output") == default_out["index"]
    assert audio.find_device(None, "input") == next(
        d for d in devices.values() if d["is_default_input"])["index"]


def test_find_device_without_match_names_the_devices_seen(on_headset):
    with pytest.raises(audio.AudioDeviceError) as caught:
        audio.find_device("USB Headset", "input")
    err = caught.value
    assert err.code == "no_match"
    assert "没有找到耳机麦克风" in err.zh and "USB Headset" in err.zh
    assert "not found" in err.en and "'pulse'" in err.en and "'default'" in err.en
    assert err.fix_zh and err.fix_en
    with pytest.raises(audio.AudioDeviceError, match="earphones were not found"):
        audio.find_device("USB Headset", "output")


def test_supported_rates_uses_portaudio_format_check(on_headset):
    index = audio.find_device("", "input")
    assert audio.supported_rates(index, "input") == [48000, 44100, 16000]
    assert audio.supported_rates(index, "output") == [48000, 44100, 16000]
    # More channels than the device has: PortAudio refuses, so no rate is "supported".
    assert audio.supported_rates(index, "input", channels=1000) == []


def test_rescan_sees_a_headset_started_after_the_program(on_headset):
    on_headset.script("stop")
    try:
        audio.rescan()
        assert audio.list_audio_devices() == []
        with pytest.raises(audio.AudioDeviceError, match="没有找到耳机麦克风"):
            audio.find_device("", "input")
        on_headset.script("start")  # the headset is plugged in while the station runs
        audio.rescan()
        assert {d["name"] for d in audio.list_audio_devices()} >= {"pulse", "default"}
        assert audio.find_device("", "input") >= 0
    finally:
        on_headset.script("start")


def test_opening_with_pulseaudio_stopped_is_a_bilingual_error(on_headset):
    """PortAudio enumerated the devices, then the sound server went away."""
    on_headset.script("stop")
    try:
        with pytest.raises(audio.AudioDeviceError) as caught:
            audio.record(0.5)
        assert "没有找到耳机麦克风" in caught.value.zh
        assert "headset microphone was not found" in caught.value.en
        with pytest.raises(audio.AudioDeviceError, match="earphones were not found"):
            audio.play(tone(1000, 0.2))
    finally:
        on_headset.script("start")


def test_a_hung_device_call_times_out_with_a_bilingual_error():
    release = threading.Event()
    try:
        with pytest.raises(audio.AudioDeviceError) as caught:
            audio.with_timeout(lambda: release.wait(30), 0.2, "打开设备", "opening the device")
        assert caught.value.code == "timeout"
        assert "无响应" in caught.value.zh and "did not respond" in caught.value.en
    finally:
        release.set()


def test_importing_the_audio_modules_does_not_load_portaudio():
    code = ("import sys, devices.audio, precheck.audio; "
            "sys.exit('sounddevice' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0


# ---------------------------------------------------------------- playing and recording (issue 2)

def test_tone_to_the_earphones_is_what_the_student_hears(on_headset, monkeypatch):
    """A 1 kHz tone played on the default output, captured from qm_ear.monitor."""
    # The pulse ALSA plugin reads PULSE_SOURCE when a stream opens: this stream records
    # the earphones' monitor, not the microphone.
    monkeypatch.setenv("PULSE_SOURCE", "qm_ear.monitor")
    ears = audio.open_duplex(audio.find_device("", "input"), False, RATE)
    monkeypatch.delenv("PULSE_SOURCE")
    try:
        stats = audio.play(tone(1000, 1.0), RATE, audio.find_device("", "output"))
    finally:
        time.sleep(0.3)  # the last blocks are still on their way through PulseAudio
        ears.close()
    loud = longest_loud_run(ears.read_all()[:, 0])
    assert len(loud) > 0.8 * RATE, "the earphones' monitor did not carry the tone"
    assert abs(peak_hz(loud) - 1000) < 5
    assert -24 < rms_dbfs(loud) < -18  # played at -20 dBFS, PulseAudio at 100 %
    assert stats.output_underflows == 0


def test_melody_sung_into_the_mic_is_recorded_note_by_note(on_headset, tmp_path):
    notes = [523.25, 587.33, 659.26, 783.99]  # C5 D5 E5 G5
    gap = np.zeros(int(0.1 * RATE), np.float32)
    melody = np.concatenate([np.concatenate([tone(f, 0.4, 0.3), gap]) for f in notes])
    stream = audio.open_duplex(audio.find_device("", "input"), False, RATE)
    singer = on_headset.play_into("qm_mic", melody, tmp_path / "melody.wav")
    recorded = record_until(stream, singer)

    frame = int(0.05 * RATE)
    heard = []
    for start in range(0, len(recorded) - frame, frame):
        chunk = recorded[start:start + frame]
        if rms_dbfs(chunk) > -30:
            heard.append(min(notes, key=lambda f: abs(f - peak_hz(chunk))))
            assert abs(peak_hz(chunk) - heard[-1]) < 25  # within a semitone's half
    sequence = [f for i, f in enumerate(heard) if i == 0 or heard[i - 1] != f]
    assert sequence == notes
    assert len(heard) >= 4 * 6  # most of each 0.4 s note was captured


def test_duplex_stream_plays_and_records_on_one_stream(on_headset, tmp_path):
    """What the recorder does: accompaniment to the earphones while the mic records."""
    feed = on_headset.play_into("qm_mic", tone(440, 10.0, 0.2), tmp_path / "voice.wav")
    try:
        # 4 s for a half-second run of voice: on a busy machine the feeding process may start
        # speaking into the microphone a second or more after the stream opens (CI saw 1.5 s).
        recorded, stats = audio.play_and_record(tone(1000, 1.0), 4.0, RATE,
                                                audio.find_device("", "input"),
                                                audio.find_device("", "output"))
    finally:
        feed.kill()
        feed.wait(30)
    assert len(recorded) == 4 * RATE
    voiced = longest_loud_run(recorded)
    assert len(voiced) > 0.5 * RATE
    # No loopback: the microphone hears the singer (440 Hz), never the accompaniment.
    assert abs(peak_hz(voiced) - 440) < 5
    assert stats.input_overflows == 0


def test_a_stream_with_its_own_handler_ends_when_it_says_so(on_headset):
    """The recorder's way: int16 blocks to its own queue, the stream stops on the last one."""
    mic, ear = audio.find_device("", "input"), audio.find_device("", "output")
    assert 48000 in audio.duplex_rates(mic, ear, (48000, 44100), 1, 2, "int16")
    got = []

    def handler(indata, outdata, frames, time_info, status) -> bool:
        got.append(indata.copy())
        outdata.fill(0)
        return sum(len(b) for b in got) >= RATE // 2

    stream = audio.open_duplex(mic, ear, RATE, 1, 2, blocksize=2400, dtype="int16",
                               handler=handler)
    try:
        assert audio.watch(stream, stall_s=5.0) == "done"
    finally:
        stream.close()
    assert all(b.dtype == np.int16 and b.shape == (2400, 1) for b in got)
    assert stream.stats.frames == sum(len(b) for b in got) >= RATE // 2
    assert len(stream.stats.dac_minus_adc) == len(got)   # duplex: PortAudio's times kept
    before = len(got)
    time.sleep(0.3)
    assert len(got) == before                            # stopped: no block after the last
