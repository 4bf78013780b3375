"""The status page under a real uvicorn, in both languages; every string from a catalog."""
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

WEB = Path(__file__).resolve().parents[2] / "station" / "web"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(station, data_dir, tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("学籍号,姓名,性别,年级\n0001,王子涵,男,四年级\n0002,李欣怡,女,四年级\n", encoding="gbk")
    station("roster", "import", str(roster), check=True)
    station("session", "open", "--kind", "singing", "--by", "张老师", check=True)
    port = free_port()
    exe = Path(sys.executable).with_name("station")
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/api/health", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"station serve did not start: {proc.communicate()}")
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(10)


def test_health(served):
    doc = httpx.get(served + "/api/health").json()
    assert doc["status"] == "ok" and doc["version"]


def test_status_page_in_chinese_by_default(served):
    page = httpx.get(served + "/").text
    assert '<html lang="zh-CN">' in page
    assert "工作站状态" in page and "演唱测试" in page and "张老师" in page
    assert re.search(r'id="roster-size">2<', page)


def test_status_page_in_english(served):
    page = httpx.get(served + "/?lang=en").text
    assert '<html lang="en">' in page
    assert "Station status" in page and "singing test" in page
    assert "工作站状态" not in page


def test_language_choice_is_remembered(served):
    with httpx.Client(base_url=served) as client:
        client.get("/?lang=en")
        assert "Station status" in client.get("/").text


def test_status_json(served, data_dir):
    doc = httpx.get(served + "/api/status").json()
    assert doc["roster_size"] == 2 and doc["data_dir"] == str(data_dir)
    assert doc["free_disk_bytes"] > 0 and doc["open_sittings"][0]["kind"] == "singing"


def test_assets_come_from_the_package(served):
    page = httpx.get(served + "/").text
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert not url.startswith(("http:", "https:", "//")), url
    assert httpx.get(served + "/static/style.css").status_code == 200


def _template_text(source: str) -> str:
    """What a template shows that does not come from a catalog or data."""
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", source, flags=re.S)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    return text


def test_templates_hold_no_bare_text():
    # Language names are written in their own script on purpose, so a lost user finds them.
    allowed = {"中文", "English"}
    for template in WEB.rglob("templates/*.html"):
        words = set(re.findall(r"[^\s·,:;()/|\-–—]+", _template_text(template.read_text("utf-8"))))
        assert words <= allowed, f"{template}: text outside catalogs: {words - allowed}"


def test_catalogs_cover_every_key_in_both_languages():
    used = set()
    for template in WEB.rglob("templates/*.html"):
        used |= set(re.findall(r"""t\(\s*["']([a-z_]+\.[a-z_.]+)["']\s*[,)]""", template.read_text("utf-8")))
    for folder in [WEB / "i18n", *WEB.glob("*/i18n")]:
        zh = json.loads((folder / "zh.json").read_text("utf-8"))
        en = json.loads((folder / "en.json").read_text("utf-8"))
        assert zh.keys() == en.keys(), folder
        used -= zh.keys()
    assert used == set(), f"keys used in templates but in no catalog: {used}"
