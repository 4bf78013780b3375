"""A whole test day in rehearsal mode, driven in Chromium the way proctors drive it.

`station serve --simulate` brings its own virtual devices, demo roster and district
collector. The test plays the student's singing into the virtual microphone, presses the
rehearsal panel's buttons for the PE devices (as a student runs, reaches, stands on the
scale, or a cable is knocked out), and types barcodes as a scanner does: code, Enter.
Every page it visits is saved as a screenshot (``QM_SCREENSHOTS=dir`` keeps them; the
proctor's guide in docs/ uses them). It fails on any console error or failed request.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import SEAL_CODE, chromium, free_port, needs_chromium, page_errors, wait_for
from tests.station.servers import Server, last_line
from tests.station.singing import RATE, demo_voice

pytestmark = [pytest.mark.audio, pytest.mark.serial, pytest.mark.browser, needs_chromium]

LAPTOP = {"width": 1366, "height": 768}     # the common school laptop
SECONDS = 30_000                            # Playwright waits, in ms: the machine is shared
SEAL = re.compile(rf"^{SEAL_CODE.pattern}$")   # 电子封签, as printed on the sitting sheet


class Day:
    """The browser, the station and what the test has seen, shared by the steps below."""

    def __init__(self, page, server: Server, shots: Path, expect):
        self.page, self.base, self.shots, self.expect = page, server.url, shots, expect
        self.api = server.client(timeout=30)
        self.taken: set[str] = set()
        self.roster: list[dict] | None = None

    def visit(self, path: str, name: str) -> None:
        self.page.goto(self.base + path)
        self.expect(self.page.locator(".banner.rehearsal")).to_contain_text("演练")
        self.shot(name)

    def shot(self, name: str, page=None, show: str | None = None) -> None:
        """A screenshot of what the proctor sees (the screen, scrolled to ``show``)."""
        path = self.shots / f"{name}.png"
        assert name not in self.taken, f"two screenshots named {name}"
        self.taken.add(name)
        page = page or self.page
        if show:   # in one step: the live page may redraw that part at any moment
            page.evaluate("s => document.querySelector(s).scrollIntoView({block: 'center'})", show)
        page.screenshot(path=str(path))

    def scan(self, code: str, field: str) -> None:
        """What a barcode scanner does: the code into the focused field, then Enter."""
        self.expect(self.page.locator(field)).to_be_focused(timeout=SECONDS)
        self.page.keyboard.type(code)
        self.page.keyboard.press("Enter")

    def press(self, device: str, action: str) -> None:
        """A rehearsal-panel button: a student measured on ``device``, or its cable pulled."""
        self.page.locator(f'button[data-device="{device}"][data-action="{action}"]').click()

    def codes(self, grade: int, n: int) -> list[str]:
        """The first ``n`` students of ``grade`` in the demo roster (read while the singing
        sitting, which lists the whole roster, is open)."""
        if self.roster is None:
            self.roster = self.api.get("/api/sing/state").json()["students"]
        return [s["code"] for s in self.roster if int(s["grade"]) == grade][:n]


@pytest.fixture
def shots(tmp_path) -> Path:
    where = Path(os.environ.get("QM_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def rehearsal(data_dir):
    port = free_port()
    server = Server(["serve", "--simulate", "--port", str(port)], port)
    yield server
    server.stop()


def test_a_whole_test_day_in_rehearsal_mode(rehearsal, data_dir, headset, sing_into_mic, shots):
    sync_api = pytest.importorskip("playwright.sync_api")
    with chromium(sync_api) as browser:
        page = browser.new_page(viewport=LAPTOP)
        errors = page_errors(page)
        page.on("dialog", lambda d: d.accept())    # "close the sitting?" — yes
        day = Day(page, rehearsal, shots, sync_api.expect)

        sign_in(day, rehearsal)
        day.visit("/", "status")
        precheck(day)
        singing_sitting(day, sing_into_mic)
        run_50m_sitting(day)
        sit_and_reach_sitting(day)
        height_weight_sitting(day)
        uploads_arrive(day)
        dashboard_errors = dashboard(day, browser, data_dir)
    assert errors == [] and dashboard_errors == []
    # Every sitting the pages opened and closed is on record under the proctor who signed in.
    with sqlite3.connect(f"file:{data_dir / 'rehearsal' / 'station.db'}?mode=ro", uri=True) as db:
        who = db.execute("SELECT action, who FROM audit_log WHERE action IN ('sitting.open', 'sitting.close')"
                         ).fetchall()
    assert len(who) >= 8 and {w for _, w in who} == {"张老师"}, who


def sign_in(day: Day, server: Server) -> None:
    """As the proctor starts: the login link `station serve` printed (and opened), then
    their name once, under which every action of the day is recorded."""
    assert server.login_url("/").startswith(server.url + "/login?token=")
    day.page.goto(server.login_url("/"))
    day.page.wait_for_url(server.url + "/")
    day.expect(day.page.locator("#qm-proctor")).to_be_visible()
    day.page.fill("#qm-proctor-input", "张老师")
    day.page.click("#qm-proctor button[type=submit]")
    day.expect(day.page.locator("#qm-proctor-name")).to_contain_text("张老师", timeout=SECONDS)
    day.shot("signed-in")


def precheck(day: Day) -> None:
    day.visit("/precheck", "precheck")
    day.page.click("#pc-start")
    overall = day.page.locator("#pc-overall")
    day.expect(overall).to_be_visible(timeout=180_000)
    day.expect(overall).to_have_class(re.compile(r"\b(pass|warn)\b"))
    day.shot("precheck-done")


def singing_sitting(day: Day, sing_into_mic) -> None:
    day.visit("/sing", "sing")
    day.page.click("#sing-open")
    day.expect(day.page.locator("#sing-code")).to_be_visible(timeout=SECONDS)
    day.shot("sing-open")
    codes = day.codes(4, 10)
    assert len(codes) == 10 and len(day.codes(8, 99)) >= 3 and len(day.codes(4, 99)) >= 18
    for n, code in enumerate(codes):
        day.scan(code, "#sing-code")
        day.expect(day.page.locator(f'#sing-now[data-code="{code}"]')).to_be_visible(timeout=SECONDS)
        if n == 2:
            # The headset's microphone was muted: a silent take, refused, and a retake.
            verdict = take(day, sing_into_mic, sing=False, button="#sing-record")
            assert verdict == "录音不合格", verdict
            day.expect(day.page.locator("#sing-verdict .sing-reasons")).to_contain_text("几乎没有声音")
            day.shot("sing-silent-take", show="#sing-verdict")
            verdict = take(day, sing_into_mic, sing=True, button="#sing-retake")
        else:
            verdict = take(day, sing_into_mic, sing=True, button="#sing-record")
        # A loaded machine can drop audio or stall the device: the take is then flagged or
        # refused, never accepted; the proctor records again.
        for _ in range(3):
            if verdict == "录音合格":
                break
            again = "#sing-retake" if day.page.locator("#sing-retake").count() else "#sing-record"
            verdict = take(day, sing_into_mic, sing=True, button=again)
        assert verdict == "录音合格", f"{code}: {verdict}"
        if n == 0:
            day.shot("sing-accepted", show="#sing-verdict")
    day.expect(day.page.locator("#sing-progress")).to_contain_text("10")
    day.page.click('button[data-action="close"]')
    seal = day.page.locator("#seal-code")
    day.expect(seal).to_have_text(SEAL, timeout=SECONDS)
    day.shot("sing-sealed")


def take(day: Day, sing_into_mic, sing: bool, button: str) -> str:
    """One take: record, (the student sings), stop after 7 s; the verdict's word, or the
    error the page showed if the take could not be made."""
    day.page.click(button)
    singer = sing_into_mic(demo_voice(12.0), RATE) if sing else None

    def recording() -> dict | None:
        return day.api.get("/api/sing/state").json()["recording"]

    wait_for(lambda: recording() is not None or day.page.locator("#sing-verdict").count(),
             what="the take to start")
    wait_for(lambda: (recording() or {"elapsed_s": 99})["elapsed_s"] >= 7,
             what="seven seconds of recording")
    if recording() is not None:
        day.page.click("#sing-stop")
    if singer is not None:      # the student stops singing: nothing reaches the next take
        singer.kill()
        singer.wait()
    verdict = day.page.locator("#sing-verdict")
    day.expect(verdict).to_be_visible(timeout=90_000)
    day.expect(day.page.locator("#sing-record")).to_be_enabled(timeout=SECONDS)
    word = verdict.locator(".sing-verdict-word")
    return word.inner_text().strip() if word.count() else verdict.inner_text().strip()


# --- PE -------------------------------------------------------------------------------

def open_pe(day: Day, item: str, name: str) -> None:
    day.visit("/pe", f"pe-{name}-open")
    day.page.select_option("#pe-item", item)
    day.page.click("#pe-open button[type=submit]")
    day.expect(day.page.locator("#pe-code")).to_be_visible(timeout=SECONDS)


def device_status(day: Day, device: str):
    return day.page.locator(f'#pe-main li[data-device="{device}"] .pe-status')


def measure_and_confirm(day: Day, code: str, device: str, item: str | None = None) -> None:
    """The device measures the scanned student; the proctor confirms what arrived (in the
    list of results waiting for confirmation, where every pending attempt is shown)."""
    waiting = day.page.locator(f'.pe-pending li[data-student="{code}"]'
                               + (f'[data-item="{item}"]' if item else "")
                               + " button[data-action=confirm]")
    day.expect(waiting).to_have_count(0)
    day.press(device, "measure")
    day.expect(waiting).to_have_count(1, timeout=SECONDS)
    waiting.click()
    day.expect(waiting).to_have_count(0, timeout=SECONDS)


def close_pe(day: Day, name: str) -> None:
    day.page.click('#pe-main button[data-action="close"]')
    day.expect(day.page.locator("#seal-code")).to_have_text(SEAL,
                                                           timeout=SECONDS)
    day.shot(f"pe-{name}-sealed")


def run_50m_sitting(day: Day) -> None:
    open_pe(day, "run_50m", "run")
    day.expect(device_status(day, "timer-1")).to_have_text("已连接", timeout=SECONDS)
    codes = day.codes(4, 15)[10:15]
    for n, code in enumerate(codes):
        day.scan(code, "#pe-code")
        day.expect(day.page.locator(f'.pe-student[data-code="{code}"]')).to_be_visible(timeout=SECONDS)
        if n == 3:
            day.page.click(f'button[data-action="absent"][data-code="{code}"]')
            day.expect(day.page.locator("#pe-progress")).to_contain_text("缺考 1", timeout=SECONDS)
            continue
        measure_and_confirm(day, code, "timer-1")
        if n == 1:
            # The timer's cable is knocked out mid-sitting, and pushed back in.
            day.press("timer-1", "unplug")
            day.expect(device_status(day, "timer-1")).to_contain_text("已断开", timeout=SECONDS)
            day.shot("pe-unplugged")
            day.press("timer-1", "plug")
            day.expect(device_status(day, "timer-1")).to_have_text("已连接", timeout=SECONDS)
    day.shot("pe-run")
    results = day.api.get("/api/pe/export").json()["results"]
    done = {r["student"]["code"]: r for r in results}
    assert {c for c in codes if done[c]["status"] == "done"} == set(codes) - {codes[3]}
    assert done[codes[3]]["status"] == "absent"
    for code in set(codes) - {codes[3]}:
        # The standard's 50 m rounding: tenths, any non-zero hundredth up.
        assert re.fullmatch(r"\d+\.\d", done[code]["value"]), done[code]
    close_pe(day, "run")


def sit_and_reach_sitting(day: Day) -> None:
    open_pe(day, "sit_and_reach", "reach")
    day.expect(device_status(day, "reach-1")).to_have_text("已连接", timeout=SECONDS)
    for code in day.codes(8, 3):
        day.scan(code, "#pe-code")
        for _ in range(2):      # best of two
            measure_and_confirm(day, code, "reach-1")
    day.shot("pe-reach")
    close_pe(day, "reach")


def height_weight_sitting(day: Day) -> None:
    open_pe(day, "bmi", "bmi")
    for device in ("height-1", "weight-1"):
        day.expect(device_status(day, device)).to_have_text("已连接", timeout=SECONDS)
    codes = day.codes(4, 18)[15:18]
    for code in codes:
        day.scan(code, "#pe-code")
        measure_and_confirm(day, code, "height-1", "height")
        measure_and_confirm(day, code, "weight-1", "weight")
        bmi = day.page.locator(f'.pe-student[data-code="{code}"] [data-item="bmi"]')
        day.expect(bmi).to_contain_text(re.compile(r"\d+\.\d"), timeout=SECONDS)
    day.shot("pe-bmi", show=".pe-student")
    results = day.api.get("/api/pe/export").json()["results"]
    items = {(r["student"]["code"], r["item"]): r for r in results}
    for code in codes:
        h, w = (float(items[code, i]["value"]) for i in ("height", "weight"))
        assert float(items[code, "bmi"]["value"]) == pytest.approx(w / (h / 100) ** 2, abs=0.06)
    close_pe(day, "bmi")


# --- upload and the district ------------------------------------------------------------

def uploads_arrive(day: Day) -> None:
    day.visit("/uploads", "uploads")
    cards = day.page.locator("#uploads article.upload")
    day.expect(cards).to_have_count(4, timeout=SECONDS)
    # Every sitting uploads by itself; the page refreshes itself.
    try:
        day.expect(day.page.locator('#uploads article.upload[data-state="done"]')).to_have_count(
            4, timeout=240_000)
    except AssertionError as e:  # say which file waits, and why, not only "3 of 4"
        raise AssertionError(json.dumps(day.api.get("/api/uploads").json(), ensure_ascii=False,
                                        indent=1)) from e
    day.shot("uploads-done")


def dashboard(day: Day, browser, data_dir: Path) -> list[str]:
    info = day.api.get("/api/rehearsal").json()
    token = last_line("collector", "admin-token", "--data", str(data_dir / "rehearsal" / "collector"))
    page = browser.new_page(viewport=LAPTOP)
    errors = page_errors(page)
    page.goto(info["dashboard_url"])
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    station_id = day.api.get("/api/status").json()["station_id"]
    # Schools first; the station's row is inside its school, opened with "expand all".
    page.click("#expand-all")
    row = page.locator(f'tr[data-station="{station_id}"]')
    day.expect(row).to_be_visible(timeout=SECONDS)
    day.expect(row.locator("td").nth(2)).to_contain_text(re.compile("通过|警告"))
    files = row.locator("td").nth(4)
    day.expect(files).to_have_text(re.compile(r"^(\d+)/\1$"), timeout=SECONDS)
    assert int(files.inner_text().split("/")[0]) >= 4
    day.expect(row.locator('.badge[data-state="complete"]')).to_have_count(4, timeout=SECONDS)
    day.shot("dashboard", page)
    page.close()
    return errors
