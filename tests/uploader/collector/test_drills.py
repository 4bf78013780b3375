"""Drills for a collector that outgrew one machine: two instances behind one address (a round-robin
balancer), one PostgreSQL (Debian's, tests/services.py), one S3 server (moto's, in its own
process), and real stations: the station's own upload worker, its queue and sealed bundles.

A station cannot tell which instance it talks to: every file arrives byte-exact, once, whether
an instance is killed mid-PATCH (SIGKILL) or PostgreSQL restarts under both.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import threading
import time

import httpx
import pytest

from tests.helpers import wait_for
from tests.uploader.collector.balancer import Balancer
from tests.uploader.collector.instances import CollectorInstance
from tests.uploader.conftest import open_db as open_queue
from tests.uploader.conftest import rows as result_rows
from uploader import queue, worker
from uploader.bundle import write_bundle
from uploader.collector.auth import new_admin_token, register_station
from uploader.collector.store import open_db

pytest.importorskip("boto3")
pytest.importorskip("psycopg")

PREFIX = "2026"
MiB = 1024 * 1024


class Cluster:
    def __init__(self, root, db_url, s3_server, bucket):
        self.root, self.db_url, self.bucket = root, db_url, bucket
        self.s3 = s3_server.client()
        self.instances = [
            CollectorInstance(db_url, f"s3://{bucket}/{PREFIX}", s3_server.endpoint_url,
                              root / f"instance{n}", env=s3_server.env(),
                              extra_args=("--patch-idle-timeout", "5"))
            for n in range(2)]
        for instance in self.instances:
            instance.start()
        self.balancer = Balancer([i.port for i in self.instances])
        self.index = open_db(root / "admin", db_url)
        self.admin = new_admin_token(self.index)

    def close(self) -> None:
        self.balancer.close()
        for instance in self.instances:
            instance.stop()
        self.index.close()

    def stored(self, station: str, sitting: str, path: str) -> bytes:
        key = f"{PREFIX}/{station}/{sitting}/{path}"
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def dashboard(self, instance: CollectorInstance) -> dict:
        answer = httpx.get(instance.url + "/api/dashboard", timeout=30,
                           headers={"Authorization": f"Bearer {self.admin}"})
        answer.raise_for_status()
        doc = answer.json()
        doc.pop("generated_at")
        return doc


@pytest.fixture
def cluster(tmp_path, postgres_url, s3_server, s3_bucket):
    made = Cluster(tmp_path, postgres_url, s3_server, s3_bucket)
    yield made
    made.close()


class Station:
    """One school's computer: a sealed sitting in its upload queue, and its token."""

    def __init__(self, root, station_id: str, token: str, sizes: tuple[int, ...]):
        self.id, self.token = station_id, token
        src = root / station_id / "src"
        src.mkdir(parents=True)
        files = {}
        for n, size in enumerate(sizes):
            take = src / f"take{n}.flac"
            take.write_bytes(os.urandom(size))
            files[f"recordings/{n + 1:04d}-1.flac"] = take
        self.sitting = f"{station_id}-01"
        self.bundle = write_bundle(root / station_id / "bundle", station=station_id,
                                   sitting=self.sitting, kind="singing",
                                   opened_at="2026-11-22T08:00:00Z",
                                   closed_at="2026-11-22T08:40:00Z", files=files,
                                   results=result_rows(2), chunk_size=8 * MiB)
        self.queue_path = root / station_id / "station.db"
        db = open_queue(self.queue_path)
        queue.enqueue(db, self.bundle.dir, digests=self.bundle.digests, chunk_size=8 * MiB)
        db.close()

    def paths(self) -> list[str]:
        return [f["path"] for f in self.bundle.manifest["files"]] + ["manifest.json"]

    def upload(self, url: str, deadline: float, rate_limit: float | None = None) -> None:
        """The station's worker, pass after pass with its own backoff, until its queue is done."""
        db = open_queue(self.queue_path)
        try:
            while queue.next_due_at(db) is not None:
                assert time.monotonic() < deadline, f"{self.id}: {queue.status(db)}"
                worker.run(db, url, self.token, once=True, rate_limit=rate_limit,
                           backoff=worker.Backoff(base_s=0.1, cap_s=1.0), timeout=30)
                time.sleep(0.1)
        finally:
            db.close()


def make_stations(cluster: Cluster, root, count: int, big: int) -> list[Station]:
    """``count`` stations with two short takes each; the first ``big`` with a long one (several
    S3 parts, so that a PATCH is in flight for seconds)."""
    stations = []
    for n in range(count):
        station_id = f"S{n:03d}"
        token = register_station(cluster.index, station_id, school=f"4401{n // 10:03d}")
        sizes = (20 * MiB + n, 70_000) if n < big else (40_000 + n, 90_000)
        stations.append(Station(root / "stations", station_id, token, sizes))
    return stations


def upload_all(cluster: Cluster, stations: list[Station], timeout: float,
               slow: int = 0, during=None) -> None:
    """Every station uploads through the balancer, 24 at a time; ``during`` runs meanwhile."""
    deadline = time.monotonic() + timeout
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        futures = [pool.submit(station.upload, cluster.balancer.url, deadline,
                               4 * MiB if n < slow else None)
                   for n, station in enumerate(stations)]
        if during is not None:
            during()
        for future in futures:
            future.result()


def assert_all_stored_once(cluster: Cluster, stations: list[Station]) -> None:
    """Every file byte-exact at its key; one verified upload per file, counted once; every
    sitting complete; nothing left receiving, nothing left under .partial/."""
    for station in stations:
        for f in station.bundle.manifest["files"]:
            got = cluster.stored(station.id, station.sitting, f["path"])
            assert hashlib.sha256(got).hexdigest() == f["sha256"], (station.id, f["path"])
        manifest = (station.bundle.dir / "manifest.json").read_bytes()
        assert cluster.stored(station.id, station.sitting, "manifest.json") == manifest
    index = cluster.index
    twice = index.query("SELECT station, sitting, path, count(*) AS n FROM uploads "
                        "WHERE state = 'done' GROUP BY station, sitting, path HAVING count(*) > 1")
    assert twice == []
    files = sum(len(station.paths()) for station in stations)
    assert index.value("SELECT CAST(sum(files) AS BIGINT) FROM arrivals") == files
    assert index.count("uploads", "state = 'done'") == files
    assert index.count("sittings", "complete = 1") == len(stations)
    assert index.count("uploads", "state = 'receiving'") == 0
    assert len([k for k in list_keys(cluster) if "/.partial/" not in k]) == files


def assert_nothing_partial_left(cluster: Cluster) -> None:
    """Finished uploads leave no part, tail or assembly under .partial/ (cleaned after each,
    swept at an instance's start for what a killed one left)."""
    wait_for(lambda: not [k for k in list_keys(cluster) if "/.partial/" in k], 30,
             "the clean-up of finished uploads' parts")


def list_keys(cluster: Cluster) -> list[str]:
    keys = []
    for page in cluster.s3.get_paginator("list_objects_v2").paginate(Bucket=cluster.bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def test_two_hundred_stations_across_two_instances_one_killed_mid_patch(cluster, tmp_path):
    stations = make_stations(cluster, tmp_path, 200, big=6)
    victim, survivor = cluster.instances
    in_flight: list[dict] = []

    def kill_mid_patch() -> None:
        # Long takes are being written, chunk after chunk (at 4 MiB/s: a PATCH is on the
        # wire most of the time), some bytes recorded, when the instance dies: SIGKILL.
        def writing():
            rows = cluster.index.query(
                "SELECT id, station, path, \"offset\", length FROM uploads "
                "WHERE state = 'receiving' AND length > ? AND \"offset\" > 0", [10 * MiB])
            return rows if len(rows) >= 3 else None
        in_flight.extend(wait_for(writing, 120, "long takes being written", every=0.05))
        victim.kill()

    upload_all(cluster, stations, timeout=600, slow=6, during=kill_mid_patch)
    assert not victim.running and survivor.running
    assert in_flight
    # The uploads that were in flight went on from where they were, as the same uploads.
    for row in in_flight:
        done = cluster.index.one("SELECT id, state FROM uploads WHERE station = ? AND path = ? "
                                 "AND state = 'done'", [row["station"], row["path"]])
        assert done is not None
    resumed = [row for row in in_flight if cluster.index.value(
        "SELECT state FROM uploads WHERE id = ?", [row["id"]]) == "done"]
    assert resumed, "no upload in flight at the kill was resumed (all were started again)"
    assert_all_stored_once(cluster, stations)
    # Both instances served stations through the one address.
    assert all(n > 0 for n in cluster.balancer.connections_per_backend.values())

    victim.start()  # back, and it shows what the other shows
    first = cluster.dashboard(victim)
    for _ in range(10):
        other, again = cluster.dashboard(survivor), cluster.dashboard(victim)
        if other in (first, again):
            break
        first = again
    assert other in (first, again)
    assert other["summary"]["sittings_complete"] == len(stations)
    assert_nothing_partial_left(cluster)


def test_postgresql_restarted_mid_run_loses_nothing(cluster, tmp_path, postgres_server):
    stations = make_stations(cluster, tmp_path, 30, big=3)
    restarted = threading.Event()

    def restart_when_busy() -> None:
        wait_for(lambda: cluster.index.count("uploads", "state = 'done'") >= 10, 120,
                 "the first files to arrive")
        postgres_server.restart()
        restarted.set()

    upload_all(cluster, stations, timeout=600, slow=3, during=restart_when_busy)
    assert restarted.is_set()
    assert all(instance.running for instance in cluster.instances)
    assert_all_stored_once(cluster, stations)
    assert_nothing_partial_left(cluster)
    answers = "\n".join(instance.log_text() for instance in cluster.instances)
    assert "Traceback" not in answers or "OperationalError" in answers


def test_the_dashboard_and_sessions_are_the_same_on_either_instance(cluster, tmp_path):
    stations = make_stations(cluster, tmp_path, 4, big=0)
    upload_all(cluster, stations, timeout=300)
    a, b = cluster.instances
    # A dashboard signed in on one instance is signed in on the other (sessions in the index).
    login = httpx.post(a.url + "/login", data={"token": cluster.admin}, follow_redirects=False)
    cookie = login.cookies.get("qm_collector_session")
    assert cookie
    page = httpx.get(b.url + "/api/dashboard", cookies={"qm_collector_session": cookie})
    assert page.status_code == 200
    doc = json.loads(page.text)
    assert doc["summary"]["sittings_complete"] == 4
