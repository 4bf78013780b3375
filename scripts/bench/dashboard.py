#!/usr/bin/env python3
"""How fast the district dashboard answers with 500 stations (issue 13: under 200 ms).

A collector data dir is filled as on a busy test day: 100 expected schools of 5 stations,
each station with a heartbeat, a pre-check (one in ten failed), 4 sealed sittings of 60 files
(files in, some still arriving) and 200 incidents. The collector then runs under uvicorn
(a subprocess, as in production) and each URL is fetched `--runs` times, one request at a
time, more than a second apart so the live snapshot is computed afresh each time.

Baseline in the same run: `GET /api/stations`, the one-table view the dashboard replaced
(one query per station and per sitting).

Usage: .venv/bin/python scripts/bench/dashboard.py [--stations 500] [--runs 20]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
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

from uploader.collector import overview  # noqa: E402
from uploader.collector.auth import new_admin_token, register_station  # noqa: E402
from uploader.collector.store import now_iso, open_db  # noqa: E402

FILES_PER_SITTING = 60
SITTINGS_PER_STATION = 4


def fill(data: Path, stations: int) -> str:
    db = open_db(data)
    schools = max(1, stations // 5)
    db.insert_all("schools", [{"code": f"44010{i:04d}", "name": f"第{i}小学", "stations_expected": 5,
                                   "contact": "张老师", "phone": "13800000000", "imported_at": now_iso()}
                                for i in range(schools)])
    now = now_iso()
    uploads, sittings, heartbeats, prechecks, incidents = [], [], [], [], []
    for n in range(stations):
        sid = f"S{n:04d}"
        register_station(db, sid, school=f"44010{n % schools:04d}", room=str(200 + n % 5))
        heartbeats.append({"station": sid, "received_at": now, "at": now, "version": "1.0",
                           "sittings_open": n % 7 == 0, "body": json.dumps(
                               {"queue": {"files": {"done": 200, "queued": 44}, "bytes_total": 10**9}})})
        prechecks.append({"station": sid, "received_at": now, "overall": "fail" if n % 10 == 0 else "pass",
                          "failing": json.dumps([{"id": "audio.input", "status": "fail",
                                                  "summary_zh": "没有麦克风", "summary_en": "no mic"}]
                                                if n % 10 == 0 else []), "body": "{}"})
        for k in range(SITTINGS_PER_STATION):
            sitting = f"20260520-{k + 1:02d}"
            files = [{"path": f"recordings/{j:04d}.flac", "size": 4_000_000,
                      "sha256": hashlib.sha256(f"{sid}{k}{j}".encode()).hexdigest()}
                     for j in range(FILES_PER_SITTING)]
            complete = k < SITTINGS_PER_STATION - 1
            sittings.append({"station": sid, "sitting": sitting, "kind": "singing", "item": None,
                             "opened_at": now, "closed_at": now, "sealed_at": now,
                             "seal_code": "ABCD-EF12", "manifest_sha256": "0" * 64, "signature_ok": 1,
                             "files_json": json.dumps(files), "files_total": len(files),
                             "bytes_total": sum(f["size"] for f in files), "complete": int(complete),
                             "received_at": now, "completed_at": now if complete else None,
                             "via": "usb" if n % 50 == 0 else None})
            for j, f in enumerate(files + [{"path": "manifest.json", "size": 9000, "sha256": "0" * 64}]):
                arriving = not complete and j % 3 == 0
                uploads.append({"id": uuid.uuid4().hex, "station": sid, "sitting": sitting,
                                "path": f["path"], "sha256": f["sha256"], "length": f["size"],
                                "offset": f["size"] // 2 if arriving else f["size"],
                                "state": "receiving" if arriving else "done", "created_at": now,
                                "finished_at": None if arriving else now, "via": None})
        if n % 5 < 2:
            incidents.append({"station": sid, "uid": uuid.uuid4().hex, "local_id": 1, "category": "equipment",
                              "at": now, "sitting": "20260520-01", "students": "[\"0001\"]",
                              "text": "耳机无声", "action": "更换", "filed_by": "张老师", "received_at": now,
                              "handled_at": None, "handled_by": None, "handled_note": None})
    for table, rows in (("heartbeats", heartbeats), ("prechecks", prechecks), ("sittings", sittings),
                        ("uploads", uploads), ("incidents", incidents)):
        db.insert_all(table, rows)
    token = new_admin_token(db)
    db.close()
    return token


def timed(client: httpx.Client, url: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        time.sleep(1.1)  # past the live snapshot's 1 s reuse: every answer is computed afresh
        t = time.perf_counter()
        response = client.get(url)
        out.append(time.perf_counter() - t)
        response.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        token = fill(data, args.stations)
        print(f"filled {args.stations} stations in {time.perf_counter() - t:.1f} s")
        db = open_db(data)
        inproc = []
        for _ in range(args.runs):
            t = time.perf_counter()
            overview.overview(db)
            inproc.append(time.perf_counter() - t)
        db.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "uploader.collector.cli", "serve", "--data", str(data),
                                 "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=open(data / "collector.log", "wb"), env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        client.get("/api/health")
                        break
                    except httpx.TransportError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise SystemExit((data / "collector.log").read_text())
                        time.sleep(0.2)
                client.get("/api/dashboard")  # warm: first request imports and compiles templates
                rows = [("overview() in process", inproc),
                        ("GET /api/dashboard", timed(client, "/api/dashboard", args.runs)),
                        ("GET / (page, document embedded)", timed(client, "/", args.runs)),
                        ("GET /api/stations (baseline)", timed(client, "/api/stations", args.runs))]
                size = len(client.get("/api/dashboard").content)
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"{args.stations} stations, {args.stations * SITTINGS_PER_STATION} sittings, "
          f"{args.stations * SITTINGS_PER_STATION * (FILES_PER_SITTING + 1)} files; "
          f"dashboard document {size / 1e6:.2f} MB")
    print(f"{'':34} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for name, times in rows:
        times = sorted(times)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"{name:34} {statistics.median(times) * 1000:10.0f} {p95 * 1000:8.0f} {max(times) * 1000:8.0f}")


if __name__ == "__main__":
    main()
