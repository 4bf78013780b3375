"""The recording loop: one full-duplex stream plays the accompaniment and records the microphone.

One stream means one clock: the earphones and the microphone cannot drift apart, and the
playback-to-capture offset measured at the start holds to the end (short of a stream the
host dropped and the recorder reopened: see :class:`Recorder`). The stream is mono in,
stereo out, 16-bit, at 48 kHz (44.1 kHz where the device cannot).

Every PortAudio call, the rate check and the stall watch are ``devices.audio``'s. The
recorder's callback does the minimum (python-sounddevice's advice): hand a copy of the input
block to the journal's queue and copy out the next block the song's feeder prepared; nothing
in it touches the disk or allocates much.

Gaps are counted three ways, because PortAudio 19.6 on ALSA/PulseAudio hardly ever reports
an input overflow even when audio is lost (measured: scripts/bench/record.py): input
overflows, streams the host dropped or hung and the recorder reopened, and ``lost_s``, the
wall time a stream ran minus the audio it delivered. Any of them flags the take ``dropouts``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from devices import audio
from recorder import takes
from recorder.accompaniment import OUT_CHANNELS, Accompaniment
from recorder.analysis.offset import XCORR_MAX_LAG_S, XCORR_WINDOW_S, xcorr_offset
from recorder.journal import Journal, JournalWriter, utc_now
from recorder.takes import CaptureError

RATES = (48000, 44100)
LATENCY_S = 0.3                   # generous: a busy 2-core PC must not overflow the input
BLOCK_S = 0.05                    # one callback = 50 ms
TAIL_S = 1.0                      # keep recording this long after the song ends (last note)
MAX_RESTARTS = 3                  # reopen a stream the host dropped, at most this often per take
START_GRACE_S = 4.0               # a stream may take this long to deliver its first block …
STALL_S = 4.0                     # … and after that, this long without a block is a stall
DEVICE_CALL_S = 5.0               # an open/start/abort/close that takes longer is hung
LOSS_TOLERANCE_S = takes.LOSS_TOLERANCE_S


def choose_rate(device: Any = None, out_channels: int = OUT_CHANNELS) -> int:
    """48 kHz, else 44.1 kHz: the first the device accepts both ways."""
    mic, ear = audio.split_device(device)
    rates = audio.duplex_rates(mic, ear, RATES, 1, out_channels, "int16")
    if not rates:
        raise CaptureError("no_rate",
                           "耳机麦克风不支持 48000 Hz 或 44100 Hz 录放音。请换一副耳机或在设备检查中确认音频设备。",
                           "The headset supports neither 48000 Hz nor 44100 Hz for playing and recording. "
                           "Try another headset, or run the equipment pre-check.")
    return rates[0]


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
        self.restarts = 0
        self.segments: list[dict[str, Any]] = []   # one per stream opened: where it started
        self._streams: list[audio.DuplexStream] = []   # every stream opened, for its counts
        self._abandoned: list[audio.DuplexStream] = []  # hung while closing: given up

    @property
    def overflows(self) -> int:
        return sum(s.stats.input_overflows for s in self._streams)

    # Runs on PortAudio's thread (through devices.audio): minimum work, never blocks.
    def _callback(self, indata, outdata, frames, time_info, status) -> bool:
        self.writer.put(indata.copy())
        self.captured += frames
        block = self.song.next_block() if self.song is not None else None
        if block is None or len(block) != frames:
            outdata.fill(0)
        else:
            outdata[:] = block
        return self.captured >= self.limit_frames     # True: the last block, stop

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
            stopped_by=stopped_by, device=audio.device_names(self.device),
            started_at=started_at, ended_at=utc_now(), stream_restarts=self.restarts,
            lost_s=round(sum(s.stats.lost_s(self.rate) for s in self._streams), 3),
            segments=self.segments,
            accompaniment_rate=self.song.file_rate if self.song else None)
        result.offset_latency_s, result.offset_method = self._latency_offset()
        if self.writer.error is not None:
            result.error = f"{type(self.writer.error).__name__}: {self.writer.error}"
        if self.song is not None and self.song.error is not None:
            result.notes.append(f"accompaniment stopped early: {self.song.error}")
        return result

    def _open(self) -> audio.DuplexStream | None:
        """A started stream, or None when the device would not open (retry later)."""
        mic, ear = audio.split_device(self.device)
        stream = audio.DuplexStream(mic, ear, self.rate, 1, OUT_CHANNELS,
                                    blocksize=self.blocksize, dtype="int16",
                                    latency=self.latency, handler=self._callback)
        try:
            return stream.open(self.device_call_s, start_grace_s=START_GRACE_S)
        except audio.AudioDeviceError as exc:
            if not self.segments:  # never started: the headset is not there at all
                raise CaptureError("device_error",
                                   f"无法打开耳机麦克风（{exc.zh}）。请检查耳机是否插好，然后重试。",
                                   f"Cannot open the headset ({exc.en}). Check the headset is "
                                   "plugged in, then try again.") from exc
            time.sleep(self.stall_s / 4)
            return None

    def _run_stream(self, stop: threading.Event, progress, progress_every: float) -> str:
        """One stream from open to close; returns why it ended (``device_lost`` = try again)."""
        start_frame = self.captured
        stream = self._open()
        if stream is None:
            return "device_lost"
        self._streams.append(stream)
        self.segments.append({"start_frame": start_frame, "at": utc_now()})

        def should_stop() -> str | None:
            if stop.is_set():
                return "stop"
            return "disk_error" if self.writer.failed.is_set() else None

        tick = (lambda: progress(self)) if progress is not None else None
        ended = "died"
        try:
            ended = audio.watch(stream, self.stall_s, should_stop, tick, progress_every)
        finally:
            try:
                stream.close(self.device_call_s, gently=ended == "done")
            except audio.AudioDeviceError:   # hung while closing: abandoned, not waited for
                self._abandoned.append(stream)
        if ended == "done":
            return self._limit_reason
        return "device_lost" if ended in ("died", "stalled") else ended

    def _latency_offset(self) -> tuple[float | None, str | None]:
        if self.song is None or not self._streams:
            return None, None
        first = self._streams[0]
        # Skip the first callbacks: while the stream starts, the ALSA plugin reports times
        # from before its buffers are primed.
        usable = [d for d in first.stats.dac_minus_adc[4:] if 0 < d < 5]
        if usable:
            return float(np.median(usable)), "time_info"
        latency = first.latency
        if latency is None:
            return None, None
        try:
            return float(sum(latency)), "stream_latency"
        except TypeError:
            return float(latency), "stream_latency"

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
