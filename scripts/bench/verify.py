#!/usr/bin/env python3
"""Benchmark of take verification (issue 4, item 9).

Measures, on one generated 60 s 48 kHz mono take (a synthesized voice over room hiss):
  1. recorder.verify.verify_file, warm (median of --repeats runs in this process), and
     the same with the demo song's melody match and bleed check;
  2. the baseline named by the issue, in the same run: a plain check built on
     librosa.pyin over the same file (librosa.load at its default 22.05 kHz, pyin for F0
     and voicing, librosa.feature.rms for level), warm, median of --baseline-repeats;
  3. cold start: a fresh Python process importing recorder.verify and verifying the file,
     and `station sing verify FILE --json` when the CLI has that command (median of 3).

    .venv/bin/python scripts/bench/verify.py [--repeats 15] [--baseline-repeats 3] [--json]

Targets: (1) <= 100 ms on a 2-core machine; (3) <= 3 s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))

RATE = 48000


def make_take(path: Path, seconds: float) -> None:
    import numpy as np
    import soundfile as sf

    from recorder.analysis import synth

    tune = [60, 62, 64, 60, 64, 65, 67, 67, 69, 67, 65, 64, 60, 62, 55, 60]
    notes, t, i = [], 0.5, 0
    while t < seconds - 1.5:
        d = 0.9 if i % 4 == 3 else 0.45
        notes.append((tune[i % len(tune)], t, 0.9 * d))
        t += d + (0.3 if i % 4 == 3 else 0.0)
        i += 1
    x = synth.voice(notes, RATE, total_s=seconds, seed=1)
    x = x + np.random.default_rng(2).normal(0, 10 ** (-65 / 20), len(x)).astype("float32")
    sf.write(str(path), x, RATE, subtype="PCM_16")


def timed(fn, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each run. CPU time is printed too because a shared machine
    (other jobs on the two cores) stretches wall time; our code runs on one thread, so on
    an idle machine the two agree."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def pyin_check(path: Path) -> dict:
    """What a plain librosa check of a take looks like."""
    import librosa
    import numpy as np

    y, sr = librosa.load(str(path), sr=22050, mono=True)
    f0, voiced, _ = librosa.pyin(y, fmin=100.0, fmax=1000.0, sr=sr)
    rms = librosa.feature.rms(y=y)[0]
    return {"rms_dbfs": float(20 * np.log10(max(float(np.sqrt(np.mean(y ** 2))), 1e-6))),
            "voiced_ratio": float(np.mean(voiced)),
            "median_f0_hz": float(np.nanmedian(f0)) if np.any(voiced) else None,
            "frames": int(len(rms))}


def cold(cmd: list[str], repeats: int = 3) -> tuple[list[float], int]:
    times, rc = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
        rc = proc.returncode
    return times, rc


def summary(times: list[float], cpu: list[float] | None = None) -> dict:
    out = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
           "runs": len(times)}
    if cpu:
        out["cpu_median_s"] = statistics.median(cpu)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--baseline-repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from recorder import verify

    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None  # not on Windows
    results: dict = {"seconds": args.seconds, "rate": RATE, "cpus": os.cpu_count(),
                     "load_average_1min": load}
    with tempfile.TemporaryDirectory() as tmp:
        take = Path(tmp) / "take.wav"
        make_take(take, args.seconds)

        verify.warm_up()
        verdict = verify.verify_file(take)
        results["verify_warm"] = summary(*timed(lambda: verify.verify_file(take), args.repeats))
        results["verify_verdict"] = verdict["verdict"]
        from recorder.songs import SongCatalog

        demo = SongCatalog().get("demo")  # adds the melody match and the bleed check
        results["verify_with_song_warm"] = summary(
            *timed(lambda: verify.verify_file(take, song=demo, offset_s=0.1), args.repeats))

        pyin_check(take)  # the first call compiles numba kernels: not counted
        baseline = pyin_check(take)
        results["pyin_baseline_warm"] = summary(
            *timed(lambda: pyin_check(take), args.baseline_repeats))
        results["agreement"] = {
            "median_f0_hz": [verdict["median_f0_hz"], baseline["median_f0_hz"]],
            "voiced_ratio_of_all_frames": [
                round(verdict["voiced_ratio"] * (1 - verdict["silence_ratio"]), 3),
                round(baseline["voiced_ratio"], 3)]}

        py = sys.executable
        snippet = ("import sys, json; from recorder.verify import verify_file; "
                   "print(json.dumps(verify_file(sys.argv[1])))")
        t, rc = cold([py, "-c", snippet, str(take)])
        results["cold_python"] = {**summary(t), "exit": rc}
        station = Path(py).with_name("station")
        if station.exists():
            t, rc = cold([str(station), "sing", "verify", str(take), "--json"])
            results["cold_station_cli"] = {**summary(t), "exit": rc}

    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    w, b = results["verify_warm"], results["pyin_baseline_warm"]
    ws = results["verify_with_song_warm"]
    print(f"take: {args.seconds:.0f} s, {RATE} Hz mono, {results['cpus']} CPUs, load average "
          f"{results['load_average_1min']}; verdict {results['verify_verdict']}")
    print(f"verify_file warm        median {w['median_s'] * 1000:8.1f} ms wall "
          f"{w['cpu_median_s'] * 1000:8.1f} ms CPU  (min {w['min_s'] * 1000:.1f} ms wall, "
          f"{args.repeats} runs)   target <= 100 ms")
    print(f"  + song checks         median {ws['median_s'] * 1000:8.1f} ms wall "
          f"{ws['cpu_median_s'] * 1000:8.1f} ms CPU  (melody match and bleed, demo song)")
    print(f"librosa.pyin baseline   median {b['median_s'] * 1000:8.1f} ms wall "
          f"{b['cpu_median_s'] * 1000:8.1f} ms CPU  ({args.baseline_repeats} runs)   "
          f"x{b['median_s'] / w['median_s']:.0f} slower (wall), "
          f"x{b['cpu_median_s'] / w['cpu_median_s']:.0f} (CPU)")
    print(f"agreement (ours, pyin): {results['agreement']}")
    for key in ("cold_python", "cold_station_cli"):
        if key in results:
            r = results[key]
            print(f"{key:<23} median {r['median_s'] * 1000:8.1f} ms  (exit {r['exit']})"
                  f"   target <= 3000 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
