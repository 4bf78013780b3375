"""S3-compatible storage: finished files go to the bucket, against moto's server on 127.0.0.1."""
from __future__ import annotations

import hashlib
import os

import httpx
import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def collector_index():
    """SQLite only: on PostgreSQL with S3 the bytes so far go to S3 too (test_s3_uploads.py,
    test_drills.py), not to the local spool these tests look at."""
    return None


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets in this process across server instances: start each test clean.
    httpx.post(endpoint + "/moto-api/reset").raise_for_status()
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="district")
    yield endpoint, client
    server.stop()


def test_verified_files_land_in_the_bucket_and_leave_the_spool(s3, collector_factory, tus_for):
    endpoint, client = s3
    server = collector_factory("--storage", "s3://district/2026", "--s3-endpoint-url", endpoint)
    tus = tus_for(server=server)
    data = os.urandom(700_000)
    location = tus.upload(data, chunk=250_000, path="recordings/0001-1.flac")
    key = f"2026/S01/{tus.sitting}/recordings/0001-1.flac"
    assert client.get_object(Bucket="district", Key=key)["Body"].read() == data
    assert not server.spool_file(location).exists()
    assert server.stored_files() == []  # nothing on the local file store
    # Sending it again succeeds and leaves the one object as it was.
    stored = client.head_object(Bucket="district", Key=key)
    again = tus.create(data, path="recordings/0001-1.flac").headers["Location"]
    assert tus.patch(again, 0, data).headers["Upload-Offset"] == str(len(data))
    assert client.head_object(Bucket="district", Key=key)["LastModified"] == stored["LastModified"]
    assert client.list_objects_v2(Bucket="district")["KeyCount"] == 1


def test_hash_mismatch_puts_nothing_in_the_bucket(s3, collector_factory, tus_for):
    endpoint, client = s3
    server = collector_factory("--storage", "s3://district", "--s3-endpoint-url", endpoint)
    tus = tus_for(server=server)
    data = os.urandom(5000)
    location = tus.create(data, sha256=hashlib.sha256(b"else").hexdigest()).headers["Location"]
    assert tus.patch(location, 0, data).status_code == 460
    assert client.list_objects_v2(Bucket="district").get("KeyCount", 0) == 0


def test_unreachable_bucket_is_a_clear_error_and_nothing_done(s3, collector_factory, tus_for):
    endpoint, client = s3
    server = collector_factory("--storage", "s3://no-such-bucket", "--s3-endpoint-url", endpoint)
    tus = tus_for(server=server)
    data = os.urandom(5000)
    location = tus.create(data).headers["Location"]
    answer = tus.patch(location, 0, data)
    assert answer.status_code == 503
    assert answer.json()["error"] == "storage_failed"
    assert "存储" in answer.json()["message"]
    # The last chunk was dropped, so the client's HEAD says it still has to send it.
    assert tus.head(location).headers["Upload-Offset"] == "0"
    empty = tus.create(b"", path="notes.txt")       # finished at creation: fails the same way
    assert empty.status_code == 503
    client.create_bucket(Bucket="no-such-bucket")
    assert tus.patch(location, 0, data).status_code == 204
    again = tus.create(b"", path="notes.txt")       # the client retries: now it is stored
    assert again.status_code == 201 and again.headers["Upload-Offset"] == "0"
    assert client.get_object(Bucket="no-such-bucket",
                             Key=f"S01/{tus.sitting}/notes.txt")["Body"].read() == b""
    assert client.get_object(Bucket="no-such-bucket",
                             Key=f"S01/{tus.sitting}/results.csv")["Body"].read() == data
