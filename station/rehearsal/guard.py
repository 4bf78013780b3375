"""Rehearsal data never goes to a real collector: only a collector on this computer is allowed.

The local rehearsal collector listens on 127.0.0.1; a rehearsal station.toml edited to name
the district's server (or a copied real config) is refused before any request is made.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:        # a name other than localhost might resolve anywhere
        return False


def refusal(url: str) -> tuple[str, str] | None:
    """Why a rehearsal station must not upload to ``url`` (zh, en), or None when it may."""
    if not url or is_loopback_url(url):
        return None
    return (f"演练模式不会上传到正式汇集服务器（{url}）：演练数据只发往本机的演练汇集服务器。"
            f"请用 station serve --simulate 启动演练，或在正式工作站的数据目录中进行正式测试。",
            f"Rehearsal mode never uploads to a real collector ({url}): rehearsal data goes only "
            f"to the local rehearsal collector. Start the rehearsal with station serve --simulate, "
            f"or run the real test day from the real station's data dir.")


def refused(config) -> tuple[str, str] | None:
    """For a station's config: why its collector may not be used (zh, en), or None. Only a
    rehearsal station (``rehearsal = true``) is held to a collector on this computer."""
    if not config["rehearsal"]:
        return None
    return refusal(config["upload.collector_url"])
