"""What a closed singing sitting hands the uploader: every take's recording and sidecar,
and one row per take (by student code; names stay on the station)."""
from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils

RESULT_FIELDS = ("student_code", "attempt", "state", "song_id", "verdict", "reasons", "counts",
                 "duration_s", "sample_rate", "overflow_count", "dropouts", "interrupted",
                 "offset_latency_s", "offset_xcorr_s", "offset_method", "sha256", "file",
                 "started_at", "ended_at")


def bundle_contents(db: sqlite_utils.Database, sitting_id: str) -> tuple[dict[str, Path], list[dict]]:
    files: dict[str, Path] = {}
    rows: list[dict] = []
    for take in list(db.query("SELECT * FROM takes WHERE sitting_id = ? ORDER BY student_code, attempt",
                              [sitting_id])):
        name = None
        if take["path"] and Path(take["path"]).exists():
            audio = Path(take["path"])
            name = f"recordings/{take['student_code']}-{take['attempt']}{audio.suffix}"
            files[name] = audio
            sidecar = audio.with_suffix(".json")
            if sidecar.exists():
                files[name.rsplit(".", 1)[0] + ".json"] = sidecar
        reasons = [r["code"] for r in json.loads(take["reasons"] or "[]")]
        rows.append({**{k: take.get(k) for k in RESULT_FIELDS if k in take},
                     "reasons": " ".join(reasons), "file": name})
    return files, rows
