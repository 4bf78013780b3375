"""The station's pages on test-day screens, by keyboard alone, with the state at a glance.

Real `station serve` processes and one headless Debian Chromium for the module. Screens: a
school laptop (1366×768) and a tablet (768×1024, 1024×768). Roster names and codes are
generated, never real people. Waits are generous: the machine is shared.
"""
from __future__ import annotations

import json
import os
import subprocess

import httpx
import pytest

from station.web.status import strip
from tests.helpers import chromium, needs_chromium, page_errors
from tests.station.servers import STATION, free_port, station_serve, wait_for

ROSTER = "学籍号,姓名,性别,年级,班级\n7001,演示甲,男,四年级,4(1)\n7002,演示乙,女,四年级,4(1)\n"
PAGES = ["/", "/precheck", "/sing", "/pe", "/uploads", "/setup", "/roster"]
SCREENS = [(1366, 768), (768, 1024), (1024, 768)]
# The strip polls every 3 s; on a loaded machine allow several rounds.
STRIP_WAIT_MS = 30_000


LIVE: list["Station"] = []   # the served stations: each browser context is signed in to all


class Station:
    """A data dir with a roster and config, its `station` CLI, and `station serve` over it."""

    def __init__(self, root, config: str = ""):
        self.data = root / "station-data"
        self.data.mkdir(parents=True)
        (self.data / "station.toml").write_text(f'station_id = "S01"\n{config}', encoding="utf-8")
        (root / "roster.csv").write_text(ROSTER, encoding="utf-8")
        self.env = {"STATION_DATA_DIR": str(self.data)}
        self.run("roster", "import", str(root / "roster.csv"))
        self.server = station_serve(env=self.env)
        self.url = self.server.url
        LIVE.append(self)

    def run(self, *args: str) -> str:
        done = subprocess.run([*STATION, *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **self.env})
        assert done.returncode == 0, f"station {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def open_sitting(self, *args: str) -> str:
        return json.loads(self.run("session", "open", *args, "--json"))["id"]

    def stop(self) -> None:
        LIVE.remove(self)
        self.server.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("Debian chromium is not installed")
    with chromium(sync_api) as b:
        yield b


@pytest.fixture(scope="module")
def singing(tmp_path_factory):
    """A station with a singing sitting open and no collector configured."""
    s = Station(tmp_path_factory.mktemp("singing"))
    s.sitting = s.open_sitting("--kind", "singing")
    yield s
    s.stop()


@pytest.fixture
def page_at(browser):
    """A page at a screen size, with its errors collected; closed after the test."""
    contexts = []

    def make(width: int = 1366, height: int = 768):
        context = browser.new_context(viewport={"width": width, "height": height})
        for station in LIVE:
            context.add_cookies(station.server.cookies())
        contexts.append(context)
        page = context.new_page()
        return page, page_errors(page)

    yield make
    for context in contexts:
        context.close()


SMALL_TARGETS = """() => [...document.querySelectorAll(
    'button, nav a, .langs a, a.button, a.strip-item, summary, select, input[type=text]')]
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width > 0)
  .map(e => [e.id || e.textContent.trim().slice(0, 30), e.getBoundingClientRect().height])
  .filter(([, h]) => h < 40)"""


@needs_chromium
@pytest.mark.browser
@pytest.mark.parametrize("width,height", SCREENS, ids=[f"{w}x{h}" for w, h in SCREENS])
def test_every_page_fits_the_screen_with_large_targets(singing, page_at, width, height):
    page, errors = page_at(width, height)
    for path in PAGES:
        for lang in ("zh", "en"):
            where = f"{path}?lang={lang} at {width}x{height}"
            page.goto(f"{singing.url}{path}?lang={lang}")
            page.wait_for_load_state("load")
            wide = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert wide[0] <= wide[1], f"{where}: scrolls sideways ({wide[0]} > {wide[1]} px)"
            assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 16, where
            assert page.evaluate(SMALL_TARGETS) == [], f"{where}: targets under 40 px tall"
            # The state strip is on every page.
            assert page.locator("#qm-strip #strip-sitting").is_visible(), where
    assert errors == []


MAIN_ACTION = {"/sing": "#sing-record", "/precheck": "#pc-start", "/pe": "#pe-open button[type=submit]"}


@needs_chromium
@pytest.mark.browser
def test_the_main_action_is_on_the_first_screen_of_a_school_laptop(singing, page_at):
    page, errors = page_at(1366, 768)
    for path, selector in MAIN_ACTION.items():
        page.goto(f"{singing.url}{path}")
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 768, f"{path}: {selector} is below the fold"
    assert errors == []


def focused(page) -> dict:
    return page.evaluate("""() => {
      const e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
      return {id: e.id, tag: e.tagName, href: e.getAttribute('href'), text: (e.textContent || '').trim().slice(0, 30),
              outline: s.outlineStyle !== 'none' ? parseFloat(s.outlineWidth) : 0,
              visible: r.width > 0 && r.height > 0};
    }""")


@needs_chromium
@pytest.mark.browser
def test_a_scanner_types_into_the_scan_field_and_the_student_shows(singing, page_at):
    sync_api = pytest.importorskip("playwright.sync_api")
    page, errors = page_at(1366, 768)
    page.goto(f"{singing.url}/sing?lang=zh")
    assert focused(page)["id"] == "sing-code"
    # A USB barcode scanner is a keyboard: the code, then Enter, into whatever has focus.
    page.keyboard.type("7002")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#sing-now .sing-name")).to_have_text("演示乙", timeout=20_000)
    # Back in the scan field for the next student.
    wait_for(lambda: focused(page)["id"] == "sing-code", timeout=20, what="focus back in the scan field")
    page.keyboard.type("7001")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#sing-now .sing-name")).to_have_text("演示甲", timeout=20_000)
    # A code not on the roster is refused in words, and the field is ready again.
    page.keyboard.type("0000")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#sing-message")).to_contain_text("名册", timeout=20_000)
    wait_for(lambda: focused(page)["id"] == "sing-code", timeout=20, what="focus back after a refusal")
    # The refusal is the only request that did not succeed.
    assert [e.split()[0] for e in errors] == ["400"] and "/api/sing/select" in errors[0], errors


@needs_chromium
@pytest.mark.browser
def test_tab_reaches_every_control_in_order_with_a_visible_ring_and_no_trap(singing, page_at):
    page, errors = page_at(1366, 768)
    page.goto(f"{singing.url}/sing?lang=en")
    seen = []
    for _ in range(80):
        page.keyboard.press("Tab")
        now = focused(page)
        if now["tag"] == "BODY":            # past the last control: the browser's own UI
            continue
        assert now["visible"], f"focus went to something hidden: {now}"
        assert now["outline"] >= 2, f"no visible focus ring on {now}"
        seen.append(now["id"] or now["href"] or now["text"])
        if now["id"] == "sing-code" and len(seen) > 1:
            break                           # round the whole page and back: no trap
    else:
        pytest.fail(f"Tab never came back to the scan field: {seen}")
    order = [seen.index(x) for x in ("#main", "/sing", "strip-uploads", "sing-code")]
    assert order == sorted(order), seen     # skip link, nav, strip, then the page
    after_scan = seen[:seen.index("#main")]
    assert "sing-record" in after_scan and any("Close" in x for x in after_scan), seen
    assert errors == []


@needs_chromium
@pytest.mark.browser
def test_the_setup_page_is_used_by_keyboard_alone(singing, page_at):
    """Every control of the set-up page in turn, each with a visible ring, a PE device row
    added and removed with Enter, and back round to the top: no trap."""
    page, errors = page_at(1366, 768)
    page.goto(f"{singing.url}/setup?lang=zh")
    page.locator("#station_id").focus()
    seen = []
    for _ in range(60):
        now = focused(page)
        assert now["visible"] and now["outline"] >= 2, f"no visible focus ring on {now}"
        seen.append(now["id"] or now["href"] or now["text"])
        if now["id"] == "add-device" and "device-row" not in seen:
            page.keyboard.press("Enter")                 # adds a row and puts the focus in its port
            assert page.evaluate("document.activeElement.dataset.field") == "port"
            page.keyboard.type("COM3")
            seen.append("device-row")
            page.keyboard.press("Shift+Tab")             # its name, filled in already
            assert page.evaluate("document.activeElement.value") == "device-1"
            page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        if focused(page)["id"] == "save":
            break
    else:
        pytest.fail(f"Tab never reached Save: {seen}")
    for control in ("school", "room", "collector_url", "token", "collector-check", "pairing_code", "pair",
                    "audio_output", "tone", "audio_input", "level-toggle", "rescan", "add-device"):
        assert control in seen, (control, seen)
    remove = page.locator('#device-rows [data-act="remove"]')
    remove.focus()
    page.keyboard.press("Enter")
    assert page.locator("#device-rows tr").count() == 0 and focused(page)["id"] == "add-device"
    assert errors == []


@needs_chromium
@pytest.mark.browser
def test_the_skip_link_is_first_and_jumps_to_the_main_content(singing, page_at):
    page, errors = page_at(768, 1024)
    page.goto(f"{singing.url}/uploads?lang=zh")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert focused(page)["href"] == "#main"
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0, "the skip link stays off screen when focused"
    assert skip.inner_text() == "跳到主要内容"
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    assert errors == []


@needs_chromium
@pytest.mark.browser
def test_a_self_refreshing_page_keeps_the_keyboard_focus_where_it_was(singing, page_at):
    page, errors = page_at(1366, 768)
    page.goto(f"{singing.url}/?lang=en")
    link = page.get_by_role("link", name="See upload progress")
    link.focus()
    # The status cards re-read themselves every few seconds: wait for a new copy of the link.
    link.evaluate("e => { e.dataset.old = '1'; }")
    wait_for(lambda: page.evaluate("!document.querySelector('#status-uploads a[data-old]')"),
             timeout=60, what="the status cards to refresh")
    now = focused(page)
    assert now["text"] == "See upload progress" and now["outline"] >= 2, now
    assert errors == []


@pytest.fixture
def offline(tmp_path):
    """A station with no collector configured: what it seals stays pending."""
    s = Station(tmp_path)
    yield s
    s.stop()


@needs_chromium
@pytest.mark.browser
def test_the_strip_follows_sittings_and_the_upload_queue(offline, page_at):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    page, errors = page_at(1366, 768)
    page.goto(f"{offline.url}/pe?lang=zh")
    sitting, uploads = page.locator("#strip-sitting"), page.locator("#strip-uploads")
    expect(sitting).to_have_attribute("data-state", "none")
    expect(sitting).to_contain_text("没有进行中的场次")
    expect(uploads).to_contain_text("上传队列为空")
    # Opened from elsewhere (another window, the terminal): the strip sees it by itself.
    sid = offline.open_sitting("--kind", "pe", "--item", "sit_and_reach")
    expect(sitting).to_have_attribute("data-state", "open", timeout=STRIP_WAIT_MS)
    expect(sitting).to_contain_text("场次进行中")
    expect(sitting).to_contain_text(sid)
    expect(sitting).to_contain_text("坐位体前屈")
    page.goto(f"{offline.url}/uploads?lang=en")
    expect(sitting).to_contain_text("Sitting open")
    # Closed: sealed and queued; with no collector it stays pending, and the strip says why.
    offline.run("session", "close", sid)
    expect(uploads).to_have_attribute("data-pending", "1", timeout=STRIP_WAIT_MS)
    expect(uploads).to_have_attribute("data-state", "pending")
    expect(uploads).to_contain_text("Waiting to upload: 1")
    expect(uploads).to_contain_text("no collector set")
    expect(sitting).to_have_attribute("data-state", "none")
    page.goto(f"{offline.url}/?lang=zh")
    expect(page.locator("#uploads-pending")).to_have_text("1")
    expect(uploads).to_contain_text("待上传：1 个场次")
    # The strip's link opens the upload page.
    uploads.click()
    page.wait_for_url("**/uploads?lang=zh")
    assert errors == []


@needs_chromium
@pytest.mark.browser
def test_a_failed_upload_shows_in_red_with_a_cross_and_words(tmp_path, page_at):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    # A collector that is down: nothing listens on this port.
    s = Station(tmp_path, f'[upload]\ncollector_url = "http://127.0.0.1:{free_port()}"\ntoken = "t"\n')
    try:
        sid = s.open_sitting("--kind", "singing")
        s.run("session", "close", sid)
        page, errors = page_at(768, 1024)
        page.goto(f"{s.url}/?lang=zh")
        uploads = page.locator("#strip-uploads")
        expect(uploads).to_have_attribute("data-state", "failed", timeout=90_000)
        expect(uploads).to_contain_text("上传失败：1 个")
        colour = uploads.evaluate("e => getComputedStyle(e).color")
        icon = uploads.evaluate("e => getComputedStyle(e.querySelector('.strip-icon'), '::before').content")
        assert colour == "rgb(207, 34, 46)" and icon == '"✕"', (colour, icon)
        # The status page's card says it too (it refreshes itself every few seconds).
        expect(page.locator("#uploads-failed")).to_contain_text("上传失败", timeout=STRIP_WAIT_MS)
        assert errors == []
    finally:
        s.stop()


def test_status_json_carries_what_the_strip_shows(singing):
    with singing.server.client() as client:
        doc = client.get("/api/status").json()
    [open_] = doc["open_sittings"]
    assert open_["id"] == singing.sitting and open_["title"] == {"zh": "演唱测试", "en": "singing test"}
    assert doc["uploads"] == {"configured": False, "sittings": 0, "pending": 0, "failed": 0, "done": 0}
    assert set(doc["headset"]) == {"connected", "input", "output"}
    assert doc["pe_devices"] == []


def test_headset_is_a_microphone_and_earphones_matching_the_config():
    scan = {"at": 1.0, "audio": [
        {"name": "USB Headset: Audio (hw:1,0)", "max_input_channels": 1, "max_output_channels": 2},
        {"name": "HDA Intel PCH: ALC (hw:0,0)", "max_input_channels": 0, "max_output_channels": 2}]}
    assert strip.headset(scan, "usb", "USB")["connected"] is True
    assert strip.headset(scan, "", "")["input"] == "USB Headset: Audio (hw:1,0)"
    # Earphones alone are not a headset; a name that matches nothing is missing.
    assert strip.headset(scan, "HDA", "HDA")["connected"] is False
    assert strip.headset(scan, "Jabra", "")["connected"] is False
    assert strip.headset({"at": 1.0, "audio": []}, "", "")["connected"] is False
    # Before the first scan the station does not know yet: neither yes nor no.
    assert strip.headset({"at": None, "audio": []}, "", "")["connected"] is None


@needs_chromium
@pytest.mark.browser
@pytest.mark.serial
def test_the_strip_shows_each_pe_device_light_through_an_unplug(tmp_path, pty_pair, page_at):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    pair = pty_pair("reach")
    s = Station(tmp_path, f'[[pe.devices]]\nname = "reach-1"\ndriver = "qm-frame"\n'
                          f'port = "{pair.station_end}"\nitem = "sit_and_reach"\nbaud = 9600\n')
    try:
        s.open_sitting("--kind", "pe", "--item", "sit_and_reach")
        page, errors = page_at(1366, 768)
        # Nothing reads the device until the PE page starts the sitting's readers: the strip says so.
        page.goto(f"{s.url}/?lang=zh")
        device = page.locator('#strip-pe [data-device="reach-1"]')
        expect(device).to_have_attribute("data-state", "off")
        expect(device).to_contain_text("未启动")
        page.goto(f"{s.url}/pe?lang=zh")
        expect(device).to_have_attribute("data-state", "ok", timeout=STRIP_WAIT_MS)
        expect(device).to_contain_text("reach-1 已连接")
        pair.unplug()                             # the USB adapter pulled out
        expect(device).to_have_attribute("data-state", "fail", timeout=STRIP_WAIT_MS)
        expect(device).to_contain_text("未连接")
        expect(page.locator("#strip-pe")).to_have_attribute("data-state", "fail")
        pair.plug()
        expect(device).to_have_attribute("data-state", "ok", timeout=60_000)
        assert errors == []
    finally:
        s.stop()


def test_the_login_page_shows_no_station_state_before_the_pin(tmp_path):
    s = Station(tmp_path, '[web]\npin = "246810"\n')
    try:
        login = httpx.get(s.url + "/login", timeout=20)
        assert login.status_code == 200 and 'id="qm-strip"' not in login.text
        assert "strip-data" not in login.text and 'class="skip-link"' in login.text
        assert httpx.get(s.url + "/api/status", timeout=20).status_code == 401
    finally:
        s.stop()
