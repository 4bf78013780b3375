"""What the /precheck page watches live: one pre-check run at a time, and the microphone level.

``Desk`` (one per app) runs the pre-check in a background thread and tells every open
page each result as it lands. ``Meter`` keeps the configured microphone open only while a
page listens and no check needs it: the input check must have the device to itself, and
an idle station must not hold a headset open for nobody.

Threads hand events to each page through ``station.web.events.Listeners`` (as the PE
hub does); nothing here blocks a request.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Callable

from station import precheck
from station.context import Station
from station.web.events import Listeners

log = logging.getLogger(__name__)

BLOCK_S = 0.1            # one level reading per 100 ms block
STALL_S = 5.0            # no block for this long: the device is gone, reopen it
RETRY_S = 3.0            # wait before reopening a microphone that failed
JOIN_S = 12.0            # opening and closing are each bounded at 5 s by devices.audio


class Meter:
    """The microphone level, RMS dBFS every ~100 ms, while wanted and not paused."""

    def __init__(self, device: Callable[[], str], publish: Callable[[dict], None]):
        self._device = device             # the config's [audio] input, read at each open
        self._publish = publish
        self._lock = threading.Lock()
        self._wanted = 0
        self._paused = 0
        self._stop: threading.Event | None = None
        self._threads: list[threading.Thread] = []

    def want(self, delta: int) -> None:
        """A page started (+1) or stopped (-1) listening."""
        with self._lock:
            self._wanted = max(0, self._wanted + delta)
            self._apply()

    def pause(self) -> None:
        """Close the microphone and wait until it is closed (a check needs it)."""
        with self._lock:
            self._paused += 1
            self._apply()
            threads = list(self._threads)
        for t in threads:
            t.join(JOIN_S)
        self._publish({"type": "level", "paused": True})

    def resume(self) -> None:
        with self._lock:
            self._paused = max(0, self._paused - 1)
            self._apply()

    def _apply(self) -> None:
        # Under self._lock. At most one reading thread is live; stopped ones finish closing
        # the device on their own and are only waited for by pause().
        self._threads = [t for t in self._threads if t.is_alive()]
        should = self._wanted > 0 and self._paused == 0
        if should and self._stop is None:
            self._stop = threading.Event()
            t = threading.Thread(target=self._loop, args=(self._stop,), name="precheck-meter",
                                 daemon=True)
            self._threads.append(t)
            t.start()
        elif not should and self._stop is not None:
            self._stop.set()
            self._stop = None

    def _loop(self, stop: threading.Event) -> None:
        from devices.audio import AudioDeviceError

        while not stop.is_set():
            try:
                stream = self._open()
            except AudioDeviceError as exc:
                self._publish({"type": "level", "error": True, "zh": exc.zh, "en": exc.en,
                               "fix_zh": exc.fix_zh, "fix_en": exc.fix_en})
                stop.wait(RETRY_S)
                continue
            try:
                self._read(stream, stop)
            finally:
                try:
                    stream.close()
                except AudioDeviceError:  # a hung close is abandoned by devices.audio
                    log.warning("the level meter could not close the microphone")

    def _open(self):
        from devices import audio

        index = audio.with_timeout(lambda: audio.find_device(self._device(), "input"),
                                   audio.OPEN_TIMEOUT_S, "查找设备", "looking for the device")
        rate = audio.with_timeout(lambda: audio.choose_rate(index, "input"),
                                  audio.OPEN_TIMEOUT_S, "检查采样率", "checking sample rates")
        return audio.open_duplex(index, False, rate, blocksize=int(rate * BLOCK_S))

    def _read(self, stream, stop: threading.Event) -> None:
        from devices.levels import meter_dbfs

        while not stop.is_set():
            try:
                block = stream.blocks.get(timeout=STALL_S)
            except queue.Empty:
                self._publish({"type": "level", "error": True,
                               "zh": "麦克风没有送来声音数据，正在重新打开……",
                               "en": "The microphone sent no sound; opening it again…",
                               "fix_zh": "如一直如此，请拔下耳机重新插好。",
                               "fix_en": "If this goes on, unplug the headset and plug it in again."})
                return
            self._publish({"type": "level", "dbfs": meter_dbfs(block)})


class Busy(Exception):
    """A run is already going."""


class Desk:
    """One pre-check at a time for the station app, told live to every open page."""

    def __init__(self, station: Station, on_started: Callable[[], None] | None = None):
        self.station = station
        # Rehearsal mode "presses the measure key" of its simulated devices here, as a
        # proctor is told to while the serial checks wait for a frame.
        self.on_started = on_started
        # Bounded: a stalled page loses its oldest level readings.
        self.listeners = Listeners(maxsize=500)
        self.meter = Meter(lambda: station.config["audio.input"] or "", self.listeners.publish)
        self._lock = threading.Lock()
        self._running = False
        self._checks: list[dict] = []
        self._last: dict | None = None

    @classmethod
    def of(cls, app) -> "Desk":
        desk = getattr(app.state, "precheck_desk", None)
        if desk is None:
            desk = app.state.precheck_desk = cls(app.state.station,
                                                 getattr(app.state, "on_precheck_started", None))
        return desk

    def snapshot(self) -> dict:
        with self._lock:
            return {"type": "state", "running": self._running, "checks": list(self._checks),
                    "last": self._last}

    def subscribe(self) -> asyncio.Queue:
        q = self.listeners.add()
        q.put_nowait(self.snapshot())     # a page opened mid-run catches up at once
        self.meter.want(+1)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.listeners.remove(q)
        self.meter.want(-1)

    def start(self, network: bool) -> None:
        with self._lock:
            if self._running:
                raise Busy()
            self._running, self._checks = True, []
        threading.Thread(target=self._run, args=(network,), name="precheck-run", daemon=True).start()

    def _on_result(self, result) -> None:
        event = check_event(result)
        with self._lock:
            self._checks.append(event)
        self.listeners.publish(event)

    def _run(self, network: bool) -> None:
        from precheck.report import OVERALL_TEXT

        done: dict
        try:
            self.meter.pause()
            self.listeners.publish({"type": "started", "network": network})
            if self.on_started is not None:
                self.on_started()
            ctx = precheck.context(self.station)
            report = precheck.run(self.station, ctx, network=network, on_result=self._on_result)
            report_id = precheck.save(self.station, report)
            waiting = 0
            if network:
                try:
                    waiting = precheck.send_pending(self.station)[1]
                except Exception:  # noqa: BLE001 - the report is kept and sent later
                    log.warning("the pre-check report could not be sent now; it waits in the outbox")
            zh, en = OVERALL_TEXT[report.overall]
            done = {"type": "done", "overall": report.overall, "overall_zh": zh, "overall_en": en,
                    "report_id": report_id, "started_at": report.started_at,
                    "duration_s": report.duration_s, "waiting": waiting}
        except Exception as exc:  # noqa: BLE001 - told to the page, never lost in a thread
            log.exception("the pre-check run failed")
            done = {"type": "done", "overall": "fail", "report_id": None,
                    "overall_zh": f"检查程序出错，未能完成：{type(exc).__name__}。请重新检查；仍然出错请联系技术支持。",
                    "overall_en": f"The pre-check itself went wrong and did not finish ({type(exc).__name__}). "
                                  "Run it again; if it still fails, call technical support."}
        finally:
            self.meter.resume()
        with self._lock:
            self._running, self._last = False, done
        self.listeners.publish(done)


def check_event(result) -> dict:
    """One finished check as the page shows it: name, status, what was found, what to do."""
    from precheck.registry import title
    from precheck.report import STATUS_TEXT

    title_zh, title_en = title(result.id)
    status_zh, status_en = STATUS_TEXT[result.status]
    show_fix = result.status in ("warn", "fail")
    return {"type": "check", "id": result.id, "status": result.status,
            "status_zh": status_zh, "status_en": status_en,
            "title_zh": title_zh, "title_en": title_en,
            "summary_zh": result.summary_zh, "summary_en": result.summary_en,
            "fix_zh": result.fix_zh if show_fix else "", "fix_en": result.fix_en if show_fix else ""}
