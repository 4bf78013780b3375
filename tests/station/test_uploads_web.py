"""The /uploads page under a real `station serve`: each sealed sitting with its seal code and
upload state, in both languages; with a real collector the page turns to done by itself."""
import json
import re

import pytest

from tests.station.servers import Collector, free_port, last_line, station_serve, wait_for


def card(page: str, sitting: str) -> str:
    found = re.search(rf'<article class="card upload [a-z]+" id="sitting-{re.escape(sitting)}".*?</article>',
                      page, flags=re.S)
    assert found, f"no card for {sitting}"
    return found.group(0)


def write_config(data_dir, extra: str = "") -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text(f'station_id = "S01"\nschool = "测试实验小学"\n{extra}',
                                           encoding="utf-8")


def close_a_sitting(station) -> dict:
    sitting = station("session", "open", "--kind", "pe", "--item", "sit_and_reach", "--by", "张老师",
                      check=True).stdout.strip().splitlines()[-1]
    return json.loads(station("session", "close", sitting, "--json", check=True).stdout)


@pytest.fixture
def offline(station, data_dir):
    """A station with no collector configured: what it seals stays queued."""
    write_config(data_dir)
    server = station_serve()
    with server.client() as client:
        yield client
    server.stop()


def test_empty_queue_says_so(offline):
    page = offline.get("/uploads").text
    assert 'id="no-uploads"' in page and "上传队列为空" in page
    assert offline.get("/api/uploads").json() == {"sittings": []}


def test_queued_sitting_shows_its_seal_code_in_chinese_and_english(offline, station):
    closed = close_a_sitting(station)
    zh = card(offline.get("/uploads").text, closed["id"])
    assert closed["seal_code"] in zh and 'class="seal-code"' in zh
    assert "电子封签" in zh and "排队中" in zh and "坐位体前屈" in zh
    assert re.search(r"文件 0/3", zh)  # results.csv, results.json, manifest.json
    assert 'id="not-configured"' in offline.get("/uploads").text  # says why it waits
    assert "立即重试" not in zh  # nothing to retry against
    en = offline.get("/uploads?lang=en").text
    assert '<html lang="en">' in en and "排队中" not in en
    en_card = card(en, closed["id"])
    assert closed["seal_code"] in en_card and "Seal code" in en_card and "queued" in en_card
    assert 'href="/uploads"' in en and "Uploads" in en  # reachable from every page's nav
    # The fragment the page refreshes itself with shows the same card.
    assert closed["seal_code"] in offline.get("/uploads?fragment=1").text


def test_api_uploads_is_what_upload_status_prints(offline, station):
    closed = close_a_sitting(station)
    api = offline.get("/api/uploads").json()["sittings"]
    cli = json.loads(station("upload", "status", "--json", check=True).stdout)["sittings"]
    assert [(s["sitting"], s["seal_code"], s["state"], s["bytes_total"]) for s in api] == \
           [(s["sitting"], s["seal_code"], s["state"], s["bytes_total"]) for s in cli] == \
           [(closed["id"], closed["seal_code"], "queued", cli[0]["bytes_total"])]
    assert api[0]["kind"] == "pe" and api[0]["item"] == "sit_and_reach"


def test_retry_of_a_sitting_not_in_the_queue_is_refused_clearly(offline):
    answer = offline.post("/api/uploads/20990101-01/retry", json={})
    assert answer.status_code == 404
    body = answer.json()
    assert "20990101-01" in body["zh"] and "上传队列" in body["zh"] and "upload queue" in body["en"]
    # The page's button is a JSON post too (no form: the station takes no form writes).
    assert offline.post("/uploads/20990101-01/retry?lang=zh", json={}).status_code in (404, 405)


def test_failed_upload_shows_the_reason_and_retry_now_finishes_it(station, data_dir, tmp_path):
    """Collector down: the card says failed and why; collector up and "retry now": done."""
    collector_data = tmp_path / "collector"
    token = last_line("collector", "add-station", "S01", "--data", str(collector_data))
    collector_port = free_port()
    write_config(data_dir, f'[upload]\ncollector_url = "http://127.0.0.1:{collector_port}"\ntoken = "{token}"\n')
    server = station_serve()
    client = server.client()
    collector = None
    try:
        closed = close_a_sitting(station)
        sitting = closed["id"]
        failed = wait_for(lambda: (lambda c: c if 'data-state="failed"' in c else None)(
            card(client.get("/uploads").text, sitting)))
        assert "失败·将自动重试" in failed and "连接" in failed and "立即重试" in failed
        assert closed["seal_code"] in failed
        assert 'id="not-configured"' not in client.get("/uploads").text
        en = card(client.get("/uploads?lang=en").text, sitting)
        assert "will retry" in en or 'data-state="uploading"' in en

        collector = Collector(collector_data, collector_port)
        assert f'data-retry="{sitting}"' in failed
        pressed = client.post(f"/api/uploads/{sitting}/retry", json={})
        assert pressed.status_code == 200 and pressed.json()["sitting"] == sitting
        done = wait_for(lambda: (lambda c: c if 'data-state="done"' in c else None)(
            card(client.get("/uploads?lang=zh").text, sitting)))
        assert "已完成" in done and "文件 3/3" in done and "立即重试" not in done
        api = client.get("/api/uploads").json()["sittings"][0]
        assert api["state"] == "done" and api["bytes_done"] == api["bytes_total"] > 0
        # Nothing left to retry once done.
        assert client.post(f"/api/uploads/{sitting}/retry", json={}).status_code == 409
    finally:
        client.close()
        server.stop()
        if collector:
            collector.stop()
