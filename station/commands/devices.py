"""station devices: the audio devices and serial ports this computer sees now."""
from __future__ import annotations

from station.commands.output import console, print_json, table
from station.context import Station


def _audio() -> tuple[list[dict], str | None]:
    try:
        from devices.audio import list_audio_devices

        return list_audio_devices(), None
    except Exception as exc:  # no PortAudio, no sound server: say so, still list the ports
        return [], str(exc)


def _chosen(audio: list[dict], substring: str, kind: str) -> int | None:
    try:
        from devices.audio import find_device

        return find_device(substring, kind)
    except Exception:
        return None


def devices(args) -> int:
    station = Station.open(args.data_dir)
    from devices.ports import list_ports

    audio, audio_error = _audio()
    ports = list_ports()
    chosen = {kind: _chosen(audio, station.config[f"audio.{kind}"], kind) if audio else None
              for kind in ("input", "output")}
    configured = station.config["pe.devices"]
    seen = {p["port"] for p in ports}
    if args.json:
        print_json({"audio": audio, "audio_error": audio_error, "serial": ports,
                    "chosen": chosen,
                    "pe_devices": [{**d, "present": d["port"] in seen} for d in configured]})
        return 0
    if audio_error:
        console().print(f"[red]无法读取音频设备 / cannot list audio devices:[/red] {audio_error}")

    def mark(a: dict) -> str:
        tags = []
        if a["index"] == chosen["input"]:
            tags.append("本机麦克风 mic")
        if a["index"] == chosen["output"]:
            tags.append("本机耳机 earphones")
        if a["is_default_input"] or a["is_default_output"]:
            tags.append("系统默认 default")
        return ", ".join(tags)

    table("音频设备 / audio devices",
          ["#", "名称 name", "接口 host API", "输入 in", "输出 out", "默认采样率 rate", "用途 use"],
          [(a["index"], a["name"], a["host_api"], a["max_input_channels"], a["max_output_channels"],
            int(a["default_samplerate"]), mark(a)) for a in audio])
    table("串口 / serial ports", ["端口 port", "USB VID:PID", "说明 description"],
          [(p["port"], p["vid_pid"] or "", p["description"] or "") for p in ports])
    if configured:
        table("已配置的体育设备 / configured PE devices",
              ["名称 name", "驱动 driver", "端口 port", "项目 item", "状态 present"],
              [(d.get("name", ""), d["driver"], d["port"], d.get("item", ""),
                "已连接 present" if d["port"] in seen else "未发现 not found") for d in configured])
    return 0
