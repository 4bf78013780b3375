"""Many stations uploading at once: every file arrives byte-exact, no request fails."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

STATIONS = [f"S{n:03d}" for n in range(1, 25)]


def test_two_dozen_stations_at_once(collector_factory, tus_for):
    server = collector_factory(stations=STATIONS)
    payloads = {sid: os.urandom(600_000 + n * 1000) for n, sid in enumerate(STATIONS)}

    def send(sid: str) -> None:
        tus = tus_for(sid, server=server)
        tus.upload(payloads[sid], chunk=200_000, station=sid, path="recordings/0001-1.flac")

    with ThreadPoolExecutor(len(STATIONS)) as pool:
        list(pool.map(send, STATIONS))  # re-raises the first failure
    for sid, data in payloads.items():
        sitting = tus_for(sid, server=server).sitting
        assert server.stored(sitting, "recordings/0001-1.flac", station=sid).read_bytes() == data
