"""Checks of the road to the district collector: DNS, health, TLS certificate, throughput.

Each check is ``fn(ctx) -> CheckResult``. Every request goes through ``ctx.link``, the
station's one collector client (``qmbase.collector_link``): its URL (empty: the station does
not upload, every network check says ``skip``), token, district CA file and TLS trust are
the very ones its uploads use. ``ctx.http_timeout_s`` bounds each request.

``GET /api/health`` is fetched once per run and shared (``collector_health``): the
collector, clock and version checks all read it, so a dead collector costs one
timeout, not three.
"""
from __future__ import annotations

import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from precheck.check import CheckResult
from precheck.context import Context
from precheck.dayplan import expected_day_bytes, human_bytes

SLOW_HEALTH_S = 1.0              # a health answer slower than this is worth a warning
TLS_WARN_DAYS = 14
UPLOAD_WARN_S = 30 * 60          # the day's recordings should reach the collector within 30 min

FIX_ADDRESS_ZH = "请核对 station.toml 中的汇总服务器地址（upload.collector_url），检查网线和网络，然后重新检查。"
FIX_ADDRESS_EN = ("Check the collector address in station.toml (upload.collector_url), "
                  "the network cable and the network, then check again.")


def not_configured(check_id: str) -> CheckResult:
    return CheckResult(check_id, "skip", "未配置汇总服务器，不上传", "No collector configured: nothing to upload",
                       {"collector_url": ""})


def collector_url(ctx: Context) -> str:
    return ctx.link.base_url


def http_client(ctx: Context, authorized: bool = False):
    return ctx.link.client(timeout=ctx.http_timeout_s, authorized=authorized)


def explain(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- the shared health answer ----------------------------------------------------------

@dataclass
class Health:
    status_code: int | None = None
    json: dict[str, Any] | None = None
    date_header: str | None = None
    sent_at: float = 0.0             # wall clock, for clock.skew
    received_at: float = 0.0
    latency_s: float | None = None
    error: str | None = None


def collector_health(ctx: Context) -> Health:
    """``GET /api/health`` once per run; later callers get the same answer."""
    return ctx.once("collector_health", lambda: fetch_health(ctx))


def fetch_health(ctx: Context) -> Health:
    health = Health()
    try:
        with http_client(ctx) as client:
            health.sent_at, t0 = time.time(), time.monotonic()
            response = client.get(collector_url(ctx) + "/api/health")
            health.latency_s = time.monotonic() - t0
            health.received_at = time.time()
    except Exception as exc:  # noqa: BLE001 - every network fault becomes a fail with its reason
        health.error = explain(exc)
        return health
    health.status_code = response.status_code
    health.date_header = response.headers.get("date")
    try:
        body = response.json()
        health.json = body if isinstance(body, dict) else None
    except ValueError:
        health.error = "the answer is not JSON"
    return health


# --- network.dns -----------------------------------------------------------------------

def check_dns(ctx: Context) -> CheckResult:
    url = collector_url(ctx)
    if not url:
        return not_configured("network.dns")
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return CheckResult("network.dns", "skip", f"服务器地址是 IP（{host}），无需域名解析",
                           f"The collector is an IP address ({host}): no name to resolve", {"host": host})
    except OSError:
        pass
    t0 = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return CheckResult("network.dns", "fail", f"无法解析服务器域名 {host}", f"Cannot resolve the collector's name {host}",
                           {"host": host, "error": explain(exc)},
                           "请核对服务器地址的拼写；检查本机的网络和 DNS 设置，然后重新检查。",
                           "Check the spelling of the collector address and this computer's "
                           "network and DNS settings, then check again.")
    addresses = sorted({info[4][0] for info in infos})
    elapsed_ms = round((time.monotonic() - t0) * 1000, 1)
    return CheckResult("network.dns", "pass", f"域名 {host} 解析为 {', '.join(addresses)}",
                       f"{host} resolves to {', '.join(addresses)}",
                       {"host": host, "addresses": addresses, "elapsed_ms": elapsed_ms})


# --- network.collector -----------------------------------------------------------------

def check_collector(ctx: Context) -> CheckResult:
    url = collector_url(ctx)
    if not url:
        return not_configured("network.collector")
    health = collector_health(ctx)
    details: dict[str, Any] = {"url": url + "/api/health", "status_code": health.status_code}
    if health.status_code is None:
        details["error"] = health.error
        return CheckResult("network.collector", "fail", "无法连接汇总服务器", "Cannot reach the collector",
                           details, FIX_ADDRESS_ZH, FIX_ADDRESS_EN)
    latency_ms = round(health.latency_s * 1000, 1)
    details.update(latency_ms=latency_ms, server_version=(health.json or {}).get("version"))
    if health.status_code != 200 or (health.json or {}).get("status") != "ok":
        details["error"] = health.error
        return CheckResult("network.collector", "fail",
                           f"汇总服务器应答异常（HTTP {health.status_code}）",
                           f"The collector answered wrongly (HTTP {health.status_code})",
                           details,
                           "地址可能指向了别的网站；请核对地址，或请区县信息中心检查汇总服务器。",
                           "The address may point at another site: check it, or ask the "
                           "district to check the collector.")
    if health.latency_s > SLOW_HEALTH_S:
        return CheckResult("network.collector", "warn",
                           f"汇总服务器可以连接，但应答慢（{latency_ms:.0f} 毫秒）",
                           f"Collector reachable but slow ({latency_ms:.0f} ms)", details,
                           "网络较慢，上传可能需要更长时间；请检查网络或换用有线网络。",
                           "The network is slow and uploads may take longer: check it or use a cable.")
    return CheckResult("network.collector", "pass", f"汇总服务器正常（{latency_ms:.0f} 毫秒）",
                       f"Collector OK ({latency_ms:.0f} ms)", details)


# --- network.tls -----------------------------------------------------------------------

class NotTrusted(Exception):
    """The collector's certificate failed verification (chain or host name)."""


def peer_certificate(ctx: Context) -> dict:
    """The collector's certificate, as verified by the station's own collector client.

    ``GET /api/health`` through ``ctx.link``: the same TLS trust (system CAs plus the district's
    CA file), host-name check and timeouts as the uploads, so this check passes only when they
    can. The certificate is read off the connection while the answer is still open.
    """
    try:
        with http_client(ctx) as client:
            with client.stream("GET", collector_url(ctx) + "/api/health") as response:
                stream = response.extensions.get("network_stream")
                tls = stream.get_extra_info("ssl_object") if stream is not None else None
                if tls is None:
                    raise ssl.SSLError("no TLS connection to read the certificate from")
                return tls.getpeercert()
    except Exception as exc:
        # httpx wraps the handshake's error: find the verification failure in the chain.
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise NotTrusted(cause.verify_message or explain(cause)) from exc
            cause = cause.__cause__ or cause.__context__
        raise


def check_tls(ctx: Context) -> CheckResult:
    url = collector_url(ctx)
    if not url:
        return not_configured("network.tls")
    parts = urlsplit(url)
    if parts.scheme != "https":
        if ctx.link.plain_http_elsewhere:
            return CheckResult(
                "network.tls", "warn", "汇集服务器地址不加密（http://），录音和令牌会明文经过网络",
                "The collector address is not encrypted (http://): recordings and the token would "
                "cross the network in clear", {"url": url},
                "请向区县信息中心索取 https:// 地址，填入 upload.collector_url。不加密时默认不上传；"
                "区县确认网络可信时可设置 upload.allow_plain_http = true。",
                "Ask the district for an https:// address and set it as upload.collector_url. "
                "Nothing is uploaded over plain http unless upload.allow_plain_http = true, for a "
                "network the district vouches for.")
        return CheckResult("network.tls", "skip", "服务器不使用 HTTPS，无证书可查",
                           "The collector does not use HTTPS: no certificate to check", {"url": url})
    host, port = parts.hostname or "", parts.port or 443
    details: dict[str, Any] = {"host": host, "port": port, "ca_bundle": ctx.link.ca_bundle or None}
    try:
        cert = peer_certificate(ctx)
    except NotTrusted as exc:
        details["error"] = str(exc)
        return CheckResult("network.tls", "fail",
                           f"服务器证书不可信：{details['error']}",
                           f"The collector's certificate is not trusted: {details['error']}",
                           details,
                           "如区县使用自己的证书，请在 station.toml 中设置区县 CA 证书文件（upload.ca_bundle）；"
                           "否则请区县信息中心更新服务器证书。",
                           "If the district signs its own certificates, set the district CA file "
                           "in station.toml (upload.ca_bundle); otherwise ask the district to "
                           "renew the collector's certificate.")
    except Exception as exc:  # noqa: BLE001 - every network fault becomes a fail with its reason
        details["error"] = explain(exc)
        return CheckResult("network.tls", "fail", "无法与服务器建立加密连接",
                           "Cannot open an encrypted connection to the collector", details,
                           FIX_ADDRESS_ZH, FIX_ADDRESS_EN)
    expires = ssl.cert_time_to_seconds(cert["notAfter"])
    days_left = (expires - time.time()) / 86400
    details.update(not_after=cert["notAfter"], days_left=round(days_left, 1))
    if days_left < TLS_WARN_DAYS:
        return CheckResult("network.tls", "warn",
                           f"服务器证书 {days_left:.0f} 天后过期", f"The collector's certificate expires in {days_left:.0f} days",
                           details,
                           "请区县信息中心在测试日之前更新汇总服务器的证书。",
                           "Ask the district to renew the collector's certificate before the test day.")
    return CheckResult("network.tls", "pass", f"服务器证书有效（还有 {days_left:.0f} 天）",
                       f"Certificate valid ({days_left:.0f} days left)", details)


# --- network.throughput ----------------------------------------------------------------

def upload_seconds(day_bytes: int, bytes_per_s: float) -> float:
    return day_bytes / bytes_per_s if bytes_per_s > 0 else float("inf")


def check_throughput(ctx: Context) -> CheckResult:
    url = collector_url(ctx)
    if not url:
        return not_configured("network.throughput")
    if not ctx.link.token:
        return CheckResult("network.throughput", "fail", "未配置本站令牌，无法上传",
                           "No station token configured: uploads will be refused", {},
                           "请向区县信息中心索取本站令牌，填入 station.toml（upload.token），然后重新检查。",
                           "Get this station's token from the district and put it in "
                           "station.toml (upload.token), then check again.")
    health = collector_health(ctx)
    if health.status_code is None:
        # Already unreachable once this run: say so now rather than wait out a second timeout.
        return CheckResult("network.throughput", "fail", "无法连接汇总服务器，未能测速",
                           "Cannot reach the collector: upload speed not measured",
                           {"error": health.error}, FIX_ADDRESS_ZH, FIX_ADDRESS_EN)
    limit, budget = ctx.probe_bytes, ctx.probe_max_s
    sent = 0

    def body():
        # Random bytes: a compressing proxy on the way must not flatter the figure.
        # Streamed (chunked) so a slow line stops after ``budget`` seconds with a figure,
        # instead of running into the runner's timeout with none.
        nonlocal sent
        chunk = os.urandom(64 * 1024)
        while sent < limit and time.monotonic() - t0 < budget:
            piece = chunk[:limit - sent]
            sent += len(piece)
            yield piece

    try:
        with http_client(ctx, authorized=True) as client:
            t0 = time.monotonic()
            response = client.put(url + "/api/probe", content=body(),
                                  headers={"Content-Type": "application/octet-stream"})
            elapsed = time.monotonic() - t0
    except Exception as exc:  # noqa: BLE001
        return CheckResult("network.throughput", "fail", "测速上传失败", "The speed-test upload failed",
                           {"error": explain(exc)}, FIX_ADDRESS_ZH, FIX_ADDRESS_EN)
    if response.status_code in (401, 403):
        return CheckResult("network.throughput", "fail", "汇总服务器不接受本站令牌",
                           "The collector refused this station's token",
                           {"status_code": response.status_code},
                           "请核对 station.toml 中的令牌（upload.token）和站点编号，必要时向区县重新索取。",
                           "Check the token (upload.token) and station id in station.toml; ask "
                           "the district for a new token if needed.")
    if response.status_code != 200:
        return CheckResult("network.throughput", "fail",
                           f"测速上传被拒绝（HTTP {response.status_code}）",
                           f"The speed-test upload was refused (HTTP {response.status_code})",
                           {"status_code": response.status_code},
                           "请区县信息中心检查汇总服务器。", "Ask the district to check the collector.")
    try:
        received = int(response.json().get("bytes", sent))
    except (ValueError, AttributeError, TypeError):
        received = sent
    if received <= 0:
        return CheckResult("network.throughput", "fail", "测速数据没有到达服务器",
                           "No speed-test data reached the collector",
                           {"status_code": response.status_code, "sent_bytes": sent},
                           FIX_ADDRESS_ZH, FIX_ADDRESS_EN)
    rate = received / max(elapsed, 1e-6)
    day = expected_day_bytes(ctx.plan)
    need_s = upload_seconds(day, rate)
    details = {"probe_bytes": received, "elapsed_s": round(elapsed, 3),
               "bytes_per_s": round(rate), "mbit_per_s": round(rate * 8 / 1e6, 2),
               "day_bytes": day, "day_upload_s": round(need_s, 1)}
    speed = f"{rate * 8 / 1e6:.1f} Mbit/s"
    minutes = need_s / 60
    if need_s > UPLOAD_WARN_S:
        return CheckResult("network.throughput", "warn",
                           f"上传速度 {speed}：今天的录音（约 {human_bytes(day)}）需要约 {minutes:.0f} 分钟",
                           f"Upload {speed}: today's recordings (about {human_bytes(day)}) need about {minutes:.0f} min",
                           details,
                           "网络较慢：请改用有线网络或避开网络繁忙时段；录音会在本机保存，上传会自动完成。",
                           "The network is slow: use a cable or a quieter hour. Recordings stay "
                           "safe on this computer and upload by themselves.")
    return CheckResult("network.throughput", "pass",
                       f"上传速度 {speed}，今天的录音约 {minutes:.1f} 分钟传完",
                       f"Upload {speed}: today's recordings go up in about {minutes:.1f} min", details)
