"""Where verified files end up: a small Storage interface, local files or S3-compatible storage.

Keys are `<station>/<sitting>/<path>` made only of checked segments (see `safe_key`); in-progress
data never lives here, it stays in the spool on local disk until its SHA-256 is verified.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from qmbase.platform import fsync_dir, make_private_dir, make_private_file, open_private

from .. import contract


def safe_key(station: str, sitting: str, path: str) -> str:
    """The storage key of a file, made only of names the contract allows (``contract.safe_path``)."""
    if not (contract.safe_segment(station) and contract.safe_segment(sitting)
            and contract.safe_path(path)):
        raise ValueError(f"unsafe storage key: {station!r}/{sitting!r}/{path!r}")
    return f"{station}/{sitting}/{path}"


class Storage(Protocol):
    url: str

    def put(self, local_file: Path, key: str) -> None:
        """Take ownership of `local_file` (already verified) and keep it under `key`, durably."""

    def exists(self, key: str) -> bool: ...


class LocalStorage:
    def __init__(self, root: str | Path):
        self.root = make_private_dir(Path(root).resolve())
        self.url = f"file:{self.root}"

    def path_of(self, key: str) -> Path:
        target = (self.root / key).resolve()
        # Belt and braces after safe_key: never write outside the root.
        if not target.is_relative_to(self.root):
            raise ValueError(f"key escapes the storage root: {key!r}")
        return target

    def put(self, local_file: Path, key: str) -> None:
        target = self.path_of(key)
        # Children's recordings and results: every folder and file private to the collector's user.
        for folder in reversed(target.relative_to(self.root).parents[:-1]):
            make_private_dir(self.root / folder)
        make_private_file(local_file)
        try:
            os.replace(local_file, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # the root is on another file system
                raise
            tmp = target.with_name(target.name + ".incoming")
            with open(local_file, "rb") as src, open_private(tmp) as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
            os.unlink(local_file)
        fsync_dir(target.parent)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()


class S3Storage:
    """S3-compatible object storage via boto3; `endpoint_url` points at MinIO, Ceph, moto …"""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 client=None):
        import boto3  # lazy: only districts that use S3 need boto3

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url)
        self.url = f"s3://{bucket}/{self.prefix}"

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, local_file: Path, key: str) -> None:
        # upload_file switches to multipart for big files and streams from disk.
        self.client.upload_file(str(local_file), self.bucket, self.object_key(key))
        os.unlink(local_file)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise


def open_storage(url: str | None, data_dir: str | Path,
                 s3_endpoint_url: str | None = None) -> LocalStorage | S3Storage:
    """`None` → `<data_dir>/files`; `file:DIR`; `s3://BUCKET/PREFIX` (endpoint from config or
    boto3's own AWS_ENDPOINT_URL)."""
    if not url:
        return LocalStorage(Path(data_dir) / "files")
    if url.startswith("file:"):
        return LocalStorage(url[len("file:"):])
    if url.startswith("s3://"):
        parsed = urlparse(url)
        if not parsed.netloc:
            raise ValueError(f"存储地址缺少桶名：{url} / The storage URL names no bucket: {url}")
        return S3Storage(parsed.netloc, parsed.path, endpoint_url=s3_endpoint_url)
    raise ValueError(f"不支持的存储地址：{url}（应为 file:目录 或 s3://桶/前缀） / "
                     f"Unsupported storage URL: {url} (use file:DIR or s3://BUCKET/PREFIX)")
