"""The station's side of the pre-check: run it with this station's settings, keep every
report in the database, and queue it for the district collector."""
from __future__ import annotations

import json
from typing import Callable

from station import __version__, outbox
from station.context import Station
from qmbase.db import transaction


def context(station: Station, audio_in: str | None = None, audio_out: str | None = None,
            interactive: bool = False, prompt: Callable[[str], None] | None = None) -> dict:
    from precheck.runner import context_from_config

    ctx = context_from_config(station.config.nested(), str(station.data_dir))
    ctx["version"] = __version__
    ctx["interactive"] = interactive
    ctx["prompt"] = prompt
    from station.rehearsal import guard

    if guard.refused(station.config) is not None:
        ctx["collector_url"] = ""     # a rehearsal does not probe the real district's server
    else:
        ctx["collector_link"] = station.collector_link()  # the very TLS trust uploads use
    if audio_in is not None:
        ctx["audio_input"] = audio_in
    if audio_out is not None:
        ctx["audio_output"] = audio_out
    return ctx


def run(station: Station, ctx: dict, network: bool = True, on_result=None):
    from precheck.runner import run_precheck

    return run_precheck(ctx, network=network, on_result=on_result)


def save(station: Station, report) -> int:
    """Keep the report and, when a collector is configured, queue it to be sent."""
    from precheck.report import to_json

    document = to_json(report)
    db = station.db
    with transaction(db):
        cur = db.execute("INSERT INTO precheck_reports (started_at, overall, report) VALUES (?, ?, ?)",
                         [document["started_at"], document["overall"],
                          json.dumps(document, ensure_ascii=False)])
        if station.config["upload.collector_url"]:
            outbox.put(db, "precheck", f"/api/stations/{station.station_id}/precheck", document)
    return cur.lastrowid


def send_pending(station: Station) -> tuple[int, int]:
    """Try to send what waits for the collector now; (sent, still waiting)."""
    return outbox.deliver(station)


def latest(station: Station, limit: int = 10) -> list[dict]:
    cur = station.db.execute("SELECT id, report FROM precheck_reports ORDER BY id DESC LIMIT ?", [limit])
    return [{"id": row[0], **json.loads(row[1])} for row in cur.fetchall()]
