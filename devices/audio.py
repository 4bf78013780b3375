"""Audio devices: a thin layer over python-sounddevice (PortAudio).

What the rest of the station needs from the sound card, and nothing more:

* ``list_audio_devices()`` — every device PortAudio sees, as plain dicts (``station devices``).
* ``find_device(substring, kind)`` — the headset chosen in config by a *name substring*,
  never by an index: indices move when a USB headset is plugged in or out.
* ``rescan()`` — re-initialise PortAudio so a headset plugged in after start is seen.
* ``supported_rates(device, kind)`` — PortAudio's own format check, not the advertised default.
* ``split_device``, ``device_names``, ``duplex_rates`` — a device pair as the recorder names
  it, what PortAudio calls it, and the rates both ways accept.
* ``open_duplex(...)`` -> ``DuplexStream`` — play a buffer and record at the same time; the
  callback only copies blocks to a queue (as python-sounddevice's examples do), all analysis
  happens in the caller's thread. A caller with its own queues (the recorder's journal and
  song feeder) hands a ``handler`` instead. The stream counts overflows, underflows and the
  audio a host lost without saying so (``StreamStats``), and ``watch`` tells a stalled or
  dead stream from a finished one; a stream given up is retired (its late callbacks do
  nothing) and, if it hangs while closing, abandoned, never waited for.
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

from qmbase.refusal import Refusal

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


class AudioDeviceError(Refusal, RuntimeError):
    """A sound-device fault, told to a teacher: what happened and what to do, zh then en.
    ``code``: ``device`` (not there, refused) or ``timeout`` (a call that hung)."""

    exit_code = 1        # the job could not be done on this headset

    def __init__(self, zh: str, en: str, fix_zh: str = "", fix_en: str = "",
                 code: str = "device"):
        super().__init__(zh, en, fix_zh, fix_en, code=code)


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
                    channels: int = 1, dtype: str = "float32") -> list[int]:
    """Which of ``rates`` PortAudio accepts for ``device`` (its format check, not the default)."""
    sd = _sd()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    ok = []
    for rate in rates:
        try:
            check(device=device, samplerate=rate, channels=channels, dtype=dtype)
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


def duplex_rates(input_device: Any, output_device: Any, rates=(48000, 44100),
                 in_channels: int = 1, out_channels: int = 1, dtype: str = "float32") -> list[int]:
    """Which of ``rates`` both the microphone and the earphones accept, in ``rates``' order."""
    heard = supported_rates(input_device, "input", rates, in_channels, dtype)
    played = supported_rates(output_device, "output", rates, out_channels, dtype)
    return [rate for rate in heard if rate in played]


def split_device(device: Any) -> tuple[Any, Any]:
    """A device as sounddevice takes it (one for both ways, or an (input, output) pair) as a pair."""
    if isinstance(device, (tuple, list)):
        return device[0], device[1]
    return device, device


def device_names(device: Any = None) -> str:
    """The names PortAudio gives the microphone and earphones of ``device`` (None = default)."""
    sd = _sd()
    names = []
    for way, dev in enumerate(split_device(device)):
        try:
            names.append(str(sd.query_devices(dev if dev is not None else sd.default.device[way])["name"]))
        except Exception:  # a device that vanished: still say which one was asked for
            names.append(str(dev if dev is not None else "default"))
    return names[0] if names[0] == names[1] else " / ".join(names)


# ---------------------------------------------------------------- streams

#: A stream's first second may burst (buffers filling): time its clock after that.
SETTLE_S = 1.0
#: callbacks whose DAC-minus-ADC time is kept: the playback-to-capture offset
TIME_OFFSETS_KEPT = 64

#: Streams given up because closing them hung: kept referenced forever, never touched again
#: (collecting one would close it from the garbage collector's thread, and hang there).
_ABANDONED: list[Any] = []

@dataclass
class StreamStats:
    """What went wrong while the stream ran (counted in the callback, read afterwards)."""
    input_overflows: int = 0
    output_underflows: int = 0
    frames: int = 0
    #: playback positions (frames) where an underflow was reported: a glitch in leading
    #: silence is harmless, one inside the signal was heard
    underflow_at: list[int] = field(default_factory=list)
    #: outputBufferDacTime - inputBufferAdcTime of the first callbacks (duplex streams)
    dac_minus_adc: list[float] = field(default_factory=list)
    #: (monotonic time, frames) once settled, and the latest: the stream's own clock
    clock: list[tuple[float, int]] = field(default_factory=list)

    def lost_s(self, samplerate: int) -> float:
        """Wall time the stream ran minus the audio it delivered, in s: audio the host lost
        without reporting an overflow (PortAudio 19.6 on ALSA/PulseAudio hardly ever does)."""
        if len(self.clock) < 2:
            return 0.0
        (t0, f0), (t1, f1) = self.clock
        return max(0.0, (t1 - t0) - (f1 - f0) / samplerate)


class DuplexStream:
    """Play ``playback`` on the output while the input is recorded, block by block.

    The callback does the minimum: it copies the input block to ``blocks`` (a queue the
    caller drains) and copies the next slice of the playback buffer out. With
    ``output_device=False`` it is an input-only stream; with ``input_device=False``
    output-only. Given ``record_frames`` or ``playback`` it stops by itself once both are
    done; without either it runs until closed (a level meter).

    ``handler(indata, outdata, frames, time_info, status) -> bool`` replaces the queue and
    the buffer (the recorder's journal and song feeder); returning True ends the stream
    after this block. It runs on PortAudio's thread: it must only queue, never block.
    """

    def __init__(self, input_device: int | None | Literal[False] = None,
                 output_device: int | None | Literal[False] = None, samplerate: int = 48000,
                 in_channels: int = 1, out_channels: int = 1,
                 playback: np.ndarray | None = None, blocksize: int = 0,
                 record_frames: int | None = None, *, dtype: str = "float32",
                 latency: float | str | None = None, handler: Callable[..., Any] | None = None):
        self.samplerate = samplerate
        self.blocks: queue.Queue[np.ndarray] = queue.Queue()
        self.stats = StreamStats()
        self.done = threading.Event()      # the stream ended by itself, all audio delivered
        self.finished = threading.Event()  # PortAudio stopped calling back (done, or died)
        self.last_block_at = 0.0           # monotonic time of the latest callback
        self._has_in = input_device is not False
        self._has_out = output_device is not False
        if playback is not None:
            playback = np.asarray(playback, dtype=np.float32)
            if playback.ndim == 1:
                playback = np.repeat(playback[:, None], out_channels, axis=1)
        self._endless = handler is None and playback is None and record_frames is None
        self._play = playback if playback is not None else np.zeros((0, out_channels), np.float32)
        self._pos = 0
        self._want = record_frames if record_frames is not None else 0
        self._in_channels, self._out_channels = in_channels, out_channels
        self._device = (input_device, output_device)
        self._blocksize = blocksize
        self._dtype, self._latency, self._handler = dtype, latency, handler
        self._retired = False              # given up: its late callbacks must do nothing
        self._stream = None
        #: PortAudio's latency once open: (input, output) s for a duplex stream, else one figure
        self.latency: Any = None

    def _callback(self, *args) -> None:
        # (indata, outdata, frames, time, status) for duplex; (data, frames, time, status) else
        sd = self._sd
        if self._retired:                  # a stream given up for hung woke up
            raise sd.CallbackAbort
        status, time_info, frames = args[-1], args[-2], args[-3]
        now = self.last_block_at = time.monotonic()
        stats = self.stats
        if status.input_overflow:
            stats.input_overflows += 1
        if status.output_underflow:
            stats.output_underflows += 1
            stats.underflow_at.append(self._pos)
        if self._has_in and self._has_out and len(stats.dac_minus_adc) < TIME_OFFSETS_KEPT:
            stats.dac_minus_adc.append(time_info.outputBufferDacTime - time_info.inputBufferAdcTime)
        stats.frames += frames
        if stats.frames >= SETTLE_S * self.samplerate:
            # two (time, frames) points: the first once settled, and the latest
            stats.clock[1 if stats.clock else 0:] = [(now, stats.frames)]
        if self._handler is not None:
            last = self._handler(*args)
        else:
            last = self._copy(args, frames)
        if last:
            self.done.set()
            raise sd.CallbackStop

    def _copy(self, args, frames: int) -> bool:
        if self._has_in:
            self.blocks.put_nowait(args[0].copy())
        if self._has_out:
            outdata = args[1] if self._has_in else args[0]
            chunk = self._play[self._pos:self._pos + frames]
            outdata[:len(chunk)] = chunk
            outdata[len(chunk):] = 0
            self._pos += frames
        return (not self._endless and self._pos >= len(self._play)
                and self.stats.frames >= self._want)

    def open(self, timeout: float = OPEN_TIMEOUT_S, start_grace_s: float = 0.0) -> "DuplexStream":
        """Open and start the stream (AudioDeviceError, bilingual, on failure or hang).

        ``start_grace_s``: extra time the first block may take over ``watch``'s stall limit
        (PortAudio's ALSA start-up takes 1-2 s before the first real block)."""
        sd = self._sd = _sd()
        kind: Kind = "input" if self._has_in else "output"

        def make():
            common = dict(samplerate=self.samplerate, blocksize=self._blocksize,
                          dtype=self._dtype, latency=self._latency, callback=self._callback,
                          finished_callback=self.finished.set)
            if self._has_in and self._has_out:
                stream = sd.Stream(device=self._device,
                                   channels=(self._in_channels, self._out_channels), **common)
            elif self._has_in:
                stream = sd.InputStream(device=self._device[0], channels=self._in_channels, **common)
            else:
                stream = sd.OutputStream(device=self._device[1], channels=self._out_channels, **common)
            stream.start()
            return stream

        self.last_block_at = time.monotonic() + start_grace_s
        try:
            self._stream = with_timeout(make, timeout, "打开设备", "opening the device")
            self.latency = self._stream.latency
        except AudioDeviceError:
            self._retired = True           # whatever opens late is stale from birth
            raise
        except Exception as exc:  # PortAudioError, ValueError (bad device or settings)
            self._retired = True
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

    def stalled(self, stall_s: float) -> bool:
        """No callback for ``stall_s`` (after the start grace): the host stopped the audio."""
        return time.monotonic() - self.last_block_at > stall_s

    def read_all(self) -> np.ndarray:
        """Everything recorded so far, as one (frames, channels) array."""
        parts = []
        while True:
            try:
                parts.append(self.blocks.get_nowait())
            except queue.Empty:
                break
        if not parts:
            return np.zeros((0, self._in_channels), self._dtype)
        return np.concatenate(parts)

    def close(self, timeout: float = OPEN_TIMEOUT_S, gently: bool = True) -> None:
        """Retire, stop and close the stream. ``gently`` lets the blocks in flight arrive
        (``stop``); otherwise ``abort`` (a stalled stream would never finish a stop). A close
        that hangs is abandoned and raises AudioDeviceError ``timeout``."""
        stream, self._stream = self._stream, None
        if not gently or stream is None:
            self._retired = True
        if stream is None:
            return

        def shut():
            try:
                stream.stop() if gently else stream.abort()
            finally:
                stream.close()

        finished, _ = call_bounded(shut, timeout)
        self._retired = True
        if not finished:
            _ABANDONED.append(stream)
            raise AudioDeviceError(
                f"声音设备无响应：关闭设备（超过 {timeout:g} 秒）",
                f"The sound device did not respond: closing the device (over {timeout:g} s)",
                "请拔下耳机重新插好；如仍无响应，请重启电脑后重新检查。",
                "Unplug the headset and plug it in again; if it still does not respond, restart "
                "the computer and run the check again.", code="timeout")
        # an exception from shut: a device that vanished mid-stream, nothing left to close

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
                timeout: float = OPEN_TIMEOUT_S, **options: Any) -> DuplexStream:
    """Open and start a ``DuplexStream``; the caller drains ``.blocks`` and calls ``.close()``.
    ``options``: ``dtype``, ``latency``, ``handler`` of ``DuplexStream``."""
    return DuplexStream(input_device, output_device, samplerate, in_channels, out_channels,
                        playback, blocksize, record_frames, **options).open(timeout)


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
        stream.close(gently=stream.done.is_set())
    data = stream.read_all()
    mono = data[:frames, 0] if data.size else np.zeros(0, np.float32)
    return mono, stream.stats


def watch(stream: DuplexStream, stall_s: float = OPEN_TIMEOUT_S,
          should_stop: Callable[[], str | None] | None = None,
          tick: Callable[[], None] | None = None, tick_every: float = 0.2) -> str:
    """Wait while ``stream`` runs; say why it ended: ``done`` (it finished by itself),
    ``died`` (PortAudio stopped it: the host dropped it, or the device went away),
    ``stalled`` (no audio for ``stall_s``), or what ``should_stop()`` returned (the caller's
    own reasons: the proctor's stop, a full disk). ``tick()`` runs every ``tick_every`` s."""
    next_tick = time.monotonic()
    while True:
        if stream.finished.wait(0.05) or stream.done.is_set():
            return "done" if stream.done.is_set() else "died"
        reason = should_stop() if should_stop is not None else None
        if reason:
            return reason
        if not stream.active:
            return "done" if stream.done.is_set() else "died"
        if stream.stalled(stall_s):
            return "stalled"
        if tick is not None and time.monotonic() >= next_tick:
            tick()
            next_tick += tick_every


def wait_while_running(stream: DuplexStream, stall_timeout: float = OPEN_TIMEOUT_S) -> None:
    """Wait for ``stream.done``; AudioDeviceError if the stream dies or stops moving."""
    ended = watch(stream, stall_timeout)
    if ended == "died":
        raise AudioDeviceError(
            "声音设备中途停止工作", "The sound device stopped in the middle of the run",
            _FIX_ZH, _FIX_EN, code="stream_died")
    if ended == "stalled":
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
