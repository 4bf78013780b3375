"""The station's configuration: ``station.toml`` in the data dir, every key with a default.

Nothing needs editing to start a station. ``station config init`` writes a commented
file; ``station config show`` prints each effective value and where it came from. A
malformed file is refused with the line and the key, so a teacher can find the typo.
"""
from __future__ import annotations

import copy
import difflib
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qmbase.refusal import Refusal
from station import tomlfile

FILE_NAME = "station.toml"


@dataclass(frozen=True)
class Key:
    name: str            # dotted: "audio.input"
    default: Any
    zh: str              # the comment written by `config init`
    en: str
    choices: tuple = ()


def _hostname() -> str:
    return socket.gethostname().split(".")[0] or "station"


# One table for every key: the defaults, the comments of `config init` and the checks
# of `load` all come from here, so they cannot drift apart.
KEYS: tuple[Key, ...] = (
    Key("station_id", None, "本机编号（默认为计算机名）", "this station's id (default: the host name)"),
    Key("school", "", "学校名称", "school name"),
    Key("room", "", "考场/测试室", "test room"),
    Key("operator", "", "默认操作人员（审计日志中的“谁”；为空则用系统登录名）",
        "default operator recorded in the audit log (empty: the login name)"),
    Key("rehearsal", False, "演练模式：数据与正式数据分开，绝不上传到正式汇集服务器",
        "rehearsal mode: data kept apart and never sent to a real collector"),
    Key("audio.input", "", "耳机麦克风：设备名称中的一段文字（为空则用系统默认设备）",
        "headset microphone: part of the device name (empty: the system default)"),
    Key("audio.output", "", "耳机听筒：设备名称中的一段文字（为空则用系统默认设备）",
        "headset earphones: part of the device name (empty: the system default)"),
    Key("audio.sample_rate", 48000, "录音采样率（设备不支持时自动改用 44100）",
        "recording sample rate (44100 where the device cannot)", (48000, 44100)),
    Key("roster.grades", [4, 8], "本次监测的年级", "grades monitored"),
    Key("singing.retake_limit", 2, "每名学生最多重录次数", "retakes allowed per student"),
    Key("singing.format", "flac", "录音保存格式", "recording file format", ("flac", "wav")),
    Key("singing.counts", "last_accepted", "哪一次录音计分", "which take counts",
        ("last_accepted", "best", "first_accepted")),
    Key("singing.song", "demo", "默认歌曲编号", "default song id"),
    Key("pe.items_file", "", "体育项目规则文件（为空则用内置的 2014 年国家学生体质健康标准）",
        "PE item rules file (empty: the built-in 2014 national standard)"),
    Key("pe.devices", [], "体育测试设备，每台一个 [[pe.devices]] 段",
        "PE measuring devices, one [[pe.devices]] table each"),
    Key("upload.collector_url", "", "区县数据汇集服务器地址（为空则不上传）",
        "district collector URL (empty: do not upload)"),
    Key("upload.token", "", "本机上传令牌（由 station collector add-station 生成）",
        "this station's upload token (from `station collector add-station`)"),
    Key("upload.include_names", False, "上传时是否包含学生姓名（儿童个人信息，默认不包含）",
        "include student names in uploads (children's personal data; off by default)"),
    Key("upload.bandwidth_kbps", 0, "上传限速 KB/s（0 为不限速，学校网络共用时可设置）",
        "upload bandwidth cap in KB/s (0: none)"),
    Key("upload.ca_bundle", "", "区县自签证书的 CA 文件（为空则用系统证书）",
        "district CA bundle for https (empty: the system's)"),
    Key("upload.allow_plain_http", False,
        "允许上传到其他计算机上不加密的 http:// 汇集服务器（录音和令牌明文经过网络，仅在区县确认网络可信时设置）",
        "allow uploading to an unencrypted http:// collector on another computer (recordings and "
        "token cross the network in clear; only where the district vouches for the network)"),
    Key("precheck.students_expected", 30, "每台计算机当天预计录音人数（用于估算磁盘和上传时间）",
        "students expected per station per day (for the disk and upload estimates)"),
    Key("precheck.song_seconds", 90, "每次录音的大约秒数", "seconds per take, roughly"),
    Key("precheck.takes_per_student", 1.5, "每名学生平均录音次数（含重录）", "takes per student on average, retakes included"),
    Key("precheck.flac_ratio", 0.6, "FLAC 压缩后与原始大小之比", "FLAC size over raw size"),
    Key("precheck.loopback_expected", False,
        "耳机与麦克风之间有回环（回环线或虚拟设备）时设为 true，回环检查失败即判为不合格",
        "true where the earphones reach the microphone (a loopback cable or virtual device): "
        "then a missing loopback fails"),
    Key("precheck.input_seconds", 3.0, "麦克风检查录音秒数", "seconds the microphone check records"),
    Key("precheck.noise_floor_warn_dbfs", -40.0, "背景噪声高于此值时提示（dBFS）", "warn when background noise is above (dBFS)"),
    Key("precheck.speech_peak_min_dbfs", -30.0, "说话检查：峰值下限（dBFS）", "speech check: lowest peak (dBFS)"),
    Key("precheck.speech_peak_max_dbfs", -3.0, "说话检查：峰值上限（dBFS）", "speech check: highest peak (dBFS)"),
    Key("precheck.speech_snr_min_db", 20.0, "说话检查：最低信噪比（dB）", "speech check: lowest signal-to-noise (dB)"),
    Key("precheck.serial_wait_s", 3.0, "等待串口设备第一帧数据的秒数", "seconds to wait for a serial device's first frame"),
    Key("precheck.http_timeout_s", 5.0, "连接汇集服务器的超时秒数", "seconds before a collector request times out"),
    Key("web.host", "127.0.0.1", "网页界面监听地址", "address the web pages listen on"),
    Key("web.port", 8080, "网页界面端口", "web port"),
    Key("web.pin", "", "监测员口令：网页界面对本机以外开放时必须设置",
        "proctor PIN: required when the pages are reachable from other computers"),
    Key("web.allowed_hosts", [], "网页界面还接受的主机名或地址（防 DNS 重绑定；本机地址和 web.host 已包含）",
        "more host names or addresses the pages answer to (against DNS rebinding; loopback and web.host are in)"),
)

# Keys whose values open doors (the upload token, the proctor PIN): `config show` says whether
# they are set, never what they are; a screen or a pasted support log must not carry them.
SECRET_KEYS = frozenset({"upload.token", "web.pin"})


def shown(key: str, value: Any) -> Any:
    """``value`` as `config show` prints it: secrets masked."""
    if key in SECRET_KEYS and value:
        return f"******（已设置，{len(str(value))} 个字符 / set, {len(str(value))} characters）"
    return value


def _threshold_keys() -> tuple[Key, ...]:
    """[recorder.verify]: every limit a take's verdict uses, with the recorder's defaults."""
    import dataclasses

    from recorder.analysis.verdict import Thresholds

    return tuple(Key(f"recorder.verify.{f.name}", f.default, "录音检查阈值（见 recorder/analysis/verdict.py）",
                     "take verification threshold (see recorder/analysis/verdict.py)")
                 for f in dataclasses.fields(Thresholds))


KEYS = KEYS + _threshold_keys()

DEVICE_KEYS = {
    "name": str, "driver": str, "port": str, "item": str, "baud": int, "parity": str,
    "bytesize": int, "stopbits": (int, float), "timeout": (int, float), "wait_s": (int, float),
    "lanes": int,         # a timing gate set up for lanes: the bib field is the lane number
    "options": dict,
    "flow_control": str,  # none | rtscts | xonxoff | dsrdtr
    "pairing": str,       # a timing gate: bib (finish pairs with its bib's start) | sequence
    # the line driver: a regex with named groups value, unit, code, stable ...
    "pattern": str, "unit": str, "encoding": str,
    "stable_when": str,   # ... the text of `stable` that means stable (a regex)
    "repeat": int,        # ... without one: equal values in a row before a value is stable
    "require_checksum": bool,   # alge-timy: the timer is in CHK1 mode from the start
}

BY_NAME = {k.name: k for k in KEYS}


class ConfigError(Refusal):
    """A malformed station.toml; the message names the file, line and key in both languages."""

    code, status = "config", 400


@dataclass
class Config:
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def nested(self) -> dict[str, Any]:
        """The values as station.toml's tables: {"audio": {"input": ...}, ...}."""
        out: dict[str, Any] = {}
        for key, value in self.values.items():
            *tables, leaf = key.split(".")
            node = out
            for t in tables:
                node = node.setdefault(t, {})
            node[leaf] = value
        return out

    def section(self, prefix: str) -> dict[str, Any]:
        """``section("audio")`` -> ``{"input": ..., "output": ...}``."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.values.items() if k.startswith(p)}


def defaults() -> dict[str, Any]:
    values = {k.name: copy.deepcopy(k.default) for k in KEYS}
    values["station_id"] = _hostname()
    return values


def _flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in BY_NAME:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def key_line(text: str, dotted: str) -> int | None:
    """The line of ``dotted`` in a TOML text (tomllib keeps no positions)."""
    *tables, leaf = dotted.split(".")
    want = ".".join(tables)
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if header:
            current = header.group(1).strip()
            continue
        if current == want and re.match(rf"\s*{re.escape(leaf)}\s*=", line):
            return number
        if not current and want and re.match(rf"\s*{re.escape(dotted)}\s*=", line):
            return number
    return None


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def _type_ok(value: Any, default: Any) -> bool:
    if default is None or isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list)
    return True


_TYPE_ZH = {str: "文字", bool: "true 或 false", int: "整数", float: "数字", list: "列表"}


def _check_value(path: Path, text: str, name: str, value: Any) -> None:
    key = BY_NAME[name]
    where = _where(path, key_line(text, name))
    expected = type(key.default) if key.default is not None else str
    if not _type_ok(value, key.default):
        raise ConfigError(
            f"{where}: 配置项 {name} 的值 {value!r} 应为{_TYPE_ZH.get(expected, expected.__name__)}。"
            f"请改正这一行，或删去它以使用默认值 {key.default!r}。",
            f"{where}: key {name} = {value!r} should be a {expected.__name__}; correct the line "
            f"or delete it to use the default {key.default!r}.")
    if key.choices and value not in key.choices:
        allowed = ", ".join(map(repr, key.choices))
        raise ConfigError(
            f"{where}: 配置项 {name} 的值 {value!r} 不在可选范围内（可选：{allowed}）。",
            f"{where}: key {name} = {value!r} is not one of {allowed}.")


def _check_devices(path: Path, text: str, devices: list) -> None:
    for n, device in enumerate(devices, 1):
        where = _where(path, key_line(text, "pe.devices.driver"))
        if not isinstance(device, dict):
            raise ConfigError(f"{where}: pe.devices 第 {n} 项应为一个 [[pe.devices]] 段。",
                              f"{where}: pe.devices entry {n} should be a [[pe.devices]] table.")
        for key in ("driver", "port"):
            if key not in device:
                raise ConfigError(
                    f"{where}: 第 {n} 台体育设备缺少 {key}。请在 [[pe.devices]] 中写上 {key} = \"...\"。",
                    f"{where}: PE device {n} has no {key}; add {key} = \"...\" to its [[pe.devices]].")
        for key, value in device.items():
            if key not in DEVICE_KEYS:
                hint = difflib.get_close_matches(key, DEVICE_KEYS, 1)
                raise ConfigError(
                    f"{where}: 第 {n} 台体育设备有未知配置项 {key}"
                    f"{'（是否想写 ' + hint[0] + '？）' if hint else ''}。",
                    f"{where}: PE device {n} has an unknown key {key}"
                    f"{' (did you mean ' + hint[0] + '?)' if hint else ''}.")
            if not isinstance(value, DEVICE_KEYS[key]) or (
                    isinstance(value, bool) and DEVICE_KEYS[key] is not bool):
                raise ConfigError(
                    f"{where}: 第 {n} 台体育设备的 {key} = {value!r} 类型不对。",
                    f"{where}: PE device {n}: {key} = {value!r} has the wrong type.")
        _check_device_settings(where, n, device)


def _check_device_settings(where: str, n: int, device: dict) -> None:
    """Serial settings, pairing and driver options, checked by the code that uses them."""
    from devices import drivers
    from devices.drivers.alge_timy import PAIRINGS
    from devices.ports import PortSettings, SettingsError
    from pe_station.service import Device

    if device.get("pairing") is not None and device["pairing"] not in PAIRINGS:
        raise ConfigError(
            f"{where}: 第 {n} 台体育设备的 pairing = {device['pairing']!r} 无效：计时器按号码配对写 "
            f"\"bib\"，按脉冲顺序配对写 \"sequence\"。",
            f"{where}: PE device {n}: pairing = {device['pairing']!r} is not valid: write \"bib\" "
            f"(a finish pairs with its bib's start) or \"sequence\" (next start with next finish).")
    try:
        PortSettings.from_config(device)
        drivers.get(device["driver"], **Device.from_config(device).options)
    except (SettingsError, drivers.UnknownDriver, drivers.PatternError, ValueError) as exc:
        raise ConfigError.of(exc, f"{where}: ") from None


def load(data_dir: Path) -> Config:
    """The effective configuration: defaults, then ``station.toml`` where it exists."""
    values = defaults()
    sources = {name: "default" for name in values}
    path = Path(data_dir) / FILE_NAME
    cfg = Config(values, sources, path if path.exists() else None)
    if not path.exists():
        return cfg
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: 文件不是 UTF-8 编码，请用记事本“另存为 UTF-8”。",
                          f"{path}: the file is not UTF-8 ({exc.reason}); save it as UTF-8.") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = _where(path, int(line.group(1)) if line else None)
        raise ConfigError(f"{where}: 配置文件格式错误（{exc}）。请检查这一行的引号、等号和方括号。",
                          f"{where}: the file is not valid TOML ({exc}).") from None
    for name, value in _flatten(table).items():
        if name not in BY_NAME:
            where = _where(path, key_line(text, name))
            hint = difflib.get_close_matches(name, BY_NAME, 1)
            raise ConfigError(
                f"{where}: 未知配置项 {name}{'（是否想写 ' + hint[0] + '？）' if hint else ''}。"
                f"请改正或删去这一行。",
                f"{where}: unknown key {name}{' (did you mean ' + hint[0] + '?)' if hint else ''}; "
                f"correct or delete the line.")
        _check_value(path, text, name, value)
        if name == "pe.devices":
            _check_devices(path, text, value)
        values[name] = value
        sources[name] = _where(path, key_line(text, name))
    return cfg


def template() -> str:
    """The commented station.toml written by ``station config init``: every key, commented out."""
    lines = [
        "# qm-station 配置文件 / station configuration",
        "# 每一项都有默认值：删去 # 号并修改即可生效。Every key has a default: uncomment to change it.",
        "",
    ]
    current = ""
    for key in KEYS:
        table, _, leaf = key.name.rpartition(".")
        if key.name == "pe.devices":
            lines += ["", f"# {key.zh}", f"# {key.en}",
                      "# [[pe.devices]]", '# name = "scale-1"', '# driver = "mt-sics"',
                      '# port = "COM3"            # Linux: "/dev/ttyUSB0"', '# item = "weight"',
                      "# baud = 9600", '# parity = "N"               # N/E/O，见设备说明书 / as the manual says',
                      '# flow_control = "none"      # none/rtscts/xonxoff/dsrdtr',
                      '# pairing = "bib"            # 计时器：bib 按号码 / sequence 按顺序 (alge-timy)',
                      "# 未知设备：driver = \"line\" 加 pattern、stable_when 或 repeat，见 station pe sniff。",
                      "# An unknown device: driver = \"line\" with pattern, stable_when or repeat; see station pe sniff."]
            continue
        if table != current:
            lines += ["", f"[{table}]"]
            current = table
        default = _hostname() if key.name == "station_id" else key.default
        lines += [f"# {key.zh}", f"# {key.en}", f"# {leaf} = {tomlfile.value(default)}"]
    return "\n".join(lines) + "\n"


SETUP_HEADER = ("# 本文件由“设置”页面写入；也可以手工编辑（station config show 查看每一项的来源）。\n"
                "# Written by the set-up page; it may also be edited by hand (station config show).\n\n")


def is_set_up(cfg: Config) -> bool:
    """Whether this station has been given its id (by the set-up page, `config` or by hand)."""
    return cfg.sources.get("station_id", "default") != "default"


def update_file(data_dir: Path, changes: dict) -> Config:
    """Merge ``changes`` (station.toml's tables: ``{"school": …, "upload": {"token": …}}``) into
    the data dir's station.toml and return the new configuration (the file's comments are
    not kept: tomllib reads no comments). The new text is checked by
    `load`, the same rules as every command, before it replaces the file (atomically): a
    refused change leaves the file as it was and raises ConfigError."""
    import os
    import tempfile

    data_dir = Path(data_dir)
    path = data_dir / FILE_NAME
    table = tomlfile.read(path)
    for key, value in changes.items():
        if isinstance(value, dict):
            node = table.setdefault(key, {})
            node.update(value)
        else:
            table[key] = value
    with tempfile.TemporaryDirectory(dir=data_dir) as scratch:
        candidate = Path(scratch) / FILE_NAME
        tomlfile.write(candidate, table, SETUP_HEADER)
        try:
            load(Path(scratch))
        except ConfigError as exc:
            raise ConfigError(exc.zh.replace(str(candidate), FILE_NAME),
                              exc.en.replace(str(candidate), FILE_NAME)) from None
        os.replace(candidate, path)
    return load(data_dir)
