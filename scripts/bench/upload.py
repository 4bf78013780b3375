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
  - the reference tus server (issue 16): the same client, file and chunk size against
    `@tus/server` + `@tus/file-store` (npm, pinned in scripts/bench/tus_reference/), as it
    ships (it never fsyncs) and with an fdatasync after each PATCH (the collector's
    durability). Every one-big-upload run, the collector's and the references', starts a
    fresh server process, in an order that rotates from repeat to repeat;
  - --many NxM (repeatable): N stations uploading M MiB each at once through TusClient, each
    also sending its heartbeat every HEARTBEAT_S seconds throughout (target: no error), and
    the collector's peak RSS meanwhile (target: bounded).
Every figure is the median over --repeats; the table prints each run beside it.

Usage: .venv/bin/python scripts/bench/upload.py [--size-mib 1024] [--repeats 3]
           [--chunk-mib N] [--many 200x20] [--many 1000x2] [--no-reference] [--before-src DIR]
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
import threading
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

HEARTBEAT_S = 5.0  # the station worker's heartbeat is slower; 5 s keeps 1 000 stations busy

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

# Every station's heartbeat every `every` seconds, from a process of its own (the uploading
# threads would starve it of the GIL), until the file `stop` appears.
HEARTBEATS = r"""
import datetime, json, sys, threading, time
from pathlib import Path
import httpx
url, tokens, every, stop = sys.argv[1:5]
items = list(json.loads(Path(tokens).read_text()).items())
beats, errors = [0], []

def beat(share):
    with httpx.Client(base_url=url, timeout=600) as http:
        while not Path(stop).exists():
            began = time.monotonic()
            for sid, token in share:
                body = {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                        "version": "bench", "sittings_open": 1}
                try:
                    http.post(f"/api/stations/{sid}/heartbeat", json=body,
                              headers={"Authorization": f"Bearer {token}"}).raise_for_status()
                    beats[0] += 1
                except Exception as e:
                    errors.append(f"heartbeat {sid}: {type(e).__name__}: {e}"[:300])
            while time.monotonic() - began < float(every) and not Path(stop).exists():
                time.sleep(0.05)

threads = [threading.Thread(target=beat, args=(items[i::8],)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"heartbeats": beats[0], "errors": errors}))
"""

REFERENCE_DIR = ROOT / "scripts" / "bench" / "tus_reference"


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
        return process_cpu_s(self.proc.pid)

    def rss_mib(self) -> float:
        return process_rss_mib(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.sock.close()
        self.log.close()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:")) / 1024


class ReferenceServer:
    """@tus/server + @tus/file-store under Node (scripts/bench/tus_reference/server.mjs)."""

    def __init__(self, data: Path, fdatasync: bool):
        self.data = data
        self.log = open(data.parent / (data.name + ".log"), "ab")
        self.proc = subprocess.Popen(
            ["node", str(REFERENCE_DIR / "server.mjs"), str(data)] + (["--fdatasync"] if fdatasync else []),
            cwd=REFERENCE_DIR, stdout=subprocess.PIPE, stderr=self.log)
        port = self.proc.stdout.readline().strip()
        if not port.isdigit():
            raise SystemExit("the reference server did not start: see " + self.log.name)
        self.url = f"http://127.0.0.1:{int(port)}"

    def cpu_s(self) -> float:
        return process_cpu_s(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def reference_available() -> bool:
    return shutil.which("node") is not None and (REFERENCE_DIR / "node_modules" / "@tus" / "server").is_dir()


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


def new_collector_data(parent: Path, stations: list[str]) -> tuple[Path, dict[str, str]]:
    data = Path(tempfile.mkdtemp(prefix="collector-", dir=parent))
    db = open_db(data)
    tokens = {sid: register_station(db, sid) for sid in stations}
    db.close()
    return data, tokens


class Side:
    """One source tree under test: its digests and its runs, each on a fresh collector."""

    def __init__(self, label: str, work: Path, src: Path | None, big: Path,
                 small_files: dict[float, Path], chunk_size: int):
        """chunk_size 0: the tree's own DEFAULT_CHUNK_SIZE."""
        self.label, self.src, self.work = label, src, work
        self.digest = work / f"{label}-big.json"
        digest = run_py(DIGEST, str(big), str(chunk_size), src=src)
        self.digest.write_text(json.dumps(digest))
        self.chunk_size = digest["chunk_size"]
        self.small_digests = {}
        for mib, path in small_files.items():
            out = work / f"{label}-small-{mib:g}.json"
            out.write_text(json.dumps(run_py(DIGEST, str(path), str(self.chunk_size), src=src)))
            self.small_digests[mib] = out
        self.tus, self.hwm, self.client_cpu, self.server_cpu = [], [], [], []
        self.many: dict[str, dict[str, list]] = {}

    def upload_big(self, big: Path) -> None:
        data, tokens = new_collector_data(self.work, ["S01"])
        collector = CollectorProcess(data, self.src)
        try:
            sitting = "B" + uuid.uuid4().hex[:8]
            cpu = collector.cpu_s()
            r = run_py(CLIENT, collector.url, tokens["S01"], str(big), str(self.digest), sitting,
                       str(self.chunk_size), src=self.src)
            self.server_cpu.append(collector.cpu_s() - cpu)
        finally:
            collector.stop()
        stored = data / "files" / "S01" / sitting / "recordings" / "big.flac"
        if stored.stat().st_size != big.stat().st_size:
            raise SystemExit("the stored file has the wrong size")
        shutil.rmtree(data)
        self.tus.append(r["seconds"])
        self.hwm.append(r["vmhwm_kib"] / 1024)
        self.client_cpu.append(r["cpu_s"])

    def upload_many(self, count: int, mib: float, small: Path) -> None:
        stations = [f"B{i:04d}" for i in range(count)]
        data, tokens = new_collector_data(self.work, stations)
        tokens_path = data / "tokens.json"
        tokens_path.write_text(json.dumps(tokens))
        collector = CollectorProcess(data, self.src)
        peak, stop = [collector.rss_mib()], threading.Event()

        def watch() -> None:
            while not stop.wait(0.1):
                peak.append(collector.rss_mib())

        watcher = threading.Thread(target=watch)
        watcher.start()
        stop_file = data / "stop-heartbeats"
        beater = subprocess.Popen(
            [sys.executable, "-c", HEARTBEATS, collector.url, str(tokens_path), str(HEARTBEAT_S),
             str(stop_file)], stdout=subprocess.PIPE, text=True, cwd=self.src or ROOT,
            env=src_env(self.src))
        try:
            sitting = "M" + uuid.uuid4().hex[:8]
            r = run_py(MANY, collector.url, str(tokens_path), str(small),
                       str(self.small_digests[mib]), sitting, str(self.chunk_size), src=self.src)
        finally:
            stop_file.touch()
            beats = json.loads(beater.communicate(timeout=600)[0].strip().splitlines()[-1])
            stop.set()
            watcher.join()
            collector.stop()
        r["errors"] += beats["errors"]
        r["heartbeats"] = beats["heartbeats"]
        stored_ok = sum((data / "files" / sid / sitting / "recordings" / "s.flac").is_file()
                        for sid in stations)
        figures = self.many.setdefault(f"{count}x{mib:g}", {
            "seconds": [], "errors": [], "peak_rss_mib": [], "heartbeats": []})
        figures["seconds"].append(r["seconds"])
        figures["errors"].append(len(r["errors"]) + (len(stations) - stored_ok))
        figures["peak_rss_mib"].append(max(peak))
        figures["heartbeats"].append(r["heartbeats"])
        for e in r["errors"][:3]:
            print(f"  error ({self.label}):", e, file=sys.stderr)
        shutil.rmtree(data)


class ReferenceSide:
    """The reference server as a contender for the one big upload, a fresh process each run."""

    def __init__(self, label: str, work: Path, fdatasync: bool, digest: Path, chunk_size: int):
        self.label, self.work, self.fdatasync = label, work, fdatasync
        self.digest, self.chunk_size = digest, chunk_size
        self.tus, self.hwm, self.client_cpu, self.server_cpu = [], [], [], []

    def upload_big(self, big: Path) -> None:
        data = Path(tempfile.mkdtemp(prefix="reference-", dir=self.work))
        server = ReferenceServer(data, self.fdatasync)
        try:
            cpu = server.cpu_s()
            r = run_py(CLIENT, server.url, "no-token", str(big), str(self.digest),
                       "R" + uuid.uuid4().hex[:8], str(self.chunk_size))
            self.server_cpu.append(server.cpu_s() - cpu)
        finally:
            server.stop()
        sizes = [p.stat().st_size for p in data.iterdir() if p.suffix != ".json"]
        if sizes != [big.stat().st_size]:
            raise SystemExit(f"the reference server stored {sizes}, not one file of the right size")
        shutil.rmtree(data)
        self.tus.append(r["seconds"])
        self.hwm.append(r["vmhwm_kib"] / 1024)
        self.client_cpu.append(r["cpu_s"])


def row(label: str, values: list[float], mib: float | None, baseline: float | None,
        fmt: str = "{:.2f}") -> None:
    m = statistics.median(values)
    rate = f"{mib / m:8.1f}" if mib else f"{'':8}"
    share = f"{baseline / m:11.1%}" if baseline else f"{'':>11}"
    print(f"{label:58} {fmt.format(m):>10} {rate} {share}  " + " ".join(fmt.format(v) for v in values))


def many_spec(text: str) -> tuple[int, float]:
    count, _, mib = text.partition("x")
    return int(count), float(mib)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-mib", type=float, default=0,
                    help="MiB per PATCH (default: each tree's own bundle.DEFAULT_CHUNK_SIZE)")
    ap.add_argument("--many", type=many_spec, action="append",
                    help="STATIONSxMIB: that many stations at once, MIB each (repeatable; "
                         "default 200x20; 0x0 for none)")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip @tus/server (otherwise needs node and npm ci in "
                         "scripts/bench/tus_reference)")
    ap.add_argument("--before-src", type=Path,
                    help="another source tree (its uploader/) to run beside this one")
    args = ap.parse_args()
    many = [m for m in (args.many or [(200, 20.0)]) if m[0]]
    if not args.no_reference and not reference_available():
        raise SystemExit("the reference server is missing: cd scripts/bench/tus_reference && "
                         "npm ci (or pass --no-reference)")
    chunk_size = int(args.chunk_mib * MiB)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="qm-bench-upload-"))
    baseline_collector = None
    sides: list = []
    try:
        big = work / "big.bin"
        write_random(big, args.size_mib * MiB)
        small_files = {}
        for _, mib in many:
            small_files[mib] = work / f"small-{mib:g}.bin"
            write_random(small_files[mib], int(mib * MiB))
        for label, src in (("this tree", None), ("before", args.before_src)):
            if label == "before" and src is None:
                continue
            sides.append(Side(label, work, src, big, small_files, chunk_size))
        contenders = list(sides)
        if not args.no_reference:
            for label, sync in (("@tus/server", False), ("@tus/server + fdatasync", True)):
                contenders.append(ReferenceSide(label, work, sync, sides[0].digest, sides[0].chunk_size))

        data, tokens = new_collector_data(work, ["S01"])
        baseline_collector = CollectorProcess(data, None)
        url, token = baseline_collector.url, tokens["S01"]
        probe, plain, disk, plain_cpu, plain_curl_cpu = [], [], [], [], []
        # Every timed run starts with the disk settled (os.sync): otherwise the writeback of
        # the run before (GiBs, after the many-stations run) would slow whichever comes next.
        for i in range(args.repeats):
            os.sync()
            disk.append(disk_ceiling(big, data / "ceiling.bin", sides[0].chunk_size))
            os.sync()
            probe.append(curl_put(big, url + "/api/probe", token))
            name = uuid.uuid4().hex
            os.sync()
            cpu, curl_cpu = baseline_collector.cpu_s(), children_cpu_s()
            plain.append(curl_put(big, f"{url}/bench/put/{name}", token))
            plain_cpu.append(baseline_collector.cpu_s() - cpu)
            plain_curl_cpu.append(children_cpu_s() - curl_cpu)
            stored = data / "files" / "bench-put" / name
            if stored.stat().st_size != big.stat().st_size:
                raise SystemExit("the plain PUT stored the wrong size")
            stored.unlink()
            shift = i % len(contenders)  # each goes first in turn
            for contender in contenders[shift:] + contenders[:shift]:
                os.sync()
                contender.upload_big(big)
        for count, mib in many:
            for i in range(args.repeats):
                for side in (sides if i % 2 == 0 else sides[::-1]):
                    os.sync()
                    side.upload_many(count, mib, small_files[mib])
    finally:
        if baseline_collector:
            baseline_collector.stop()
        shutil.rmtree(work, ignore_errors=True)

    mib = args.size_mib
    base = statistics.median(plain)
    print(f"upload benchmark: {mib} MiB file, median of {args.repeats}; {os.cpu_count()} CPUs; "
          f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{'figure':58} {'median':>10} {'MiB/s':>8} {'of baseline':>11}  runs")
    row("curl -T, plain streaming PUT to file + fsync (baseline)", plain, mib, base)
    row("  curl CPU (s)", plain_curl_cpu, None, None)
    row("  collector CPU (s)", plain_cpu, None, None)
    row("curl -T, PUT /api/probe (reads and discards)", probe, mib, base)
    row("disk alone: copy + fsync per chunk", disk, mib, base)
    for contender in contenders:
        src = getattr(contender, "src", None)
        server = ("collector from " + contender.label if isinstance(contender, Side)
                  else contender.label + " 2.4.5 with @tus/file-store")
        print(f"-- station TusClient to {server}" + (f" ({src})" if src else "")
              + f", {contender.chunk_size / MiB:g} MiB per PATCH, fresh server each run")
        row("  one tus upload (s)", contender.tus, mib, base)
        row("  client CPU (s)", contender.client_cpu, None, None)
        row("  server CPU (s)", contender.server_cpu, None, None)
        row("  client peak memory (VmHWM, MiB)", contender.hwm, None, None, "{:.1f}")
    first = contenders[0]
    for other in contenders[1:]:
        ratios = [o / f for f, o in zip(first.tus, other.tus)]
        row(f"time of {other.label} / {first.label}, same repeat", ratios, None, None, "{:.3f}")
    for side in sides:
        for spec, figures in side.many.items():
            count, mib_each = many_spec(spec)
            print(f"-- {count} stations x {mib_each:g} MiB at once, heartbeats every {HEARTBEAT_S:g} s, "
                  f"collector from {side.label}")
            row("  all stored (s)", figures["seconds"], count * mib_each, None, "{:.1f}")
            row("  collector peak RSS (MiB)", figures["peak_rss_mib"], None, None, "{:.0f}")
            row("  heartbeats answered", figures["heartbeats"], None, None, "{:.0f}")
            print(f"{'    errors (failed or not stored), worst run':58} {max(figures['errors']):>10}  "
                  + " ".join(str(x) for x in figures["errors"]))


if __name__ == "__main__":
    main()
