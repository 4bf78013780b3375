"""A tus 1.0.0 client (core, creation, checksum, termination) on httpx.

Written by hand rather than with tuspy, which reads the whole file into one PATCH, retries
0 times by default, checksums only with SHA-1 and identifies uploads by a fingerprint of
the first bytes. Here: each PATCH streams one chunk from disk (never the whole file in
memory) with an ``Upload-Checksum`` (CRC-32; SHA-256 for chunks queued by older versions)
taken from the checksums computed at seal time,
uploads are identified by (station, sitting, path, sha256) in the metadata, and a resume
always starts from the offset the collector reports.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence
from urllib.parse import urljoin, urlsplit

import httpx

from qmbase.collector_link import CollectorLink
from qmbase.refusal import Refusal

from .contract import CHECKSUMS, PATCH_CONTENT_TYPE, TUS_VERSION, Checksum, Crc32, encode_metadata

BLOCK = 1024 * 1024          # bytes read from disk and handed to the socket at a time
MAX_CHUNK_REJECTS = 3        # a chunk refused for its checksum this often: stop and back off
MAX_DISCARDS = 2             # whole-file mismatches before giving the attempt up
MAX_CONFLICTS = 3            # 409s in a row without progress (the upload is busy): back off


class TusError(Refusal):
    """A failed tus exchange. ``zh``/``en`` are for the teacher; ``status`` is the collector's
    HTTP status or None, ``code`` its error code or None."""

    exit_code = 1

    def __init__(self, zh: str, en: str, status: int | None = None, code: str | None = None):
        super().__init__(zh, en)
        self.status, self.code = status, code


class NetworkError(TusError):
    pass


class UploadGone(TusError):
    """404/410: the collector has no such upload (expired or discarded): create a new one."""


class UploadDiscarded(TusError):
    """460 + Upload-Discarded: the whole file did not hash to its SHA-256; send it again."""


class ChunkRejected(TusError):
    """460: this PATCH's body did not match its Upload-Checksum; the offset did not move."""


class OffsetConflict(TusError):
    """409: our Upload-Offset is not the collector's; ask it again (HEAD)."""


class Busy(TusError):
    """409 busy: another request for this upload is still running on the collector; back off."""


class AlreadyStored(TusError):
    """409 already_stored: the file is in (a DELETE came too late); nothing to do."""


class Refused(TusError):
    """400/401/403/413: the collector refuses; a person has to fix the config or the bundle."""


class ServerFull(TusError):
    """507: the collector's disk is full."""


class LocalFileChanged(TusError):
    """The bundle file on this disk no longer matches what was sealed."""


class Stopped(Exception):
    """The worker was asked to stop in the middle of a transfer."""


class RateLimiter:
    """A token bucket shared by every request of a client: the school's link is shared."""

    def __init__(self, bytes_per_s: float):
        if bytes_per_s <= 0:
            raise ValueError("bytes_per_s must be positive")
        self.rate = float(bytes_per_s)
        self.burst = max(64 * 1024, self.rate / 4)
        self.allowance = self.burst
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def block_size(self) -> int:
        # Small blocks under a low cap keep the flow even instead of bursts and pauses.
        return int(min(BLOCK, max(16 * 1024, self.rate / 10)))

    def take(self, n: int) -> None:
        with self.lock:
            now = time.monotonic()
            self.allowance = min(self.burst, self.allowance + (now - self.last) * self.rate)
            self.last = now
            self.allowance -= n
            wait = -self.allowance / self.rate if self.allowance < 0 else 0.0
        if wait:
            time.sleep(wait)


# A chunk checksum in the queue is a hex digest; its length says which algorithm made it
# (queues sealed before CRC-32 hold SHA-256 digests, and they still upload as they are).
CHUNK_ALGORITHMS = {make().digest_size * 2: (name, make) for name, make in CHECKSUMS.items()}


def chunk_algorithm(hex_digest: str):
    """(tus algorithm name, hashlib-style constructor) of a chunk checksum in hex."""
    try:
        return CHUNK_ALGORITHMS[len(hex_digest)]
    except KeyError:
        raise ValueError(f"not a chunk checksum: {hex_digest[:80]!r}") from None


def checksum_header(hex_digest: str) -> str:
    """The tus ``Upload-Checksum`` value: algorithm name, space, base64 of the raw digest."""
    name, _ = chunk_algorithm(hex_digest)
    return Checksum(name, bytes.fromhex(hex_digest)).header()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except Exception:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("en") or body.get("detail") or body.get("error") or body)[:200]
    return str(body)[:200]


def error_code(response: httpx.Response) -> str | None:
    """The collector's error code (``{"error": code, ...}``), or None."""
    try:
        body = response.json()
    except Exception:
        return None
    return body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None


# Refusals a person has to act on: (zh, en) saying what happened and what to do.
REFUSAL_CODES = {
    "path_taken": ("收集端已存有这个场次的另一份同名文件，已存的数据不会被覆盖，本文件暂不上传。"
                   "请把场次编号和电子封签告诉区县信息中心，由信息中心核对。",
                   "the collector already holds a different file under this name in this sitting; "
                   "stored data is never overwritten, so this file is not uploaded. Give the "
                   "sitting id and seal code to the district information center to sort out."),
    "signature_bad": ("收集端认为清单签名不对：本机的令牌可能不是区县为本机最新生成的。请向区县信息中心核对令牌"
                      "（station collector add-station），填入 [upload] token 后重试。",
                      "the collector finds the manifest's signature wrong: this station's token may not "
                      "be the one the district issued last. Check the token with the district "
                      "(station collector add-station), set [upload] token, then retry."),
    "manifest_not_canonical": ("收集端拒收清单：manifest.json 封存后被改动过。请联系区县信息中心。",
                               "the collector refuses the manifest: manifest.json was changed after "
                               "sealing. Contact the district information center."),
    "manifest_bad": ("收集端拒收清单：清单内容不合规。请更新本机软件或联系区县信息中心。",
                     "the collector refuses the manifest: its content is not valid. Update the "
                     "station software or contact the district information center."),
}


def conflict_error(response: httpx.Response, what: str) -> TusError:
    """Every 409 the collector sends, told apart by its code."""
    code, s = error_code(response), response.status_code
    if code == "busy":
        return Busy("收集端正在处理这个文件的上一个请求，稍后自动继续。",
                    f"{what}: the collector is still busy with an earlier request for this file; "
                    "will continue shortly.", s, code)
    if code == "already_stored":
        return AlreadyStored("收集端已校验并保存了这个文件。", f"{what}: the collector has stored this file.",
                             s, code)
    if code in REFUSAL_CODES:
        zh, en = REFUSAL_CODES[code]
        return Refused(zh, f"{what}: {en}", s, code)
    return OffsetConflict("上传进度与收集端不一致，将按收集端的进度继续。",
                          f"{what}: offset conflict; resuming from the collector's offset.", s, code)


def error_for(response: httpx.Response, what: str) -> TusError:
    """Map a collector's answer to the exception the worker acts on (pure: no I/O)."""
    s = response.status_code
    detail = _detail(response)
    code = error_code(response)
    if s == 460 and response.headers.get("Upload-Discarded"):
        return UploadDiscarded("上传的文件与封签的 SHA-256 不符，收集端已丢弃，将重新发送。",
                               f"{what}: the file did not match its SHA-256; the collector discarded it "
                               "and it will be sent again.", s)
    if s == 460:
        return ChunkRejected("一段数据在传输中损坏，将重新发送这一段。",
                             f"{what}: a chunk arrived damaged (checksum mismatch); it will be re-sent.", s)
    if s in (404, 410):
        return UploadGone("收集端找不到这次上传，将重新建立。",
                          f"{what}: the collector has no such upload; a new one will be created.", s)
    if s == 409:
        return conflict_error(response, what)
    if s == 422 and code in REFUSAL_CODES:
        zh, en = REFUSAL_CODES[code]
        return Refused(zh, f"{what}: {en}", s, code)
    if s == 401:
        return Refused("收集端不认识本机的口令（token）。请在 station.toml 的 [upload] token 填入信息中心给的口令。",
                       f"{what}: the collector does not accept this station's token. Put the token from "
                       "the information center in [upload] token of station.toml.", s)
    if s == 403:
        return Refused("收集端拒绝：口令与考点机编号不符。请检查 station.toml 的 station_id 和 token。",
                       f"{what}: refused, the token does not belong to this station id. Check station_id "
                       "and token in station.toml.", s)
    if s == 413:
        return Refused("文件超过收集端允许的大小。请联系信息中心调整收集端的上限。",
                       f"{what}: the file is larger than the collector allows. Ask the information "
                       "center to raise the collector's limit.", s)
    if s == 507:
        return ServerFull("收集端磁盘已满，稍后自动重试。请通知信息中心清理收集端磁盘。",
                          f"{what}: the collector's disk is full; will retry later. Tell the information "
                          "center to free space on the collector.", s)
    if 400 <= s < 500:
        return Refused(f"收集端拒绝了请求（{s}）：{detail}。请联系信息中心。",
                       f"{what}: the collector refused the request ({s}): {detail}. Contact the "
                       "information center.", s)
    return TusError(f"收集端出错（{s}），稍后自动重试。", f"{what}: collector error {s}; will retry later.", s)


@dataclass
class FileToSend:
    path: Path               # the file on this disk
    size: int
    sha256: str              # hex, of the whole file
    chunk_size: int
    chunks: Sequence[str]    # hex checksum (CRC-32, or SHA-256 if older) of each chunk_size slice
    metadata: Mapping[str, str]


class TusClient:
    """One collector, one station token; reuse it for many files (one connection pool)."""

    def __init__(self, link: CollectorLink | str, token: str | None = None, *,
                 timeout: float | None = None, rate_limit: float | None = None,
                 transport: httpx.BaseTransport | None = None):
        """``link`` says how to reach the collector (URL, token, CA, TLS); a URL and ``token``
        is a shorthand for a link with the defaults. A link that may not be used is refused."""
        if isinstance(link, str):
            link = CollectorLink(url=link, token=token or "")
        if (why := link.refusal()) is not None:
            raise Refused(*why)
        self.link = link
        self.base_url = link.base_url + "/"
        self.files_url = urljoin(self.base_url, "files/")
        self.http = link.client(timeout=timeout, transport=transport,
                                headers={"Tus-Resumable": TUS_VERSION})
        self.limiter = RateLimiter(rate_limit) if rate_limit else None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "TusClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one request each ---------------------------------------------------------

    def _send(self, method: str, url: str, what: str, **kw) -> httpx.Response:
        try:
            return self.http.request(method, url, **kw)
        except httpx.TransportError as e:
            raise NetworkError("连接收集端失败或中断，稍后自动重试。请检查网络。",
                               f"{what}: the connection to the collector failed ({type(e).__name__}); "
                               "will retry later. Check the network.") from e

    def create(self, length: int, metadata: Mapping[str, str]) -> tuple[str, int | None]:
        """POST /files/: returns the upload URL and, if the collector says so, its offset."""
        r = self._send("POST", self.files_url, "create", headers={
            "Upload-Length": str(length), "Upload-Metadata": encode_metadata(metadata)})
        if r.status_code != 201 or "Location" not in r.headers:
            raise error_for(r, "create")
        offset = r.headers.get("Upload-Offset")
        return urljoin(self.files_url, r.headers["Location"]), (int(offset) if offset is not None else None)

    def offset(self, url: str) -> int:
        """HEAD: the offset the collector has durably stored."""
        r = self._send("HEAD", url, "head")
        if r.status_code != 200:
            raise error_for(r, "head")
        return int(r.headers["Upload-Offset"])

    def terminate(self, url: str) -> None:
        r = self._send("DELETE", url, "terminate")
        if r.status_code not in (204, 404, 410):
            raise error_for(r, "terminate")

    def patch(self, url: str, path: Path, offset: int, length: int, checksum_hex: str | None,
              on_bytes: Callable[[int], None] | None = None) -> int:
        """Send ``length`` bytes of ``path`` from ``offset`` in one PATCH, streamed from disk."""
        headers = {"Content-Type": PATCH_CONTENT_TYPE,
                   "Upload-Offset": str(offset), "Content-Length": str(length)}
        if checksum_hex:
            headers["Upload-Checksum"] = checksum_header(checksum_hex)
        r = self._send("PATCH", url, "patch", headers=headers,
                       content=self._body(path, offset, length, on_bytes))
        if r.status_code != 204:
            raise error_for(r, "patch")
        return int(r.headers["Upload-Offset"])

    def _body(self, path: Path, offset: int, length: int, on_bytes):
        block = self.limiter.block_size() if self.limiter else BLOCK
        with open(path, "rb") as f:
            f.seek(offset)
            left = length
            while left:
                data = f.read(min(block, left))
                if not data:
                    raise LocalFileChanged("场次包中的文件变短了（封存后被改动）。请联系信息中心。",
                                           f"{path.name} got shorter after sealing. Contact the "
                                           "information center.")
                if self.limiter:
                    self.limiter.take(len(data))
                left -= len(data)
                yield data
                if on_bytes:
                    on_bytes(len(data))

    # -- a whole file ---------------------------------------------------------------

    def upload(self, f: FileToSend, url: str | None = None,
               on_url: Callable[[str], None] | None = None,
               on_offset: Callable[[int], None] | None = None,
               on_bytes: Callable[[int], None] | None = None) -> str:
        """Send a file, resuming ``url`` if given; returns the upload URL once the file is in."""
        offset = None
        if url:
            url = urljoin(self.files_url, url)  # stored as a path: the collector's address may change
            try:
                offset = self.offset(url)
            except UploadGone:
                url = None
        rejects = discards = conflicts = 0
        while True:
            if url is None:
                url, offset = self.create(f.size, f.metadata)
                if on_url:
                    on_url(urlsplit(url).path)
            if offset is None:  # a creation that found an unfinished upload: ask where it is
                offset = self.offset(url)
            if on_offset:
                on_offset(offset)
            try:
                while offset < f.size:
                    offset = self._patch_chunk(f, url, offset, on_bytes)
                    rejects = conflicts = 0
                    if on_offset:
                        on_offset(offset)
                return url
            except ChunkRejected:
                rejects += 1
                if rejects >= MAX_CHUNK_REJECTS:
                    self._check_local_chunk(f, offset)
                    raise
                offset = self.offset(url)
            except OffsetConflict:
                # Our offset was stale (a PATCH landed whose answer we lost): ask again.
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise
                offset = self.offset(url)
            except Busy:
                # The collector is still busy with an older, stalled request for this upload
                # (until its idle timeout): wait a little, then the worker's backoff takes over.
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise
                time.sleep(0.5 * conflicts)
                offset = self.offset(url)
            except (UploadDiscarded, UploadGone):
                discards += 1
                if discards > MAX_DISCARDS:
                    raise
                url = offset = None

    def _patch_chunk(self, f: FileToSend, url: str, offset: int, on_bytes) -> int:
        index, within = divmod(offset, f.chunk_size)
        end = min((index + 1) * f.chunk_size, f.size)
        if within == 0 and index < len(f.chunks):
            digest = f.chunks[index]
        else:
            # The collector kept part of a chunk (a connection dropped mid-PATCH): the seal-time
            # checksum covers the whole chunk, so checksum the rest of it once more. Rare, and
            # bounded by one chunk.
            digest = _hash_range(f.path, offset, end - offset, Crc32)
        return self.patch(url, f.path, offset, end - offset, digest, on_bytes)

    def _check_local_chunk(self, f: FileToSend, offset: int) -> None:
        """After repeated checksum refusals, tell a damaged local file from a damaged network."""
        index = offset // f.chunk_size
        start = index * f.chunk_size
        algorithm = chunk_algorithm(f.chunks[index])[1]
        if _hash_range(f.path, start, min(f.chunk_size, f.size - start), algorithm) != f.chunks[index]:
            raise LocalFileChanged(
                f"场次包中的文件 {f.metadata.get('path', f.path.name)} 在封存后被改动，无法上传。请联系信息中心。",
                f"Bundle file {f.metadata.get('path', f.path.name)} changed after sealing and cannot be "
                "uploaded. Contact the information center.")


def _hash_range(path: Path, offset: int, length: int, algorithm) -> str:
    h = algorithm()
    with open(path, "rb") as fh:
        fh.seek(offset)
        while length > 0:
            data = fh.read(min(BLOCK, length))
            if not data:
                break
            h.update(data)
            length -= len(data)
    return h.hexdigest()
