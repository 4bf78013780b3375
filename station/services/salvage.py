"""Salvage at start-up: takes a crash or power cut left as journals are repaired before the
first student sings, on a thread, so the web app answers at once."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from station.context import Station

log = logging.getLogger(__name__)


def salvage_in_background(station: Station, done: Callable[[list[dict]], None]) -> threading.Thread:
    """Run ``station sing salvage``'s repair and hand the results to ``done``."""
    def run() -> None:
        from station.singing import run_salvage

        try:
            results = run_salvage(station)
        except Exception as exc:  # the journals stay on disk; the page says so and how to retry
            log.exception("salvage at start-up failed")
            results = [{"status": "failed", "journal": None, "student": None,
                        "zh": f"启动时修复中断录音失败（{type(exc).__name__}）。原始数据已保留，请运行 station sing salvage。",
                        "en": f"Repairing interrupted takes at start-up failed ({type(exc).__name__}). "
                              "The raw data is kept; run station sing salvage."}]
        done(results)

    thread = threading.Thread(target=run, name="salvage", daemon=True)
    thread.start()
    return thread
