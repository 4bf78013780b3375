"""The runner: time limits for hung checks, concurrent groups, order, overall, callbacks; and
a hung check keeps the id its declaration gives it, in the JSON shape of DESIGN.md."""
from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest

from precheck import registry
from precheck.check import Check, CheckResult
from precheck.context import Context
from precheck.report import overall, to_json
from precheck.runner import run


def ok(check_id: str, status: str = "pass", timeout_s: float = 10.0) -> Check:
    return Check(check_id, check_id, check_id, timeout_s,
                 lambda ctx: CheckResult(check_id, status, "好", "fine"))


@pytest.fixture
def release():
    """An event that hung checks wait on; set at teardown so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def test_a_hung_check_is_abandoned_and_reported_as_timed_out(release):
    def hangs(ctx):
        release.wait()          # a device that never answers
        return CheckResult("serial.COM3", "pass", "", "")

    report = run({"serial": [Check("serial.COM3", "串口", "serial", 0.3, hangs), ok("after")]},
                 Context(station_id="S01"))
    assert [c.id for c in report.checks] == ["serial.COM3", "after"]
    hung = report.checks[0]
    assert hung.status == "fail"
    assert (hung.summary_zh, hung.summary_en) == ("检查超时", "the check timed out")
    assert hung.details == {"timeout_s": 0.3}
    assert hung.fix_zh and hung.fix_en
    assert report.checks[1].status == "pass"      # the group went on after the hung check
    assert report.overall == "fail" and report.exit_code == 1


DESIGN_KEYS = {"station_id", "started_at", "duration_s", "overall", "checks"}
CHECK_KEYS = {"id", "status", "summary_zh", "summary_en", "details"}


def test_a_check_that_sleeps_past_its_limit_keeps_its_declared_id_in_the_json(tmp_path):
    """The registry's audio.loopback, its function swapped for one that sleeps (a headset whose
    driver hangs), run with the standard groups by the real runner: the report names it
    audio.loopback, not the function, and keeps DESIGN.md's pre-check shape."""
    def check_loopback(ctx):
        time.sleep(3)
        return CheckResult("audio.loopback", "pass", "", "")

    declared = registry.BY_ID["audio.loopback"]
    hung = dataclasses.replace(declared, fn=check_loopback, timeout_s=0.5)
    ctx = Context(station_id="S02", data_dir=tmp_path)
    groups = {"audio": [hung], **registry.standard_groups(ctx, network=False, audio=False)}
    t0 = time.monotonic()
    data = json.loads(json.dumps(to_json(run(groups, ctx)), allow_nan=False))
    assert time.monotonic() - t0 < 2.5          # the runner did not wait for the sleeper
    assert DESIGN_KEYS <= data.keys() and data["station_id"] == "S02"
    assert data["overall"] == "fail" and isinstance(data["duration_s"], float)
    for check in data["checks"]:
        assert CHECK_KEYS <= check.keys() and isinstance(check["details"], dict)
        assert check["status"] in ("pass", "warn", "fail", "skip")
    assert [c["id"] for c in data["checks"]] == ["audio.loopback", "disk.free"]
    loopback = data["checks"][0]
    assert (loopback["status"], loopback["summary_en"]) == ("fail", "the check timed out")
    assert registry.title(loopback["id"]) == ("耳机回路", "Headset loopback")


def test_every_declared_check_has_a_dotted_id_a_title_and_a_limit():
    checks = [*registry.AUDIO, *registry.NETWORK, *registry.DISK]
    assert len({c.id for c in checks}) == len(checks)
    for c in checks:
        assert "." in c.id and c.title_zh and c.title_en and 0 < c.timeout_s <= 30, c
    serial = registry.serial({"port": "COM3", "wait_s": 2}, Context())
    assert (serial.id, serial.timeout_s) == ("serial.COM3", 2 + registry.SERIAL_GRACE_S)
    assert registry.title("serial.COM3") == ("串口设备 COM3", "Serial device COM3")


def test_groups_run_concurrently():
    # Each check waits for the other: run one after the other, the barrier breaks.
    barrier = threading.Barrier(2, timeout=10)

    def meet(check_id):
        def fn(ctx):
            barrier.wait()
            return CheckResult(check_id, "pass", "", "")
        return Check(check_id, check_id, check_id, 20, fn)

    report = run({"audio": [meet("audio.input")], "network": [meet("network.dns")]})
    assert [c.status for c in report.checks] == ["pass", "pass"]


def test_a_crashing_check_fails_with_its_error_and_the_rest_still_run():
    def crashes(ctx):
        raise OSError("port busy")

    report = run([[Check("serial.COM4", "", "", 10, crashes), ok("disk.free")]])
    assert report.checks[0].status == "fail" and report.checks[0].id == "serial.COM4"
    assert "port busy" in report.checks[0].details["error"]
    assert report.checks[1].status == "pass"


def test_a_check_returning_garbage_is_a_failure_not_a_crash():
    report = run([[Check("x.y", "", "", 10, lambda ctx: "fine")]])
    assert report.checks[0].status == "fail" and report.checks[0].id == "x.y"


def test_a_result_under_another_id_is_reported_under_the_declared_one():
    report = run([[Check("audio.input", "", "", 10, lambda ctx: CheckResult("check_input", "pass", "", ""))]])
    [result] = report.checks
    assert (result.id, result.status) == ("audio.input", "fail")
    assert "check_input" in result.details["error"]


def test_a_check_whose_module_cannot_load_fails_under_its_id():
    from precheck.check import lazy

    report = run([[Check("audio.output", "", "", 10, lazy("precheck.no_such_module", "check"))]])
    [result] = report.checks
    assert (result.id, result.status) == ("audio.output", "fail")
    assert "ModuleNotFoundError" in result.details["error"]


def test_results_keep_the_given_order():
    report = run({"a": [ok("audio.output"), ok("audio.input")],
                  "b": [ok("serial.COM3", "warn")], "c": [ok("disk.free", "skip")]})
    assert [c.id for c in report.checks] == ["audio.output", "audio.input", "serial.COM3", "disk.free"]
    assert report.overall == "warn" and report.exit_code == 0


def test_on_result_sees_every_result_once():
    seen = []
    report = run({"a": [ok("a.1"), ok("a.2")], "b": [ok("b.1", "fail")]},
                 on_result=lambda r: seen.append(r.id))
    assert sorted(seen) == ["a.1", "a.2", "b.1"]
    assert report.overall == "fail"


def test_a_broken_progress_callback_does_not_stop_the_run():
    def boom(result):
        raise RuntimeError("page gone")

    report = run({"a": [ok("a.1"), ok("a.2")]}, on_result=boom)
    assert [c.status for c in report.checks] == ["pass", "pass"]


def test_report_header():
    report = run({"a": [ok("a.1")]}, Context(station_id="S07"))
    assert report.station_id == "S07"
    assert report.started_at[:2] == "20" and "T" in report.started_at
    assert report.duration_s >= 0


@pytest.mark.parametrize("statuses, expected", [
    ([], "pass"), (["pass", "skip"], "pass"), (["pass", "warn"], "warn"),
    (["warn", "fail", "pass"], "fail"), (["skip"], "pass")])
def test_overall(statuses, expected):
    assert overall(CheckResult("x", s, "", "") for s in statuses) == expected
