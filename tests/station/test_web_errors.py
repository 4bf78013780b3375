"""The station app's one exception handler, under a real uvicorn: a refusal raised anywhere
under a route is the pages' bilingual ``{"error", "zh", "en"}``; anything else is a bilingual
500 that names neither the exception nor what it said (a child's name, a path)."""
from __future__ import annotations

import httpx
import pytest

from station.sittings import SittingError
from station.web.session import TOKEN_FILE
from tests.helpers import serve_app

CHILD = "欧阳子涵"          # generated, as every name in tests


@pytest.fixture
def served(data_dir, station):
    """The real station app (its guard, sessions and routers) with two routes of the test's
    own beside the real ones, served by uvicorn; a signed-in client."""
    from station.context import Station
    from station.web.app import create_app

    station("session", "open", "--kind", "singing", "--by", "张老师", check=True)
    app = create_app(Station.open(str(data_dir)), background=False)

    @app.post("/api/test/refuse")
    def refuse_here():
        raise SittingError("场次 X 已关闭，不能再添加录音。", "Sitting X is closed.",
                           "请打开新的场次。", "Open a new sitting.")

    @app.get("/api/test/fault")
    def fault():
        raise RuntimeError(f"{CHILD} 的成绩写入失败：/home/station/data/{CHILD}.flac")

    with serve_app(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        token = (data_dir / TOKEN_FILE).read_text(encoding="ascii").strip()
        assert client.get("/login", params={"token": token}).status_code == 303
        client.post("/api/proctor", json={"name": "张老师"}).raise_for_status()
        yield client


def test_a_refusal_raised_in_a_route_is_answered_in_both_languages(served):
    answer = served.post("/api/test/refuse", json={})
    assert answer.status_code == 409
    assert answer.json() == {"error": "refused", "zh": "场次 X 已关闭，不能再添加录音。请打开新的场次。",
                             "en": "Sitting X is closed. Open a new sitting."}


def test_a_real_route_refuses_through_the_same_handler(served):
    # A second singing sitting: SittingError from station.sittings, raised through the route.
    again = served.post("/api/sing/open", json={})
    assert again.status_code == 409
    doc = again.json()
    assert doc["error"] == "refused" and "还没有关闭" in doc["zh"] and "still open" in doc["en"]
    # A sitting named in a form that does not exist: bad input (400), both languages.
    filed = served.post("/api/incidents", json={"category": "power", "text": "停电", "sitting": "NOPE"})
    assert filed.status_code == 400
    doc = filed.json()
    assert "NOPE" in doc["zh"] and "NOPE" in doc["en"] and doc["zh"] != doc["en"]


def test_a_body_that_is_not_a_json_object_is_refused_by_the_one_dependency(served):
    for body in (b"[1, 2]", b"not json", b""):
        answer = served.post("/api/incidents", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, body
        doc = answer.json()
        assert doc["error"] == "refused" and "JSON" in doc["zh"] and "JSON object" in doc["en"]


def test_an_unexpected_fault_is_a_plain_bilingual_500(served):
    answer = served.get("/api/test/fault")
    assert answer.status_code == 500
    doc = answer.json()
    assert doc["error"] == "internal" and "内部出错" in doc["zh"] and "internal error" in doc["en"]
    for secret in (CHILD, "RuntimeError", "Traceback", ".flac", "/home/station"):
        assert secret not in answer.text
