"""Sealing (封存): a closed sitting becomes a bundle in the upload queue (signed when it is
uploaded, with the token the station has then: sealing needs no token).

Runs when a sitting closes, whoever closes it (the CLI, the /pe or /sing page). The
bundle holds what the sitting produced — recordings with their sidecars, or the PE
results and every raw byte the devices sent — with the incidents filed for it, and its
manifest's short hash is the seal code the proctor copies onto the paper sitting sheet.
Sealing the same sitting again finds the bundle already there and changes nothing.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from qmbase.platform import held
from station import audit, roster, sittings
from station.context import Station
from station.errors import UsageError

SEAL_LOCK = ".seal.lock"


def bundle_dir(station: Station, sitting_id: str) -> Path:
    return station.path("bundles") / sitting_id


def _singing_files(station: Station, sitting_id: str, staging: Path) -> tuple[dict[str, Path], list[dict]]:
    from recorder.bundle import bundle_contents

    return bundle_contents(station.db, sitting_id)


def _pe_files(station: Station, sitting_id: str, staging: Path) -> tuple[dict[str, Path], list[dict]]:
    from pe_station import export, rules

    # The school's items file gives the units of results with no attempts (a derived BMI).
    return export.bundle_files(station.db, sitting_id, staging,
                               lambda code: roster.lookup(station.db, code),
                               station.path("pe", "rawlogs"),
                               include_names=station.config["upload.include_names"],
                               items=rules.load(station.config["pe.items_file"] or None)), []


# What each kind of sitting hands the sealer: (files by name in the bundle, result rows).
CONTENTS: dict[str, Callable[[Station, str, Path], tuple[dict[str, Path], list[dict]]]] = {
    "singing": _singing_files,
    "pe": _pe_files,
}


def _incidents_file(station: Station, sitting_id: str, staging: Path) -> dict[str, Path]:
    """The incidents filed for this sitting, sealed with what it produced."""
    from station import incidents

    data = incidents.bundle_bytes(station, sitting_id)
    if data is None:
        return {}
    path = staging / incidents.BUNDLE_FILE
    path.write_bytes(data)
    return {incidents.BUNDLE_FILE: path}


def seal(station: Station, sitting: dict):
    """Write the sitting's bundle; returns uploader.bundle.Bundle."""
    from uploader.bundle import write_bundle

    with tempfile.TemporaryDirectory(prefix="seal-", dir=station.path("bundles")) as staging:
        files, rows = CONTENTS[sitting["kind"]](station, sitting["id"], Path(staging))
        files.update(_incidents_file(station, sitting["id"], Path(staging)))
        return write_bundle(
            bundle_dir(station, sitting["id"]), station=station.station_id, sitting=sitting["id"],
            kind=sitting["kind"], item=sitting["item"],
            opened_at=sitting["opened_at"], closed_at=sitting["closed_at"], files=files,
            results=rows or None, include_names=station.config["upload.include_names"],
            link=False)  # a copy: the bundle stays as sealed whatever happens to the originals


def seal_and_queue(station: Station, sitting_id: str, who: str | None = None) -> dict:
    """Seal a closed sitting (once) and put it in the upload queue; returns its queue row."""
    from uploader import queue
    from uploader.bundle import read_manifest

    db = station.db
    sitting = sittings.get(db, sitting_id)
    if sitting["state"] != "closed":
        raise UsageError(f"场次 {sitting_id} 还没有关闭：关闭后才能封存上传（station session close {sitting_id}）。",
                         f"Sitting {sitting_id} is still open: close it first, then it is sealed.")
    folder = bundle_dir(station, sitting_id)
    # One sealer at a time: the page that closes a sitting and the background pass that seals
    # what a crash left unsealed (or a `station session close` beside `serve`) would otherwise
    # build the same bundle together, one deleting the other's half-written files.
    with held(station.path("bundles") / SEAL_LOCK):
        if (folder / "manifest.json").exists():
            read_manifest(folder)  # a damaged bundle is reported, never re-sealed silently
            return queue.enqueue(db, folder)
        bundle = seal(station, sitting)
        row = queue.enqueue(db, bundle.dir, digests=bundle.digests)
        audit.record(db, station.operator(who), "sitting.seal", "sitting", sitting_id, None,
                     {"seal_code": bundle.seal_code, "files": len(bundle.manifest["files"])})
    return row


def seal_code(station: Station, sitting_id: str) -> str | None:
    row = station.db.execute("SELECT seal_code FROM upload_sittings WHERE sitting = ?",
                             [sitting_id]).fetchone()
    return row[0] if row else None


def on_closed(station: Station, who: str | None = None):
    """The callback every close passes to ``sittings.close_sitting``."""
    def hand_over(closed: dict) -> None:
        seal_and_queue(station, closed["id"], who)

    return hand_over


def close_and_seal(station: Station, sitting_id: str, who: str,
                   before: Callable[[], None] | None = None) -> dict:
    """Every close (``station session close``, the /pe and /sing pages): the sitting is
    closed for good, then sealed and queued; returns it with its ``seal_code``.
    ``before``: what stops feeding it first (the PE devices' readers)."""
    if before is not None:
        before()
    closed = sittings.close_sitting(station.db, sitting_id, who, on_closed=[on_closed(station, who)])
    closed["seal_code"] = seal_code(station, sitting_id)
    return closed


def seal_pending(station: Station) -> list[dict]:
    """Seal closed sittings that never were (a crash or a full disk at closing time)."""
    done = []
    for sitting in sittings.list_sittings(station.db, "closed"):
        if seal_code(station, sitting["id"]) is None:
            done.append(seal_and_queue(station, sitting["id"], "station"))
    return done
