"""The one place that says how this station reaches its district collector.

URL, token, the district's CA file, timeouts and TLS verification: uploads, heartbeats, the
outbox and the pre-check's network checks all build their HTTP client here, so a district
with its own CA sets ``[upload] ca_bundle`` once and every one of them trusts it.

A plain ``http://`` collector that is not on this computer would carry children's
recordings and the station's token in clear over the school's network: the pre-check warns,
and uploading needs ``[upload] allow_plain_http = true`` said explicitly.
"""
from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0


def is_this_computer(host: str) -> bool:
    host = (host or "").strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class CollectorLink:
    url: str = ""
    token: str = ""
    ca_bundle: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    allow_plain_http: bool = False

    @classmethod
    def from_config(cls, upload: Mapping) -> "CollectorLink":
        """From the ``[upload]`` table (or a flat mapping with the same keys)."""
        return cls(url=str(upload.get("collector_url") or "").strip(),
                   token=str(upload.get("token") or "").strip(),
                   ca_bundle=str(upload.get("ca_bundle") or ""),
                   allow_plain_http=bool(upload.get("allow_plain_http") or False))

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def plain_http_elsewhere(self) -> bool:
        """``http://`` to another computer: nothing on the way is encrypted."""
        parts = urlsplit(self.url)
        return parts.scheme.lower() == "http" and not is_this_computer(parts.hostname or "")

    def ssl_context(self) -> ssl.SSLContext:
        """The system's trusted CAs, plus the district's own CA file when one is named."""
        context = ssl.create_default_context()
        if self.ca_bundle:
            context.load_verify_locations(cafile=os.fspath(self.ca_bundle))
        return context

    def timeout(self, total: float | None = None):
        import httpx

        total = self.timeout_s if total is None else total
        return httpx.Timeout(total, connect=min(total, self.connect_timeout_s))

    def client(self, *, timeout: float | None = None, headers: Mapping[str, str] | None = None,
               transport=None, authorized: bool = True):
        """An ``httpx.Client`` for this collector: its TLS trust, timeouts and (by default) token."""
        import httpx

        all_headers = {"Authorization": f"Bearer {self.token}"} if authorized and self.token else {}
        all_headers.update(headers or {})
        return httpx.Client(headers=all_headers, timeout=self.timeout(timeout),
                            verify=self.ssl_context(), transport=transport,
                            follow_redirects=False)

    def refusal(self) -> tuple[str, str] | None:
        """Why nothing may be sent to this collector now (zh, en), or None."""
        if not self.url:
            return ("没有配置区县汇集服务器：请在 station.toml 的 [upload] 中填写 collector_url 和 token。",
                    "No collector configured: set collector_url and token under [upload] in station.toml.")
        if self.scheme not in ("http", "https") or not urlsplit(self.url).hostname:
            return (f"汇集服务器地址不对：{self.url}。请填写 https://服务器:端口 形式的地址（upload.collector_url）。",
                    f"The collector address is not valid: {self.url}. Set upload.collector_url as "
                    "https://server:port.")
        if not self.token:
            return ("没有上传令牌，不能上传（封存的场次都保留着，不会丢失）：请向区县信息中心索取本机的令牌"
                    "（station collector add-station），填入 station.toml 的 [upload] token，然后重试上传。",
                    "No upload token, so nothing is uploaded (sealed sittings are all kept): ask the "
                    "district for this station's token (station collector add-station), set [upload] "
                    "token in station.toml, then retry the upload.")
        if self.plain_http_elsewhere and not self.allow_plain_http:
            return (f"汇集服务器地址 {self.url} 不加密（http://），学生录音和令牌会明文经过学校网络，因此不上传。"
                    "请改用 https:// 地址；如区县确认网络可信，可在 [upload] 中设置 allow_plain_http = true。",
                    f"The collector address {self.url} is not encrypted (http://): recordings and the "
                    "token would cross the school network in clear, so nothing is uploaded. Use an "
                    "https:// address; if the district vouches for the network, set "
                    "allow_plain_http = true under [upload].")
        return None
