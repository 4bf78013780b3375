"""The height/weight sitting under a real `station serve`: a stadiometer and a scale on two
socat PTYs, one sitting, BMI on the page and in the export."""
import csv
import io
import re

import httpx
import pytest
import serial

from devices.drivers import mt_sics, qm_frame
from tests.helpers import chromium, needs_chromium, page_errors
from tests.station.servers import import_roster, page_of, pe_pending, station_serve, wait_for


@pytest.fixture
def room(station, data_dir, tmp_path, pty_pair):
    height_pty, scale_pty = pty_pair("ht"), pty_pair("scale")
    # Generated names, not real people.
    import_roster(station, tmp_path / "roster.csv",
                  "学籍号,姓名,性别,年级,班级\n0001,王子涵,男,四年级,4(1)\n0002,李欣怡,女,四年级,4(1)\n")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text(
        'station_id = "S01"\n'
        f'[[pe.devices]]\nname = "HT-1"\ndriver = "qm-frame"\nport = "{height_pty.station_end}"\nitem = "height"\n'
        f'[[pe.devices]]\nname = "scale-1"\ndriver = "mt-sics"\nport = "{scale_pty.station_end}"\nitem = "weight"\n'
        '[[pe.devices]]\nname = "SR-1"\ndriver = "qm-frame"\nport = "/dev/ttyNOPE7"\nitem = "sit_and_reach"\n',
        encoding="utf-8")
    sitting = station("session", "open", "--kind", "pe", "--item", "bmi", "--by", "张老师",
                      check=True).stdout.strip().splitlines()[-1]
    server = station_serve()
    client = server.client(timeout=10)
    try:
        wait_for(lambda: [d["status"] for d in client.get("/api/pe/state").json()["devices"]]
                 == ["connected", "connected"], what="both devices connected")
        with serial.Serial(height_pty.device_end) as stadiometer, serial.Serial(scale_pty.device_end) as scale:
            def height(cm):
                stadiometer.write(qm_frame.format_frame("HT-1", "height", "", cm, "cm"))

            def weight(kg, stable=True):
                scale.write(mt_sics.format_line(kg, stable=stable))

            yield client, sitting, height, weight
    finally:
        client.close()
        server.stop()



def test_one_sitting_measures_height_and_weight_and_shows_the_bmi(room, station):
    client, sitting, height, weight = room
    state = client.get("/api/pe/state").json()
    assert (state["item"], state["derived"], [i["id"] for i in state["items"]]) == \
        ("bmi", "bmi", ["height", "weight"])
    assert [d["name"] for d in state["devices"]] == ["HT-1", "scale-1"]   # not the sit-and-reach meter
    client.post("/api/pe/scan", json={"code": "0001", "by": "张老师"}).raise_for_status()
    weight("35.9", stable=False)                    # moving on the scale: live only
    height("140.04")
    weight("35.5")
    pending = wait_for(lambda: pe_pending(client, 2), what="height and weight attempts")
    assert sorted((a["item"], a["rounded"], a["device"]) for a in pending) == \
        [("height", "140.0", "HT-1"), ("weight", "35.5", "scale-1")]
    page = client.get("/pe").text
    assert re.search(r'<tr class="state-pending" data-item="height"[^>]*>.*?140\.0 cm', page, re.S)
    assert re.search(r'<tr class="state-pending" data-item="weight"[^>]*>.*?35\.5 kg', page, re.S)
    assert re.search(r'<tr class="pe-derived" data-item="bmi">.*?—', page, re.S)   # not yet
    assert "Computed once height and weight are both confirmed" in client.get("/pe?lang=en").text
    for a in pending:
        client.post("/api/pe/confirm", json={"attempt": a["id"], "by": "张老师"}).raise_for_status()
    state = client.get("/api/pe/state").json()
    bmi = state["current"][""]["results"]["bmi"]
    assert (bmi["status"], bmi["value"]) == ("done", "18.1")
    assert state["progress"]["done"] == 1
    page = client.get("/pe").text
    assert re.search(r'data-item="bmi" data-verdict="ok">.*?18\.1 kg/m2', page, re.S)
    assert "王子涵" in page

    doc = client.get("/api/pe/export", params={"sitting": sitting, "format": "json"}).json()
    assert [(r["item"], r["unit"], r["value"]) for r in doc["results"]] == \
        [("height", "cm", "140.0"), ("weight", "kg", "35.5"), ("bmi", "kg/m2", "18.1")]
    rows = list(csv.DictReader(io.StringIO(
        client.get("/api/pe/export", params={"sitting": sitting, "format": "csv"}).content.decode("utf-8-sig"))))
    assert [r["单位 unit"] for r in rows] == ["cm", "kg", "kg/m2"]
    cli = station("pe", "export", "--session", sitting, "--json", check=True).stdout
    assert '"kg/m2"' in cli and '"18.1"' in cli


def test_voiding_the_weight_clears_the_bmi_on_the_page(room):
    client, _, height, weight = room
    client.post("/api/pe/scan", json={"code": "0002"}).raise_for_status()
    height("135.0")
    weight("30.0")
    for a in wait_for(lambda: pe_pending(client, 2), what="two attempts"):
        client.post("/api/pe/confirm", json={"attempt": a["id"]}).raise_for_status()
    cur = client.get("/api/pe/state").json()["current"][""]
    assert cur["results"]["bmi"]["value"] == "16.5"           # 30 / 1.35² = 16.46…
    (w,) = [a for a in cur["attempts"] if a["item"] == "weight"]
    r = client.post("/api/pe/retest", json={"code": "0002", "item": "weight"}).json()
    assert r["state"]["current"][""]["results"]["bmi"]["value"] is None
    assert r["state"]["progress"]["done"] == 0
    weight("30.4")
    (again,) = wait_for(lambda: pe_pending(client, 1), what="the new weight")
    assert (again["item"], again["rounded"]) == ("weight", "30.4")
    client.post("/api/pe/confirm", json={"attempt": again["id"]}).raise_for_status()
    assert client.get("/api/pe/state").json()["current"][""]["results"]["bmi"]["value"] == "16.7"


def test_absent_marks_all_three_and_a_new_bmi_sitting_opens_from_the_page(room):
    client, sitting, _, _ = room
    client.post("/api/pe/absent", json={"code": "0001"}).raise_for_status()
    doc = client.get("/api/pe/export", params={"sitting": sitting}).json()
    assert [(r["item"], r["status"]) for r in doc["results"]] == \
        [("height", "absent"), ("weight", "absent"), ("bmi", "absent")]
    client.post("/api/pe/close", json={"sitting": sitting}).raise_for_status()
    opened = client.post("/api/pe/open", json={"item": "bmi"})
    assert opened.status_code == 200 and opened.json()["sitting"]["item"] == "bmi"
    assert client.get("/api/pe/state").json()["derived"] == "bmi"


@needs_chromium
def test_the_page_shows_height_weight_and_the_bmi_as_they_are_confirmed(room):
    sync_api = pytest.importorskip("playwright.sync_api")
    client, _, height, weight = room
    with chromium(sync_api) as browser:
        page = page_of(browser, client)
        errors = page_errors(page)
        page.goto(str(client.base_url) + "/pe")
        expect = sync_api.expect
        page.keyboard.type("0001")
        page.keyboard.press("Enter")
        card = page.locator(".pe-student")
        expect(card.locator(".pe-name")).to_have_text("王子涵", timeout=20_000)
        expect(card.locator('tr[data-item="height"]')).to_contain_text("等待设备读数")
        height("152.0")
        weight("41.2")
        expect(card.locator('tr[data-item="height"]')).to_contain_text("152.0 cm", timeout=20_000)
        expect(card.locator('tr[data-item="weight"]')).to_contain_text("41.2 kg", timeout=20_000)
        page.keyboard.press("F6")                  # confirms the height (the first pending)
        expect(card.locator('tr[data-item="height"]')).to_contain_text("已确认", timeout=20_000)
        expect(card.locator('tr[data-item="bmi"] .pe-value')).to_have_text("—")
        card.locator('tr[data-item="weight"] [data-action="confirm"]').click()
        # 41.2 / 1.52² = 17.83…
        expect(card.locator('tr[data-item="bmi"] .pe-value')).to_have_text("17.8 kg/m2", timeout=20_000)
        expect(page.locator("#pe-progress")).to_contain_text("已完成 1 人")
        assert errors == []
