"""The station's conversation with the district, in the background of `station serve`.

Every half minute: seal any closed sitting that was not sealed (a crash at closing time),
send the heartbeat (what is open, how the upload queue stands) and whatever waits in the
outbox. The upload worker runs in a thread of its own, retrying until every file is in.
Nothing here runs when no collector is configured.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading

from station import __version__, outbox, sealing, sittings
from station.context import Station

log = logging.getLogger(__name__)


def heartbeat(station: Station) -> dict:
    from uploader import queue

    db = station.db
    return {"version": __version__,
            "at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "sittings_open": len(sittings.list_sittings(db, "open")),
            "queue": queue.summary(db)}


class District:
    def __init__(self, station: Station, every_s: float = 30.0):
        self.station = station
        self.every_s = every_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._upload_stop: threading.Event | None = None

    @property
    def refused(self) -> tuple[str, str] | None:
        """In rehearsal mode, why the configured collector may not be used (zh, en)."""
        from station.rehearsal import guard

        return guard.refused(self.station.config)

    @property
    def configured(self) -> bool:
        return bool(self.station.config["upload.collector_url"]) and self.refused is None

    def start(self) -> None:
        if self.refused:
            log.error("%s / %s", *self.refused)
        loop = threading.Thread(target=self._loop, name="district", daemon=True)
        loop.start()
        self._threads.append(loop)
        self._start_uploads()

    def _start_uploads(self) -> None:
        if self.configured:
            from station.db import open_db
            from uploader import worker

            cfg = self.station.config
            thread, self._upload_stop = worker.start_thread(
                lambda: open_db(self.station.data_dir), self.station.collector_link(),
                rate_limit=cfg["upload.bandwidth_kbps"] * 1000 or None)
            self._threads.append(thread)

    def reconfigured(self) -> None:
        """The set-up page changed the collector or the token: the upload worker starts over
        with them (or stops, when no collector is left). A no-op before ``start``."""
        if not self._threads:
            return
        if self._upload_stop:
            self._upload_stop.set()
            self._upload_stop = None
        self._start_uploads()

    def stop(self) -> None:
        self._stop.set()
        if self._upload_stop:
            self._upload_stop.set()

    def tick(self) -> None:
        station = self.station
        sealing.seal_pending(station)
        if not self.configured:
            return
        outbox.put(station.db, "heartbeat", f"/api/stations/{station.station_id}/heartbeat",
                   heartbeat(station), replace=True)
        outbox.flush(station.db, station.collector_link())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the next tick tries again; a test day must not stop for this
                log.exception("district tick failed")
            self._stop.wait(self.every_s)
