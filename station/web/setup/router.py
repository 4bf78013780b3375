"""The set-up pages (/setup, /roster): everything before test day without a command line.

``/setup`` gives the station its id, school and room, the district collector's address and
token (checked against the collector), the headset chosen from the devices seen (with a test
tone and a live level) and each PE device on a serial port with its driver, item and a live
reading; ``POST /api/setup/save`` writes them to station.toml through `config.update_file`,
checked by the same rules as every command. ``/roster`` imports the school's CSV/XLSX sent
as JSON (its bytes base64-encoded) with `station roster import`'s row-by-row errors.
Every write is JSON through app.js ``post()``; refusals are the usual ``{"error", "zh", "en"}``.
"""
from __future__ import annotations

import base64
import binascii
import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from station import config as config_mod
from station import roster
from station.web.api import Refused, json_body, optional_json_body, who
from station.web.setup.live import Watches
from station.web.templating import render
from uploader.contract import safe_station_id

router = APIRouter()

ROSTER_MAX_BYTES = 10 * 1024 * 1024
TONE_HZ, TONE_S, TONE_DBFS = 1000.0, 1.0, -12.0
LEVEL_S = 0.3


def _watches(request: Request) -> Watches:
    watches = getattr(request.app.state, "setup_watches", None)
    if watches is None:
        watches = request.app.state.setup_watches = Watches()
    return watches


def _options(request: Request) -> dict:
    from devices import drivers
    from pe_station.items import ITEMS

    snap = request.app.state.devices.snapshot()
    audio = snap.get("audio") or []
    return {"inputs": [d["name"] for d in audio if d["max_input_channels"] > 0],
            "outputs": [d["name"] for d in audio if d["max_output_channels"] > 0],
            "serial": snap.get("serial") or [], "drivers": list(drivers.NAMES),
            "items": [{"id": k, "zh": v[0], "en": v[1]} for k, v in ITEMS.items()],
            "scanned": snap.get("at") is not None, "error": snap.get("error")}


@router.get("/setup")
def setup_page(request: Request):
    station = request.app.state.station
    cfg = station.config
    return render(request, "setup.html", page="setup", options=_options(request),
                  set_up=config_mod.is_set_up(cfg), cfg=cfg, token_set=bool(cfg["upload.token"]),
                  devices=cfg["pe.devices"])


@router.get("/api/setup/options")
async def options(request: Request, rescan: str = ""):
    if rescan:
        await run_in_threadpool(request.app.state.devices.refresh)
    return _options(request)


# --- saving -----------------------------------------------------------------------------

def _text(body: dict, key: str) -> str:
    value = body.get(key)
    return "" if value is None else str(value).strip()


def _device(n: int, raw) -> dict:
    """One PE device row of the page as its [[pe.devices]] table, or why not."""
    from devices import drivers
    from devices.ports import PortSettings
    from pe_station.items import ITEMS

    if not isinstance(raw, dict):
        raise Refused(f"第 {n} 台体育设备的内容有误，请刷新页面后重试。",
                      f"PE device {n} is malformed; reload the page and try again.", 400)
    table = {k: _text(raw, k) for k in ("name", "port", "driver", "item")}
    for key, zh in (("port", "串口"), ("driver", "驱动")):
        if not table[key]:
            raise Refused(f"第 {n} 台体育设备没有选择{zh}，请选择后再保存，或删去这一台。",
                          f"PE device {n} has no {key}: choose one, or remove the device.", 400)
    if table["driver"] not in drivers.NAMES:
        raise Refused(f"第 {n} 台体育设备的驱动“{table['driver']}”不存在（可选：{'、'.join(drivers.NAMES)}）。",
                      f"PE device {n}: there is no driver \"{table['driver']}\" ({', '.join(drivers.NAMES)}).", 400)
    if table["item"] and table["item"] not in ITEMS:
        raise Refused(f"第 {n} 台体育设备的项目“{table['item']}”不存在。",
                      f"PE device {n}: there is no item \"{table['item']}\".", 400)
    table["name"] = table["name"] or f"{table['driver']}-{n}"
    if raw.get("baud") not in (None, ""):
        if not str(raw["baud"]).strip().isdigit():
            raise Refused(f"第 {n} 台体育设备的波特率“{raw['baud']}”不是整数（如 9600）。",
                          f"PE device {n}: the baud rate \"{raw['baud']}\" is not a whole number (e.g. 9600).", 400)
        table["baud"] = int(str(raw["baud"]).strip())
    try:
        PortSettings.from_config(table)
    except ValueError as exc:      # SettingsError says it in both languages
        raise Refused.of(exc, status=400) from None
    return {k: v for k, v in table.items() if v != ""}


def _changes(body: dict) -> dict:
    station_id = _text(body, "station_id")
    if not safe_station_id(station_id):
        raise Refused(f"工作站编号“{station_id}”不可用：请用字母、数字和 _ . -（如 S01 或 4401-01），最长 64 个字符。",
                      f"The station id \"{station_id}\" cannot be used: letters, digits and _ . - "
                      f"(e.g. S01 or 4401-01), at most 64 characters.", 400, "station_id")
    url = _text(body, "collector_url").rstrip("/")
    if url and not re.match(r"^https?://[^\s/]+", url):
        raise Refused(f"汇集服务器地址“{url}”应以 http:// 或 https:// 开头（如 https://collector.example:8443）。",
                      f"The collector address \"{url}\" should start with http:// or https:// "
                      f"(e.g. https://collector.example:8443).", 400, "collector_url")
    changes: dict = {"station_id": station_id, "school": _text(body, "school"), "room": _text(body, "room"),
                     "upload": {"collector_url": url},
                     "audio": {"input": _text(body, "audio_input"), "output": _text(body, "audio_output")}}
    token = _text(body, "token")
    if token:                               # empty: keep the token already saved
        changes["upload"]["token"] = token
    devices = body.get("devices", [])
    if not isinstance(devices, list):
        raise Refused("体育设备列表有误，请刷新页面后重试。", "The PE device list is malformed; reload and try again.", 400)
    tables = []
    for n, raw in enumerate(devices, 1):
        tables.append(_device(n, raw))
    names = [t["name"] for t in tables]
    ports_ = [t["port"] for t in tables]
    for values, zh, en in ((names, "名称", "name"), (ports_, "串口", "port")):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise Refused(f"两台体育设备用了同一个{zh}：{'、'.join(repeated)}。每台设备的{zh}必须不同。",
                          f"Two PE devices have the same {en}: {', '.join(repeated)}; each needs its own.", 400)
    changes["pe"] = {"devices": tables}
    return changes


@router.post("/api/setup/save")
async def save(request: Request, body: dict = Depends(json_body)):
    changes = _changes(body)
    _watches(request).stop_all()            # the saved devices' ports are the sittings' now
    cfg = await _apply(request, body, changes)
    return {"saved": True, "station_id": cfg["station_id"], "set_up": config_mod.is_set_up(cfg),
            "devices": len(cfg["pe.devices"])}


async def _apply(request: Request, body: dict, changes: dict):
    """Write ``changes`` to station.toml and put the new configuration to work (the upload
    worker follows a changed collector or token); recorded in the audit log, token left out."""
    from station import audit
    from station.db import transaction

    state = request.app.state
    station = state.station
    old_upload = (station.config["upload.collector_url"], station.config["upload.token"])
    cfg = await run_in_threadpool(config_mod.update_file, station.data_dir, changes)
    station.config = cfg
    if getattr(state, "rehearsal", False):
        cfg.values["rehearsal"] = True
    if (cfg["upload.collector_url"], cfg["upload.token"]) != old_upload and state.district is not None:
        state.district.reconfigured()
    logged = {k: v for k, v in changes.items() if k != "upload"} | {"collector_url": cfg["upload.collector_url"]}
    with transaction(station.db):
        audit.record(station.db, who(request), "config.setup", "station", cfg["station_id"], None, logged)
    return cfg


# --- the collector ------------------------------------------------------------------------

@router.post("/api/setup/collector")
async def check_collector(request: Request, body: dict = Depends(json_body)):
    """Reach the collector and prove the token is this station's: a heartbeat it accepts."""
    url, station_id = _text(body, "collector_url").rstrip("/"), _text(body, "station_id")
    token = _text(body, "token") or request.app.state.station.config["upload.token"]
    if not url or not token or not safe_station_id(station_id):
        raise Refused("请先填写工作站编号、汇集服务器地址和令牌。",
                      "Fill in the station id, the collector address and the token first.", 400)
    from station.rehearsal import guard

    if getattr(request.app.state, "rehearsal", False) and guard.refusal(url):
        raise Refused(*guard.refusal(url), 409, "rehearsal")
    return await run_in_threadpool(_try_collector, request.app.state.station, url, token, station_id)


def _try_collector(station, url: str, token: str, station_id: str) -> dict:
    import httpx

    from station.services.district import heartbeat

    verify = station.config["upload.ca_bundle"] or True
    try:
        with httpx.Client(timeout=station.config["precheck.http_timeout_s"], verify=verify) as client:
            client.get(url + "/api/health").raise_for_status()
            answer = client.post(f"{url}/api/stations/{station_id}/heartbeat", json=heartbeat(station),
                                 headers={"Authorization": f"Bearer {token}"})
    except (httpx.HTTPError, ValueError) as exc:
        raise Refused(f"连不上汇集服务器 {url}（{type(exc).__name__}）：请核对地址，确认本机网络能访问它。",
                      f"Cannot reach the collector at {url} ({exc}): check the address and this "
                      f"computer's network.", 409, "unreachable")
    if answer.status_code in (401, 403):
        raise Refused(f"汇集服务器拒绝了这个令牌：它不是工作站 {station_id} 的令牌。请向区县信息中心核对编号和令牌。",
                      f"The collector refused the token: it is not station {station_id}'s. Check the "
                      f"station id and the token with the district.", 409, "token")
    if answer.status_code >= 400:
        raise Refused(f"汇集服务器答复 {answer.status_code}，请稍后再试或联系区县信息中心。",
                      f"The collector answered {answer.status_code}; try again later or call the district.",
                      409, "collector")
    return {"ok": True, "zh": f"已连接汇集服务器，令牌属于工作站 {station_id}。",
            "en": f"Connected to the collector; the token is station {station_id}'s."}


@router.post("/api/setup/pair")
async def pair(request: Request, body: dict = Depends(json_body)):
    """A one-time pairing code from the district's dashboard: the collector answers with this
    station's id, school, room and token, which are saved at once (the code works only once)."""
    url, code = _text(body, "collector_url").rstrip("/"), _text(body, "code")
    if not re.match(r"^https?://[^\s/]+", url) or not code:
        raise Refused("请先填写汇集服务器地址和区县看板上显示的配对码。",
                      "Fill in the collector address and the pairing code the district dashboard shows.", 400)
    from station.rehearsal import guard

    if getattr(request.app.state, "rehearsal", False) and guard.refusal(url):
        raise Refused(*guard.refusal(url), 409, "rehearsal")
    got = await run_in_threadpool(_redeem, request.app.state.station, url, code)
    changes = {"station_id": got["station_id"], "upload": {"collector_url": url, "token": got["token"]}}
    changes.update({k: got[k] for k in ("school", "room") if got.get(k)})
    cfg = await _apply(request, body, changes)
    return {"paired": True, "station_id": cfg["station_id"], "school": cfg["school"], "room": cfg["room"],
            "collector_url": url,
            "zh": f"配对成功：本机是工作站 {cfg['station_id']}，令牌已保存。",
            "en": f"Paired: this computer is station {cfg['station_id']}; its token is saved."}


def _redeem(station, url: str, code: str) -> dict:
    import httpx

    try:
        with httpx.Client(timeout=station.config["precheck.http_timeout_s"],
                          verify=station.config["upload.ca_bundle"] or True) as client:
            answer = client.post(url + "/api/pair", json={"code": code})
    except (httpx.HTTPError, ValueError) as exc:
        raise Refused(f"连不上汇集服务器 {url}（{type(exc).__name__}）：请核对地址，确认本机网络能访问它。",
                      f"Cannot reach the collector at {url} ({exc}): check the address and this "
                      f"computer's network.", 409, "unreachable")
    try:
        doc = answer.json()
    except ValueError:
        doc = {}
    if answer.status_code != 200 or not safe_station_id(str(doc.get("station_id") or "")) or not doc.get("token"):
        raise Refused(doc.get("message_zh") or f"汇集服务器答复 {answer.status_code}，配对没有完成。",
                      doc.get("message_en") or f"The collector answered {answer.status_code}; not paired.",
                      409, "pairing")
    return doc


# --- the headset ------------------------------------------------------------------------------

def _audio_refusal(exc) -> Refused:
    return Refused(exc.zh, exc.en, 409, "audio", exc.fix_zh, exc.fix_en)


def _tone(output: str) -> dict:
    import numpy as np

    from devices import audio

    index = audio.with_timeout(lambda: audio.find_device(output, "output"), audio.OPEN_TIMEOUT_S,
                               "查找设备", "looking for the device")
    rate = audio.with_timeout(lambda: audio.choose_rate(index, "output"), audio.OPEN_TIMEOUT_S,
                              "检查采样率", "checking sample rates")
    t = np.arange(int(TONE_S * rate)) / rate
    fade = np.minimum(1, np.minimum(t, TONE_S - t) / 0.02)          # no click at either end
    audio.play((10 ** (TONE_DBFS / 20) * np.sin(2 * np.pi * TONE_HZ * t) * fade).astype("float32"),
               rate, index)
    return {"played": True, "seconds": TONE_S, "device": audio.device_info(index)["name"]}


@router.post("/api/setup/tone")
async def tone(request: Request, body: dict = Depends(optional_json_body)):
    from devices.audio import AudioDeviceError

    try:
        return await run_in_threadpool(_tone, _text(body, "output"))
    except AudioDeviceError as exc:
        raise _audio_refusal(exc) from None


def _level(device: str) -> dict:
    from devices import audio
    from devices.levels import meter_dbfs

    index = audio.with_timeout(lambda: audio.find_device(device, "input"), audio.OPEN_TIMEOUT_S,
                               "查找设备", "looking for the device")
    rate = audio.with_timeout(lambda: audio.choose_rate(index, "input"), audio.OPEN_TIMEOUT_S,
                              "检查采样率", "checking sample rates")
    block = audio.record(LEVEL_S, rate, index)
    return {"dbfs": meter_dbfs(block), "device": audio.device_info(index)["name"]}


@router.get("/api/setup/level")
async def level(request: Request, input: str = ""):
    """The microphone's level now (RMS dBFS over a third of a second); the page asks again and again."""
    from devices.audio import AudioDeviceError

    try:
        return await run_in_threadpool(_level, input.strip())
    except AudioDeviceError as exc:
        raise _audio_refusal(exc) from None


# --- a PE device's live reading -----------------------------------------------------------

@router.post("/api/setup/device/watch")
async def watch_device(request: Request, body: dict = Depends(json_body)):
    table = _device(int(body.get("n") or 1) if str(body.get("n") or "1").isdigit() else 1, body)
    try:
        watch = _watches(request).start(table)
    except ValueError as exc:       # UnknownDriver, a bad pattern: both languages already
        raise Refused.of(exc, status=400) from None
    return watch.view()


@router.get("/api/setup/device/watch")
def watched(request: Request, port: str):
    watch = _watches(request).get(port)
    if watch is None:          # not an error: a poll may cross the page's own stop
        return {"port": port, "status": "stopped", "readings": [],
                "zh": "没有在读这个串口（已停止或超时）：请再点一次“实时读数”。",
                "en": "This port is not being read (stopped or timed out): press Live reading again."}
    return watch.view()


@router.post("/api/setup/device/unwatch")
async def unwatch(request: Request, body: dict = Depends(json_body)):
    _watches(request).stop(_text(body, "port"))
    return {"stopped": True}


# --- the roster ---------------------------------------------------------------------------------

@router.get("/roster")
def roster_page(request: Request):
    station = request.app.state.station
    return render(request, "roster.html", page="roster", count=roster.count(station.db),
                  grades=station.config["roster.grades"])


def _import(station, name: str, data: bytes, skip_bad: bool, by: str) -> dict:
    # The upload keeps its name (the errors name the file as the CLI does) in a private
    # scratch folder of the data dir, deleted after reading.
    with tempfile.TemporaryDirectory(dir=station.path("tmp")) as scratch:
        path = Path(scratch) / name
        try:
            path.write_bytes(data)
        except OSError:        # a name Windows will not create (CON.csv, a colon): a plain one
            path = Path(scratch) / ("roster" + Path(name).suffix.lower())
            path.write_bytes(data)
        result = roster.import_file(station.db, path, by, station.config["roster.grades"], skip_bad=skip_bad)
    imported, zh, en = roster.outcome(result, skip_bad)
    return {"imported": imported, "zh": zh, "en": en, "added": result.added, "updated": result.updated,
            "unchanged": result.unchanged, "skipped": result.skipped, "count": roster.count(station.db),
            "errors": [{"file": e.file, "row": e.row, "field": e.field,
                        "field_zh": roster.FIELD_ZH.get(e.field, e.field), "zh": e.zh, "en": e.en}
                       for e in result.errors]}


@router.post("/api/roster/import")
async def import_roster(request: Request, body: dict = Depends(json_body)):
    name = Path(_text(body, "filename").replace("\\", "/")).name
    if Path(name).suffix.lower() not in (".csv", ".txt", ".xlsx", ".xlsm", ".xls"):
        raise Refused("请选择 CSV 或 Excel（.xlsx）格式的名册文件。",
                      "Choose the roster as a CSV or Excel (.xlsx) file.", 400)
    try:
        data = base64.b64decode(str(body.get("content_base64") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("文件内容没有正确传送，请重新选择文件。", "The file did not arrive intact; choose it again.", 400)
    if not data:
        raise Refused(f"文件 {name} 是空的。", f"The file {name} is empty.", 400)
    if len(data) > ROSTER_MAX_BYTES:
        raise Refused("名册文件超过 10 MB，请确认选对了文件。",
                      "The roster file is over 10 MB; check it is the right file.", 400)
    station = request.app.state.station
    return await run_in_threadpool(_import, station, name, data, body.get("skip_bad") is True,
                                   who(request))
