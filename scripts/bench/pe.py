#!/usr/bin/env python3
"""PE station under load: N simulated meters at R frames per second each, over socat PTYs.

    .venv/bin/python scripts/bench/pe.py [--devices 8] [--rate 10] [--seconds 600] [--students 400]

Targets (issue 5): no frame lost; 99th percentile from a frame's last byte to its
committed database row <= 20 ms, and to the page <= 150 ms; the station using <= 15 % of
one core.

What runs: a real `station serve` (uvicorn) with one open sit-and-reach sitting and
``--devices`` qm-frame meters configured on socat PTY pairs. A writer thread per meter
sends frames on an absolute 1/R s schedule; each frame's value is unique (device.sequence),
and its CODE walks through the generated roster, so the flow assigns attempts until each
student has had theirs and keeps the rest as unassigned readings (every frame is a row).

How it is measured (all clocks are this machine's ``time.time()``):
* last byte: taken right after ``write()`` of the whole frame returns;
* committed row: a reader polling the database (own connection, WAL) every 1 ms sees the
  row; the figure is an upper bound (adds up to ~1 ms of polling);
* page: the server-sent event for that frame arrives at an HTTP client subscribed to
  ``/api/pe/events`` (what the page's EventSource receives; browser rendering not included);
* CPU: the serve process's utime + stime from /proc over the run (Linux), in % of one core.

Baselines, measured in the same run: the same frames read by a bare pyserial `PortReader`
+ driver with no database or web (``--baseline-seconds``, default 30), and single-row
SQLite commits (WAL, synchronous=FULL) on the same disk before and after the run: the
fsync floor under every committed row. Prints one JSON document.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
STATION = str(Path(sys.executable).with_name("station"))
TOKEN_FILE = "web-token"        # station/web/session.py: the login link's token, in the data dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pty_pairs(directory: Path, n: int) -> tuple[list[subprocess.Popen], list[tuple[str, str]]]:
    procs, ends = [], []
    for i in range(n):
        a, b = str(directory / f"tty{i}A"), str(directory / f"tty{i}B")
        procs.append(subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ends.append((a, b))
    deadline = time.monotonic() + 10
    while not all(os.path.exists(a) and os.path.exists(b) for a, b in ends):
        if time.monotonic() > deadline:
            raise SystemExit("socat did not create the PTY pairs")
        time.sleep(0.02)
    return procs, ends


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": _r(percentile(ms, 50)), "p99_ms": _r(percentile(ms, 99)),
            "max_ms": _r(max(ms) if ms else None), "mean_ms": _r(statistics.fmean(ms) if ms else None)}


def _r(x):
    return None if x is None else round(x, 2)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks      # utime, stime


def writers(ends, rate: float, seconds: float, codes: list[str], sent: dict[str, float]):
    """One thread per meter; returns the threads (started)."""
    import serial

    from devices.drivers import qm_frame

    start = time.time() + 0.5
    lock = threading.Lock()

    def run(index: int, path: str) -> None:
        port = serial.Serial(path)
        n = int(seconds * rate)
        for seq in range(n):
            due = start + seq / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            value = f"{index}.{seq:06d}"
            code = codes[(seq * len(ends) + index) % len(codes)] if codes else ""
            port.write(qm_frame.format_frame(f"M{index}", "sit_and_reach", code, value, "cm"))
            at = time.time()
            with lock:
                sent[value] = at
        port.close()

    threads = [threading.Thread(target=run, args=(i, b), daemon=True) for i, (_, b) in enumerate(ends)]
    for t in threads:
        t.start()
    return threads


def baseline(ends, rate: float, seconds: float) -> dict:
    """Bare pyserial reader + driver, no database or web: the floor."""
    from devices import drivers
    from devices.ports import PortReader

    seen: dict[str, float] = {}
    lock = threading.Lock()

    def on_reading(reading) -> None:
        with lock:
            seen.setdefault(format(reading.value, "f"), time.time())

    readers = [PortReader(a, drivers.get("qm-frame"), on_reading).start() for a, _ in ends]
    time.sleep(0.5)
    sent: dict[str, float] = {}
    for t in writers(ends, rate, seconds, [], sent):
        t.join()
    time.sleep(1)
    for r in readers:
        r.stop()
    ms = [(seen[v] - at) * 1000 for v, at in sent.items() if v in seen]
    return {"frames_sent": len(sent), "frames_read": len(ms), "to_reading": summary(ms)}


def bare_commits(directory: Path, n: int = 300) -> dict:
    """One-row commits in WAL with synchronous=FULL on the same disk: the fsync floor."""
    conn = sqlite3.connect(str(directory / "bare.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    ms = []
    for i in range(n):
        t = time.perf_counter()
        conn.execute("INSERT INTO t (v) VALUES (?)", [str(i)])
        ms.append((time.perf_counter() - t) * 1000)
        time.sleep(0.01)
    conn.close()
    return summary(ms)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, default=8)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--students", type=int, default=400)
    p.add_argument("--baseline-seconds", type=float, default=30.0)
    a = p.parse_args()

    import httpx

    work = Path(tempfile.mkdtemp(prefix="qm-bench-pe-"))
    socats, ends = pty_pairs(work, a.devices)
    result: dict = {"devices": a.devices, "rate_hz": a.rate, "seconds": a.seconds}
    serve = None
    try:
        if a.baseline_seconds > 0:
            result["baseline_bare_reader"] = baseline(ends, a.rate, a.baseline_seconds)
        result["baseline_bare_commit_before"] = bare_commits(work)

        data = work / "data"
        env = dict(os.environ, STATION_DATA_DIR=str(data))
        roster = work / "roster.csv"
        codes = [f"{i:05d}" for i in range(1, a.students + 1)]
        roster.write_text("学籍号,姓名,性别,年级\n" + "".join(
            f"{c},学生{c},{'男' if i % 2 else '女'},四年级\n" for i, c in enumerate(codes)), encoding="utf-8")
        subprocess.run([STATION, "roster", "import", str(roster)], env=env, check=True, capture_output=True)
        (data / "station.toml").write_text('station_id = "BENCH"\n' + "".join(
            f'[[pe.devices]]\nname = "M{i}"\ndriver = "qm-frame"\nport = "{st}"\nitem = "sit_and_reach"\n'
            for i, (st, _) in enumerate(ends)), encoding="utf-8")
        subprocess.run([STATION, "session", "open", "--kind", "pe", "--item", "sit_and_reach"],
                       env=env, check=True, capture_output=True)
        port = free_port()
        serve = subprocess.Popen([STATION, "serve", "--port", str(port)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        # Signed in as a proctor's browser is, through the login link's token.
        client = httpx.Client(base_url=base, timeout=2)
        deadline = time.monotonic() + 60
        while True:
            try:
                if not client.cookies:
                    token = (data / TOKEN_FILE).read_text(encoding="ascii").strip()
                    client.get("/login", params={"token": token})
                state = client.get("/api/pe/state").json()
                if all(d["status"] == "connected" for d in state["devices"]):
                    break
            except (httpx.TransportError, KeyError, ValueError, OSError):
                pass
            if time.monotonic() > deadline or serve.poll() is not None:
                raise SystemExit("station serve did not start")
            time.sleep(0.2)

        page: dict[str, float] = {}
        committed: dict[str, float] = {}
        stop = threading.Event()

        def listen_page() -> None:
            with client.stream("GET", "/api/pe/events", timeout=None) as events:
                for line in events.iter_lines():
                    if stop.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    at = time.time()
                    ev = json.loads(line[5:])
                    value = ev.get("attempt", {}).get("value") if ev["type"] == "attempt" else ev.get("value")
                    if ev["type"] in ("attempt", "unassigned") and value:
                        page.setdefault(value, at)

        def poll_db() -> None:
            conn = sqlite3.connect(f"file:{data / 'station.db'}?mode=ro", uri=True)
            last = 0
            while not stop.is_set():
                rows = conn.execute("SELECT id, value FROM pe_readings WHERE id > ? ORDER BY id", [last]).fetchall()
                at = time.time()
                for rid, value in rows:
                    committed.setdefault(value, at)
                    last = rid
                time.sleep(0.001)
            conn.close()

        helpers = [threading.Thread(target=listen_page, daemon=True), threading.Thread(target=poll_db, daemon=True)]
        for t in helpers:
            t.start()
        time.sleep(1)
        sent: dict[str, float] = {}
        cpu0, wall0 = cpu_seconds(serve.pid), time.monotonic()
        for t in writers(ends, a.rate, a.seconds, codes, sent):
            t.join()
        time.sleep(2)                      # let the last frames land
        cpu1, wall1 = cpu_seconds(serve.pid), time.monotonic()
        stop.set()
        rows = sqlite3.connect(f"file:{data / 'station.db'}?mode=ro", uri=True).execute(
            "SELECT count(*), sum(student IS NOT NULL) FROM pe_readings").fetchone()
        db_ms = [(committed[v] - at) * 1000 for v, at in sent.items() if v in committed]
        page_ms = [(page[v] - at) * 1000 for v, at in sent.items() if v in page]
        result["station"] = {
            "frames_sent": len(sent), "rows_in_db": rows[0], "rows_assigned": rows[1],
            "frames_lost": len(sent) - len([v for v in sent if v in committed]),
            "to_committed_row": summary(db_ms), "to_page_event": summary(page_ms),
            "page_events_missing": len(sent) - len(page_ms),
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 1),
        }
        (work / "bare.db").unlink()
        result["baseline_bare_commit_after"] = bare_commits(work)
        s = result["station"]
        result["targets_met"] = {
            "no_frame_lost": s["frames_lost"] == 0 and s["rows_in_db"] == s["frames_sent"],
            "db_p99_le_20ms": (s["to_committed_row"]["p99_ms"] or 1e9) <= 20,
            "page_p99_le_150ms": (s["to_page_event"]["p99_ms"] or 1e9) <= 150,
            "cpu_le_15pct": s["cpu_percent_of_one_core"] <= 15}
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(10)
        for proc in socats:
            proc.terminate()
            proc.wait(5)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
