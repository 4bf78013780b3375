"""Audio devices: a thin layer over python-sounddevice (PortAudio).

What the rest of the station needs from the sound card, and nothing more:

* ``list_audio_devices()`` — every device PortAudio sees, as plain dicts (``station devices``).
* ``find_device(substring, kind)`` — the headset chosen in config by a *name substring*,
  never by an index: indices move when a USB headset is plugged in or out.
* ``rescan()`` — re-initialise PortAudio so a headset plugged in after start is seen.
* ``supported_rates(device, kind)`` — PortAudio's own format check, not the advertised default.
* ``open_duplex(...)`` -> ``DuplexStream`` — play a buffer and record at the same time; the
  callback only copies blocks to a queue (as python-sounddevice's examples do), all analysis
  happens in the caller's thread.
* ``play_and_record`` / ``record`` / ``play`` — blocking conveniences built on it, each with a
  timeout: with PulseAudio gone or a driver wedged, opening a device can hang forever, and a
  hung pre-check is worse than a failed one.

sounddevice is imported lazily (``_sd()``): importing it initialises PortAudio, which is slow
and noisy, and ``station --help`` must not pay for it.

Every error a user can see is an ``AudioDeviceError`` with a Chinese and an English message
and what to do, in words a teacher understands.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, TypeVar

import numpy as np

Kind = Literal["input", "output"]
T = TypeVar("T")

#: Rates the station cares about: 48 kHz is the recording rate, 44.1 kHz the fallback many
#: consumer headsets offer, 16 kHz what some cheap USB microphones are stuck at.
STANDARD_RATES = (48000, 44100, 16000)

#: How long opening, starting or closing a device may take before we call it hung.
OPEN_TIMEOUT_S = 5.0

# On Windows one headset shows up once per host API. Shared-mode WASAPI refuses every rate
# but the mixer's and WDM-KS takes the device exclusively (and can hang), so prefer the host
# APIs that resample for us. Host APIs not named keep PortAudio's order after these.
_HOST_API_PREFERENCE = ("Windows DirectSound", "MME", "Windows WASAPI", "ALSA", "Core Audio")
_HOST_API_AVOID = ("Windows WDM-KS",)


class AudioDeviceError(RuntimeError):
    """A sound-device fault, told to a teacher: what happened and what to do, zh then en."""

    def __init__(self, zh: str, en: str, fix_zh: str = "", fix_en: str = "",
                 code: str = "device"):
        super().__init__(f"{zh} / {en}")
        self.zh, self.en, self.fix_zh, self.fix_en, self.code = zh, en, fix_zh, fix_en, code


_FIX_ZH = "请检查耳机是否插好、在系统声音设置中已启用且未被其他程序独占，然后重新检查。"
_FIX_EN = ("Check that the headset is plugged in, enabled in the system sound settings and not "
           "held by another program, then run the check again.")


def not_found(kind: Kind, reason_en: str = "", reason_zh: str | None = None) -> AudioDeviceError:
    """The headset's microphone (``input``) or earphones (``output``) cannot be used."""
    reason_zh = reason_en if reason_zh is None else reason_zh
    tail_en = f" ({reason_en})" if reason_en else ""
    tail_zh = f"（{reason_zh}）" if reason_zh else ""
    if kind == "input":
        return AudioDeviceError(f"没有找到耳机麦克风{tail_zh}", f"The headset microphone was not found{tail_en}",
                                _FIX_ZH, _FIX_EN, code="not_found")
    return AudioDeviceError(f"没有找到耳机听筒{tail_zh}", f"The headset earphones were not found{tail_en}",
                            _FIX_ZH, _FIX_EN, code="not_found")


def _sd():
    """sounddevice, imported on first use (it initialises PortAudio at import)."""
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise AudioDeviceError(
            "本机缺少声音组件 PortAudio", "The PortAudio sound library is missing on this computer",
            "请重新安装考点软件，或请信息中心安装 PortAudio（Debian/Ubuntu: libportaudio2）。",
            "Reinstall the station software, or ask the information center to install PortAudio "
            "(Debian/Ubuntu: libportaudio2).", code="portaudio_missing") from exc
    return sounddevice


def call_bounded(fn: Callable[[], Any], seconds: float) -> tuple[bool, Any]:
    """Run a PortAudio call that can hang on a daemon thread: (finished in time, result).

    Pa_AbortStream/Pa_CloseStream on a stream whose ALSA poll is stuck, and Pa_StartStream
    on some hosts, never return (PortAudio issues #535, #758); a stuck call cannot be
    cancelled, so the worker is abandoned and the caller goes on. An exception from ``fn``
    is the result, for the caller to inspect (the recorder's answer to a hang is to open
    a new stream, so it needs the answer, not an exception).
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed over as the result
            box["value"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="audio-device-call", daemon=True).start()
    finished = done.wait(seconds)
    return finished, box.get("value")


def with_timeout(fn: Callable[[], T], seconds: float, what_zh: str, what_en: str) -> T:
    """``call_bounded`` for the pre-check: raise AudioDeviceError if ``fn`` hangs past
    ``seconds``, and re-raise what it raised."""
    finished, value = call_bounded(fn, seconds)
    if not finished:
        raise AudioDeviceError(
            f"声音设备无响应：{what_zh}（超过 {seconds:g} 秒）",
            f"The sound device did not respond: {what_en} (over {seconds:g} s)",
            "请拔下耳机重新插好；如仍无响应，请重启电脑后重新检查。",
            "Unplug the headset and plug it in again; if it still does not respond, restart the "
            "computer and run the check again.", code="timeout")
    if isinstance(value, BaseException):
        raise value
    return value


# ---------------------------------------------------------------- listing and choosing

def list_audio_devices() -> list[dict[str, Any]]:
    """Every device PortAudio sees now, as plain dicts (JSON-ready, for ``station devices``)."""
    sd = _sd()
    hostapis = sd.query_hostapis()
    default_in, default_out = _default_indices(sd)
    out = []
    for index, dev in enumerate(sd.query_devices()):
        out.append({
            "index": index,
            "name": dev["name"],
            "host_api": hostapis[dev["hostapi"]]["name"],
            "max_input_channels": int(dev["max_input_channels"]),
            "max_output_channels": int(dev["max_output_channels"]),
            "default_samplerate": float(dev["default_samplerate"]),
            "is_default_input": index == default_in,
            "is_default_output": index == default_out,
        })
    return out


def _default_indices(sd) -> tuple[int, int]:
    """The system's default input and output device indices (-1 when there is none)."""
    try:
        default_in, default_out = sd.default.device
    except (TypeError, ValueError):
        default_in = default_out = sd.default.device
    result = []
    for value, kind in ((default_in, "input"), (default_out, "output")):
        if value is None or value == -1:
            # sd.default says "use PortAudio's default": ask PortAudio which one that is.
            try:
                value = sd.query_devices(kind=kind)["index"]
            except Exception:  # no such device: PortAudio raises PortAudioError
                value = -1
        result.append(int(value))
    return result[0], result[1]


def _channels_key(kind: Kind) -> str:
    return "max_input_channels" if kind == "input" else "max_output_channels"


def find_device(substring: str | None, kind: Kind = "input") -> int:
    """The index of the device whose name contains ``substring`` (case-insensitive).

    Empty or None means the system default device. Among several matches the one with the
    needed channels on the preferred host API wins (see ``_HOST_API_PREFERENCE``). Raises
    AudioDeviceError naming the devices seen when nothing matches.
    """
    devices = list_audio_devices()
    key = _channels_key(kind)
    usable = [d for d in devices if d[key] > 0 and d["host_api"] not in _HOST_API_AVOID]
    if not substring:
        for d in usable:
            if d[f"is_default_{kind}"]:
                return d["index"]
        if usable:  # PortAudio has no default but there is a device: better than nothing
            return usable[0]["index"]
        raise not_found(kind, "no sound device at all", "本机没有任何声音设备")
    wanted = substring.casefold()
    matches = [d for d in usable if wanted in d["name"].casefold()]
    if not matches:
        seen = ", ".join(f"'{d['name']}'" for d in usable) or "—"
        err = not_found(kind)
        raise AudioDeviceError(
            f"{err.zh}：名称中没有“{substring}”的设备。本机可用的设备：{seen}",
            f"{err.en}: no device name contains '{substring}'. Devices seen: {seen}",
            "请插好耳机，或在设置 [audio] 中把设备名称改为上面列出的某个名称的一部分。",
            "Plug in the headset, or set [audio] in the station config to part of one of the "
            "names listed above.", code="no_match")

    def rank(d: dict[str, Any]) -> int:
        api = d["host_api"]
        return _HOST_API_PREFERENCE.index(api) if api in _HOST_API_PREFERENCE else len(_HOST_API_PREFERENCE)

    return min(matches, key=rank)["index"]


def device_info(index: int) -> dict[str, Any]:
    """One entry of ``list_audio_devices()`` by index."""
    for d in list_audio_devices():
        if d["index"] == index:
            return d
    raise not_found("input", f"index {index}")


def rescan() -> None:
    """Re-initialise PortAudio so devices plugged in (or out) since start are seen.

    PortAudio enumerates devices once, at initialisation; sounddevice has no public call for
    this, so we use its private pair, as its own documentation suggests. No stream may be
    open while this runs: callers (the pre-check, ``station devices``) do it between uses.
    """
    sd = _sd()
    sd._terminate()
    sd._initialize()


def supported_rates(device: int | None, kind: Kind, rates=STANDARD_RATES,
                    channels: int = 1) -> list[int]:
    """Which of ``rates`` PortAudio accepts for ``device`` (its format check, not the default)."""
    sd = _sd()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    ok = []
    for rate in rates:
        try:
            check(device=device, samplerate=rate, channels=channels, dtype="float32")
        except Exception:  # PortAudioError or ValueError: this rate is refused
            continue
        ok.append(int(rate))
    return ok


def choose_rate(device: int | None, kind: Kind, preferred=(48000, 44100)) -> int:
    """The first of ``preferred`` the device accepts; AudioDeviceError if none."""
    rates = supported_rates(device, kind, preferred)
    if not rates:
        raise not_found(kind, "48000/44100 Hz")
    return rates[0]


# ---------------------------------------------------------------- streams

@dataclass
class StreamStats:
    """What went wrong while the stream ran (counted in the callback, read afterwards)."""
    input_overflows: int = 0
    output_underflows: int = 0
    frames: int = 0
    #: playback positions (frames) where an underflow was reported: a glitch in leading
    #: silence is harmless, one inside the signal was heard
    underflow_at: list[int] = field(default_factory=list)


class DuplexStream:
    """Play ``playback`` on the output while the input is recorded, block by block.

    The callback does the minimum: it copies the input block to ``blocks`` (a queue the
    caller drains) and copies the next slice of the playback buffer out. With
    ``output_device=False`` it is an input-only stream (the recorder's case); with
    ``input_device=False`` output-only.
    """

    def __init__(self, input_device: int | None | Literal[False] = None,
                 output_device: int | None | Literal[False] = None, samplerate: int = 48000,
                 in_channels: int = 1, out_channels: int = 1,
                 playback: np.ndarray | None = None, blocksize: int = 0,
                 record_frames: int | None = None):
        self.samplerate = samplerate
        self.blocks: queue.Queue[np.ndarray] = queue.Queue()
        self.stats = StreamStats()
        self.done = threading.Event()  # set when playback is over and record_frames are in
        self._has_in = input_device is not False
        self._has_out = output_device is not False
        if playback is not None:
            playback = np.asarray(playback, dtype=np.float32)
            if playback.ndim == 1:
                playback = np.repeat(playback[:, None], out_channels, axis=1)
        self._play = playback if playback is not None else np.zeros((0, out_channels), np.float32)
        self._pos = 0
        self._want = record_frames if record_frames is not None else 0
        self._in_channels, self._out_channels = in_channels, out_channels
        self._device = (input_device, output_device)
        self._blocksize = blocksize
        self._stream = None

    def _callback(self, *args) -> None:
        # (indata, outdata, frames, time, status) for duplex; (data, frames, time, status) else
        status = args[-1]
        frames = args[-3]
        if status.input_overflow:
            self.stats.input_overflows += 1
        if status.output_underflow:
            self.stats.output_underflows += 1
            self.stats.underflow_at.append(self._pos)
        if self._has_in:
            self.blocks.put_nowait(args[0].copy())
        if self._has_out:
            outdata = args[1] if self._has_in else args[0]
            chunk = self._play[self._pos:self._pos + frames]
            outdata[:len(chunk)] = chunk
            outdata[len(chunk):] = 0
            self._pos += frames
        self.stats.frames += frames
        if self._pos >= len(self._play) and self.stats.frames >= self._want:
            self.done.set()

    def open(self, timeout: float = OPEN_TIMEOUT_S) -> "DuplexStream":
        """Open and start the stream (AudioDeviceError, bilingual, on failure or hang)."""
        sd = _sd()
        kind: Kind = "input" if self._has_in else "output"

        def make():
            common = dict(samplerate=self.samplerate, blocksize=self._blocksize,
                          dtype="float32", callback=self._callback)
            if self._has_in and self._has_out:
                stream = sd.Stream(device=self._device,
                                   channels=(self._in_channels, self._out_channels), **common)
            elif self._has_in:
                stream = sd.InputStream(device=self._device[0], channels=self._in_channels, **common)
            else:
                stream = sd.OutputStream(device=self._device[1], channels=self._out_channels, **common)
            stream.start()
            return stream

        try:
            self._stream = with_timeout(make, timeout, "打开设备", "opening the device")
        except AudioDeviceError:
            raise
        except Exception as exc:  # PortAudioError, ValueError (bad device or settings)
            raise not_found(kind, portaudio_message(exc)) from exc
        return self

    @property
    def active(self) -> bool:
        """False once PortAudio has stopped calling back (closed, or died after an error)."""
        stream = self._stream
        try:
            return bool(stream is not None and stream.active)
        except Exception:  # PortAudioError from a stream whose device vanished
            return False

    def read_all(self) -> np.ndarray:
        """Everything recorded so far, as one (frames, channels) float32 array."""
        parts = []
        while True:
            try:
                parts.append(self.blocks.get_nowait())
            except queue.Empty:
                break
        if not parts:
            return np.zeros((0, self._in_channels), np.float32)
        return np.concatenate(parts)

    def close(self, timeout: float = OPEN_TIMEOUT_S) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return

        def shut():
            stream.stop()
            stream.close()

        try:
            with_timeout(shut, timeout, "关闭设备", "closing the device")
        except AudioDeviceError:
            raise
        except Exception:  # a device that vanished mid-stream: nothing left to close
            pass

    def __enter__(self) -> "DuplexStream":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def portaudio_message(exc: Exception) -> str:
    """PortAudio's own words, one line, for the details (it names the host error)."""
    return " ".join(str(exc).split())[:200]


def open_duplex(input_device: int | None | Literal[False] = None,
                output_device: int | None | Literal[False] = None, samplerate: int = 48000,
                in_channels: int = 1, out_channels: int = 1, playback: np.ndarray | None = None,
                blocksize: int = 0, record_frames: int | None = None,
                timeout: float = OPEN_TIMEOUT_S) -> DuplexStream:
    """Open and start a ``DuplexStream``; the caller drains ``.blocks`` and calls ``.close()``."""
    return DuplexStream(input_device, output_device, samplerate, in_channels, out_channels,
                        playback, blocksize, record_frames).open(timeout)


def play_and_record(playback: np.ndarray | None, seconds: float, samplerate: int = 48000,
                    input_device: int | None | Literal[False] = None,
                    output_device: int | None | Literal[False] = None,
                    out_channels: int = 1, stall_timeout: float = OPEN_TIMEOUT_S,
                    attempts: int = 2) -> tuple[np.ndarray, StreamStats]:
    """Play ``playback`` and record ``seconds`` of mono input on one stream (blocking).

    Returns the mono recording (float32, 1-D; empty when ``input_device`` is False) and the
    stream's overflow/underflow counts. Raises AudioDeviceError when opening fails or hangs,
    or when no audio moves for ``stall_timeout`` seconds (a device pulled out mid-run). The
    limit is on progress, not on the total: some drivers (ALSA's PulseAudio plugin among
    them) pause a second or two after starting, which is slow but not broken.

    PortAudio's ALSA backend drops a stream for good after an xrun under PulseAudio's ALSA
    emulation (PortAudio.jl #19 has the same trace); a short test signal can simply be
    played again, so a stream that died is reopened, up to ``attempts`` times in all.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _play_and_record_once(playback, seconds, samplerate, input_device,
                                         output_device, out_channels, stall_timeout)
        except AudioDeviceError as exc:
            if exc.code not in ("stalled", "stream_died") or attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _play_and_record_once(playback, seconds, samplerate, input_device, output_device,
                          out_channels, stall_timeout) -> tuple[np.ndarray, StreamStats]:
    frames = int(round(seconds * samplerate))
    stream = open_duplex(input_device, output_device, samplerate, 1, out_channels,
                         playback, 0, frames if input_device is not False else 0)
    try:
        wait_while_running(stream, stall_timeout)
    finally:
        stream.close()
    data = stream.read_all()
    mono = data[:frames, 0] if data.size else np.zeros(0, np.float32)
    return mono, stream.stats


def wait_while_running(stream: DuplexStream, stall_timeout: float = OPEN_TIMEOUT_S) -> None:
    """Wait for ``stream.done``; AudioDeviceError if the stream dies or stops moving."""
    last, still_since = -1, time.monotonic()
    while not stream.done.wait(0.1):
        now = time.monotonic()
        if not stream.active:
            if stream.done.is_set():
                return
            raise AudioDeviceError(
                "声音设备中途停止工作", "The sound device stopped in the middle of the run",
                _FIX_ZH, _FIX_EN, code="stream_died")
        if stream.stats.frames != last:
            last, still_since = stream.stats.frames, now
        elif now - still_since > stall_timeout:
            raise AudioDeviceError(
                "声音设备停止工作（没有收到声音数据）",
                "The sound device stopped working (no audio data arrived)",
                _FIX_ZH, _FIX_EN, code="stalled")


def record(seconds: float, samplerate: int = 48000, device: int | None = None) -> np.ndarray:
    """Record ``seconds`` of mono input (blocking; see ``play_and_record`` for the limits)."""
    return play_and_record(None, seconds, samplerate, device, False)[0]


def play(samples: np.ndarray, samplerate: int = 48000, device: int | None = None,
         channels: int = 1) -> StreamStats:
    """Play ``samples`` on the output (blocking; see ``play_and_record`` for the limits)."""
    return play_and_record(samples, 0, samplerate, False, device, channels)[1]
