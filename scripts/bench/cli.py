#!/usr/bin/env python3
"""How fast `station --help` and `station --version` answer (budget: 0.5 s each).

Baseline in the same run: `python -c pass`, the interpreter's own start-up, which no
command can beat. Usage: .venv/bin/python scripts/bench/cli.py [--runs 15]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

STATION = Path(sys.executable).with_name("station")


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    rows = [("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
            ("station --version", [str(STATION), "--version"]),
            ("station --help", [str(STATION), "--help"])]
    base = None
    print(f"{'command':32} {'median ms':>10} {'max ms':>8} {'x baseline':>10}")
    for name, cmd in rows:
        times = timed(cmd, runs)
        median = statistics.median(times)
        base = base or median
        print(f"{name:32} {median * 1000:10.0f} {max(times) * 1000:8.0f} {median / base:10.2f}")


if __name__ == "__main__":
    main()
