"""Crash-safe writing of a take while it is being sung.

Format choice: **raw PCM (s16le, interleaved) plus a JSON header file written first**, not a
WAV whose header is rewritten now and then. Why:

- the PCM file is only ever appended to, so a ``kill -9`` or a power cut can at worst leave a
  torn last frame, which salvage cuts off; a WAV header rewrite is a write in place at
  offset 0 that a power cut can tear, and a header that is stale by up to one period makes
  every reader (libsndfile included) stop short or refuse the file;
- the header holds everything salvage needs (rate, channels, sample format, who and where)
  and is written once, atomically and durably, before the first sample;
- the number of frames is the file's size divided by the frame size, so nothing has to be
  kept in step with the audio.

The writer thread (not the audio callback) does every write and ``fsync``: the callback
only hands a copied block to :meth:`JournalWriter.put` (a ``queue.put_nowait``), as
python-sounddevice recommends. The journal is fsynced at least every ``fsync_interval``
seconds (0.5 s), so a power cut loses at most that plus one block, well within the 1 s the
issue allows; ``kill -9`` loses only what was still in the queue (the page cache survives).

At the end :func:`finalize` turns the journal into the kept FLAC or WAV atomically (temp
file, fsync, rename, fsync of the directory) and returns its SHA-256.

A journal that is being written holds an exclusive lock (``<id>.lock``), so a salvage run
while a take is recording (``station sing salvage`` next to ``station serve``) leaves it
alone; the lock dies with the process, so after ``kill -9`` the journal is salvageable.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qmbase.platform import fsync_dir, make_private_dir, replace_durably, try_lock, unlock
from qmbase.refusal import Refusal

HEADER_SUFFIX = ".journal.json"
PCM_SUFFIX = ".pcm"
LOCK_SUFFIX = ".lock"
SAMPLE_FORMAT = "s16le"          # what PortAudio gives with dtype="int16", and FLAC's PCM_16
SAMPLE_BYTES = 2
FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}
_CONVERT_BLOCK = 1 << 16          # frames per read while converting: bounded memory for long takes


class JournalError(Refusal):
    """A journal could not be written or read; ``zh``/``en`` say what happened and what to do."""

    code, exit_code = "journal", 1


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class JournalHeader:
    """Written before the first sample; everything salvage needs to rebuild the take.

    Only codes and ids: no student name ever goes into a journal, sidecar or log.
    """
    take_id: str
    rate: int
    target: str                  # absolute path of the kept file (.flac / .wav)
    format: str = "flac"
    channels: int = 1
    sample_format: str = SAMPLE_FORMAT
    student: str = ""
    sitting: str = ""
    song: str | None = None
    attempt: int | None = None
    device: str = ""
    started_at: str = field(default_factory=utc_now)
    version: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], source: Path) -> "JournalHeader":
        try:
            header = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:  # a required field missing
            raise JournalError(f"录音日志头缺少字段：{source.name}（{exc}）。请保留该文件并联系信息中心。",
                               f"Recording journal header is missing a field: {source.name} ({exc}). "
                               "Keep the file and call the information center.") from exc
        if header.sample_format != SAMPLE_FORMAT or header.format not in FORMATS \
                or int(header.channels) < 1 or int(header.rate) <= 0:
            raise JournalError(
                f"录音日志头内容无效：{source.name}（rate={header.rate}, channels={header.channels}, "
                f"format={header.format}）。请保留该文件并联系信息中心。",
                f"Recording journal header is invalid: {source.name} (rate={header.rate}, "
                f"channels={header.channels}, format={header.format}). "
                "Keep the file and call the information center.")
        return header


def write_json_durably(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that ``path`` holds either the old or the whole new document, never half."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2)
        f.flush()
        os.fsync(f.fileno())
    replace_durably(tmp, path)


class Journal:
    """The files of one take on disk: ``<id>.journal.json``, ``<id>.pcm`` and ``<id>.lock``."""

    def __init__(self, directory: Path, header: JournalHeader):
        self.directory = Path(directory)
        self.header = header

    @property
    def header_path(self) -> Path:
        return self.directory / f"{self.header.take_id}{HEADER_SUFFIX}"

    @property
    def pcm_path(self) -> Path:
        return self.directory / f"{self.header.take_id}{PCM_SUFFIX}"

    @property
    def lock_path(self) -> Path:
        return self.directory / f"{self.header.take_id}{LOCK_SUFFIX}"

    @property
    def frame_bytes(self) -> int:
        return SAMPLE_BYTES * int(self.header.channels)

    def frames_on_disk(self) -> int:
        """Whole frames that reached the file; a torn last frame is not counted."""
        try:
            return self.pcm_path.stat().st_size // self.frame_bytes
        except FileNotFoundError:
            return 0

    @classmethod
    def load(cls, header_path: Path) -> "Journal":
        header_path = Path(header_path)
        try:
            data = json.loads(header_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise JournalError(f"无法读取录音日志头：{header_path.name}（{exc}）。请保留该文件并联系信息中心。",
                               f"Cannot read the recording journal header {header_path.name} ({exc}). "
                               "Keep the file and call the information center.") from exc
        if not isinstance(data, dict):
            raise JournalError(f"录音日志头格式错误：{header_path.name}。请保留该文件并联系信息中心。",
                               f"Recording journal header is not a JSON object: {header_path.name}. "
                               "Keep the file and call the information center.")
        return cls(header_path.parent, JournalHeader.from_json(data, header_path))

    def is_live(self) -> bool:
        """True while a writer (in any process) holds this journal's lock."""
        if not self.lock_path.exists():
            return False
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            if try_lock(fd):
                unlock(fd)
                return False
            return True
        finally:
            os.close(fd)

    def read_frames(self, start: int, count: int) -> np.ndarray:
        """Frames ``[start, start+count)`` as int16 of shape (n, channels)."""
        channels = int(self.header.channels)
        with open(self.pcm_path, "rb") as f:
            f.seek(start * self.frame_bytes)
            raw = f.read(count * self.frame_bytes)
        usable = len(raw) - len(raw) % self.frame_bytes
        return np.frombuffer(raw[:usable], dtype="<i2").reshape(-1, channels)

    def discard(self) -> None:
        """Remove the journal once its take is kept (file, sidecar and row all written)."""
        for path in (self.pcm_path, self.header_path, self.lock_path):
            path.unlink(missing_ok=True)
        fsync_dir(self.directory)


class JournalWriter:
    """Appends PCM blocks from a queue to the journal on its own thread, fsyncing regularly.

    ``put`` is the only method the audio callback calls: it never blocks and never touches
    the disk. A failed write (disk full, card pulled) is kept in :attr:`error` and
    :attr:`failed` is set, so the recorder can stop and tell the proctor.
    """

    _STOP = object()

    def __init__(self, journal: Journal, *, fsync_interval: float = 0.5):
        self.journal = journal
        self.fsync_interval = fsync_interval
        self.frames_written = 0
        self.error: BaseException | None = None
        self.failed = threading.Event()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None

    def open(self) -> "JournalWriter":
        journal = self.journal
        try:
            make_private_dir(journal.directory)  # children's voices: owner only
            self._lock_fd = os.open(journal.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._cannot_create(exc) from exc
        if not try_lock(self._lock_fd):
            os.close(self._lock_fd)
            self._lock_fd = None
            raise JournalError(f"录音 {journal.header.take_id} 正在被另一个程序写入。",
                               f"Take {journal.header.take_id} is being written by another program.")
        try:
            # The header first and durably: a PCM file without its header could not be rebuilt.
            write_json_durably(journal.header_path, journal.header.to_json())
            # Unbuffered: each block goes to the OS at once, so kill -9 loses only the queue.
            self._file = open(journal.pcm_path, "ab", buffering=0)
            fsync_dir(journal.directory)
        except OSError as exc:
            self.close()
            raise self._cannot_create(exc) from exc
        self._thread = threading.Thread(target=self._run, name=f"journal-{journal.header.take_id}",
                                        daemon=True)
        self._thread.start()
        return self

    def _cannot_create(self, exc: OSError) -> JournalError:
        where = self.journal.directory
        return JournalError(f"无法在 {where} 创建录音文件（{exc}）。请检查磁盘空间和权限。",
                            f"Cannot create the recording in {where} ({exc}). "
                            "Check the free disk space and permissions.")

    def put(self, block: np.ndarray) -> None:
        """Called from the audio callback with a block it already copied."""
        self._queue.put_nowait(block)

    def _run(self) -> None:
        fd = self._file.fileno()
        last_sync = time.monotonic()
        dirty = False
        while True:
            try:
                item = self._queue.get(timeout=self.fsync_interval)
            except queue.Empty:
                item = None
            if item is self._STOP:
                break
            if item is not None and not self.failed.is_set():
                try:
                    self._write(np.ascontiguousarray(item, dtype="<i2"))
                    dirty = True
                except OSError as exc:
                    self.error = exc
                    self.failed.set()
            if dirty and time.monotonic() - last_sync >= self.fsync_interval \
                    and not self.failed.is_set():
                try:
                    os.fsync(fd)
                except OSError as exc:
                    self.error = exc
                    self.failed.set()
                last_sync = time.monotonic()
                dirty = False
        if not self.failed.is_set():
            try:
                os.fsync(fd)
            except OSError as exc:
                self.error = exc
                self.failed.set()

    def _write(self, block: np.ndarray) -> None:
        view = memoryview(block.tobytes())
        while view:  # a raw write may be short
            written = self._file.write(view)
            view = view[written:]
        self.frames_written += len(block)

    def close(self) -> int:
        """Write what is queued, fsync, release the lock; returns the frames written."""
        if self._thread is not None:
            self._queue.put(self._STOP)
            self._thread.join()
            self._thread = None
            self._file.close()
        if self._lock_fd is not None:
            unlock(self._lock_fd)
            os.close(self._lock_fd)
            self._lock_fd = None
        return self.frames_written

    def __enter__(self) -> "JournalWriter":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class KeptFile:
    path: Path
    sha256: str
    frames: int
    rate: int
    channels: int
    format: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def finalize(journal: Journal, target: Path | None = None, fmt: str | None = None) -> KeptFile:
    """Turn the journal's whole frames into the kept FLAC/WAV, atomically and durably.

    The journal itself is left in place: the caller discards it once the sidecar and the
    database row are written too, so a crash anywhere before that is still salvageable.
    """
    import soundfile as sf

    header = journal.header
    target = Path(target or header.target)
    fmt = (fmt or header.format).lower()
    if fmt not in FORMATS:
        raise JournalError(f"不支持的录音格式：{fmt}（可用 flac 或 wav）。",
                           f"Unsupported recording format: {fmt} (use flac or wav).")
    frames = journal.frames_on_disk()
    if frames == 0:
        raise JournalError("录音中没有任何声音数据写入磁盘，无法生成录音文件。请重新录制。",
                           "No audio reached the disk for this take, so there is no file to keep. "
                           "Record the take again.")
    container, subtype = FORMATS[fmt]
    make_private_dir(target.parent)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w+b") as raw:
        with sf.SoundFile(raw, "w", samplerate=int(header.rate), channels=int(header.channels),
                          format=container, subtype=subtype, closefd=False) as out:
            for start in range(0, frames, _CONVERT_BLOCK):
                out.write(journal.read_frames(start, min(_CONVERT_BLOCK, frames - start)))
        raw.flush()
        os.fsync(raw.fileno())
    replace_durably(tmp, target)
    # Hash what is on disk now, not what we meant to write.
    return KeptFile(path=target, sha256=sha256_of(target), frames=frames, rate=int(header.rate),
                    channels=int(header.channels), format=fmt)


def sidecar_path(audio: Path) -> Path:
    """``S0001-1.flac`` → ``S0001-1.json``: the take's description beside its audio."""
    return Path(audio).with_suffix(".json")


def journal_dir(data_dir: Path) -> Path:
    """Where journals of takes in progress live, inside the station's data dir."""
    return Path(data_dir) / "recordings" / ".journal"


def sidecar_for(header: JournalHeader, kept: KeptFile, **extra: Any) -> dict[str, Any]:
    """The JSON kept beside the audio: who, where, how it was recorded, and what was found."""
    return {
        "take_id": header.take_id,
        "student": header.student,
        "sitting": header.sitting,
        "song": header.song,
        "attempt": header.attempt,
        "device": header.device,
        "started_at": header.started_at,
        "file": kept.path.name,
        "format": kept.format,
        "sha256": kept.sha256,
        "sample_rate": kept.rate,
        "channels": kept.channels,
        "frames": kept.frames,
        "duration_s": round(kept.duration_s, 3),
        **extra,
    }
