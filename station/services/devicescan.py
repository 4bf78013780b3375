"""What devices the station sees, refreshed in the background for the pages.

Scanning audio devices initialises PortAudio, which can take a second or hang on a
broken driver: pages read the last snapshot and never wait for a scan.
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


def scan() -> dict:
    snapshot: dict = {"audio": [], "serial": [], "error": None, "at": time.time()}
    try:
        from devices.audio import list_audio_devices

        snapshot["audio"] = list_audio_devices()
    except Exception as exc:  # no PortAudio library, no sound server: show it, don't crash
        snapshot["error"] = f"audio: {exc}"
    try:
        from devices.ports import list_ports

        snapshot["serial"] = list_ports()
    except Exception as exc:
        snapshot["error"] = f"{snapshot['error'] or ''} serial: {exc}".strip()
    return snapshot


class DeviceScan:
    def __init__(self, every_s: float = 10.0):
        self.every_s = every_s
        self._snapshot: dict = {"audio": [], "serial": [], "error": None, "at": None}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict:
        return self._snapshot

    def refresh(self) -> dict:
        self._snapshot = scan()
        return self._snapshot

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="device-scan", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # keep scanning: a plugged-in headset must show up later
                log.exception("device scan failed")
            self._stop.wait(self.every_s)
