"""The station's side of the pre-check: run it with this station's settings, keep every
report in the database, and queue it for the district collector."""
from __future__ import annotations

import json
from typing import Callable

from station import __version__, outbox
from station.context import Station
from qmbase.db import transaction


def context(station: Station, audio_in: str | None = None, audio_out: str | None = None,
            interactive: bool = False, prompt: Callable[[str], None] | None = None):
    """The pre-check's typed context from this station's settings (station.toml)."""
    from precheck.context import Context
    from precheck.dayplan import DayPlan
    from qmbase.collector_link import CollectorLink
    from station.rehearsal import guard

    config = station.config
    p = config.section("precheck")
    # A rehearsal does not probe the real district's server; otherwise the checks use the
    # very link (TLS trust, district CA, token) the uploads use.
    rehearsal = guard.refused(config) is not None
    return Context(
        station_id=station.station_id, data_dir=station.data_dir, version=__version__,
        link=CollectorLink() if rehearsal else station.collector_link(),
        serial_devices=list(config["pe.devices"] or []),
        audio_input=(config["audio.input"] or "") if audio_in is None else audio_in,
        audio_output=(config["audio.output"] or "") if audio_out is None else audio_out,
        interactive=interactive, prompt=prompt,
        plan=DayPlan(students=int(p["students_expected"]), song_seconds=float(p["song_seconds"]),
                     takes_per_student=float(p["takes_per_student"]),
                     flac_ratio=float(p["flac_ratio"])),
        loopback_expected=bool(p["loopback_expected"]), input_seconds=float(p["input_seconds"]),
        noise_floor_warn_dbfs=float(p["noise_floor_warn_dbfs"]),
        speech_peak_min_dbfs=float(p["speech_peak_min_dbfs"]),
        speech_peak_max_dbfs=float(p["speech_peak_max_dbfs"]),
        speech_snr_min_db=float(p["speech_snr_min_db"]),
        serial_wait_s=float(p["serial_wait_s"]), http_timeout_s=float(p["http_timeout_s"]))


def run(station: Station, ctx, network: bool = True, on_result=None):
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
