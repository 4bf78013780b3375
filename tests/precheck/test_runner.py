"""The runner: timeouts for hung checks, concurrent groups, order, overall, callbacks."""
from __future__ import annotations

import threading

import pytest

from precheck.check import CheckResult
from precheck.runner import Check, overall, run


def ok(check_id: str, status: str = "pass"):
    def fn(ctx):
        return CheckResult(check_id, status, "好", "fine")
    fn.check_id = check_id
    return fn


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

    report = run({"serial": [Check("serial.COM3", hangs, timeout_s=0.3), ok("after")]},
                 {}, station_id="S01")
    assert [c.id for c in report.checks] == ["serial.COM3", "after"]
    hung = report.checks[0]
    assert hung.status == "fail"
    assert (hung.summary_zh, hung.summary_en) == ("检查超时", "the check timed out")
    assert hung.fix_zh and hung.fix_en
    assert report.checks[1].status == "pass"      # the group went on after the hung check
    assert report.overall == "fail" and report.exit_code == 1


def test_groups_run_concurrently():
    # Each check waits for the other: run one after the other, the barrier breaks.
    barrier = threading.Barrier(2, timeout=10)

    def meet(check_id):
        def fn(ctx):
            barrier.wait()
            return CheckResult(check_id, "pass", "", "")
        return Check(check_id, fn, timeout_s=20)

    report = run({"audio": [meet("audio.input")], "network": [meet("network.dns")]})
    assert [c.status for c in report.checks] == ["pass", "pass"]


def test_a_crashing_check_fails_with_its_error_and_the_rest_still_run():
    def crashes(ctx):
        raise OSError("port busy")

    report = run([[Check("serial.COM4", crashes), ok("disk.free")]])
    assert report.checks[0].status == "fail"
    assert "port busy" in report.checks[0].details["error"]
    assert report.checks[1].status == "pass"


def test_a_check_returning_garbage_is_a_failure_not_a_crash():
    report = run([[Check("x.y", lambda ctx: "fine")]])
    assert report.checks[0].status == "fail" and report.checks[0].id == "x.y"


def test_results_keep_the_given_order_and_lists_expand():
    def two_ports(ctx):
        return [CheckResult("serial.COM3", "pass", "", ""), CheckResult("serial.COM4", "warn", "", "")]

    report = run({"a": [ok("audio.output"), ok("audio.input")],
                  "b": [Check("serial", two_ports)], "c": [ok("disk.free", "skip")]})
    assert [c.id for c in report.checks] == ["audio.output", "audio.input", "serial.COM3",
                                             "serial.COM4", "disk.free"]
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
    report = run({"a": [ok("a.1")]}, {"station_id": "S07"})
    assert report.station_id == "S07"
    assert report.started_at[:2] == "20" and "T" in report.started_at
    assert report.duration_s >= 0


@pytest.mark.parametrize("statuses, expected", [
    ([], "pass"), (["pass", "skip"], "pass"), (["pass", "warn"], "warn"),
    (["warn", "fail", "pass"], "fail"), (["skip"], "pass")])
def test_overall(statuses, expected):
    assert overall(CheckResult("x", s, "", "") for s in statuses) == expected


def test_importing_the_precheck_loads_nothing_heavy():
    # `station --help` must stay fast: heavy libraries load when a check or report runs.
    import subprocess
    import sys

    code = ("import sys, precheck.runner, precheck.network, "
            "precheck.system, precheck.serialcheck, precheck.report; "
            "print(sorted(m for m in ('numpy', 'httpx', 'matplotlib', 'serial', 'rich', "
            "'jinja2', 'sounddevice') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
