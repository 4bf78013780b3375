"""Everything a rehearsal runs beside the station: headset, devices, roster, local collector.

``Rig.start(data_dir)`` sets it all up in ``<data dir>/rehearsal/`` and returns the rig,
whose ``station`` the web app serves; ``stop()`` ends every child it started (also when
one of them already died). The real data dir's database is never opened: only its
station.toml is read, for the station id.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from qmbase.platform import make_private_dir
from qmbase.refusal import Refusal
from station import config as config_mod
from station.context import Station, resolve_data_dir
from station import tomlfile
from station.rehearsal import demo_roster, frames, procs
from station.rehearsal.devices import SimulatedDevice, make_all

FOLDER = "rehearsal"
PRECHECK_PRESS_S = 15.0      # within the serial checks' wait (wait_s = 20 for these devices)
ROSTER_CSV = "demo-roster.csv"
VIRTUAL_AUDIO = Path(__file__).resolve().parents[2] / "scripts" / "virtual-audio"
HEADER = ("# 演练工作站配置：每次 station serve --simulate 启动时会更新 station_id、[upload] 和 [[pe.devices]]。\n"
          "# Rehearsal station: station serve --simulate rewrites station_id, [upload] and [[pe.devices]] at each start.\n\n")


class RehearsalError(Refusal, RuntimeError):
    """The rehearsal could not start; the message says why and what to do."""


def say(zh: str, en: str) -> None:
    print(f"{zh}\n  {en}", flush=True)


def rehearsal_id(real_id: str) -> str:
    """The real station id, ASCII only, with -R: the district never mistakes it for the real one."""
    ascii_id = re.sub(r"[^A-Za-z0-9_.-]", "", real_id or "").strip("-._") or "station"
    return f"{ascii_id}-R"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_headset() -> bool:
    """The virtual headset where PulseAudio is installed; its environment goes into
    os.environ before anything in this process initialises PortAudio."""
    if sys.platform == "win32" or not shutil.which("pulseaudio") or not VIRTUAL_AUDIO.exists():
        return False
    if "sounddevice" in sys.modules:       # PortAudio has read its environment already
        say("注意：音频库已提前加载，虚拟耳机可能不可用。", "Note: audio was initialised early; the virtual headset may not be used.")
    started = subprocess.run([str(VIRTUAL_AUDIO), "start"], capture_output=True, text=True, timeout=60)
    if started.returncode != 0:
        say(f"虚拟耳机没有启动（{started.stderr.strip()}），使用本机自带的耳机。",
            f"The virtual headset did not start ({started.stderr.strip()}); the computer's own headset is used.")
        return False
    env = subprocess.run([str(VIRTUAL_AUDIO), "env"], capture_output=True, text=True, timeout=30).stdout
    for word in shlex.split(env.replace("export ", "", 1)):
        key, _, value = word.partition("=")
        os.environ[key] = value
    return True


@dataclass
class Rig:
    real_dir: Path
    dir: Path
    station_id: str
    devices: list[SimulatedDevice] = field(default_factory=list)
    headset: bool = False
    collector: subprocess.Popen | None = None
    collector_url: str = ""
    dashboard_url: str = ""
    admin_token: str = ""
    token: str = ""
    station: Station | None = None

    @classmethod
    def start(cls, cli_data_dir: str | None = None, reset: bool = False) -> "Rig":
        real_dir, _ = resolve_data_dir(cli_data_dir)
        real_id = config_mod.load(real_dir)["station_id"]     # the real station.toml, read only
        make_private_dir(real_dir)                            # the parent of rehearsal/, private too
        folder = real_dir / FOLDER
        if reset and folder.exists():
            shutil.rmtree(folder)
            say("已清空演练数据，重新开始。", "Rehearsal data cleared: starting afresh.")
        make_private_dir(folder)
        rig = cls(real_dir, folder, rehearsal_id(real_id))
        try:
            rig._start()
        except tomlfile.TomlFileError as exc:          # the rehearsal's station.toml is broken
            rig.stop()
            raise RehearsalError.of(exc) from None
        except BaseException:
            rig.stop()
            raise
        return rig

    def _start(self) -> None:
        existing = tomlfile.read(self.dir / config_mod.FILE_NAME)      # a broken file stops us first
        self.headset = start_headset()
        self.devices = [d.plug() for d in make_all()]
        self._start_collector(existing)
        self._write_config(existing)
        self.station = Station.open(str(self.dir))
        # Whatever the file says now, this process is a rehearsal (the upload guard reads it).
        self.station.config.values["rehearsal"] = True
        self.station.db                      # create and upgrade the database before serving
        self._load_roster()

    @staticmethod
    def _port_used_before(existing: dict) -> int | None:
        """The collector's port of the last start, if still free: the trainer's dashboard bookmark keeps working."""
        upload = existing.get("upload")
        try:
            port = urlsplit(str(upload.get("collector_url", ""))).port if isinstance(upload, dict) else None
        except ValueError:                 # a port that is not a number: pick a new one
            port = None
        if not port:
            return None
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return None
        return port

    def _start_collector(self, existing: dict) -> None:
        folder = make_private_dir(self.dir / "collector")
        port = self._port_used_before(existing) or free_port()
        log = open(self.dir / "collector.log", "ab")
        self.collector = procs.start([sys.executable, "-m", "station", "collector", "serve",
                                      "--host", "127.0.0.1", "--port", str(port), "--data", str(folder)],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.collector_url = f"http://127.0.0.1:{port}"
        self.dashboard_url = self.collector_url + "/"
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.collector_url + "/api/health", timeout=2)
                break
            except httpx.TransportError:
                if self.collector.poll() is not None or time.monotonic() > deadline:
                    raise RehearsalError(
                        f"演练用的汇集服务器没有启动，请查看 {self.dir / 'collector.log'}。",
                        f"The rehearsal collector did not start; see {self.dir / 'collector.log'}.") from None
                time.sleep(0.2)
        from uploader.collector import cli

        self.token = cli.add_station(self.station_id, folder, school=demo_roster.SCHOOL)
        self.admin_token = cli.admin_token(folder)

    def _write_config(self, table: dict) -> None:
        path = self.dir / config_mod.FILE_NAME
        table.update(station_id=self.station_id, rehearsal=True)
        table.setdefault("school", demo_roster.SCHOOL)
        table.setdefault("room", "演练 / rehearsal")
        upload = table["upload"] = table["upload"] if isinstance(table.get("upload"), dict) else {}
        upload.update(collector_url=self.collector_url, token=self.token)
        pe = table["pe"] = table["pe"] if isinstance(table.get("pe"), dict) else {}
        pe["devices"] = [d.config() for d in self.devices]
        if not self.devices:
            pe.pop("devices")
        tomlfile.write(path, table, HEADER)

    def _load_roster(self) -> None:
        from station import roster

        csv = self.dir / ROSTER_CSV
        if roster.count(self.station.db):
            return
        demo_roster.write_csv(csv)
        result = roster.import_file(self.station.db, csv, "rehearsal", grades=(4, 8))
        if result.errors:
            raise RehearsalError("演示名册导入失败。", "The demo roster could not be imported: "
                                 + "; ".join(map(str, result.errors[:3])))

    def song(self) -> dict | None:
        """The accompaniment the singing room plays (singing.song, the built-in demo by default)."""
        from recorder.songs import SongCatalog, SongError, SongNotFound

        try:
            song = SongCatalog().get(self.station.config["singing.song"])
        except (SongNotFound, SongError):
            return None
        return {"id": song.id, "title": song.title, "title_en": song.title_en, "duration_s": song.duration_s}

    def device(self, name: str) -> SimulatedDevice | None:
        return next((d for d in self.devices if d.name == name), None)

    def press_during_precheck(self, busy=lambda: set(), within_s: float = PRECHECK_PRESS_S) -> None:
        """Press the measure key of each device that only sends when measured (the timer,
        the sit-and-reach meter) once the pre-check has its port open, as the proctor is
        told to; the scales answer the check's query by themselves. ``busy()`` names the
        devices a PE sitting is reading: their frames would become that sitting's readings."""
        waiting = [d for d in self.devices if d.plugged and not frames.idle_answer(d.driver, d.item)]

        def press() -> None:
            deadline = time.monotonic() + within_s
            while waiting and time.monotonic() < deadline:
                for device in list(waiting):
                    if device.name in busy():
                        waiting.remove(device)
                    elif device.plugged and device.listened():
                        try:
                            device.measure()
                        except Exception:      # noqa: BLE001 - the check then says what to do
                            pass
                        waiting.remove(device)
                time.sleep(0.3)

        threading.Thread(target=press, name="rehearsal precheck keys", daemon=True).start()

    def describe(self) -> dict:
        return {"collector_url": self.collector_url, "dashboard_url": self.dashboard_url,
                "devices": [d.describe() for d in self.devices], "headset": self.headset,
                "song": self.song()}

    def announce(self, station_url: str) -> None:
        say("演练模式已启动（数据与正式数据分开，只上传到本机的演练汇集服务器）。",
            "Rehearsal mode is running (data kept apart; uploads go only to the local rehearsal collector).")
        say(f"工作站：{station_url}   演练数据目录：{self.dir}", f"Station: {station_url}   rehearsal data: {self.dir}")
        say(f"区县看板：{self.dashboard_url}   管理令牌（登录看板用）：{self.admin_token}",
            f"District dashboard: {self.dashboard_url}   admin token (to log in): {self.admin_token}")
        say("模拟体育设备（本机网络端口，站点以 pyserial 的 socket:// 地址打开）：",
            "Simulated PE devices (local network ports, opened as pyserial socket:// URLs):")
        for d in self.devices:
            print(f"  {d.name:<9} {d.driver:<10} {d.item:<14} {d.station_end}", flush=True)
        if self.headset:
            say("耳机：虚拟耳机（PulseAudio 的 qm_ear 听筒、qm_mic 麦克风）。",
                "Headset: the virtual headset (PulseAudio qm_ear earphones, qm_mic microphone).")
        else:
            say("耳机：没有虚拟耳机（Windows 或未安装 PulseAudio），使用本机自带的耳机和麦克风。",
                "Headset: no virtual headset (Windows, or no PulseAudio): the computer's own headset and microphone are used.")
        song = self.song()
        if song:
            say(f"演唱伴奏：{song['title']}（{song['duration_s']:g} 秒）",
                f"Singing accompaniment: {song['title_en'] or song['title']} ({song['duration_s']:g} s)")
        else:
            say("找不到配置的演唱伴奏（singing.song），演唱测试需要指定录音时长。",
                "The configured accompaniment (singing.song) is missing: singing takes need a length.")
        roster_csv = self.dir / ROSTER_CSV
        say(f"演示名册：3 个班（四年级 2 个、八年级 1 个），{roster_csv}",
            f"Demo roster: 3 classes (two of grade 4, one of grade 8), {roster_csv}")
        say("按 Ctrl-C 结束演练。", "Press Ctrl-C to end the rehearsal.")

    def stop(self) -> None:
        for device in self.devices:
            try:
                device.unplug()
            except Exception:          # noqa: BLE001 - stop the rest whatever one did
                pass
        if self.collector is not None:
            procs.stop(self.collector)
