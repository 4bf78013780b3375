"""The real services of tests/services.py: PostgreSQL restarts as the drills need, and moto's S3
server keeps the multipart rules the collector's S3 upload store relies on (or, where it does
not, this file says so and fails the day that changes)."""
from __future__ import annotations

import os

import pytest

MiB = 1024 * 1024

psycopg = pytest.importorskip("psycopg")
botocore_exceptions = pytest.importorskip("botocore.exceptions")


# -- PostgreSQL ------------------------------------------------------------------------------

def test_new_databases_are_empty_and_apart(postgres_server):
    first, second = postgres_server.new_database(), postgres_server.new_database()
    assert first != second and first.startswith("postgresql://")
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE uploads (id text PRIMARY KEY)")
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT to_regclass('uploads')").fetchone() == (None,)


def test_server_is_durable_and_roomy(postgres_url):
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        assert int(conn.execute("SHOW max_connections").fetchone()[0]) >= 200


def test_restart_drops_old_connections_keeps_data_and_port(postgres_server, postgres_url):
    if not postgres_server.owned:
        pytest.skip("QM_TEST_POSTGRES_URL names a server these tests cannot restart")
    port = postgres_server.port
    before = psycopg.connect(postgres_url, autocommit=True)
    before.execute("CREATE TABLE offsets (upload text PRIMARY KEY, n bigint)")
    before.execute("INSERT INTO offsets VALUES ('u1', 5242880)")

    postgres_server.restart()

    with pytest.raises(psycopg.OperationalError):
        before.execute("SELECT 1")
    before.close()
    assert postgres_server.port == port
    with psycopg.connect(postgres_url) as after:
        assert after.execute("SELECT n FROM offsets").fetchone() == (5242880,)


def test_killed_server_recovers_what_was_committed(postgres_server, postgres_url):
    if not postgres_server.owned:
        pytest.skip("QM_TEST_POSTGRES_URL names a server these tests cannot kill")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (1)")
    postgres_server.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_url, connect_timeout=2)
    postgres_server.start()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT n FROM t").fetchall() == [(1,)]


def test_a_server_the_machine_runs_is_used_not_started(postgres_server, monkeypatch):
    """QM_TEST_POSTGRES_URL: databases made on that server and dropped at the end; the server
    itself is never stopped or restarted. (Pointed here at the session's own cluster.)"""
    from tests.services import PostgresServer

    monkeypatch.setenv("QM_TEST_POSTGRES_URL", postgres_server.admin_url)
    existing = PostgresServer().start()
    assert not existing.owned and existing.port == postgres_server.port
    url = existing.new_database()
    name = url.rsplit("/", 1)[1]
    held = psycopg.connect(url, autocommit=True)   # left open: the drop must not wait for it
    held.execute("SELECT 1")
    with pytest.raises(RuntimeError, match="did not start"):
        existing.restart()
    existing.close()
    with pytest.raises(psycopg.OperationalError):  # DROP DATABASE ... WITH (FORCE) ended it
        held.execute("SELECT 1")
    held.close()
    with psycopg.connect(postgres_server.admin_url) as admin:
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (name,)).fetchone() == (0,)
        assert admin.execute("SELECT 1").fetchone() == (1,)      # and it still runs


# -- moto's S3 server: the multipart rules ---------------------------------------------------

@pytest.fixture
def s3(s3_server, s3_bucket):
    return s3_server.client(), s3_bucket


def start(client, bucket, key="upload") -> str:
    return client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]


def put_part(client, bucket, upload, number, body, key="upload") -> dict:
    etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                              Body=body)["ETag"]
    return {"PartNumber": number, "ETag": etag}


def complete(client, bucket, upload, parts, key="upload"):
    return client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                            MultipartUpload={"Parts": parts})


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_a_part_under_5_mib_before_the_last_is_entity_too_small(s3):
    client, bucket = s3
    upload = start(client, bucket)
    parts = [put_part(client, bucket, upload, 1, os.urandom(5 * MiB - 1)),
             put_part(client, bucket, upload, 2, b"last")]
    with pytest.raises(botocore_exceptions.ClientError) as refused:
        complete(client, bucket, upload, parts)
    assert error_code(refused) == "EntityTooSmall"


def test_5_mib_parts_and_a_small_last_part_complete(s3):
    client, bucket = s3
    upload = start(client, bucket)
    first, last = os.urandom(5 * MiB), b"last"
    complete(client, bucket, upload, [put_part(client, bucket, upload, 1, first),
                                      put_part(client, bucket, upload, 2, last)])
    assert client.get_object(Bucket=bucket, Key="upload")["Body"].read() == first + last


def test_an_etag_that_is_not_the_parts_is_invalid_part(s3):
    client, bucket = s3
    upload = start(client, bucket)
    part = put_part(client, bucket, upload, 1, b"only part")
    with pytest.raises(botocore_exceptions.ClientError) as refused:
        complete(client, bucket, upload, [{**part, "ETag": '"' + "0" * 32 + '"'}])
    assert error_code(refused) == "InvalidPart"


def test_uploading_a_part_again_replaces_it(s3):
    client, bucket = s3
    upload = start(client, bucket)
    old = put_part(client, bucket, upload, 1, os.urandom(5 * MiB))
    new_body = os.urandom(5 * MiB)
    new = put_part(client, bucket, upload, 1, new_body)
    last = put_part(client, bucket, upload, 2, b"tail")
    listed = client.list_parts(Bucket=bucket, Key="upload", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == \
        [(1, new["ETag"], 5 * MiB), (2, last["ETag"], 4)]
    with pytest.raises(botocore_exceptions.ClientError) as refused:
        complete(client, bucket, upload, [old, last])   # the replaced part is gone
    assert error_code(refused) == "InvalidPart"
    complete(client, bucket, upload, [new, last])
    assert client.get_object(Bucket=bucket, Key="upload")["Body"].read() == new_body + b"tail"


def test_completing_twice_succeeds_as_on_s3(s3):
    client, bucket = s3
    upload = start(client, bucket)
    parts = [put_part(client, bucket, upload, 1, b"whole file")]
    first = complete(client, bucket, upload, parts)
    assert complete(client, bucket, upload, parts)["ETag"] == first["ETag"]


@pytest.mark.parametrize("finish", ["abort", "complete"])
def test_a_finished_upload_takes_no_more_parts(s3, finish):
    client, bucket = s3
    upload = start(client, bucket)
    parts = [put_part(client, bucket, upload, 1, b"whole file")]
    if finish == "abort":
        client.abort_multipart_upload(Bucket=bucket, Key="upload", UploadId=upload)
    else:
        complete(client, bucket, upload, parts)
    with pytest.raises(botocore_exceptions.ClientError):
        put_part(client, bucket, upload, 2, b"late part")
    # ListParts is how to ask whether an upload still exists: moto answers it as S3 does.
    with pytest.raises(botocore_exceptions.ClientError) as gone:
        client.list_parts(Bucket=bucket, Key="upload", UploadId=upload)
    assert error_code(gone) == "NoSuchUpload"
    stored = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [(o["Key"], o["Size"]) for o in stored] == ([("upload", 10)] if finish == "complete" else [])


@pytest.mark.xfail(strict=True, reason="moto 5 answers UploadPart to an aborted or completed "
                   "upload with HTTP 500 (a KeyError inside moto), not S3's 404 NoSuchUpload")
def test_upload_part_to_a_finished_upload_is_no_such_upload(s3_server, s3_bucket):
    from botocore.config import Config

    # botocore retries a 500 twice; one attempt is enough to read the answer
    client, bucket = s3_server.client(Config(retries={"total_max_attempts": 1})), s3_bucket
    upload = start(client, bucket)
    client.abort_multipart_upload(Bucket=bucket, Key="upload", UploadId=upload)
    with pytest.raises(botocore_exceptions.ClientError) as refused:
        put_part(client, bucket, upload, 1, b"late part")
    assert error_code(refused) == "NoSuchUpload"


@pytest.mark.xfail(strict=True, reason="moto 5 stores a part whose Content-MD5 or "
                   "x-amz-checksum-sha256 does not match its body; S3 refuses it (BadDigest)")
@pytest.mark.parametrize("digest", ["ContentMD5", "ChecksumSHA256"])
def test_a_part_that_is_not_what_its_digest_says_is_refused(s3_server, s3_bucket, digest):
    import base64
    import hashlib

    from botocore.config import Config

    client, bucket = s3_server.client(Config(retries={"total_max_attempts": 1})), s3_bucket
    upload = start(client, bucket)
    wrong = getattr(hashlib, "md5" if digest == "ContentMD5" else "sha256")(b"other bytes")
    with pytest.raises(botocore_exceptions.ClientError) as refused:
        client.upload_part(Bucket=bucket, Key="upload", UploadId=upload, PartNumber=1,
                           Body=b"the bytes sent", **{digest: base64.b64encode(wrong.digest()).decode()})
    assert error_code(refused) in ("BadDigest", "InvalidDigest")
