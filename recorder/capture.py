"""Recording a take: one full-duplex stream plays the accompaniment and records the microphone.

One stream means one clock: the earphones and the microphone cannot drift apart, and the
playback-to-capture offset measured at the start holds to the end (short of a stream the
host dropped and the recorder reopened: see :class:`Recorder`). The stream is mono in,
stereo out, 16-bit, at 48 kHz (44.1 kHz where the device cannot).

The audio callback does the minimum (python-sounddevice's advice): count an input overflow,
hand a copy of the input block to the journal's queue, copy the next prepared output block.
Reading and resampling the song happens on a feeder thread; writing and fsync on the
journal's writer thread; nothing in the callback touches the disk or allocates much.

Gaps are counted three ways, because PortAudio 19.6 on ALSA/PulseAudio hardly ever reports
an input overflow even when audio is lost (measured: scripts/bench/record.py): input
overflows, streams the host dropped or hung and the recorder reopened, and ``lost_s``, the
wall time a stream ran minus the audio it delivered. Any of them flags the take ``dropouts``.

``python -m recorder.capture`` is a debug entry (and what the crash test and the benchmark
run): it records into a journal, printing one JSON progress line every 0.2 s.
"""
from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from devices.audio import call_bounded
from recorder import takes
from recorder.journal import (Journal, JournalError, JournalHeader, JournalWriter, finalize,
                              journal_dir, sidecar_for, sidecar_path, utc_now, write_json_durably)
from recorder.salvage import run_verify

RATES = (48000, 44100)
OUT_CHANNELS = 2                  # headset earphones; a mono song is sent to both ears
LATENCY_S = 0.3                   # generous: a busy 2-core PC must not overflow the input
BLOCK_S = 0.05                    # one callback = 50 ms
TAIL_S = 1.0                      # keep recording this long after the song ends (last note)
FEED_AHEAD_BLOCKS = 40            # the song is prepared 2 s ahead of the callback
XCORR_WINDOW_S = 10.0
XCORR_MAX_LAG_S = 2.0
XCORR_MIN_CONFIDENCE = 10.0       # peak over the correlation's spread: below this, no bleed heard
MAX_RESTARTS = 3                  # reopen a stream the host dropped, at most this often per take
START_GRACE_S = 4.0               # a stream may take this long to deliver its first block …
STALL_S = 4.0                     # … and after that, this long without a block is a stall
DEVICE_CALL_S = 5.0               # an open/start/abort/close that takes longer is hung
SETTLE_S = 1.0                    # a stream's first second may burst; time it after that
LOSS_TOLERANCE_S = takes.LOSS_TOLERANCE_S


class CaptureError(Exception):
    def __init__(self, code: str, zh: str, en: str):
        super().__init__(f"{zh} / {en}")
        self.code = code
        self.zh = zh
        self.en = en


# --- the device: the one place the lead points at devices.audio later -----------------------

def open_duplex_stream(*, samplerate: int, blocksize: int, callback: Callable, device: Any = None,
                       out_channels: int = OUT_CHANNELS, latency: float = LATENCY_S,
                       finished_callback: Callable | None = None):
    """A full-duplex int16 stream: mono in, ``out_channels`` out, on ``device`` (None = default)."""
    import sounddevice as sd

    return sd.Stream(samplerate=samplerate, blocksize=blocksize, device=device,
                     channels=(1, out_channels), dtype="int16", latency=latency,
                     callback=callback, finished_callback=finished_callback)


def _split(device: Any) -> tuple[Any, Any]:
    """``device`` as sounddevice takes it: one for both ways, or an (input, output) pair."""
    if isinstance(device, (tuple, list)):
        return device[0], device[1]
    return device, device


def choose_rate(device: Any = None, out_channels: int = OUT_CHANNELS) -> int:
    """48 kHz, else 44.1 kHz: the first the device accepts both ways."""
    import sounddevice as sd

    mic, ear = _split(device)
    for rate in RATES:
        try:
            sd.check_input_settings(device=mic, channels=1, dtype="int16", samplerate=rate)
            sd.check_output_settings(device=ear, channels=out_channels, dtype="int16",
                                     samplerate=rate)
        except Exception:  # PortAudio says "invalid sample rate" in several ways
            continue
        return rate
    raise CaptureError("no_rate",
                       "耳机麦克风不支持 48000 Hz 或 44100 Hz 录放音。请换一副耳机或在设备检查中确认音频设备。",
                       "The headset supports neither 48000 Hz nor 44100 Hz for playing and recording. "
                       "Try another headset, or run the equipment pre-check.")


def device_name(device: Any = None) -> str:
    """The names PortAudio gives the microphone and earphones, for the sidecar."""
    import sounddevice as sd

    names = []
    for way, dev in enumerate(_split(device)):
        try:
            names.append(str(sd.query_devices(dev if dev is not None else sd.default.device[way])["name"]))
        except Exception:  # a device that vanished: still say which one was asked for
            names.append(str(dev if dev is not None else "default"))
    return names[0] if names[0] == names[1] else " / ".join(names)


# --- the song: read in blocks on a feeder thread ---------------------------------------------

class Accompaniment:
    """Prepares the song as int16 blocks of exactly ``blocksize`` frames at the stream's rate."""

    def __init__(self, path: Path, *, rate: int, blocksize: int, out_channels: int = OUT_CHANNELS):
        import soundfile as sf

        self.path = Path(path)
        try:
            info = sf.info(str(self.path))
        except Exception as exc:
            raise CaptureError("bad_song", f"无法读取伴奏文件 {self.path.name}（{exc}）。请检查曲目文件。",
                               f"Cannot read the accompaniment {self.path.name} ({exc}). "
                               "Check the song file.") from exc
        self.file_rate = int(info.samplerate)
        self.file_channels = int(info.channels)
        self.rate = rate
        self.blocksize = blocksize
        self.out_channels = out_channels
        self.frames = int(round(info.frames * rate / self.file_rate))
        self.underruns = 0
        self.error: BaseException | None = None
        self._blocks: queue.Queue = queue.Queue(maxsize=FEED_AHEAD_BLOCKS)
        self._ended = False
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="accompaniment", daemon=True)

    @property
    def song_seconds(self) -> float:
        return self.frames / self.rate

    def start(self) -> "Accompaniment":
        self._thread.start()
        # Have the first blocks ready before the stream asks for them.
        deadline = time.monotonic() + 2.0
        while self._blocks.qsize() < min(4, FEED_AHEAD_BLOCKS) and self._thread.is_alive() \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._cancel.set()
        try:
            while True:
                self._blocks.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=2)

    def _put(self, block: np.ndarray | None) -> bool:
        while not self._cancel.is_set():
            try:
                self._blocks.put(block, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _feed(self) -> None:
        import soundfile as sf

        resampler = None
        if self.file_rate != self.rate:
            # soxr (librosa's own resampler) streams block by block with no seams.
            import soxr

            resampler = soxr.ResampleStream(self.file_rate, self.rate, self.file_channels,
                                            dtype="float32")
        pending = np.zeros((0, self.out_channels), dtype="int16")
        try:
            for chunk in sf.blocks(str(self.path), blocksize=self.blocksize * 8, dtype="float32",
                                   always_2d=True):
                if resampler is not None:
                    chunk = resampler.resample_chunk(chunk)
                pending = np.concatenate([pending, self._to_output(chunk)])
                while len(pending) >= self.blocksize:
                    if not self._put(pending[:self.blocksize]):
                        return
                    pending = pending[self.blocksize:]
            if resampler is not None:
                pending = np.concatenate([pending, self._to_output(
                    resampler.resample_chunk(np.zeros((0, self.file_channels), "float32"), last=True))])
            if len(pending):
                block = np.zeros((self.blocksize, self.out_channels), dtype="int16")
                block[:len(pending)] = pending
                self._put(block)
        except Exception as exc:  # a bad file mid-song: silence from here, reported after
            self.error = exc
        self._put(None)

    def _to_output(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype="float32").reshape(len(chunk), -1)
        if chunk.shape[1] == 1:
            chunk = np.repeat(chunk, self.out_channels, axis=1)
        elif chunk.shape[1] >= self.out_channels:
            chunk = chunk[:, :self.out_channels]
        else:
            chunk = np.pad(chunk, ((0, 0), (0, self.out_channels - chunk.shape[1])))
        return (np.clip(chunk, -1.0, 1.0) * 32767).astype("int16")

    def next_block(self) -> np.ndarray | None:
        """The next block for the callback; None once the song has ended. Never blocks."""
        if self._ended:
            return None
        try:
            block = self._blocks.get_nowait()
        except queue.Empty:
            self.underruns += 1
            return np.zeros((self.blocksize, self.out_channels), dtype="int16")
        if block is None:
            self._ended = True
        return block

    def reference(self, seconds: float) -> np.ndarray:
        """The song's first ``seconds`` as mono float at the stream's rate (for the offset)."""
        import soundfile as sf

        data, file_rate = sf.read(str(self.path), frames=int(seconds * self.file_rate),
                                  dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
        if file_rate != self.rate:
            import soxr

            mono = soxr.resample(mono, file_rate, self.rate)
        return mono


# --- the playback-to-capture offset -----------------------------------------------------------

def xcorr_offset(recorded: np.ndarray, reference: np.ndarray, rate: int, *,
                 max_lag_s: float = XCORR_MAX_LAG_S,
                 min_confidence: float = XCORR_MIN_CONFIDENCE) -> tuple[float | None, float]:
    """Where the accompaniment appears in the recording (its bleed from the earphones), in s.

    Pure: generalized cross-correlation with phase transform (GCC-PHAT) over lags
    0 … ``max_lag_s``. PHAT whitens both spectra, so a song's strong steady notes, which make
    a plain cross-correlation a row of near-equal peaks, do not hide the one true lag.
    Returns (offset or None, confidence); None when the peak does not stand out (no bleed
    heard, as with closed earphones), so the caller falls back on PortAudio's latency figure.
    """
    rec = np.asarray(recorded, dtype="float64").ravel()
    ref = np.asarray(reference, dtype="float64").ravel()
    if len(rec) == 0 or len(ref) == 0 or not np.any(ref) or not np.any(rec):
        return None, 0.0
    n = len(rec) + len(ref)
    size = 1 << (n - 1).bit_length()
    cross = np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size))
    cross /= np.abs(cross) + 1e-12 * np.abs(cross).max()
    corr = np.fft.irfft(cross, size)
    max_lag = min(int(max_lag_s * rate), len(rec) - 1)
    window = corr[:max_lag + 1]
    lag = int(np.argmax(window))
    spread = float(np.std(window)) or 1e-12
    confidence = float(window[lag] / spread)
    if confidence < min_confidence:
        return None, confidence
    return lag / rate, confidence


# --- the recording loop -------------------------------------------------------------------------

@dataclass
class CaptureResult:
    frames: int
    rate: int
    overflow_count: int
    output_underruns: int
    stopped_by: str                       # song_end | stop | max_seconds | disk_error | device_error
    device: str
    started_at: str
    ended_at: str
    offset_latency_s: float | None = None
    offset_xcorr_s: float | None = None
    offset_xcorr_confidence: float = 0.0
    offset_method: str | None = None      # xcorr | time_info | stream_latency
    accompaniment_rate: int | None = None
    error: str | None = None
    stream_restarts: int = 0              # the host dropped or stalled the stream this often
    lost_s: float = 0.0                   # wall time the stream ran without delivering audio
    segments: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def dropout_count(self) -> int:
        """Every gap in the audio: input overflows, stream restarts, and a silent loss (audio
        PulseAudio dropped without PortAudio reporting an overflow: measured, scripts/bench)."""
        return self.overflow_count + self.stream_restarts + (self.lost_s > LOSS_TOLERANCE_S)

    @property
    def offsets(self) -> dict[str, Any]:
        return {"latency_s": self.offset_latency_s, "xcorr_s": self.offset_xcorr_s,
                "xcorr_confidence": round(self.offset_xcorr_confidence, 2),
                "method": self.offset_method,
                "note": "capture index = accompaniment index + offset × rate; "
                        "xcorr is measured on the earphone bleed when it is audible, "
                        "time_info from PortAudio's DAC/ADC times, stream_latency from the "
                        "stream's reported input + output latency"}


class Recorder:
    """Runs a full-duplex stream into a :class:`JournalWriter` until the song ends or stop.

    Debian's PortAudio 19.6 through ALSA's pulse plugin can stall or drop a stream when the
    machine is very busy (PortAudio issue #758: ``PaAlsaStream_WaitForFrames failed``), and
    USB headsets can glitch. The recorder then reopens the stream and carries on with the
    same journal (at most ``max_restarts`` times), so the student's take is not lost; each
    restart is a gap, counted and flagged as ``dropouts`` like an input overflow.
    """

    def __init__(self, writer: JournalWriter, *, rate: int, accompaniment: Path | None = None,
                 max_seconds: float | None = None, device: Any = None, latency: float = LATENCY_S,
                 tail_s: float = TAIL_S, max_restarts: int = MAX_RESTARTS,
                 stall_s: float = STALL_S, device_call_s: float = DEVICE_CALL_S):
        if accompaniment is None and not max_seconds:
            raise CaptureError("no_end", "没有伴奏时必须指定录音时长（--seconds）。",
                               "Without an accompaniment the recording needs a length (--seconds).")
        self.writer = writer
        self.rate = rate
        self.blocksize = int(rate * BLOCK_S)
        self.device = device
        self.latency = latency
        self.max_restarts = max_restarts
        self.stall_s = stall_s
        self.device_call_s = device_call_s
        self.song = (Accompaniment(accompaniment, rate=rate, blocksize=self.blocksize)
                     if accompaniment is not None else None)
        limit = []
        if self.song is not None:
            limit.append(self.song.frames + int(tail_s * rate))
        if max_seconds:
            limit.append(int(max_seconds * rate))
        self.limit_frames = min(limit)
        self._limit_reason = ("song_end" if self.song is not None
                              and self.limit_frames == limit[0] else "max_seconds")
        self.captured = 0
        self.overflows = 0
        self.restarts = 0
        self.segments: list[dict[str, Any]] = []   # one per stream opened: where it started
        self._time_offsets: list[float] = []
        self._done = threading.Event()
        self._limit_hit = False
        self._last_callback = 0.0
        self._segment_frames = 0
        self._clock: list[tuple[float, int]] = []   # (monotonic, segment frames): first, last
        self._lost_s = 0.0
        self._stream_latency: Any = None
        self._generation = 0               # which stream is current; older ones are stale
        self._abandoned: list[Any] = []    # hung streams, kept referenced, never touched again

    # The callback: runs on PortAudio's thread; minimum work, never blocks, never raises
    # anything but CallbackStop.
    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        import sounddevice as sd

        now = self._last_callback = time.monotonic()
        if status.input_overflow:
            self.overflows += 1
        self.writer.put(indata.copy())
        self.captured += frames
        self._segment_frames += frames
        if self._segment_frames >= SETTLE_S * self.rate:
            # Two (time, frames) points per stream: the first once settled, and the latest.
            if not self._clock:
                self._clock.append((now, self._segment_frames))
            else:
                self._clock[1:] = [(now, self._segment_frames)]
        if len(self._time_offsets) < 64:
            self._time_offsets.append(time_info.outputBufferDacTime - time_info.inputBufferAdcTime)
        block = self.song.next_block() if self.song is not None else None
        if block is None or len(block) != frames:
            outdata.fill(0)
        else:
            outdata[:] = block
        if self.captured >= self.limit_frames:
            self._limit_hit = True
            raise sd.CallbackStop

    def run(self, stop: threading.Event | None = None,
            progress: Callable[["Recorder"], None] | None = None,
            progress_every: float = 0.2) -> CaptureResult:
        stop = stop or threading.Event()
        started_at = utc_now()
        if self.song is not None:
            self.song.start()
        try:
            while True:
                stopped_by = self._run_stream(stop, progress, progress_every)
                if stopped_by != "device_lost":
                    break
                if self.restarts >= self.max_restarts:
                    stopped_by = "device_error"
                    break
                self.restarts += 1
        finally:
            if self.song is not None:
                self.song.stop()
        result = CaptureResult(
            frames=self.captured, rate=self.rate, overflow_count=self.overflows,
            output_underruns=self.song.underruns if self.song else 0,
            stopped_by=stopped_by, device=device_name(self.device),
            started_at=started_at, ended_at=utc_now(), stream_restarts=self.restarts,
            lost_s=round(self._lost_s, 3),
            segments=self.segments,
            accompaniment_rate=self.song.file_rate if self.song else None)
        result.offset_latency_s, result.offset_method = self._latency_offset()
        if self.writer.error is not None:
            result.error = f"{type(self.writer.error).__name__}: {self.writer.error}"
        if self.song is not None and self.song.error is not None:
            result.notes.append(f"accompaniment stopped early: {self.song.error}")
        return result

    def _run_stream(self, stop: threading.Event, progress, progress_every: float) -> str:
        """One stream from open to close; returns why it ended (``device_lost`` = try again)."""
        self._done.clear()
        self._limit_hit = False
        start_frame = self.captured
        self._segment_frames = 0      # reset before start: the callback runs from then on
        self._clock = []
        self._generation += 1
        generation = self._generation

        def callback(indata, outdata, frames, time_info, status):
            if generation != self._generation:   # a stream given up for hung woke up
                import sounddevice as sd

                raise sd.CallbackAbort
            self._callback(indata, outdata, frames, time_info, status)

        def finished():
            if generation == self._generation:
                self._done.set()

        def open_and_start():
            stream = open_duplex_stream(samplerate=self.rate, blocksize=self.blocksize,
                                        callback=callback, device=self.device,
                                        latency=self.latency, finished_callback=finished)
            stream.start()
            return stream

        in_time, stream = call_bounded(open_and_start, self.device_call_s)
        if not in_time or isinstance(stream, Exception):
            self._generation += 1             # whatever opens late is stale from birth
            if not self.segments:  # never started: the headset is not there at all
                detail = stream if in_time else f"no answer in {self.device_call_s:g} s"
                raise CaptureError("device_error",
                                   f"无法打开耳机麦克风（{detail}）。请检查耳机是否插好，然后重试。",
                                   f"Cannot open the headset ({detail}). Check the headset is "
                                   "plugged in, then try again.") from (
                                       stream if isinstance(stream, Exception) else None)
            time.sleep(self.stall_s / 4)
            return "device_lost"
        self.segments.append({"start_frame": start_frame, "at": utc_now()})
        if self._stream_latency is None:
            self._stream_latency = stream.latency
        # PortAudio's ALSA start-up takes 1-2 s before the first real block.
        self._last_callback = time.monotonic() + START_GRACE_S
        next_progress = time.monotonic()
        reason = None
        try:
            while reason is None:
                if self._done.wait(0.05):
                    reason = self._limit_reason if self._limit_hit else "device_lost"
                elif stop.is_set():
                    reason = "stop"
                elif self.writer.failed.is_set():
                    reason = "disk_error"
                elif time.monotonic() - self._last_callback > self.stall_s:
                    reason = "device_lost"
                if progress is not None and time.monotonic() >= next_progress:
                    progress(self)
                    next_progress += progress_every
        finally:
            self._lost_s += self._segment_loss()
            self._generation += 1     # from here on its callbacks do nothing
            self._shut(stream, gently=reason in ("song_end", "max_seconds"))
        return reason

    def _shut(self, stream, gently: bool) -> None:
        """Stop and close a stream; one that hangs doing so is abandoned, not waited for."""
        def shut():
            try:
                # After CallbackStop every input block has been delivered; otherwise abort,
                # since stop() would wait on a stalled stream.
                stream.stop() if gently else stream.abort()
            finally:
                stream.close()

        in_time, _ = call_bounded(shut, self.device_call_s)
        if not in_time:
            self._abandoned.append(stream)

    def _segment_loss(self) -> float:
        """Wall time this stream ran minus the audio it delivered (a silent loss), in s."""
        if len(self._clock) < 2:
            return 0.0
        (t0, f0), (t1, f1) = self._clock
        return max(0.0, (t1 - t0) - (f1 - f0) / self.rate)

    def _latency_offset(self) -> tuple[float | None, str | None]:
        if self.song is None:
            return None, None
        # Skip the first callbacks: while the stream starts, the ALSA plugin reports times
        # from before its buffers are primed.
        usable = [d for d in self._time_offsets[4:] if 0 < d < 5]
        if usable:
            return float(np.median(usable)), "time_info"
        if self._stream_latency is None:
            return None, None
        try:
            return float(sum(self._stream_latency)), "stream_latency"
        except TypeError:
            return float(self._stream_latency), "stream_latency"

    def measure_xcorr(self, journal: Journal, result: CaptureResult) -> None:
        """Refine the offset from the bleed of the song into the microphone, when audible."""
        if self.song is None or result.frames == 0:
            return
        frames = min(journal.frames_on_disk(), int((XCORR_WINDOW_S + XCORR_MAX_LAG_S) * self.rate))
        recorded = journal.read_frames(0, frames)[:, 0].astype("float32") / 32768
        reference = self.song.reference(XCORR_WINDOW_S)
        offset, confidence = xcorr_offset(recorded, reference, self.rate)
        result.offset_xcorr_s = offset
        result.offset_xcorr_confidence = confidence
        if offset is not None:
            result.offset_method = "xcorr"


# --- a whole take: the flow the CLI and the /sing page call -----------------------------------

Verify = Callable[[Path], dict]


@dataclass
class TakeOutcome:
    take: takes.Take
    sidecar: dict[str, Any]
    capture: CaptureResult

    def to_json(self) -> dict[str, Any]:
        return {"take": asdict(self.take), "sidecar": self.sidecar}


def kept_path(data_dir: Path, sitting_id: str, student_code: str, attempt: int, fmt: str) -> Path:
    """``<data>/recordings/<sitting>/<student>-<attempt>.flac``: codes only, never names."""
    return Path(data_dir) / "recordings" / sitting_id / f"{student_code}-{attempt}.{fmt}"


def _with_dropouts(found: dict, overflows: int, restarts: int = 0, lost_s: float = 0.0) -> dict:
    """An input overflow, a stream restart or audio lost on the way means part of the take
    is missing: flag ``dropouts`` even if what is left sounds fine, and never let such a
    take be accepted as it is."""
    found = dict(found)
    reasons = list(found.get("reasons") or [])
    lost = lost_s > LOSS_TOLERANCE_S
    if (overflows or restarts or lost) and not any(r.get("code") == "dropouts" for r in reasons):
        zh, en = [], []
        if overflows:
            zh.append(f"有 {overflows} 次声音数据丢失（电脑太忙）")
            en.append(f"{overflows} pieces of audio were lost (the computer was too busy)")
        if restarts:
            zh.append(f"耳机连接中断 {restarts} 次")
            en.append(f"the headset connection dropped {restarts} times")
        if lost:
            zh.append(f"约 {lost_s:.1f} 秒声音没有录到")
            en.append(f"about {lost_s:.1f} s of sound never arrived")
        reasons.append({"code": "dropouts",
                        "zh": "录音过程中" + "，".join(zh) + "。请关闭其他程序、检查耳机后重录。",
                        "en": "While recording, " + "; ".join(en)
                              + ". Close other programs, check the headset and record again."})
        if found.get("verdict") == "accept":
            found["verdict"] = "retake"
    found["reasons"] = reasons
    return found


def record_take(db, *, data_dir: Path, sitting_id: str, student_code: str, verify: Verify,
                song_id: str | None = None, accompaniment: Path | None = None,
                max_seconds: float | None = None, fmt: str = "flac",
                retakes: int = takes.DEFAULT_RETAKES, policy: str = "last_accepted",
                device: Any = None, stop: threading.Event | None = None,
                progress: Callable[[Recorder], None] | None = None) -> TakeOutcome:
    """Record, keep and verify one take. The caller has checked the roster and the sitting."""
    attempt = takes.next_attempt(db, sitting_id, student_code, retakes=retakes)
    rate = choose_rate(device)
    take_id = uuid.uuid4().hex
    target = kept_path(data_dir, sitting_id, student_code, attempt, fmt)
    header = JournalHeader(take_id=take_id, rate=rate, target=str(target), format=fmt,
                           student=student_code, sitting=sitting_id, song=song_id,
                           attempt=attempt, device=device_name(device))
    journal = Journal(journal_dir(data_dir), header)
    takes.begin(db, take_id=take_id, sitting_id=sitting_id, student_code=student_code,
                attempt=attempt, started_at=header.started_at, song_id=song_id,
                sample_rate=rate, device=header.device, format=fmt)
    writer = JournalWriter(journal).open()
    try:
        recorder = Recorder(writer, rate=rate, accompaniment=accompaniment,
                            max_seconds=max_seconds, device=device)
        result = recorder.run(stop, progress)
    except BaseException:
        writer.close()
        _fail_if_empty(db, journal, policy)
        raise
    writer.close()
    disk_error = CaptureError(
        "disk_error", f"录音无法写入磁盘（{result.error}）。已录下的部分会在下次启动时自动修复。请检查磁盘空间后重录。",
        f"The recording could not be written to disk ({result.error}). What was recorded is repaired "
        "at the next start. Check the free disk space, then record again.")
    if journal.frames_on_disk() == 0:
        _fail_if_empty(db, journal, policy)
        if result.stopped_by == "disk_error":
            raise disk_error
        raise CaptureError("no_audio", "耳机麦克风没有送来任何声音数据。请检查耳机是否插好，运行设备检查后重录。",
                           "The headset microphone delivered no audio at all. Check the headset is "
                           "plugged in, run the equipment pre-check, then record again.")
    if result.stopped_by == "disk_error":
        raise disk_error   # the journal stays: salvage keeps every frame that reached the disk
    recorder.measure_xcorr(journal, result)
    kept = finalize(journal)
    measured = run_verify(verify, kept.path)
    found = _with_dropouts(measured, result.overflow_count, result.stream_restarts, result.lost_s)
    sidecar = sidecar_for(header, kept, interrupted=False, stopped_by=result.stopped_by,
                          overflow_count=result.overflow_count,
                          stream_restarts=result.stream_restarts, lost_s=result.lost_s,
                          segments=result.segments, output_underruns=result.output_underruns,
                          accompaniment_rate=result.accompaniment_rate,
                          offsets=result.offsets, ended_at=result.ended_at,
                          verdict=found.get("verdict"), reasons=found.get("reasons", []),
                          metrics=measured)   # the verifier's own words; verdict is the station's
    write_json_durably(sidecar_path(kept.path), sidecar)
    take = takes.keep(db, take_id, policy=policy, path=str(kept.path), sha256=kept.sha256,
                      channels=kept.channels, frames=kept.frames, duration_s=kept.duration_s,
                      accompaniment_rate=result.accompaniment_rate,
                      offset_latency_s=result.offset_latency_s,
                      offset_xcorr_s=result.offset_xcorr_s, offset_method=result.offset_method,
                      overflow_count=result.overflow_count,
                      stream_restarts=result.stream_restarts, lost_s=result.lost_s,
                      verdict=found.get("verdict"),
                      reasons=found.get("reasons", []), ended_at=result.ended_at)
    journal.discard()
    return TakeOutcome(take=take, sidecar=sidecar, capture=result)


def _fail_if_empty(db, journal: Journal, policy: str) -> None:
    if journal.frames_on_disk() == 0:
        takes.mark_failed(db, journal.header.take_id, policy=policy, frames=0, ended_at=utc_now())
        journal.discard()


# --- debug entry: python -m recorder.capture --------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recorder.capture",
                                     description="Record into a crash-safe journal (debug/bench).")
    parser.add_argument("--journal-dir", type=Path, required=True)
    parser.add_argument("--target", type=Path, required=True, help="the kept .flac/.wav")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--accompaniment", type=Path, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--latency", type=float, default=LATENCY_S)
    parser.add_argument("--keep-journal", action="store_true",
                        help="do not finalize: leave the journal (as a crash would)")
    args = parser.parse_args(argv)
    try:
        rate = choose_rate(args.device)
        header = JournalHeader(take_id=uuid.uuid4().hex, rate=rate, target=str(args.target),
                               format=args.target.suffix.lstrip(".") or "flac",
                               student="DEBUG", sitting="DEBUG", device=device_name(args.device))
        journal = Journal(args.journal_dir, header)
        writer = JournalWriter(journal).open()

        def report(rec: Recorder) -> None:
            print(json.dumps({"t": time.time(), "captured": rec.captured,
                              "written": writer.frames_written, "overflows": rec.overflows}),
                  flush=True)

        result = Recorder(writer, rate=rate, accompaniment=args.accompaniment,
                          max_seconds=args.seconds, device=args.device,
                          latency=args.latency).run(progress=report)
        writer.close()
        out: dict[str, Any] = {"result": asdict(result), "journal": str(journal.header_path)}
        if not args.keep_journal:
            kept = finalize(journal)
            journal.discard()
            out.update(path=str(kept.path), sha256=kept.sha256, frames=kept.frames)
        print(json.dumps(out), flush=True)
        return 0
    except (CaptureError, JournalError) as exc:
        print(f"{exc.zh}\n{exc.en}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
