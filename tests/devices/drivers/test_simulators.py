"""Every driver against its simulator, over a real socat PTY pair."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devices import drivers, rawlog, simulators
from devices.ports import CONNECTED, PortReader

SIMULATE = Path(__file__).resolve().parents[3] / "scripts" / "simulate-device"
pytestmark = pytest.mark.serial


def wait_for(predicate, seconds=15.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def start_reader(pair, name, raw_log=None, **options):
    readings: list = []                  # list.append is atomic: the reader thread fills it
    reader = PortReader(pair.station_end, drivers.get(name, **options), readings.append,
                        raw_log=raw_log).start()
    assert wait_for(lambda: reader.status == CONNECTED)
    return reader, readings


def stable(readings: list) -> list:
    return [r for r in list(readings) if r.stable]


@pytest.mark.parametrize("name", simulators.NAMES)
def test_driver_reads_every_final_value_its_simulator_sends(pty_pair, tmp_path, name):
    args = dict(count=6, seed=11, garbage=0.5, bad_checksum=0.5, code="0101",
                rate=100.0, item="long_jump" if name == "qm-frame" else None)
    sent = simulators.script(name, **args)
    final = [e for e in sent if e.kind == simulators.FINAL]
    kinds = {e.kind for e in sent}       # the seed exercises noise and damaged frames
    assert {simulators.DAMAGED, simulators.GARBAGE} <= kinds
    pair = pty_pair()
    log = rawlog.RawLog(tmp_path / "raw.jsonl", port=pair.station_end, driver=name)
    reader, readings = start_reader(pair, name, raw_log=log)
    cmd = [sys.executable, str(SIMULATE), "--driver", name, "--port", pair.device_end,
           "--count", "6", "--seed", "11", "--garbage", "0.5", "--bad-checksum", "0.5",
           "--code", "0101", "--rate", "100"] + (["--item", "long_jump"] if name == "qm-frame" else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: len(stable(readings)) >= len(final))
    reader.stop()
    scales = ("mt-sics", "kern")         # a scale does not know the student
    assert [(r.value, r.code) for r in stable(readings)] == [
        (e.value, None if name in scales else e.code) for e in final]
    # Damaged frames were dropped, never read: nothing beyond what was sent.
    live = [e for e in sent if e.kind == simulators.LIVE]
    assert len(readings) == len(final) + len(live)
    assert reader.driver.counters.frames_ok == len(readings)
    # The raw log, noise and damaged frames included, replays to the same readings.
    log.close()
    assert [(r.value, r.stable, r.raw) for r in rawlog.replay(log.path)] == [
        (r.value, r.stable, r.raw) for r in readings]


def test_a_sics_scale_answers_the_probe_with_its_stable_weight(pty_pair):
    pair = pty_pair()
    reader, readings = start_reader(pair, "mt-sics")
    sim = subprocess.Popen([sys.executable, str(SIMULATE), "--driver", "mt-sics", "--port",
                            pair.device_end, "--count", "0", "--rate", "20", "--seed", "5",
                            "--garbage", "0", "--bad-checksum", "0"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def stable_raws():
            return [r.raw for r in stable(readings)]

        assert wait_for(lambda: len(stable_raws()) >= 1)
        reader.write(drivers.get("mt-sics").probe_command)
        # The reply repeats the last stable line; the weighings themselves never repeat.
        assert wait_for(lambda: len(set(stable_raws())) < len(stable_raws()))
    finally:
        sim.terminate()
        sim.wait(10)
        reader.stop()


def test_a_seed_gives_the_same_script_and_weights_settle_before_they_are_final():
    one = simulators.script("mt-sics", count=5, seed=3)
    assert one == simulators.script("mt-sics", count=5, seed=3)
    kinds = [e.kind for e in one]
    assert kinds.count(simulators.FINAL) == 5
    # every weighing shows unstable weights first
    assert all(prev == simulators.LIVE for prev, k in zip(kinds, kinds[1:]) if k == simulators.FINAL)


@pytest.mark.parametrize("args, words", [
    (["--driver", "kern", "--port", "/nonexistent/ttyX", "--replug-wait", "0"], "打不开端口"),
    (["--driver", "kern", "--port", "x", "--rate", "0"], "--rate"),
    (["--driver", "qm-frame", "--port", "x", "--item", "swimming"], "不认识项目"),
])
def test_simulator_bad_usage_says_what_is_wrong(args, words):
    done = subprocess.run([sys.executable, str(SIMULATE), *args], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode in (1, 2) and words in done.stderr


@pytest.mark.parametrize("name, form, options", [("kern", "kb", {}), ("alge-timy", "sequence", {})])
def test_the_other_forms_a_simulator_speaks_read_as_sent(pty_pair, name, form, options):
    sent = simulators.script(name, count=4, seed=5, rate=100.0, form=form)
    final = [e for e in sent if e.kind == simulators.FINAL]
    pair = pty_pair()
    reader, readings = start_reader(pair, name, **options)
    cmd = [sys.executable, str(SIMULATE), "--driver", name, "--port", pair.device_end,
           "--count", "4", "--seed", "5", "--garbage", "0", "--bad-checksum", "0",
           "--rate", "100", "--form", form]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: len(stable(readings)) >= len(final))
    reader.stop()
    assert [r.value for r in stable(readings)] == [e.value for e in final]
    if name == "alge-timy":                # numbered impulses pair in order, with no bib
        timer = drivers.RunTimer("sequence")
        runs = [run for r in readings if (run := timer.feed(r))]
        assert len(runs) == 4 and all(run.code is None for run in runs)
    else:                                  # every moving KB value came without a unit
        assert all(r.unit == "" for r in readings if not r.stable)
