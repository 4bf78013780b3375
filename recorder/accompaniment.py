"""The accompaniment, prepared for the recorder's stream: read in blocks on a feeder thread.

The audio callback only takes the next prepared block (``next_block``, never blocks);
reading and resampling the song happen here, ``FEED_AHEAD_BLOCKS`` ahead of it.
"""
from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import numpy as np

from recorder.takes import CaptureError

OUT_CHANNELS = 2                  # headset earphones; a mono song is sent to both ears
FEED_AHEAD_BLOCKS = 40            # the song is prepared 2 s ahead of the callback


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
