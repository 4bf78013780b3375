"""The status page under a real uvicorn, in both languages; every string from a catalog."""
import json
import re
from pathlib import Path

import pytest

from tests.station.servers import import_roster, station_serve

WEB = Path(__file__).resolve().parents[2] / "station" / "web"


@pytest.fixture
def served(station, data_dir, tmp_path):
    import_roster(station, tmp_path / "r.csv", "学籍号,姓名,性别,年级\n0001,王子涵,男,四年级\n0002,李欣怡,女,四年级\n",
                  encoding="gbk")
    station("session", "open", "--kind", "singing", "--by", "张老师", check=True)
    server = station_serve()
    client = server.client()
    yield client
    client.close()
    server.stop()


def test_health(served):
    doc = served.get("/api/health").json()
    assert doc["status"] == "ok" and doc["version"]


def test_status_page_in_chinese_by_default(served):
    page = served.get("/").text
    assert '<html lang="zh-CN">' in page
    assert "工作站状态" in page and "演唱测试" in page and "张老师" in page
    assert re.search(r'id="roster-size">2<', page)

    # The computer's time as a teacher reads it, not as ISO 8601.
    assert re.search(r'<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(UTC[+-]\d\d:\d\d\)</time>', page)


def test_status_page_in_english(served):
    page = served.get("/?lang=en").text
    assert '<html lang="en">' in page
    assert "Station status" in page and "singing test" in page
    assert "工作站状态" not in page


def test_language_choice_is_remembered(served):
    served.get("/?lang=en")
    assert "Station status" in served.get("/").text


def test_status_json(served, data_dir):
    doc = served.get("/api/status").json()
    assert doc["roster_size"] == 2 and doc["data_dir"] == str(data_dir)
    assert doc["free_disk_bytes"] > 0 and doc["open_sittings"][0]["kind"] == "singing"


def test_assets_come_from_the_package(served):
    page = served.get("/").text
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert not url.startswith(("http:", "https:", "//")), url
    assert served.get("/static/style.css").status_code == 200


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
