"""Reading a take from disk, telling a damaged file from a good one.

libsndfile (through soundfile) reads most formats, but it silently accepts a WAV whose
data chunk is cut short (it returns what is there), so a RIFF header is checked here
against the file's real length: a truncated take must be reported, not half-verified.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


MAX_CHANNELS = 32


class UnreadableAudio(Exception):
    """The file is missing, not audio, or truncated. The message is for logs (no content)."""


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, shape (frames, channels)
    rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])


def load(path: str | Path) -> Audio:
    import soundfile as sf

    path = Path(path)
    try:
        _check_riff(path)
        with sf.SoundFile(str(path)) as f:
            declared = f.frames
            data = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except UnreadableAudio:
        raise
    except (OSError, RuntimeError, ValueError, EOFError, struct.error) as exc:
        # soundfile raises LibsndfileError (a RuntimeError) for undecodable data
        raise UnreadableAudio(f"{type(exc).__name__}: {exc}") from exc
    if len(data) < declared:
        raise UnreadableAudio(f"truncated: {len(data)} of {declared} frames decoded")
    return Audio(samples=data, rate=int(rate))


def as_audio(samples, rate: int) -> Audio:
    """Samples from a capture (int16 or float, mono or (frames, channels)) as float32."""
    a = np.asarray(samples)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] > MAX_CHANNELS:
        # (channels, frames) passed the wrong way round would read as thousands of channels
        raise ValueError(f"samples must be 1-D or (frames, channels), got shape {a.shape}")
    if a.dtype.kind == "i":
        a = a.astype(np.float32) / float(2 ** (8 * a.dtype.itemsize - 1))
    elif a.dtype.kind == "u" and a.dtype.itemsize == 1:  # 8-bit PCM is unsigned
        a = (a.astype(np.float32) - 128.0) / 128.0
    else:
        a = a.astype(np.float32, copy=False)
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    return Audio(samples=a, rate=int(rate))


def _check_riff(path: Path) -> None:
    """Raise if a RIFF/WAVE file's data chunk claims more bytes than the file holds.

    A size of 0xFFFFFFFF is the streaming convention (length unknown): libsndfile reads
    such a file to its end, so it is left alone. A size of 0 with sound after it is a
    recording whose header was never finalised (the recorder crashed): libsndfile would
    read it as empty, and "silent" would be a lie, so it is reported as unreadable
    (``station sing salvage`` repairs such files).
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_len = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                if chunk_len == 0xFFFFFFFF:
                    return
                if chunk_len == 0 and size > pos + 8:
                    raise UnreadableAudio(
                        f"header not finalised: data chunk says 0 bytes, {size - pos - 8} present")
                if pos + 8 + chunk_len > size:
                    raise UnreadableAudio(
                        f"truncated: data chunk declares {chunk_len} bytes, "
                        f"{size - pos - 8} present")
                return
            pos += 8 + chunk_len + (chunk_len & 1)  # chunks are word-aligned
        raise UnreadableAudio("WAVE file has no data chunk")
