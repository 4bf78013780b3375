"""The drills' collector instances: real `station collector serve` processes on S3 (moto's
server), killed, restarted, balanced, and two of them on one PostgreSQL database."""
from __future__ import annotations

import os
import signal

import httpx
import pytest

from .balancer import Balancer
from .conftest import Tus
from .instances import CollectorInstance


def send(instance: CollectorInstance, token: str, sitting: str, path: str) -> bytes:
    """One generated file uploaded through `instance` in three PATCHes; returns its bytes."""
    data = os.urandom(300_000)
    tus = Tus(instance.url, token, sitting)
    try:
        tus.upload(data, chunk=100_000, path=path)
    finally:
        tus.http.close()
    return data


def stored(s3_server, bucket: str, key: str) -> bytes:
    return s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def instances(tmp_path, s3_server, s3_bucket):
    """Factory: instance n on the given database (None: its own SQLite) and the test's bucket."""
    made: list[CollectorInstance] = []

    def make(db_url: str | None = None) -> CollectorInstance:
        instance = CollectorInstance(db_url, f"s3://{s3_bucket}/district", s3_server.endpoint_url,
                                     tmp_path / f"instance{len(made)}", env=s3_server.env())
        made.append(instance)
        return instance.start()

    yield make
    for instance in made:
        instance.stop()


def test_an_instance_stores_to_s3_dies_and_comes_back_on_its_port(instances, s3_server, s3_bucket):
    instance = instances()
    token = instance.token("add-station", "S01")
    data = send(instance, token, "SIT-1", "recordings/0001-1.flac")
    assert stored(s3_server, s3_bucket, "district/S01/SIT-1/recordings/0001-1.flac") == data

    instance.kill()
    assert instance.proc.returncode == -9
    with pytest.raises(httpx.ConnectError):             # a dead machine's port refuses
        httpx.get(instance.url + "/api/health", timeout=5)
    port = instance.port
    instance.start()
    assert instance.port == port
    assert httpx.get(instance.url + "/api/health", timeout=5).status_code == 200

    instance.stop()
    # SIGTERM: uvicorn shuts down cleanly, then re-raises the signal it caught (so -15)
    assert instance.proc.returncode == -signal.SIGTERM
    assert instance.log_text().count("collector running") == 2
    assert instance.log_text().rstrip().splitlines()[-1].startswith("INFO:     Finished server process")


def test_the_balancer_moves_stations_off_a_killed_instance(instances):
    first, second = instances(), instances()
    balancer = Balancer([first.port, second.port])
    try:
        for _ in range(4):
            assert httpx.get(balancer.url + "/api/health", timeout=10).status_code == 200
        assert balancer.connections_per_backend == {first.port: 2, second.port: 2}
        first.kill()
        for _ in range(4):
            assert httpx.get(balancer.url + "/api/health", timeout=10).status_code == 200
        assert balancer.connections_per_backend == {first.port: 2, second.port: 6}
    finally:
        balancer.close()


def test_two_instances_on_one_postgres_serve_the_same_station(instances, postgres_url, s3_server,
                                                              s3_bucket):
    first, second = instances(postgres_url), instances(postgres_url)
    token = first.token("add-station", "S01")   # registered through one, used on the other
    data = send(second, token, "SIT-2", "results.csv")
    assert stored(s3_server, s3_bucket, "district/S01/SIT-2/results.csv") == data
