"""Load and compile the take analysis while the station starts, so the first student of the
day waits for the verdict no longer than the others."""
from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


def warm_up_in_background() -> threading.Thread:
    def run() -> None:
        try:
            from recorder.verify import warm_up

            warm_up()
        except Exception:  # a verdict later will say what is wrong; start-up must go on
            log.exception("warming up the analysis failed")

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread
