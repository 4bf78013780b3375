#!/usr/bin/env python3
"""Benchmark: input overflows of a long take while other processes keep every core busy.

Issue 4: "a 10-minute recording has zero input overflows while another process keeps both
cores busy". Measured in the same run, under the same load:

- ``station``: the recorder as shipped (recorder.recording.Recorder + recorder.journal:
  50 ms blocks, 0.3 s latency, the callback only copies into a queue, a writer thread
  appends and fsyncs every 0.5 s, the accompaniment fed from a thread);
- ``baseline``: the naive recorder the issue warns against: PortAudio's default low
  latency and block size, and the callback itself writes every block to disk and fsyncs.

Run on the virtual headset (scripts/virtual-audio start) or a real one:

    eval "$(scripts/virtual-audio env)"
    .venv/bin/python scripts/bench/record.py --seconds 600 --repeats 1
    .venv/bin/python scripts/bench/record.py --seconds 60 --repeats 3   # quicker look

Per run: PortAudio input overflows, stream restarts (station) or a dropped stream
(baseline), and ``unaccounted_s``: wall time the stream ran minus the audio it delivered,
which catches audio PulseAudio dropped without PortAudio reporting an overflow. Prints one
line per run and a JSON summary (medians per variant) at the end.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from recorder.recording import Recorder, choose_rate  # noqa: E402
from recorder.journal import Journal, JournalHeader, JournalWriter, finalize  # noqa: E402


def burn(stop) -> None:
    """One core's worth of pure-Python busy work (what a virus scan or an update looks like)."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF


class Load:
    def __init__(self, workers: int):
        self.stop = mp.Event()
        self.procs = [mp.Process(target=burn, args=(self.stop,), daemon=True) for _ in range(workers)]

    def __enter__(self):
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()


def make_song(path: Path, seconds: float, rate: int = 44100) -> Path:
    import soundfile as sf

    with sf.SoundFile(str(path), "w", samplerate=rate, channels=2, subtype="PCM_16") as f:
        block = rate * 10
        for start in range(0, int(seconds * rate), block):
            t = (start + np.arange(block)) / rate
            x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 331 * t)
            f.write(np.stack([x, x], axis=1))
    return path


def unaccounted(samples: list[tuple[float, int]], rate: int) -> float | None:
    """Wall time the stream ran minus audio it delivered, over the steady part of the take.

    PulseAudio can drop captured audio without PortAudio seeing an overflow; this catches
    such a silent loss (to about 0.1 s: the progress samples come every 0.2 s, the blocks
    are 50 ms).
    """
    steady = [(t, c) for t, c in samples if c >= 2 * rate]   # past the stream's start-up
    if len(steady) < 2:
        return None
    (t0, c0), (t1, c1) = steady[0], steady[-1]
    return round((t1 - t0) - (c1 - c0) / rate, 3)


def run_station(seconds: float, workdir: Path, song: Path) -> dict:
    rate = choose_rate()
    header = JournalHeader(take_id=uuid.uuid4().hex, rate=rate, target=str(workdir / "take.flac"),
                           student="BENCH", sitting="BENCH")
    journal = Journal(workdir / "journal", header)
    writer = JournalWriter(journal).open()
    samples: list[tuple[float, int]] = []
    result = Recorder(writer, rate=rate, accompaniment=song, max_seconds=seconds).run(
        progress=lambda rec: samples.append((time.monotonic(), rec.captured)))
    writer.close()
    t0 = time.monotonic()
    kept = finalize(journal)
    finalize_s = time.monotonic() - t0
    journal.discard()
    return {"overflows": result.overflow_count, "stream_restarts": result.stream_restarts,
            "unaccounted_s": unaccounted(samples, rate),
            "stopped_by": result.stopped_by, "output_underruns": result.output_underruns,
            "frames": result.frames, "seconds": result.frames / rate,
            "finalize_s": round(finalize_s, 2), "flac_bytes": kept.path.stat().st_size}


def run_baseline(seconds: float, workdir: Path) -> dict:
    import sounddevice as sd

    rate = choose_rate()
    counts = {"overflows": 0, "frames": 0, "last": time.monotonic() + 5}
    done = threading.Event()
    f = open(workdir / "baseline.pcm", "wb", buffering=0)

    def callback(indata, outdata, frames, time_info, status):
        if status.input_overflow:
            counts["overflows"] += 1
        f.write(indata.tobytes())      # what not to do: disk I/O on the audio thread
        os.fsync(f.fileno())
        outdata.fill(0)
        counts["frames"] += frames
        counts["last"] = time.monotonic()
        if counts["frames"] >= seconds * rate:
            raise sd.CallbackStop

    with sd.Stream(samplerate=rate, channels=(1, 2), dtype="int16", callback=callback,
                   finished_callback=done.set):
        # A stalled stream (no callback for 5 s) counts as dropped, as the recorder sees it.
        samples: list[tuple[float, int]] = []
        while not done.wait(0.2) and time.monotonic() - counts["last"] < 5:
            samples.append((time.monotonic(), counts["frames"]))
    f.close()
    died = counts["frames"] < seconds * rate   # the host dropped the stream before the end
    return {"overflows": counts["overflows"], "stream_died": died,
            "unaccounted_s": unaccounted(samples, rate), "output_underruns": None,
            "frames": counts["frames"], "seconds": counts["frames"] / rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2,
                        help="busy processes (default: one per core)")
    parser.add_argument("--variants", default="baseline,station")
    args = parser.parse_args()
    variants = args.variants.split(",")
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="qm-bench-record-") as tmp:
        workdir = Path(tmp)
        song = make_song(workdir / "song.wav", args.seconds + 5)
        with Load(args.load):
            for repeat in range(args.repeats):
                for variant in variants:
                    started = time.monotonic()
                    out = (run_station(args.seconds, workdir, song) if variant == "station"
                           else run_baseline(args.seconds, workdir))
                    out["wall_s"] = round(time.monotonic() - started, 1)
                    runs[variant].append(out)
                    print(f"{variant:9s} run {repeat + 1}: {json.dumps(out)}", flush=True)
    summary = {"seconds": args.seconds, "repeats": args.repeats, "load_processes": args.load,
               "cpu_count": os.cpu_count(),
               "median_overflows": {v: statistics.median(r["overflows"] for r in runs[v])
                                    for v in variants},
               "median_recorded_s": {v: statistics.median(r["seconds"] for r in runs[v])
                                     for v in variants},
               "median_unaccounted_s": {v: statistics.median(r["unaccounted_s"] or 0.0
                                                             for r in runs[v]) for v in variants},
               "runs": runs}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
