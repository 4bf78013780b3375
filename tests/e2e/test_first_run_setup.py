"""A new station set up from the pages alone, in Chromium, as a school's information-centre
teacher would: no command line, an empty data dir.

The status page sends the teacher to /setup; there the station id, school and room go in
(by keyboard), a real collector's address and token are pasted and checked, the virtual
headset is chosen from the list with a test tone and a live level, a sit-and-reach meter on
a real PTY gives a live reading, and the settings are saved. Then the roster is uploaded
with one bad row (shown row by row), fixed and uploaded again. The screenshots are the
proctor's guide's first-run pictures (``QM_SCREENSHOTS=docs/proctor-guide``).
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
import tomllib
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
import serial

from devices.drivers import qm_frame
from tests.helpers import chromium, needs_chromium, page_errors, wait_for
from tests.station.servers import STATION, Collector, station_serve

pytestmark = [pytest.mark.audio, pytest.mark.serial, pytest.mark.browser, needs_chromium]

LAPTOP = {"width": 1366, "height": 768}
SECONDS = 30_000
ROSTER = ("学籍号,姓名,性别,年级,班级\n"
          "4010001,赵一鸣,男,4,四年级1班\n"
          "4010002,钱二丫,{gender},4,四年级1班\n"
          "4010003,孙三石,男,4,四年级1班\n")


@pytest.fixture
def shots(tmp_path) -> Path:
    where = Path(os.environ.get("QM_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def _sine_wav(path: Path, seconds: float = 8.0, rate: int = 48000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


class Meter(threading.Thread):
    """A sit-and-reach meter on the device end of a PTY: one frame a second, as a proctor
    presses its send key again and again while the teacher watches the live reading."""

    def __init__(self, device_end: str):
        super().__init__(daemon=True)
        self.port = serial.Serial(device_end, timeout=0.2)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.port.write(qm_frame.format_frame("SR", "sit_and_reach", "", "12.5", "cm"))
            self.port.flush()

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.port.close()


def test_a_new_station_is_set_up_from_the_pages_alone(data_dir, tmp_path, pty_pair, shots):
    from playwright import sync_api
    from playwright.sync_api import expect

    collector = Collector(tmp_path / "collector")
    token = collector.add_station("S07")
    station = station_serve()
    pty = pty_pair("meter")
    meter = Meter(pty.device_end)
    meter.start()
    try:
        with chromium(sync_api) as browser:
            page = station.page(browser, viewport=LAPTOP, locale="zh-CN")
            errors = page_errors(page)

            # The status page of a station never set up sends the teacher to the set-up page.
            page.goto(station.url + "/?lang=zh")
            expect(page.locator("#setup-needed")).to_contain_text("本机还没有设置")
            page.screenshot(path=str(shots / "setup-status.png"))
            page.locator("#setup-needed a").click()
            expect(page).to_have_url(station.url + "/setup?lang=zh")

            # ① by keyboard alone: Tab from one field to the next.
            page.locator("#station_id").focus()
            page.keyboard.type("S07")
            page.keyboard.press("Tab")
            expect(page.locator("#school")).to_be_focused()
            page.keyboard.type("测试实验小学")
            page.keyboard.press("Tab")
            page.keyboard.type("音乐教室")
            # ② the collector's address and token, pasted, then checked against the collector.
            page.fill("#collector_url", collector.url)
            page.fill("#token", "wrong-" + token[:8])
            page.click("#collector-check")
            expect(page.locator("#collector-msg")).to_contain_text("拒绝了这个令牌", timeout=SECONDS)
            page.fill("#token", token)
            page.click("#collector-check")
            expect(page.locator("#collector-msg")).to_contain_text("已连接汇集服务器", timeout=SECONDS)
            page.screenshot(path=str(shots / "setup-station.png"))

            # ③ the headset from the list: a test tone in the earphones, the microphone's level.
            names = page.locator("#audio_output option").all_text_contents()
            assert "pulse" in names, names
            page.select_option("#audio_output", "pulse")
            page.select_option("#audio_input", "pulse")
            page.click("#tone")
            expect(page.locator("#headset-msg")).to_contain_text("已在 pulse 播放测试音", timeout=SECONDS)
            page.locator("#level-toggle").focus()
            page.keyboard.press("Enter")                      # a button works from the keyboard
            expect(page.locator("#level-toggle")).to_have_attribute("aria-pressed", "true")
            quiet = float(wait_for(lambda: _number(page.text_content("#level-value")), 30, "a level"))
            singing = subprocess.Popen(["paplay", "--device=qm_mic", str(_sine_wav(tmp_path / "a.wav"))])
            try:
                loud = wait_for(lambda: (v := _number(page.text_content("#level-value"))) is not None
                                and v > -30 and v, 30, "the level to rise with sound in the microphone")
                assert loud > quiet + 20
                page.evaluate("document.querySelector('#setup-headset-h').scrollIntoView()")
                page.screenshot(path=str(shots / "setup-headset.png"))
            finally:
                singing.terminate()
                singing.wait(10)
            page.click("#level-toggle")

            # ④ a PE device: its port, driver and item, and its live reading.
            page.click("#add-device")
            row = page.locator("#device-rows tr").last
            expect(row.locator('[data-field="port"]')).to_be_focused()
            page.keyboard.type(pty.station_end)
            row.locator('[data-field="name"]').fill("reach-1")
            row.locator('[data-field="driver"]').select_option("qm-frame")
            row.locator('[data-field="item"]').select_option("sit_and_reach")
            row.locator('[data-act="watch"]').click()
            expect(row.locator(".device-reading")).to_contain_text("12.5 cm", timeout=SECONDS)
            page.evaluate("document.querySelector('#setup-pe-h').scrollIntoView()")
            page.screenshot(path=str(shots / "setup-pe.png"))

            page.click("#save")
            expect(page.locator("#save-msg")).to_contain_text("设置已保存", timeout=SECONDS)
            expect(page.locator(".top .station")).to_contain_text("S07")

            # The roster: one bad row is shown by row and column, nothing imported; fixed, it goes in.
            bad, good = tmp_path / "四年级名册.csv", tmp_path / "四年级名册（改正）.csv"
            bad.write_text(ROSTER.format(gender="未知"), encoding="utf-8-sig")
            good.write_text(ROSTER.format(gender="女"), encoding="utf-8-sig")
            page.click('nav a[href="/roster"]')
            page.set_input_files("#roster-file", str(bad))
            page.click("#roster-import")
            expect(page.locator("#roster-msg")).to_contain_text("整个文件都没有导入", timeout=SECONDS)
            expect(page.locator("#roster-errors tbody tr")).to_have_count(1)
            expect(page.locator("#roster-errors tbody tr td").nth(0)).to_have_text("3")
            expect(page.locator("#roster-errors tbody tr td").nth(1)).to_have_text("性别")
            expect(page.locator("#roster-errors tbody tr")).to_contain_text("无法识别的性别“未知”")
            assert page.text_content("#roster-count") == "0"
            page.screenshot(path=str(shots / "roster-error.png"))
            page.set_input_files("#roster-file", str(good))
            page.click("#roster-import")
            expect(page.locator("#roster-msg")).to_contain_text("新增 3", timeout=SECONDS)
            expect(page.locator("#roster-errors")).to_be_hidden()
            assert page.text_content("#roster-count") == "3"
            page.screenshot(path=str(shots / "roster-done.png"))

            page.goto(station.url + "/?lang=zh")
            expect(page.locator("#setup-needed")).to_have_count(0)
            expect(page.locator("#station-id")).to_have_text("S07")
            # The one refusal the teacher was shown on purpose: the wrong token.
            refused = [e for e in errors if e.startswith("409 ") and e.endswith("/api/setup/collector")]
            assert len(refused) == 1 and [e for e in errors if e not in refused] == [], errors

        # What the pages wrote is what the command line reads, and the station is on the district's list.
        config = tomllib.loads((data_dir / "station.toml").read_text(encoding="utf-8"))
        assert config["station_id"] == "S07" and config["school"] == "测试实验小学" and config["room"] == "音乐教室"
        assert config["upload"] == {"collector_url": collector.url, "token": token}
        assert config["audio"] == {"input": "pulse", "output": "pulse"}
        assert config["pe"]["devices"] == [{"name": "reach-1", "port": pty.station_end, "driver": "qm-frame",
                                            "item": "sit_and_reach"}]
        shown = subprocess.run([*STATION, "config", "show"], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "S07" in shown.stdout
        listed = subprocess.run([*STATION, "roster", "list", "--json"], capture_output=True, text=True, timeout=60)
        assert "钱二丫" in listed.stdout
        with collector.admin() as admin:
            rows = admin.get("/api/stations", timeout=10).json()["stations"]
        assert any(r["id"] == "S07" and r["last_heartbeat"] for r in rows)
        assert httpx.get(station.url + "/api/health", timeout=10).json()["station_id"] == "S07"
    finally:
        meter.close()
        station.stop()
        collector.stop()


def _number(text: str | None) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def test_a_station_is_paired_with_the_code_the_district_dashboard_shows(data_dir, tmp_path, shots):
    """No token copied at all: the district's dashboard shows a one-time code for S09, the
    teacher types it on the station's set-up page, and the station has its id and token."""
    from playwright import sync_api
    from playwright.sync_api import expect

    collector = Collector(tmp_path / "collector")
    admin_token = collector.admin().headers["Authorization"].split()[-1]
    station = station_serve()
    try:
        with chromium(sync_api) as browser:
            district = browser.new_page(viewport=LAPTOP)
            errors = page_errors(district)
            district.goto(collector.url + "/")
            district.fill("input[name=token]", admin_token)
            district.press("input[name=token]", "Enter")
            district.fill("#pairing-station", "S09")
            district.fill("#pairing-school", "配对实验小学")
            district.press("#pairing-room", "Enter")
            code = district.locator("#pairing-code")
            expect(code).to_have_text(re.compile(r"^[2-9A-Z]{4}-[2-9A-Z]{4}$"), timeout=SECONDS)
            expect(district.locator("#pairing-out")).to_contain_text("S09")
            shown = code.text_content()
            district.screenshot(path=str(shots / "setup-pairing-code.png"))
            assert errors == [], errors

            page = station.page(browser, viewport=LAPTOP, locale="zh-CN")
            errors = page_errors(page)
            page.goto(station.url + "/setup?lang=zh")
            page.fill("#collector_url", collector.url)
            page.fill("#pairing_code", "wrong-code")
            page.click("#pair")
            expect(page.locator("#collector-msg")).to_contain_text("配对码不正确", timeout=SECONDS)
            page.fill("#pairing_code", shown.lower().replace("-", ""))
            page.click("#pair")
            expect(page.locator("#collector-msg")).to_contain_text("配对成功", timeout=SECONDS)
            expect(page.locator("#station_id")).to_have_value("S09")
            expect(page.locator("#school")).to_have_value("配对实验小学")
            page.screenshot(path=str(shots / "setup-paired.png"))
            refused = [e for e in errors if e.startswith("409 ") and e.endswith("/api/setup/pair")]
            assert len(refused) == 1 and [e for e in errors if e not in refused] == [], errors

        config = tomllib.loads((data_dir / "station.toml").read_text(encoding="utf-8"))
        assert config["station_id"] == "S09" and config["upload"]["collector_url"] == collector.url
        token = config["upload"]["token"]
        assert httpx.post(f"{collector.url}/api/stations/S09/heartbeat", json={}, timeout=10,
                          headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # The code worked once: a second station cannot take S09's place with it.
        assert httpx.post(collector.url + "/api/pair", json={"code": shown}, timeout=10).status_code == 403
    finally:
        station.stop()
        collector.stop()
