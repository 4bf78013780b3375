"""Benchmark (issue 6, item 6): the station's tus upload against a plain streaming PUT, same run.

Measures, against one collector under uvicorn on 127.0.0.1:
  - baseline: `curl -T FILE` to `PUT /api/probe` (reads the body streaming and discards it);
  - the station's client (`uploader.client.TusClient`) sending the same file (1 GiB by default)
    as one tus upload, with its ratio to the baseline (target: >= 70%);
  - that client's peak memory: VmHWM of the client process (a separate process; target < 100 MB);
  - STATIONS stations uploading STATION_MIB each at once through TusClient (target: no error).
Every figure is the median over --repeats; the table prints them side by side.

Usage: .venv/bin/python scripts/bench/upload.py [--size-mib 1024] [--repeats 3]
           [--chunk-mib N] [--stations 200] [--station-mib 20] [--collector-src DIR]
--collector-src runs the collector from another source tree (e.g. `git archive HEAD uploader |
tar -x -C /tmp/head`) to compare before and after in the same run.
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
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from uploader.bundle import DEFAULT_CHUNK_SIZE, digest_file  # noqa: E402
from uploader.collector.auth import register_station  # noqa: E402
from uploader.collector.store import open_db  # noqa: E402

MiB = 1024 * 1024

CLIENT = r"""
import json, resource, sys, time
from pathlib import Path
from uploader.client import FileToSend, TusClient
url, token, path, sha, chunks, sitting, chunk_size = sys.argv[1:8]
f = FileToSend(Path(path), Path(path).stat().st_size, sha, int(chunk_size),
               json.loads(Path(chunks).read_text()),
               {"station": "S01", "sitting": sitting, "path": "recordings/big.flac", "sha256": sha})
t = time.perf_counter()
with TusClient(url, token) as c:
    c.upload(f)
dt = time.perf_counter() - t
# VmHWM of this process only (ru_maxrss would carry the parent's peak across fork+exec).
ru = resource.getrusage(resource.RUSAGE_SELF)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"seconds": dt, "vmhwm_kib": hwm, "cpu_s": ru.ru_utime + ru.ru_stime}))
"""

MANY = r"""
import json, sys, threading, time
from pathlib import Path
from uploader.client import FileToSend, TusClient
url, tokens, path, sha, chunks, sitting, chunk_size = sys.argv[1:8]
tokens = json.loads(Path(tokens).read_text())
chunks = json.loads(Path(chunks).read_text())
size = Path(path).stat().st_size
errors, start = [], threading.Barrier(len(tokens) + 1)

def station(sid, token):
    f = FileToSend(Path(path), size, sha, int(chunk_size), chunks,
                   {"station": sid, "sitting": sitting, "path": "recordings/s.flac", "sha256": sha})
    try:
        with TusClient(url, token, timeout=600) as c:
            start.wait()
            c.upload(f)
    except Exception as e:
        errors.append(f"{sid}: {type(e).__name__}: {e}"[:300])

threads = [threading.Thread(target=station, args=kv) for kv in tokens.items()]
for t in threads: t.start()
start.wait()
t0 = time.perf_counter()
for t in threads: t.join()
print(json.dumps({"seconds": time.perf_counter() - t0, "errors": errors}))
"""


class CollectorProcess:
    """The collector on a socket we own, from this tree or from --collector-src."""

    def __init__(self, data: Path, src: Path | None):
        self.data = data
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        env = dict(os.environ)
        if src:  # ahead of the editable install of this tree
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
        fd = self.sock.fileno()
        self.log = open(data / "collector.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uploader.collector.cli", "serve", "--fd", str(fd),
             "--data", str(data)], pass_fds=(fd,), env=env, cwd=src or ROOT,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/api/health", timeout=5)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("collector did not start: see " + str(data / "collector.log"))
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.sock.close()
        self.log.close()


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(64 * MiB, left)
            f.write(os.urandom(n))
            left -= n


def disk_ceiling(src: Path, dest: Path, chunk_size: int) -> float:
    """Seconds to copy `src` to `dest` as the collector must store it, with no network and no
    hashing: 1 MiB writes and an fsync every chunk. No durable upload can beat this."""
    t = time.perf_counter()
    with open(src, "rb") as f, open(dest, "wb", buffering=0) as out:
        written = 0
        while block := f.read(MiB):
            out.write(block)
            written += len(block)
            if written % chunk_size == 0:
                os.fsync(out.fileno())
        os.fsync(out.fileno())
    seconds = time.perf_counter() - t
    dest.unlink()
    return seconds


def run_py(code: str, *args: str, timeout: float = 3600) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=ROOT, timeout=timeout)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-mib", type=float, default=DEFAULT_CHUNK_SIZE / MiB,
                    help="bytes per PATCH (default: the bundle's DEFAULT_CHUNK_SIZE)")
    ap.add_argument("--stations", type=int, default=200)
    ap.add_argument("--station-mib", type=float, default=20.0)
    ap.add_argument("--collector-src", type=Path)
    args = ap.parse_args()
    chunk_size = int(args.chunk_mib * MiB)
    work = Path(tempfile.mkdtemp(prefix="qm-bench-upload-"))
    try:
        data = work / "collector"
        data.mkdir()
        db = open_db(data)
        token = register_station(db, "S01")
        many = {f"B{i:03d}": register_station(db, f"B{i:03d}") for i in range(args.stations)}
        db.conn.close()
        (work / "tokens.json").write_text(json.dumps(many))
        collector = CollectorProcess(data, args.collector_src)

        big = work / "big.bin"
        write_random(big, args.size_mib * MiB)
        digest = digest_file(big, chunk_size)
        (work / "chunks.json").write_text(json.dumps(digest.chunks))
        small = work / "small.bin"
        write_random(small, int(args.station_mib * MiB))
        small_digest = digest_file(small, chunk_size)
        (work / "small-chunks.json").write_text(json.dumps(small_digest.chunks))

        curl, tus, hwm, many_s, many_errors, disk = [], [], [], [], [], []
        for _ in range(args.repeats):
            disk.append(disk_ceiling(big, data / "ceiling.bin", chunk_size))
            out = subprocess.run(
                ["curl", "-sS", "-T", str(big), "-H", f"Authorization: Bearer {token}",
                 "-o", "/dev/null", "-w", "%{time_total}", collector.url + "/api/probe"],
                capture_output=True, text=True, check=True)
            curl.append(float(out.stdout))
            sitting = "B" + uuid.uuid4().hex[:8]
            r = run_py(CLIENT, collector.url, token, str(big), digest.sha256,
                       str(work / "chunks.json"), sitting, str(chunk_size))
            stored = data / "files" / "S01" / sitting / "recordings" / "big.flac"
            if stored.stat().st_size != big.stat().st_size:
                raise SystemExit("the stored file has the wrong size")
            stored.unlink()
            tus.append(r["seconds"])
            hwm.append(r["vmhwm_kib"] / 1024)
            if args.stations:
                sitting = "M" + uuid.uuid4().hex[:8]
                r = run_py(MANY, collector.url, str(work / "tokens.json"), str(small),
                           small_digest.sha256, str(work / "small-chunks.json"), sitting,
                           str(chunk_size))
                stored_ok = sum((data / "files" / sid / sitting / "recordings" / "s.flac").is_file()
                                for sid in many)
                many_s.append(r["seconds"])
                many_errors.append(len(r["errors"]) + (args.stations - stored_ok))
                for e in r["errors"][:3]:
                    print("  error:", e, file=sys.stderr)
                shutil.rmtree(data / "files", ignore_errors=True)
        collector.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mib = args.size_mib
    c, t = statistics.median(curl), statistics.median(tus)
    print(f"upload benchmark: {mib} MiB file, {args.chunk_mib:g} MiB per PATCH, "
          f"median of {args.repeats}, collector from {args.collector_src or 'this tree'}")
    print(f"{'figure':44} {'median':>10} {'MiB/s':>8} {'of baseline':>12}  runs")
    print(f"{'curl -T PUT /api/probe (baseline)':44} {c:9.2f}s {mib / c:8.1f} {'100.0%':>12}  "
          + " ".join(f"{x:.2f}" for x in curl))
    d = statistics.median(disk)
    print(f"{'disk: copy + fsync per chunk (ceiling)':44} {d:9.2f}s {mib / d:8.1f} {c / d:11.1%}  "
          + " ".join(f"{x:.2f}" for x in disk))
    print(f"{'station TusClient, one tus upload':44} {t:9.2f}s {mib / t:8.1f} {c / t:11.1%}  "
          + " ".join(f"{x:.2f}" for x in tus))
    print(f"{'client peak memory (VmHWM, MiB)':44} {statistics.median(hwm):10.1f} {'':8} {'':12}  "
          + " ".join(f"{x:.1f}" for x in hwm))
    if args.stations:
        m = statistics.median(many_s)
        total = args.stations * args.station_mib
        print(f"{f'{args.stations} stations x {args.station_mib:g} MiB at once':44} {m:9.2f}s "
              f"{total / m:8.1f} {'':12}  " + " ".join(f"{x:.1f}" for x in many_s))
        print(f"{'  errors (failed or not stored)':44} {max(many_errors):10d} {'':8} {'':12}  "
              + " ".join(str(x) for x in many_errors))


if __name__ == "__main__":
    main()
