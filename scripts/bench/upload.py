"""Benchmark (issue 6, item 6): the station's tus upload against a plain streaming PUT, same run.

Measures, against one collector served exactly as `station collector serve` serves it
(`uploader.collector.cli.serve`, uvicorn, on 127.0.0.1):
  - baseline: `curl -T FILE` to a plain streaming PUT of the same collector that writes the
    body, as it arrives, into a file in the collector's storage area and fsyncs it once at the
    end (a stored file must be durable; no tus, no hashing, no per-chunk fsync). The route
    exists only in this benchmark: it is added to the app before uvicorn starts, never in the
    product;
  - for reference, `curl -T FILE` to `PUT /api/probe` (the pre-check's probe: reads, discards);
  - the disk alone: copying the file with an fsync per chunk, no network, no hashing;
  - the station's client (`uploader.client.TusClient`) sending the same file (1 GiB by
    default) as one tus upload, its ratio to the baseline (target: >= 70%), and the CPU
    seconds the client and the collector spent on it;
  - that client's peak memory: VmHWM of the client process (a separate process; < 100 MB);
  - STATIONS stations uploading STATION_MIB each at once through TusClient (target: no error).
Every figure is the median over --repeats; the table prints each run beside it.

Usage: .venv/bin/python scripts/bench/upload.py [--size-mib 1024] [--repeats 3]
           [--chunk-mib N] [--stations 200] [--station-mib 20] [--before-src DIR]
--before-src runs a second collector AND client from another source tree (e.g.
`git archive HEAD uploader | tar -x -C /tmp/head`), interleaved with this tree's in every
repeat, to compare before and after in the same run; each tree uses its own
DEFAULT_CHUNK_SIZE unless --chunk-mib is given. The machine's load average is printed: on
shared cores, compare medians and ratios of the same run, not absolute times across runs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from uploader.collector.auth import register_station  # noqa: E402
from uploader.collector.store import open_db  # noqa: E402

MiB = 1024 * 1024

# The collector as `station collector serve` runs it, plus the baseline's plain PUT route. It
# patches `cli.create_app`, so the same `cli.serve` (uvicorn options, socket handling) runs it.
SERVER = r"""
import os, sys
from pathlib import Path
from fastapi import Request, Response
from uploader.collector import cli

fd, data = int(sys.argv[1]), Path(sys.argv[2])
plain = data / "files" / "bench-put"
make_app = cli.create_app

def create_app(*args, **kwargs):
    app = make_app(*args, **kwargs)

    @app.put("/bench/put/{name}")
    async def put_plain(name: str, request: Request):
        # What a naive upload endpoint does: write the bytes as they come, fsync once, close.
        request.app.state.collector.station(request)  # the same token check as every route
        if not name.isalnum():
            return Response(status_code=400)
        plain.mkdir(parents=True, exist_ok=True)
        with open(plain / name, "wb") as f:
            async for piece in request.stream():
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        return Response(status_code=201)
    return app

cli.create_app = create_app
cli.serve("127.0.0.1", 0, data, fd=fd)
"""

DIGEST = r"""
import json, sys
from pathlib import Path
from uploader.bundle import DEFAULT_CHUNK_SIZE, digest_file
chunk_size = int(sys.argv[2]) or DEFAULT_CHUNK_SIZE
d = digest_file(Path(sys.argv[1]), chunk_size)
print(json.dumps({"sha256": d.sha256, "chunks": list(d.chunks), "chunk_size": chunk_size}))
"""

CLIENT = r"""
import json, resource, sys, time
from pathlib import Path
from uploader.client import FileToSend, TusClient
url, token, path, digest, sitting, chunk_size = sys.argv[1:7]
digest = json.loads(Path(digest).read_text())
f = FileToSend(Path(path), Path(path).stat().st_size, digest["sha256"], int(chunk_size),
               digest["chunks"], {"station": "S01", "sitting": sitting,
                                  "path": "recordings/big.flac", "sha256": digest["sha256"]})
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
url, tokens, path, digest, sitting, chunk_size = sys.argv[1:7]
tokens = json.loads(Path(tokens).read_text())
digest = json.loads(Path(digest).read_text())
size = Path(path).stat().st_size
errors, start = [], threading.Barrier(len(tokens) + 1)

def station(sid, token):
    f = FileToSend(Path(path), size, digest["sha256"], int(chunk_size), digest["chunks"],
                   {"station": sid, "sitting": sitting, "path": "recordings/s.flac",
                    "sha256": digest["sha256"]})
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


def src_env(src: Path | None) -> dict:
    env = dict(os.environ)
    if src:  # ahead of the editable install of this tree
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


class CollectorProcess:
    """The collector on a socket we own, from this tree or from another source tree."""

    def __init__(self, data: Path, src: Path | None):
        self.data, self.src = data, src
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        fd = self.sock.fileno()
        self.log = open(data / "collector.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(fd), str(data)], pass_fds=(fd,),
            env=src_env(src), cwd=src or ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/api/health", timeout=5)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("collector did not start: see " + str(data / "collector.log"))
                time.sleep(0.05)

    def cpu_s(self) -> float:
        """User + system CPU seconds the collector process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


def run_py(code: str, *args: str, src: Path | None = None, timeout: float = 3600) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=src or ROOT, env=src_env(src), timeout=timeout)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def curl_put(path: Path, url: str, token: str) -> float:
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-T", str(path), "-H", f"Authorization: Bearer {token}",
         "-o", "/dev/null", "-w", "%{time_total}", url],
        capture_output=True, text=True, check=True)
    return float(out.stdout)


class Side:
    """One source tree under test: its collector, its digests, its runs."""

    def __init__(self, label: str, work: Path, data: Path, src: Path | None, big: Path,
                 small: Path, chunk_size: int):
        """chunk_size 0: the tree's own DEFAULT_CHUNK_SIZE."""
        self.label, self.src, self.data = label, src, data
        self.collector = CollectorProcess(data, src)
        self.digest, self.small_digest = work / f"{label}-big.json", work / f"{label}-small.json"
        for path, out in ((big, self.digest), (small, self.small_digest)):
            digest = run_py(DIGEST, str(path), str(chunk_size), src=src)
            out.write_text(json.dumps(digest))
            self.chunk_size = digest["chunk_size"]
        self.tus, self.hwm, self.client_cpu, self.collector_cpu = [], [], [], []
        self.many_s, self.many_errors = [], []

    def upload_big(self, token: str, big: Path) -> None:
        sitting = "B" + uuid.uuid4().hex[:8]
        cpu = self.collector.cpu_s()
        r = run_py(CLIENT, self.collector.url, token, str(big), str(self.digest), sitting,
                   str(self.chunk_size), src=self.src)
        self.collector_cpu.append(self.collector.cpu_s() - cpu)
        stored = self.data / "files" / "S01" / sitting / "recordings" / "big.flac"
        if stored.stat().st_size != big.stat().st_size:
            raise SystemExit("the stored file has the wrong size")
        stored.unlink()
        self.tus.append(r["seconds"])
        self.hwm.append(r["vmhwm_kib"] / 1024)
        self.client_cpu.append(r["cpu_s"])

    def upload_many(self, tokens: Path, stations: list[str], small: Path) -> None:
        sitting = "M" + uuid.uuid4().hex[:8]
        r = run_py(MANY, self.collector.url, str(tokens), str(small), str(self.small_digest),
                   sitting, str(self.chunk_size), src=self.src)
        stored_ok = sum((self.data / "files" / sid / sitting / "recordings" / "s.flac").is_file()
                        for sid in stations)
        self.many_s.append(r["seconds"])
        self.many_errors.append(len(r["errors"]) + (len(stations) - stored_ok))
        for e in r["errors"][:3]:
            print(f"  error ({self.label}):", e, file=sys.stderr)
        shutil.rmtree(self.data / "files", ignore_errors=True)


def row(label: str, values: list[float], mib: float | None, baseline: float | None,
        fmt: str = "{:.2f}") -> None:
    m = statistics.median(values)
    rate = f"{mib / m:8.1f}" if mib else f"{'':8}"
    share = f"{baseline / m:11.1%}" if baseline else f"{'':>11}"
    print(f"{label:50} {fmt.format(m):>10} {rate} {share}  " + " ".join(fmt.format(v) for v in values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-mib", type=float, default=0,
                    help="MiB per PATCH (default: each tree's own bundle.DEFAULT_CHUNK_SIZE)")
    ap.add_argument("--stations", type=int, default=200)
    ap.add_argument("--station-mib", type=float, default=20.0)
    ap.add_argument("--before-src", type=Path,
                    help="another source tree (its uploader/) to run beside this one")
    args = ap.parse_args()
    chunk_size = int(args.chunk_mib * MiB)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="qm-bench-upload-"))
    sides: list[Side] = []
    try:
        big = work / "big.bin"
        write_random(big, args.size_mib * MiB)
        small = work / "small.bin"
        write_random(small, int(args.station_mib * MiB))
        stations = [f"B{i:03d}" for i in range(args.stations)]
        tokens_path = work / "tokens.json"
        for label, src in (("this tree", None), ("before", args.before_src)):
            if label == "before" and src is None:
                continue
            data = work / f"collector-{len(sides)}"
            data.mkdir()
            db = open_db(data)
            token = register_station(db, "S01")
            many = {sid: register_station(db, sid) for sid in stations}
            db.conn.close()
            tokens_path.with_name(f"tokens-{len(sides)}.json").write_text(json.dumps(many))
            side = Side(label, work, data, src, big, small, chunk_size)
            side.token, side.tokens = token, tokens_path.with_name(f"tokens-{len(sides)}.json")
            sides.append(side)

        main_side = sides[0]
        url, token = main_side.collector.url, main_side.token
        probe, plain, disk, plain_cpu, plain_curl_cpu = [], [], [], [], []
        # Every timed run starts with the disk settled (os.sync): otherwise the writeback of
        # the run before (GiBs, after the many-stations run) would slow whichever comes next.
        for i in range(args.repeats):
            os.sync()
            disk.append(disk_ceiling(big, main_side.data / "ceiling.bin", main_side.chunk_size))
            os.sync()
            probe.append(curl_put(big, url + "/api/probe", token))
            name = uuid.uuid4().hex
            os.sync()
            cpu, curl_cpu = main_side.collector.cpu_s(), children_cpu_s()
            plain.append(curl_put(big, f"{url}/bench/put/{name}", token))
            plain_cpu.append(main_side.collector.cpu_s() - cpu)
            plain_curl_cpu.append(children_cpu_s() - curl_cpu)
            stored = main_side.data / "files" / "bench-put" / name
            if stored.stat().st_size != big.stat().st_size:
                raise SystemExit("the plain PUT stored the wrong size")
            stored.unlink()
            for side in (sides if i % 2 == 0 else sides[::-1]):  # neither always goes first
                os.sync()
                side.upload_big(side.token, big)
        for i in range(args.repeats if args.stations else 0):
            for side in (sides if i % 2 == 0 else sides[::-1]):
                os.sync()
                side.upload_many(side.tokens, stations, small)
    finally:
        for side in sides:
            side.collector.stop()
        shutil.rmtree(work, ignore_errors=True)

    mib = args.size_mib
    base = statistics.median(plain)
    print(f"upload benchmark: {mib} MiB file, median of "
          f"{args.repeats}; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{'figure':50} {'median':>10} {'MiB/s':>8} {'of baseline':>11}  runs")
    row("curl -T, plain streaming PUT to file + fsync (baseline)", plain, mib, base)
    row("  curl CPU (s)", plain_curl_cpu, None, None)
    row("  collector CPU (s)", plain_cpu, None, None)
    row("curl -T, PUT /api/probe (reads and discards)", probe, mib, base)
    row("disk alone: copy + fsync per chunk", disk, mib, base)
    for side in sides:
        print(f"-- station TusClient from {side.label}" + (f" ({side.src})" if side.src else "")
              + f", {side.chunk_size / MiB:g} MiB per PATCH")
        row("  one tus upload (s)", side.tus, mib, base)
        row("  client CPU (s)", side.client_cpu, None, None)
        row("  collector CPU (s)", side.collector_cpu, None, None)
        row("  client peak memory (VmHWM, MiB)", side.hwm, None, None, "{:.1f}")
        if args.stations:
            row(f"  {args.stations} stations x {args.station_mib:g} MiB at once (s)", side.many_s,
                args.stations * args.station_mib, None, "{:.1f}")
            print(f"{'    errors (failed or not stored), worst run':50} {max(side.many_errors):>10}  "
                  + " ".join(str(x) for x in side.many_errors))


if __name__ == "__main__":
    main()
