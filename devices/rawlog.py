"""The raw log: every chunk of bytes a port delivered, with the time it arrived.

One file per sitting and port, append-only, one JSON line per chunk, flushed as written,
so that a disputed result can be read again from the very bytes the device sent
(``replay``, behind ``station pe replay``). Reconnections are logged as events because
the reader drops a partial frame when the port comes back, and replay must do the same.

    {"rawlog": 1, "port": "COM3", "driver": "mt-sics", "opened": 1763840401.12}
    {"at": 1763840401.503211, "hex": "5320532020..."}
    {"at": 1763840409.000000, "event": "disconnected"}
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from qmbase.refusal import Refusal

from .drivers import Driver, Reading, get as get_driver

VERSION = 1


class RawLogError(Refusal, ValueError):
    """The file is not a raw log, or a line in the middle of it is damaged."""

    status = 400


def path_for(directory: Path | str, sitting_id: str, port: str) -> Path:
    """``<dir>/<sitting>_<port>.rawlog.jsonl``; "/dev/ttyUSB0" becomes "dev-ttyUSB0"."""
    safe = re.sub(r"[^0-9A-Za-z._-]+", "-", port).strip("-") or "port"
    return Path(directory) / f"{sitting_id}_{safe}.rawlog.jsonl"


class RawLog:
    def __init__(self, path: Path | str, *, port: str, driver: str, fsync: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        # Unbuffered: each write() is one os.write, so a crash loses at most the chunk
        # being written. fsync per chunk is optional: it costs latency on every frame.
        self._f = open(self.path, "ab", buffering=0)
        self._fsync = fsync
        if new:
            self._line({"rawlog": VERSION, "port": port, "driver": driver, "opened": time.time()})

    def write(self, data: bytes, at: float) -> None:
        self._line({"at": round(at, 6), "hex": data.hex()})

    def event(self, name: str, at: float | None = None) -> None:
        self._line({"at": round(time.time() if at is None else at, 6), "event": name})

    def _line(self, obj: dict) -> None:
        self._f.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        if self._fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class Chunk:
    at: float
    data: bytes = b""
    event: str | None = None


def header(path: Path | str) -> dict:
    with open(path, "rb") as f:
        return _parse_header(f.readline(), path)


def _parse_header(line: bytes, path) -> dict:
    try:
        head = json.loads(line)
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("rawlog") != VERSION:
        raise RawLogError(f"{path} 不是原始数据记录文件（第 1 行不是记录头），请选择 .rawlog.jsonl 文件。",
                          f"{path} is not a raw log (line 1 is not its header); "
                          f"choose a .rawlog.jsonl file.")
    return head


def read(path: Path | str) -> Iterator[Chunk]:
    """The chunks and events in order. A torn last line (power cut mid-write) is skipped;
    a damaged line anywhere else is an error naming the line."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    _parse_header(lines[0], path)
    last = len(lines) - 1
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        try:
            obj = json.loads(line)
            chunk = (Chunk(float(obj["at"]), event=str(obj["event"])) if "event" in obj
                     else Chunk(float(obj["at"]), bytes.fromhex(obj["hex"])))
        except (ValueError, KeyError, TypeError):
            if number - 1 == last:
                return
            raise RawLogError(f"{path} 第 {number} 行已损坏，无法重放；请保留该文件并联系信息中心。",
                              f"{path} line {number} is damaged and cannot be replayed; keep the "
                              f"file and contact the information center.") from None
        yield chunk


def replay(path: Path | str, driver: Driver | str | None = None, **options) -> list[Reading]:
    """Parse a raw log again: the readings the station read live, with their times.
    ``driver`` defaults to the one named in the log's header."""
    if not isinstance(driver, Driver):
        driver = get_driver(driver or header(path)["driver"], **options)
    readings: list[Reading] = []
    for chunk in read(path):
        if chunk.event == "connected":
            driver.reset()                    # as the live reader did on reconnecting
        elif chunk.event is None:
            readings += driver.feed(chunk.data, at=chunk.at)
    return readings
