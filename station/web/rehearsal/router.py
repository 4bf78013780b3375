"""Rehearsal controls (mounted only in rehearsal mode): the simulated devices and the singer.

``GET /api/rehearsal`` describes the rig; ``POST /api/rehearsal/devices/{name}/measure``
(optional ``{"code"}``), ``/unplug`` and ``/plug`` drive one simulated device;
``POST /api/rehearsal/sing`` plays a sung demo into the virtual microphone. Refusals are
the pages' usual bilingual ``{"error", "zh", "en"}``.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from station.web.api import Refused, optional_json_body

router = APIRouter()

NO_RIG = ("演练控制只在 station serve --simulate 启动的演练中可用。",
          "Rehearsal controls exist only in a rehearsal started with station serve --simulate.")


def _rig(request: Request):
    return getattr(request.app.state, "rehearsal_rig", None)


def upload_refused(request: Request) -> dict | None:
    district = getattr(request.app.state, "district", None)
    refused = district.refused if district is not None else None
    return {"zh": refused[0], "en": refused[1]} if refused else None


@router.get("/api/rehearsal")
def describe(request: Request):
    rig = _rig(request)
    if rig is None:
        raise Refused(*NO_RIG, 404, "not_rehearsal")
    return {**rig.describe(), "upload_refused": upload_refused(request)}


@router.post("/api/rehearsal/devices/{name}/{action}")
async def device_action(name: str, action: str, request: Request,
                        body: dict = Depends(optional_json_body)):
    rig = _rig(request)
    if rig is None:
        raise Refused(*NO_RIG, 404, "not_rehearsal")
    device = rig.device(name)
    if device is None:
        names = "、".join(d.name for d in rig.devices) or "—"
        raise Refused(f"没有名为“{name}”的模拟设备（有：{names}）。",
                      f"There is no simulated device \"{name}\" (there are: {names}).", 404, "no_device")
    if action not in ("measure", "unplug", "plug"):
        raise Refused(f"没有“{action}”这个操作（可用：measure、unplug、plug）。",
                      f"There is no action \"{action}\" (measure, unplug or plug).", 404)
    code = str(body.get("code") or "").strip() or None
    if code is not None and not code.isdigit():
        raise Refused(f"编号“{code}”只能由数字组成。", f"The code \"{code}\" must be digits only.", 400)
    reading = None
    if action == "measure":     # an unplugged device refuses (Unplugged, 409)
        reading = await run_in_threadpool(device.measure, code)
    elif action == "unplug":
        await run_in_threadpool(device.unplug)
    else:
        await run_in_threadpool(device.plug)
    return {"device": device.describe(), "reading": reading}


@router.post("/api/rehearsal/sing")
async def sing(request: Request, body: dict = Depends(optional_json_body)):
    from station.rehearsal import singer

    rig = _rig(request)
    if rig is None:
        raise Refused(*NO_RIG, 404, "not_rehearsal")
    kind = str(body.get("kind") or "melody")
    if kind not in singer.KINDS:
        raise Refused(f"没有“{kind}”这种示范（可用：melody、silence）。",
                      f"There is no demo \"{kind}\" (melody or silence).", 400)
    if not rig.headset:
        raise Refused("没有虚拟耳机：请学生对着本机的麦克风演唱。",
                      "There is no virtual headset: let a student sing into this computer's microphone.",
                      409, "no_headset")
    played = await run_in_threadpool(singer.play, rig.dir, kind)
    return played
