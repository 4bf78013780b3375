#!/usr/bin/env python3
"""How long the whole non-interactive pre-check takes on a ready station (target: <= 15 s).

    .venv/bin/python scripts/bench/precheck.py [--runs 5] [--no-audio] [--no-serial]
                                               [--collector URL --token T]

A ready station here: the virtual headset (scripts/virtual-audio), the real collector
under uvicorn on 127.0.0.1 (started for the run unless --collector is given), one scale
answering SICS probes on a socat PTY, and the data dir on the local disk.

Each repeat is a fresh process, as `station precheck` is, so the figure includes imports
(numpy, scipy, sounddevice, httpx). The baseline, measured in the same run, is the same
checks run one after another in one group: what the concurrent groups save.
Prints the median and max of each, and the check that took longest, as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
RUNTIME = os.environ.setdefault("QM_AUDIO_RUNTIME", "/tmp/qm-virtual-audio")
for key, value in (("XDG_RUNTIME_DIR", RUNTIME), ("PULSE_SERVER", f"unix:{RUNTIME}/pulse/native"),
                   ("PULSE_RUNTIME_PATH", f"{RUNTIME}/pulse"), ("PULSE_STATE_PATH", f"{RUNTIME}/state"),
                   ("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))):
    os.environ.setdefault(key, value)


def one_run(ctx_file: str, mode: str) -> None:
    """In a fresh process: run the pre-check once, print its figures as one JSON line."""
    from precheck.context import Context
    from precheck.registry import standard_groups
    from precheck.runner import run
    from qmbase.collector_link import CollectorLink

    spec = json.loads(Path(ctx_file).read_text())
    ctx = Context(station_id=spec["station_id"], data_dir=Path(spec["data_dir"]),
                  link=CollectorLink(url=spec["collector_url"], token=spec["token"]),
                  serial_devices=spec["pe_devices"])
    groups = standard_groups(ctx, network=bool(spec["collector_url"]), audio=spec["_audio"])
    if mode == "sequential":
        groups = {"all": [c for g in groups.values() for c in g]}
    stamps: dict[str, float] = {}
    t_run = time.monotonic()
    report = run(groups, ctx, on_result=lambda r: stamps.setdefault(r.id, time.monotonic() - t_run))
    print(json.dumps({"run_s": report.duration_s,
                      "overall": report.overall,
                      "statuses": {c.id: c.status for c in report.checks},
                      "problems": {c.id: c.summary_en for c in report.checks
                                   if c.status in ("warn", "fail")},
                      "finished_at_s": stamps}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_collector(workdir: Path) -> tuple[subprocess.Popen, str, str]:
    from uploader.collector.cli import add_station

    data = workdir / "collector"
    token = add_station("BENCH01", data)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uploader.collector.cli", "serve",
                             "--host", "127.0.0.1", "--port", str(port), "--data", str(data)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url, token
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the collector did not start")


def start_scale(workdir: Path) -> tuple[subprocess.Popen, str, threading.Event]:
    """A socat PTY pair with a thread answering SICS `S` like a scale with 38.60 kg on it."""
    import serial

    a, b = workdir / "scaleA", workdir / "scaleB"
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (a.exists() and b.exists()):
        time.sleep(0.02)
    stop = threading.Event()

    def answer() -> None:
        conn = serial.Serial(str(b), timeout=0.05)
        buffer = b""
        while not stop.is_set():
            try:
                buffer += conn.read(64)
            except OSError:
                return
            while b"S\r\n" in buffer:
                buffer = buffer.split(b"S\r\n", 1)[1]
                conn.write(b"S S      38.60 kg\r\n")

    threading.Thread(target=answer, daemon=True).start()
    return proc, str(a), stop


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--no-serial", action="store_true")
    parser.add_argument("--collector")
    parser.add_argument("--token", default="")
    parser.add_argument("--one", nargs=2, metavar=("CTX_FILE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_run(*args.one)
        return 0

    audio = not args.no_audio and (ROOT / "precheck" / "audio.py").exists()
    if audio:
        subprocess.run([str(ROOT / "scripts" / "virtual-audio"), "start"], check=True,
                       capture_output=True)
    workdir = Path(tempfile.mkdtemp(prefix="qm-bench-precheck-"))
    cleanups = []
    try:
        if args.collector:
            url, token = args.collector, args.token
        else:
            proc, url, token = start_collector(workdir)
            cleanups.append(proc.kill)
        devices = []
        if not args.no_serial and shutil.which("socat"):
            socat, port, stop = start_scale(workdir)
            cleanups += [stop.set, socat.kill]
            devices.append({"name": "scale-1", "driver": "mt-sics", "port": port, "item": "weight"})
        ctx = {"station_id": "BENCH01", "collector_url": url, "token": token,
               "data_dir": str(workdir), "pe_devices": devices, "_audio": audio}
        ctx_file = workdir / "ctx.json"
        ctx_file.write_text(json.dumps(ctx))

        runs: dict[str, list[dict]] = {"concurrent": [], "sequential": []}
        for _ in range(args.runs):
            for mode in runs:   # interleaved, so both see the same machine load
                t0 = time.monotonic()
                out = subprocess.run([sys.executable, __file__, "--one", str(ctx_file), mode],
                                     capture_output=True, text=True, timeout=120)
                wall = time.monotonic() - t0      # the process as a user waits for it
                if out.returncode != 0:
                    raise SystemExit(out.stderr)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                runs[mode].append({**row, "wall_s": wall})
        summary = {"runs": args.runs, "audio": audio, "serial_devices": len(devices),
                   "target_s": 15.0}
        for mode, rows in runs.items():
            walls = [r["wall_s"] for r in rows]
            inner = [r["run_s"] for r in rows]
            summary[mode] = {"wall_median_s": round(statistics.median(walls), 2),
                             "wall_max_s": round(max(walls), 2),
                             "checks_median_s": round(statistics.median(inner), 2),
                             "checks_max_s": round(max(inner), 2)}
        last = runs["concurrent"][-1]
        summary["statuses"] = last["statuses"]
        summary["problems"] = last["problems"]     # a shared headset may be muted by a test
        summary["finished_at_s"] = {k: round(v, 2) for k, v in last["finished_at_s"].items()}
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    finally:
        for cleanup in cleanups:
            cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
