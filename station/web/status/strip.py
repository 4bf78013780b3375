"""What the status strip under every page's header shows: the headset, the PE devices'
lights and the upload queue's counts (the open sittings are already in ``/api/status``).

Each function reads what another part keeps (the device scan's snapshot, the PE hub's
running services, the upload queue) and never starts anything: the strip is polled every
few seconds by every open page, so reading must not open a port or a sound device.
"""
from __future__ import annotations

from pe_station import rules
from pe_station.service import devices_for
from station.web.pe.hub import Hub
from uploader import queue

PENDING = ("queued", "uploading")


def headset(snapshot: dict, want_input: str, want_output: str) -> dict:
    """Whether the scan saw a microphone and earphones matching ``[audio] input/output``.

    ``connected`` is None until the first scan has finished (the strip then says
    "checking", not "missing"). Matching mirrors ``devices.audio.find_device`` (a
    case-insensitive substring; empty means any device with such channels) but over the
    snapshot, because asking PortAudio from a page request can stall.
    """
    if snapshot.get("at") is None:
        return {"connected": None, "input": None, "output": None}
    audio = snapshot.get("audio") or []

    def pick(want: str, channels: str) -> str | None:
        usable = [d for d in audio if d.get(channels, 0) > 0]
        wanted = want.casefold()
        found = next((d for d in usable if wanted in d["name"].casefold()), None)
        return found["name"] if found else None

    mic = pick(want_input, "max_input_channels")
    ear = pick(want_output, "max_output_channels")
    return {"connected": bool(mic and ear), "input": mic, "output": ear}


def pe_devices(app, open_sittings: list[dict], configured: list[dict]) -> list[dict]:
    """Each open PE sitting's device lights, without starting a reader.

    A sitting whose readers run (the hub started them when a PE page or API call named
    it) shows ``Service.status()``. One whose readers have not started (the station was
    restarted and nobody has opened the PE page yet) shows the devices the hub would start
    for it as "stopped", so the proctor sees that nothing is being read. ``Hub.running()``
    is read rather than ``Hub.service()``, which would start readers (open serial ports)
    from a status poll.
    """
    pe = [s for s in open_sittings if s["kind"] == "pe"]
    if not pe:
        return []
    hub = Hub.of(app)          # creating it starts nothing; it caches the items' rules
    running = hub.running()
    out = []
    for sitting in pe:
        service = running.get(sitting["id"])
        lights = service.status() if service is not None else _stopped(hub, sitting, configured)
        out.extend({"sitting": sitting["id"], "name": d["name"], "port": d["port"], "item": d["item"],
                    "status": d["status"], "light": d["light"]} for d in lights)
    return out


def _stopped(hub, sitting: dict, configured: list[dict]) -> list[dict]:
    """The devices the hub would read for this sitting, as the hub picks them (a BMI
    sitting takes the height and weight devices), each "stopped"."""
    try:
        items = [sitting["item"], *rules.measured(hub.items, sitting["item"])]
        devices = devices_for(configured, items)
    except (rules.RulesError, KeyError, TypeError, ValueError):
        return []              # a broken items file or [[pe.devices]]: the PE page says why
    return [{"name": d.name, "port": d.port, "item": d.item, "status": "stopped", "light": "off"}
            for d in devices]


def uploads(db, configured: bool) -> dict:
    """Sittings in the upload queue by state: pending (queued or uploading), failed, done."""
    rows = queue.status(db)
    return {
        "configured": configured,
        "sittings": len(rows),
        "pending": sum(r["state"] in PENDING for r in rows),
        "failed": sum(r["state"] == "failed" for r in rows),
        "done": sum(r["state"] == "done" for r in rows),
    }
