"""A singing take, as the CLI and the /sing page both run it: the checks before the
headset opens (roster, sitting, song, retake limit, device), the recording, the verdict,
and the salvage of takes a crash interrupted."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from recorder.takes import TakeError
from station.context import Station


def thresholds(station: Station):
    from recorder.verify import Thresholds

    return Thresholds.from_config(station.config.section("recorder.verify"))



NO_SITTING = ("没有进行中的演唱场次。请先打开场次（station session open --kind singing，或在演唱测试页面点“打开场次”）。",
              "No singing sitting is open. Open one first (station session open --kind singing, "
              "or “Open sitting” on the singing page).")


class TakeRefused(TakeError):
    """A take that cannot start or finish, whatever refused it (the roster, the sitting,
    the song, the retake limit, the device, the disk): the CLI and the page catch one type."""

    BAD_INPUT = ("not_in_roster", "bad_seconds", "unknown_song")

    @property
    def status(self) -> int:
        return 400 if self.code in self.BAD_INPUT else 409


@dataclass
class TakePlan:
    """Everything ``recorder.capture.record_take`` needs, checked before the headset opens."""

    sitting_id: str
    student: dict
    song: object | None
    max_seconds: float | None
    device: object
    retakes: int
    policy: str
    fmt: str
    verify: Callable[[Path], dict]

    @property
    def song_seconds(self) -> float | None:
        """How long the take will run: the song (plus the recorder's tail) or ``max_seconds``."""
        from recorder.recording import TAIL_S

        ends = [s for s in ((self.song.duration_s + TAIL_S) if self.song else None,
                            self.max_seconds) if s]
        return min(ends) if ends else None


def open_singing_sitting(db) -> dict:
    from station import sittings

    found = sittings.list_sittings(db, "open")
    found = [s for s in found if s["kind"] == "singing"]
    if not found:
        raise TakeRefused("no_sitting", *NO_SITTING)
    return found[-1]


def find_song(song_id: str | None):
    """The catalog's song, or None when the config names none (record ``--seconds`` only)."""
    if not song_id:
        return None
    from recorder.songs import SongCatalog, SongError, SongNotFound

    try:
        return SongCatalog().get(song_id)
    except (SongNotFound, SongError) as exc:
        raise TakeRefused("unknown_song", f"找不到歌曲“{song_id}”（{exc}）。请检查 --song 或配置项 singing.song。",
                          f"No song \"{song_id}\" ({exc}). Check --song or the singing.song setting.") from None


def headset(station: Station):
    """The device pair from [audio] (name substrings), or None for the system default."""
    mic, ear = station.config["audio.input"], station.config["audio.output"]
    if not mic and not ear:
        return None
    from devices.audio import AudioDeviceError, find_device

    try:
        return (find_device(mic, "input") if mic else None, find_device(ear, "output") if ear else None)
    except AudioDeviceError as exc:
        raise TakeRefused("no_headset", f"{exc.zh} {exc.fix_zh}", f"{exc.en} {exc.fix_en}") from None


def plan_take(station: Station, code: str, song_id: str | None = None,
              seconds: float | None = None) -> TakePlan:
    """Check the student, the sitting, the retake limit, the song and the headset, in that order."""
    from recorder import takes
    from station import roster

    db = station.db
    code = (code or "").strip()
    student = roster.lookup(db, code) if code else None
    if student is None:
        raise TakeRefused("not_in_roster", f"学籍号/考号“{code}”不在名册中。请核对条码，或先导入名册（station roster import）。",
                          f"Code \"{code}\" is not in the roster. Check the barcode, or import the "
                          "roster first (station roster import).")
    if seconds is not None and not (0 < seconds <= 3600):
        raise TakeRefused("bad_seconds", f"录音时长 {seconds:g} 秒无效，请给出 1 到 3600 之间的秒数。",
                          f"A take of {seconds:g} s is not possible; give 1 to 3600 seconds.")
    sitting = open_singing_sitting(db)
    retakes = int(station.config["singing.retake_limit"])
    try:
        takes.next_attempt(db, sitting["id"], student["code"], retakes=retakes)
    except takes.TakeError as exc:
        raise TakeRefused(exc.code, exc.zh, exc.en) from None
    song = find_song(song_id if song_id is not None else station.config["singing.song"])
    if song is None and not seconds:
        raise TakeRefused("no_end", "没有伴奏时必须指定录音时长（--seconds）。",
                          "Without an accompaniment the take needs a length (--seconds).")
    limits = thresholds(station)

    def check(path: Path) -> dict:
        from recorder.verify import verify_file

        return verify_file(path, limits, song=song)

    return TakePlan(sitting_id=sitting["id"], student=student, song=song, max_seconds=seconds,
                    device=headset(station), retakes=retakes, policy=station.config["singing.counts"],
                    fmt=station.config["singing.format"], verify=check)


def record_plan(station: Station, plan: TakePlan, *, stop=None, progress=None):
    """Record, keep and verify the planned take; device and disk failures become TakeRefused."""
    from recorder import takes
    from recorder.capture import CaptureError, record_take
    from recorder.journal import JournalError

    try:
        return record_take(station.db, data_dir=station.data_dir, sitting_id=plan.sitting_id,
                           student_code=plan.student["code"], verify=plan.verify,
                           song_id=plan.song.id if plan.song else None,
                           accompaniment=plan.song.audio_path if plan.song else None,
                           max_seconds=plan.max_seconds, fmt=plan.fmt, retakes=plan.retakes,
                           policy=plan.policy, device=plan.device, stop=stop, progress=progress)
    except (CaptureError, takes.TakeError) as exc:
        raise TakeRefused(exc.code, exc.zh, exc.en) from None
    except JournalError as exc:
        raise TakeRefused("disk_error", exc.zh, exc.en) from None


def input_level_dbfs(recorder, window_s: float = 0.1) -> float:
    """The microphone's level over the last ``window_s``, for the meter.

    The recorder exposes no level of its own, and its audio callback must stay minimal, so
    the meter reads the newest frames back from the journal (in the OS page cache: cheap).
    The number is ``devices.levels.meter_dbfs``'s, as on the /precheck page's meter.
    """
    from devices.levels import meter_dbfs

    writer = recorder.writer
    count = int(window_s * recorder.rate)
    end = writer.frames_written
    if end <= 0:
        return -120.0
    try:
        block = writer.journal.read_frames(max(0, end - count), min(count, end))
    except OSError:
        return -120.0
    return meter_dbfs(block)


def take_summary(outcome) -> dict:
    """The JSON a take ends with: the take row, its verdict and reasons, and the sidecar."""
    from dataclasses import asdict

    take = asdict(outcome.take)
    return {"verdict": take["verdict"], "reasons": take["reasons"], "path": take["path"],
            "sha256": take["sha256"], "take": take, "sidecar": outcome.sidecar}


def run_salvage(station: Station) -> list[dict]:
    """Repair the journals a crash left: one result each (repaired, empty, live, unreadable …)."""
    from recorder.journal import journal_dir
    from recorder.salvage import salvage as salvage_journals

    limits = thresholds(station)

    def check(path: Path) -> dict:
        from recorder.verify import verify_file

        # Levels, silence and singing only: the song's offset died with the process.
        return verify_file(path, limits)

    results = salvage_journals(journal_dir(station.data_dir), db=station.db, verify=check,
                               policy=station.config["singing.counts"])
    return [r.to_json() for r in results]
