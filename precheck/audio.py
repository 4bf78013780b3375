"""Audio pre-checks: the headset's earphones, microphone, the path between them, and rates.

Four checks, each ``check(ctx) -> CheckResult`` (see ``check.py``; declared in
``registry.py``); the runner gives each a timeout, and every device call in here is bounded as
well (``devices.audio.with_timeout``). They read the ``audio_*``, ``interactive``, ``prompt``,
``loopback_expected`` and threshold fields of :class:`precheck.context.Context`.

The input check leaves the noise floor it measured in ``ctx.noise_floor_dbfs``
for the speech test; the loopback check measures its own from its lead-in, so the order
the runner picks does not matter.

The signal maths they use (levels, the test signals, finding the chirp, the speech verdict)
is in ``precheck/signals.py``.
"""
from __future__ import annotations

import functools
import json
import sys
import time
from typing import Any, Callable

import numpy as np

from devices import audio
from precheck.check import CheckResult
from precheck.context import Context
from precheck.signals import (CHIRP_HZ, CHIRP_SECONDS, LEAD_IN_SECONDS, MAX_LATENCY_SECONDS,
                              SILENCE_DBFS, TONE_DBFS, TONE_HZ, TONE_SECONDS, analyse_input,
                              analyse_speech, chirp, find_test_signal, level_envelope,
                              noise_floor_dbfs, spectrum, tone)

# ---------------------------------------------------------------- device plumbing

def _device_fault(check_id: str):
    """Turn any device fault raised inside a check into a ``fail`` with the reason and fix."""
    def wrap(fn: Callable[[Context], CheckResult]) -> Callable[[Context], CheckResult]:
        @functools.wraps(fn)
        def run(ctx: Context) -> CheckResult:
            started = time.monotonic()
            try:
                result = fn(ctx)
            except audio.AudioDeviceError as exc:
                result = CheckResult(check_id, "fail", exc.zh, exc.en,
                                     {"error": exc.code}, exc.fix_zh, exc.fix_en)
            except Exception as exc:  # PortAudioError escaping a call we did not wrap
                if type(exc).__name__ != "PortAudioError":
                    raise
                err = audio.not_found("input" if "input" in check_id else "output",
                                       audio.portaudio_message(exc))
                result = CheckResult(check_id, "fail", err.zh, err.en,
                                     {"error": "portaudio"}, err.fix_zh, err.fix_en)
            result.details.setdefault("elapsed_s", round(time.monotonic() - started, 2))
            return result
        return run
    return wrap


def _bounded(fn: Callable[[], Any], what_zh: str, what_en: str) -> Any:
    return audio.with_timeout(fn, audio.OPEN_TIMEOUT_S, what_zh, what_en)


def _device(ctx: Context, kind: audio.Kind) -> dict[str, Any]:
    """The configured device's description (AudioDeviceError if it is not there)."""
    substring = ctx.audio_input if kind == "input" else ctx.audio_output
    index = _bounded(lambda: audio.find_device(substring, kind), "查找设备", "looking for the device")
    info = _bounded(lambda: audio.device_info(index), "查找设备", "looking for the device")
    return {"index": index, "name": info["name"], "host_api": info["host_api"],
            "configured": substring, "channels": info[f"max_{kind}_channels"]}


def _rate(device: int, kind: audio.Kind) -> int:
    return _bounded(lambda: audio.choose_rate(device, kind), "检查采样率", "checking sample rates")


def _ask(ctx: Context, text: str) -> str:
    prompt = ctx.prompt
    return str(prompt(text) or "") if prompt else ""


# ---------------------------------------------------------------- the checks

@_device_fault("audio.output")
def check_output(ctx: Context) -> CheckResult:
    """The earphones open at 48 kHz (else 44.1 kHz) and play a 1 kHz tone at -20 dBFS."""
    dev = _device(ctx, "output")
    rate = _rate(dev["index"], "output")
    channels = 2 if dev["channels"] >= 2 else 1  # both ears
    # Silence first: drivers often glitch once while starting (PulseAudio's ALSA plugin
    # always does), and only a break inside the tone is something the student would hear.
    lead = int(LEAD_IN_SECONDS * rate)
    signal = np.concatenate([np.zeros(lead, np.float32), tone(TONE_HZ, TONE_SECONDS, rate)])
    stats = audio.play(signal, rate, dev["index"], channels)
    breaks = sum(1 for pos in stats.underflow_at if pos > lead)
    details = {"device": dev, "samplerate": rate, "channels": channels, "tone_hz": TONE_HZ,
               "tone_dbfs": TONE_DBFS, "tone_seconds": TONE_SECONDS,
               "underflows": stats.output_underflows, "underflows_in_tone": breaks}
    if ctx.interactive and ctx.prompt:
        answer = _ask(ctx, "刚才耳机里有没有听到“嘟”的一声？听到请输入 y，没听到输入 n。 / "
                           "Did you hear a beep in the earphones? Type y if you did, n if not.")
        details["operator_heard"] = answer.strip().lower()[:1] in ("y", "是", "")
        if not details["operator_heard"]:
            return CheckResult("audio.output", "fail", "操作员没有听到耳机里的提示音",
                               "The operator did not hear the test tone in the earphones", details,
                               "请检查耳机插头是否插在正确的插孔、音量是否调到静音，然后重新检查。",
                               "Check that the headset plug is in the right socket and the volume "
                               "is not muted, then run the check again.")
    if breaks:
        return CheckResult("audio.output", "warn",
                           f"耳机能放音，但提示音中断了 {breaks} 次",
                           f"The earphones play, but the tone broke up {breaks} time(s)",
                           details, "请关闭其他正在使用声音或占用电脑的程序，然后重新检查。",
                           "Close other programs that use sound or keep the computer busy, then "
                           "run the check again.")
    return CheckResult("audio.output", "pass",
                       f"耳机放音正常（{dev['name']}，{rate} Hz，1 kHz 提示音）",
                       f"Earphones play normally ({dev['name']}, {rate} Hz, 1 kHz tone)", details)


_INPUT_FAIL = {
    "zeros": ("麦克风没有任何声音（全部为数字零）：麦克风被静音，或被系统的隐私设置禁止使用",
              "The microphone gives no sound at all (exact digital zeros): it is muted, or the "
              "operating system's privacy setting blocks it",
              "请打开麦克风的静音开关；在 Windows“设置 → 隐私 → 麦克风”中允许应用访问麦克风；"
              "在声音设置中取消麦克风静音，然后重新检查。",
              "Switch the headset's mute off; in Windows Settings → Privacy → Microphone allow apps "
              "to use the microphone; unmute the microphone in the sound settings, then run the "
              "check again."),
    "constant": ("麦克风信号卡在一个固定值不变，设备工作不正常",
                 "The microphone signal is stuck at one constant value: the device is not working",
                 "请拔下耳机重新插好；仍不正常请换一副耳机，然后重新检查。",
                 "Unplug the headset and plug it in again; if it stays stuck, use another headset, "
                 "then run the check again."),
}


@_device_fault("audio.input")
def check_input(ctx: Context) -> CheckResult:
    """The microphone opens and records; the noise floor is measured; zeros and stuck fail."""
    dev = _device(ctx, "input")
    rate = _rate(dev["index"], "input")
    seconds = float(ctx.input_seconds)
    x = audio.record(seconds, rate, dev["index"])
    found = analyse_input(x, rate, float(ctx.noise_floor_warn_dbfs))
    if found["verdict"] not in _INPUT_FAIL:  # a dead microphone's "floor" would flatter the SNR
        ctx.noise_floor_dbfs = found["noise_floor_dbfs"]
    details = {"device": dev, "samplerate": rate, **found,
               "envelope_dbfs": level_envelope(x, rate), "spectrum": spectrum(x, rate)}
    verdict = found["verdict"]
    if verdict in _INPUT_FAIL:
        zh, en, fix_zh, fix_en = _INPUT_FAIL[verdict]
        return CheckResult("audio.input", "fail", zh, en, details, fix_zh, fix_en)
    if verdict == "noisy":
        return CheckResult("audio.input", "warn",
                           f"麦克风能录音，但环境噪声偏大（{found['noise_floor_dbfs']:.0f} dBFS）",
                           f"The microphone records, but the background noise is high "
                           f"({found['noise_floor_dbfs']:.0f} dBFS)", details,
                           "请关窗、关风扇，远离电源和音箱；若噪声仍大，请降低麦克风增益后重新检查。",
                           "Close windows, switch fans off, keep away from power supplies and "
                           "speakers; if it stays noisy, lower the microphone gain and check again.")
    if verdict == "clipped":
        return CheckResult("audio.input", "warn", "安静时麦克风信号也达到满幅（削波）",
                           "The microphone reaches full scale even in silence (clipping)", details,
                           "请在声音设置中降低麦克风音量（增益），然后重新检查。",
                           "Lower the microphone volume (gain) in the sound settings, then run "
                           "the check again.")
    return CheckResult("audio.input", "pass",
                       f"麦克风录音正常（{dev['name']}，{rate} Hz，本底噪声 {found['noise_floor_dbfs']:.0f} dBFS）",
                       f"Microphone records normally ({dev['name']}, {rate} Hz, noise floor "
                       f"{found['noise_floor_dbfs']:.0f} dBFS)", details)


@_device_fault("audio.loopback")
def check_loopback(ctx: Context) -> CheckResult:
    """Earphones to microphone: a played chirp found again (latency, level); or speech.

    Without a loopback the chirp cannot come back: that is the normal state of a real
    headset, so the check says ``skip`` with how to test the microphone instead (speech in
    ``--interactive``), unless ``loopback_expected`` says a cable or virtual device is fitted.
    """
    if ctx.interactive and ctx.prompt:
        return _speech_test(ctx)
    dev_in, dev_out = _device(ctx, "input"), _device(ctx, "output")
    rate = _bounded(lambda: _common_rate(dev_in["index"], dev_out["index"]),
                    "检查采样率", "checking sample rates")
    ref = chirp(CHIRP_SECONDS, rate)
    offset = int(LEAD_IN_SECONDS * rate)
    playback = np.concatenate([np.zeros(offset, np.float32), ref])
    seconds = LEAD_IN_SECONDS + CHIRP_SECONDS + MAX_LATENCY_SECONDS
    x, stats = audio.play_and_record(playback, seconds, rate, dev_in["index"], dev_out["index"])
    found = find_test_signal(x, ref, rate, offset)
    noise = noise_floor_dbfs(x[:offset], rate) if len(x) >= offset else SILENCE_DBFS
    details = {"input": dev_in, "output": dev_out, "samplerate": rate,
               "signal": f"log chirp {CHIRP_HZ[0]:.0f}-{CHIRP_HZ[1]:.0f} Hz", "played_dbfs": TONE_DBFS, "noise_floor_dbfs": noise, **found,
               "underflows": stats.output_underflows, "overflows": stats.input_overflows,
               "envelope_dbfs": level_envelope(x, rate)}
    if found["found"]:
        return CheckResult("audio.loopback", "pass",
                           f"耳机到麦克风回路正常：往返延迟 {found['latency_ms']:.0f} ms，"
                           f"电平 {found['level_dbfs']:.0f} dBFS",
                           f"Earphone-to-microphone path works: round trip {found['latency_ms']:.0f} ms, "
                           f"level {found['level_dbfs']:.0f} dBFS", details)
    if ctx.loopback_expected:
        return CheckResult("audio.loopback", "fail",
                           "回路测试信号没有从麦克风录到", "The loopback test signal was not heard by the microphone",
                           details,
                           "请检查回路线是否插在耳机口和麦克风口，麦克风未静音，然后重新检查。",
                           "Check the loopback cable is in the earphone and microphone sockets and the "
                           "microphone is not muted, then run the check again.")
    return CheckResult("audio.loopback", "skip",
                       "耳机声音传不到麦克风（真实耳机正常如此），未测往返延迟",
                       "The earphones do not reach the microphone (normal for a real headset); "
                       "round-trip latency not measured", details,
                       "如需测试麦克风收音，请用交互模式（--interactive）让操作员说话。",
                       "To test the microphone with a voice, run in interactive mode (--interactive).")


def _common_rate(dev_in: int, dev_out: int) -> int:
    both = audio.duplex_rates(dev_in, dev_out, (48000, 44100))
    if not both:
        raise audio.not_found("input", "no common rate 48000/44100 Hz",
                              "输入输出没有共同的 48000/44100 Hz 采样率")
    return both[0]


def _speech_test(ctx: Context) -> CheckResult:
    """The operator says 一二三四五; level and SNR against the noise floor measured first."""
    dev = _device(ctx, "input")
    rate = _rate(dev["index"], "input")
    noise = ctx.noise_floor_dbfs
    if noise is None:  # the input check did not run first: measure the quiet room now
        noise = noise_floor_dbfs(audio.record(1.0, rate, dev["index"]), rate)
    seconds = float(ctx.speech_seconds)
    _ask(ctx, f"请对着麦克风用平常的音量说“一二三四五”。准备好后按回车，录音 {seconds:.0f} 秒。 / "
              f"Say \"yi er san si wu\" (one to five in Chinese) into the microphone in a normal "
              f"voice. Press Enter when ready; recording lasts {seconds:.0f} s.")
    x = audio.record(seconds, rate, dev["index"])
    found = analyse_speech(x, rate, float(noise), float(ctx.speech_peak_min_dbfs),
                           float(ctx.speech_peak_max_dbfs), float(ctx.speech_snr_min_db))
    details = {"mode": "speech", "device": dev, "samplerate": rate, **found,
               "envelope_dbfs": level_envelope(x, rate), "spectrum": spectrum(x, rate)}
    if found["ok"]:
        return CheckResult("audio.loopback", "pass",
                           f"说话录音正常：峰值 {found['peak_dbfs']:.0f} dBFS，信噪比 {found['snr_db']:.0f} dB",
                           f"Speech recorded well: peak {found['peak_dbfs']:.0f} dBFS, "
                           f"SNR {found['snr_db']:.0f} dB", details)
    return CheckResult("audio.loopback", "fail",
                       "说话录音不合格：" + "；".join(r["zh"] for r in found["reasons"]),
                       "Speech recording not good enough: " + "; ".join(r["en"] for r in found["reasons"]),
                       details,
                       "请把麦克风放在嘴边约两指远，调整系统中的麦克风音量，在安静处重新检查。",
                       "Put the microphone about two fingers from the mouth, adjust the microphone "
                       "volume in the sound settings, and check again somewhere quiet.")


@_device_fault("audio.sample_rate")
def check_sample_rate(ctx: Context) -> CheckResult:
    """Which of 48 000, 44 100 and 16 000 Hz the microphone and earphones accept."""
    dev_in, dev_out = _device(ctx, "input"), _device(ctx, "output")
    rates_in = _bounded(lambda: audio.supported_rates(dev_in["index"], "input"),
                        "检查采样率", "checking sample rates")
    rates_out = _bounded(lambda: audio.supported_rates(dev_out["index"], "output"),
                         "检查采样率", "checking sample rates")
    details = {"input": dev_in, "output": dev_out, "tested_hz": list(audio.STANDARD_RATES),
               "input_hz": rates_in, "output_hz": rates_out}
    for kind, rates in (("input", rates_in), ("output", rates_out)):
        if not rates:  # refuses every rate: the device cannot be opened at all
            err = audio.not_found(kind, "PortAudio refused 48000/44100/16000 Hz",
                                   "PortAudio 拒绝了 48000/44100/16000 Hz")
            return CheckResult("audio.sample_rate", "fail", err.zh, err.en, details,
                               err.fix_zh, err.fix_en)
    listed_in = "/".join(map(str, rates_in)) or "—"
    listed_out = "/".join(map(str, rates_out)) or "—"
    line_zh, line_en = f"麦克风 {listed_in} Hz，耳机 {listed_out} Hz", f"microphone {listed_in} Hz, earphones {listed_out} Hz"
    if 48000 in rates_in and 48000 in rates_out:
        return CheckResult("audio.sample_rate", "pass", f"采样率支持正常：{line_zh}",
                           f"Sample rates supported: {line_en}", details)
    if 44100 in rates_in and 44100 in rates_out:
        return CheckResult("audio.sample_rate", "warn", f"不支持 48000 Hz，将用 44100 Hz 录音：{line_zh}",
                           f"48000 Hz not supported, recording will use 44100 Hz: {line_en}", details,
                           "可以继续使用；如有支持 48000 Hz 的耳机，建议更换。",
                           "It can be used; a headset that supports 48000 Hz is better if you have one.")
    return CheckResult("audio.sample_rate", "fail", f"耳机不支持录音所需的采样率：{line_zh}",
                       f"The headset does not support the sample rates recording needs: {line_en}",
                       details, "请换一副 USB 耳机（支持 48000 或 44100 Hz），然后重新检查。",
                       "Use another USB headset (one supporting 48000 or 44100 Hz), then run the "
                       "check again.")


def run_audio_checks(ctx: Context | None = None) -> list[CheckResult]:
    """All four, one after the other (the real runner adds its timeouts around each)."""
    from precheck.registry import AUDIO

    ctx = ctx or Context()
    return [check.fn(ctx) for check in AUDIO]


def _stderr_prompt(text: str) -> str:
    # stdout carries only the JSON document; questions go to stderr.
    sys.stderr.write(text + "\n> ")
    sys.stderr.flush()
    return sys.stdin.readline().strip()


def main(argv: list[str] | None = None) -> int:
    """``python -m precheck.audio [--interactive]``: the audio checks alone, as JSON.

    Exit 1 when any check failed, 0 otherwise (the shape of ``station precheck --json``'s
    ``checks``); for trying a headset without the whole station.
    """
    args = sys.argv[1:] if argv is None else argv
    ctx = Context(interactive="--interactive" in args, prompt=_stderr_prompt)
    for flag, key in (("--audio-in", "audio_input"), ("--audio-out", "audio_output")):
        if flag in args and args.index(flag) + 1 < len(args):
            setattr(ctx, key, args[args.index(flag) + 1])
    results = run_audio_checks(ctx)
    json.dump([r.to_json() for r in results], sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 1 if any(r.status == "fail" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
