"""The Windows package's command line under Wine: the first things a school's information-center
teacher runs, on a code-page-936 console like Chinese Windows 10's."""
from __future__ import annotations

import json
import re

from station import __version__


def test_version(win_station):
    assert win_station("--version").stdout.strip() == f"qm-station {__version__}"


def test_config_init_writes_into_the_data_dir(win_station, win_data):
    win_station("config", "init")
    text = (win_data / "station.toml").read_text(encoding="utf-8")
    assert "station_id" in text and "[upload]" in text


def test_a_gbk_roster_with_a_gb18030_only_name_imports_and_lists(win_station, win_data, tmp_path):
    # Exported from Excel on Chinese Windows: GBK, CRLF. 䶮 (U+4DAE) exists only in GB18030:
    # it crashed `roster list --json` on a code-page-936 console.
    roster = tmp_path / "四年级名册.csv"
    roster.write_bytes("学籍号,姓名,性别,年级,班级\r\n7001,测试甲,男,四年级,4(1)\r\n7002,刘䶮,女,四年级,4(2)\r\n"
                       .encode("gb18030"))
    win_station("roster", "import", str(roster))
    listed = win_station("roster", "list", "--json")
    names = {s["code"]: s["name"] for s in json.loads(listed.stdout)}
    assert names == {"7001": "测试甲", "7002": "刘䶮"}
    # Plain text on the console: Chinese readable in the console's own code page.
    text = win_station("roster", "list").stdout
    assert "测试甲" in text and "刘䶮" in text


def test_devices_lists_the_windows_host_apis_and_the_headset(win_station):
    doc = json.loads(win_station("devices", "--json").stdout)
    apis = {d["host_api"] for d in doc["audio"]}
    assert {"MME", "Windows DirectSound", "Windows WASAPI"} <= apis, apis
    names = " ".join(d["name"] for d in doc["audio"])
    assert re.search(r"Headset-Earphones", names) and re.search(r"Headset-Mic-Feed", names), names
