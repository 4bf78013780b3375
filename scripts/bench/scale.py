"""Benchmark (issue 17): the collector on PostgreSQL + S3 beside the one-process SQLite + disk
collector, in the same run, on the same machine.

  - one big file (1 GiB by default) sent by the station's client (`uploader.client.TusClient`,
    the station's chunk size) through ONE instance of each back-end: seconds, MiB/s, the
    collector's CPU seconds and peak memory (VmHWM); the S3 server's CPU too (moto here; a real
    S3 service does that work elsewhere). The two back-ends alternate first from repeat to repeat;
  - --many NxM: N stations at once, M MiB each, through a round-robin balancer over TWO
    PostgreSQL + S3 instances: seconds, errors (a file not stored counts), each instance's
    peak memory, and how the connections were spread;
  - the cost of one PATCH on each back-end: --patches sequential PATCHes of 256 KiB and of
    8 MiB to one upload, the time each takes as the client sees it on 127.0.0.1 (medians, p95).

PostgreSQL is Debian's (a private cluster, fsync on), S3 is moto's server in its own process:
both started here by tests/services.py, as the drills do. Medians over --repeats.

Usage: .venv/bin/python scripts/bench/scale.py [--size-mib 1024] [--repeats 3] [--many 1000x2]
           [--patches 40]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from upload import CLIENT, DIGEST, MANY, process_cpu_s, run_py, write_random  # noqa: E402

from tests.services import PostgresServer, S3Server  # noqa: E402
from tests.uploader.collector.balancer import Balancer  # noqa: E402
from tests.uploader.collector.instances import CollectorInstance  # noqa: E402
from uploader import contract  # noqa: E402
from uploader.bundle import DEFAULT_CHUNK_SIZE  # noqa: E402
from uploader.collector.auth import register_station  # noqa: E402
from uploader.collector.store import open_db  # noqa: E402

MiB = 1024 * 1024


def vmhwm_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:")) / 1024


class Backend:
    """One collector instance (or several on one index) of one kind, fresh for each run."""

    def __init__(self, kind: str, work: Path, pg: PostgresServer, s3: S3Server):
        self.kind, self.work, self.pg, self.s3 = kind, work, pg, s3

    def start(self, stations: list[str], instances: int = 1):
        data = Path(tempfile.mkdtemp(prefix=f"{self.kind}-", dir=self.work))
        if self.kind == "sqlite+disk":
            db_url, storage, endpoint, env = None, None, None, {}
            index = open_db(data / "instance0")
        else:
            db_url = self.pg.new_database()
            bucket = self.s3.new_bucket()
            storage, endpoint, env = f"s3://{bucket}/2026", self.s3.endpoint_url, self.s3.env()
            index = open_db(data / "admin", db_url)
        tokens = {sid: register_station(index, sid) for sid in stations}
        index.close()
        started = [CollectorInstance(db_url, storage, endpoint, data / f"instance{n}", env).start()
                   for n in range(instances)]
        return started, tokens


def big_upload(backend: Backend, big: Path, digest: Path) -> dict:
    [instance], tokens = backend.start(["S01"])
    try:
        cpu0, s3cpu0 = process_cpu_s(instance.proc.pid), process_cpu_s(backend.s3.proc.pid)
        r = run_py(CLIENT, instance.url, tokens["S01"], str(big), str(digest),
                   "B" + uuid.uuid4().hex[:8], str(DEFAULT_CHUNK_SIZE))
        r["collector_cpu_s"] = process_cpu_s(instance.proc.pid) - cpu0
        r["s3_cpu_s"] = process_cpu_s(backend.s3.proc.pid) - s3cpu0
        r["collector_hwm_mib"] = vmhwm_mib(instance.proc.pid)
    finally:
        instance.stop()
    return r


def many(backend: Backend, count: int, small: Path, digest: Path) -> dict:
    stations = [f"M{i:04d}" for i in range(count)]
    instances, tokens = backend.start(stations, instances=2)
    balancer = Balancer([i.port for i in instances])
    tokens_path = backend.work / f"tokens-{uuid.uuid4().hex[:6]}.json"
    tokens_path.write_text(json.dumps(tokens))
    sitting = "M" + uuid.uuid4().hex[:8]
    try:
        r = run_py(MANY, balancer.url, str(tokens_path), str(small), str(digest), sitting,
                   str(DEFAULT_CHUNK_SIZE))
        r["hwm_mib"] = [vmhwm_mib(i.proc.pid) for i in instances]
        r["connections"] = list(balancer.connections_per_backend.values())
        index = open_db(backend.work / "check", instances[0].db_url)
        stored = index.count("uploads", "state = 'done' AND sitting = ?", [sitting])
        index.close()
        r["errors"] = len(r["errors"]) + (count - stored)
    finally:
        balancer.close()
        for instance in instances:
            instance.stop()
    return r


def patch_costs(backend: Backend, patches: int, size: int) -> list[float]:
    [instance], tokens = backend.start(["S01"])
    body = os.urandom(size)
    whole = body * patches
    headers = {"Authorization": f"Bearer {tokens['S01']}", "Tus-Resumable": "1.0.0"}
    try:
        with httpx.Client(base_url=instance.url, headers=headers, timeout=120) as http:
            created = http.post("/files/", headers={
                "Upload-Length": str(len(whole)),
                "Upload-Metadata": contract.encode_metadata({
                    "station": "S01", "sitting": "P" + uuid.uuid4().hex[:8],
                    "path": "recordings/p.flac",
                    "sha256": __import__("hashlib").sha256(whole).hexdigest()})})
            created.raise_for_status()
            location = created.headers["Location"]
            times = []
            for n in range(patches):
                t = time.perf_counter()
                answer = http.patch(location, content=body, headers={
                    "Upload-Offset": str(n * size),
                    "Content-Type": "application/offset+octet-stream"})
                times.append(time.perf_counter() - t)
                answer.raise_for_status()
    finally:
        instance.stop()
    return times[:-1]  # the last PATCH also assembles and stores the file: not a PATCH's cost


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def print_big(results: dict[str, list[dict]], args) -> None:
    print(f"\none {args.size_mib} MiB upload through one instance "
          f"(medians of {args.repeats}):")
    print(f"{'back-end':16}{'seconds':>9}{'MiB/s':>8}{'ratio':>7}{'coll. CPU-s':>13}"
          f"{'coll. MiB':>11}{'S3 CPU-s':>10}")
    base = median([r["seconds"] for r in results["sqlite+disk"]])
    for kind, rows in results.items():
        seconds = median([r["seconds"] for r in rows])
        print(f"{kind:16}{seconds:9.1f}{args.size_mib / seconds:8.0f}{base / seconds:7.2f}"
              f"{median([r['collector_cpu_s'] for r in rows]):13.1f}"
              f"{median([r['collector_hwm_mib'] for r in rows]):11.0f}"
              f"{median([r['s3_cpu_s'] for r in rows]):10.1f}")


def print_patches(backends: list[Backend], patches: int) -> None:
    print(f"\none PATCH's cost, {patches} sequential PATCHes to one upload (ms):")
    print(f"{'back-end':16}{'body':>9}{'median':>9}{'p95':>8}")
    for size in (256 * 1024, 8 * MiB):
        for backend in backends:
            times = patch_costs(backend, patches, size)
            print(f"{backend.kind:16}{size // 1024:8d}K{median(times) * 1000:9.1f}"
                  f"{p95(times) * 1000:8.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--many", default="1000x2", help="STATIONSxMIB across two instances ('' skips)")
    ap.add_argument("--patches", type=int, default=40)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="qm-scale-") as tmp, PostgresServer() as pg, \
            S3Server(log=Path(tmp) / "moto.log") as s3:
        work = Path(tmp)
        backends = [Backend("sqlite+disk", work, pg, s3), Backend("postgresql+s3", work, pg, s3)]
        big, digest = work / "big.bin", work / "big.json"
        if args.repeats:
            write_random(big, args.size_mib * MiB)
            digest.write_text(json.dumps(run_py(DIGEST, str(big), str(DEFAULT_CHUNK_SIZE))))
        results: dict[str, list[dict]] = {b.kind: [] for b in backends}
        for repeat in range(args.repeats):
            for backend in backends if repeat % 2 == 0 else backends[::-1]:
                r = big_upload(backend, big, digest)
                results[backend.kind].append(r)
                print(f"  {backend.kind:14} {args.size_mib} MiB: {r['seconds']:.1f} s, collector "
                      f"{r['collector_cpu_s']:.1f} CPU-s, {r['collector_hwm_mib']:.0f} MiB peak; "
                      f"S3 server {r['s3_cpu_s']:.1f} CPU-s", flush=True)
        if args.repeats:
            big.unlink()
            print_big(results, args)
        if args.patches:
            print_patches(backends, args.patches)

        if args.many:
            count, mib = args.many.split("x")
            small = work / "small.bin"
            write_random(small, int(float(mib) * MiB))
            small_digest = work / "small.json"
            small_digest.write_text(json.dumps(run_py(DIGEST, str(small), str(DEFAULT_CHUNK_SIZE))))
            r = many(backends[1], int(count), small, small_digest)
            print(f"\n{count} stations x {mib} MiB at once through two postgresql+s3 instances: "
                  f"{r['seconds']:.1f} s, {r['errors']} errors, peak memory per instance "
                  f"{', '.join(f'{m:.0f}' for m in r['hwm_mib'])} MiB, connections per instance "
                  f"{r['connections']}")


if __name__ == "__main__":
    main()
