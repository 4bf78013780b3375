"""The song catalog: accompaniment files with their metadata and reference melody.

A songs directory holds one JSON file per song next to its audio (WAV or FLAC)::

    {"id": "demo", "title": "练习曲（演示）", "title_en": "Practice Tune (demo)",
     "audio": "demo.flac", "duration_s": 36.0,
     "melody": [{"note": "E4", "start": 4.8, "duration": 0.6}, ...]}

``note`` is a MIDI number or a name (C4 = 60, F#4, Bb3); ``start`` is seconds from the
start of the accompaniment. ``duration_s`` may be left out (it is read from the audio);
``melody`` may be left out (no melody check then). A broken file does not hide the
others: ``SongCatalog.problems`` lists it with a bilingual message.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from qmbase.refusal import Refusal

AUDIO_SUFFIXES = (".wav", ".flac")
DURATION_SLACK_S = 1.0  # metadata may round the duration; more than this is a wrong file


def builtin_songs_dir() -> Path:
    """The songs shipped with the station (the generated demo song)."""
    return Path(__file__).resolve().parent / "song_library"


class SongError(Refusal, ValueError):
    """A song's metadata or audio is wrong; the message names the file and the field."""


class SongNotFound(Refusal, KeyError):
    status = 400


@dataclass(frozen=True)
class Note:
    midi: float
    start: float
    duration: float


@dataclass(frozen=True)
class Song:
    id: str
    title: str
    audio_path: Path
    duration_s: float
    melody: tuple[Note, ...] = ()
    title_en: str = ""
    meta_path: Path | None = field(default=None, compare=False)

    def load_accompaniment(self):
        """(mono float32 samples, sample rate) of the accompaniment, cached per file."""
        stat = self.audio_path.stat()
        return _read_mono(str(self.audio_path), stat.st_mtime_ns, stat.st_size)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "title_en": self.title_en,
                "audio": str(self.audio_path), "duration_s": self.duration_s,
                "has_melody": bool(self.melody)}


@lru_cache(maxsize=4)
def _read_mono(path: str, _mtime_ns: int, _size: int):
    import soundfile as sf

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype="float32")
    mono.setflags(write=False)  # shared between takes: nobody may change it
    return mono, int(rate)


def _bad(meta: Path, where: str, zh: str, en: str) -> SongError:
    return SongError(f"歌曲文件 {meta} 的 {where}：{zh}。", f"Song file {meta}, {where}: {en}.")


def load_song(meta_path: str | Path) -> Song:
    """Read and check one song's JSON and its audio; raise SongError on any fault."""
    meta = Path(meta_path)
    try:
        doc = json.loads(meta.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(meta, "内容", f"无法读取或不是有效的 JSON（{exc}），请用生成脚本重新生成或修正",
                   f"cannot be read or is not valid JSON ({exc}); regenerate or fix it") from None
    if not isinstance(doc, dict):
        raise _bad(meta, "内容", "应为 JSON 对象", "must be a JSON object")
    song_id = _text(doc, "id", meta)
    title = _text(doc, "title", meta)
    audio = meta.parent / _text(doc, "audio", meta)
    if audio.suffix.lower() not in AUDIO_SUFFIXES or not audio.is_file():
        raise _bad(meta, "字段 audio", f"找不到伴奏文件 {audio.name}（需为 WAV 或 FLAC），请把它放在 JSON 旁边",
                   f"accompaniment {audio.name} not found (must be WAV or FLAC); put it next to the JSON")
    actual = _audio_duration(audio, meta)
    declared = doc.get("duration_s")
    if declared is not None:
        if not _is_number(declared) or abs(float(declared) - actual) > DURATION_SLACK_S:
            raise _bad(meta, "字段 duration_s", f"{declared!r} 与伴奏实际时长 {actual:.1f} 秒不符",
                       f"{declared!r} does not match the accompaniment's {actual:.1f} s")
    melody = tuple(_note(n, i, meta, actual) for i, n in enumerate(doc.get("melody") or []))
    return Song(id=song_id, title=title, title_en=str(doc.get("title_en", "")),
                audio_path=audio, duration_s=round(actual, 3), melody=melody, meta_path=meta)


class SongCatalog:
    """All songs found in some directories; the first directory wins on a repeated id."""

    def __init__(self, dirs: Iterable[str | Path] | None = None):
        self.dirs = [Path(d) for d in (dirs if dirs is not None else [builtin_songs_dir()])]
        self.problems: list[str] = []
        self._songs: dict[str, Song] = {}
        for d in self.dirs:
            for meta in sorted(d.glob("*.json")) + sorted(d.glob("*/*.json")):
                try:
                    song = load_song(meta)
                except SongError as exc:
                    self.problems.append(str(exc))
                    continue
                if song.id in self._songs:
                    self.problems.append(
                        f"歌曲编号 {song.id} 重复（{meta}），已忽略该文件，请修改编号。 / Song id "
                        f"{song.id} repeated in {meta}; that file is ignored, change its id.")
                    continue
                self._songs[song.id] = song

    def list(self) -> list[Song]:
        return sorted(self._songs.values(), key=lambda s: s.id)

    def get(self, song_id: str) -> Song:
        try:
            return self._songs[song_id]
        except KeyError:
            known = ", ".join(sorted(self._songs)) or "-"
            raise SongNotFound(
                f"没有编号为 {song_id} 的歌曲，请从以下歌曲中选择：{known}。", f"No song with id "
                f"{song_id}; choose one of: {known}.") from None

    def __contains__(self, song_id: str) -> bool:
        return song_id in self._songs


def _text(doc: dict, key: str, meta: Path) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(meta, f"字段 {key}", "缺少或为空，请填写文字", "missing or empty; write a text")
    return value.strip()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _audio_duration(audio: Path, meta: Path) -> float:
    import soundfile as sf

    try:
        info = sf.info(str(audio))
    except (RuntimeError, OSError) as exc:
        raise _bad(meta, "字段 audio", f"伴奏文件 {audio.name} 无法读取（{exc}），请换一个完好的文件",
                   f"accompaniment {audio.name} cannot be read ({exc}); replace it") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise _bad(meta, "字段 audio", f"伴奏文件 {audio.name} 是空的", f"accompaniment {audio.name} is empty")
    return info.frames / info.samplerate


def _note(raw: Any, i: int, meta: Path, song_s: float) -> Note:
    where = f"melody[{i}]"
    if not isinstance(raw, dict) or not {"note", "start", "duration"} <= raw.keys():
        raise _bad(meta, where, "每个音符需要 note、start、duration 三项",
                   "each note needs note, start and duration")
    start, duration = raw["start"], raw["duration"]
    if not (_is_number(start) and _is_number(duration)) or start < 0 or duration <= 0 \
            or start + duration > song_s + DURATION_SLACK_S:
        raise _bad(meta, where, f"start={start!r}、duration={duration!r} 须为正数且在歌曲时长内",
                   f"start={start!r} and duration={duration!r} must be positive and inside the song")
    return Note(midi=_midi(raw["note"], meta, where), start=float(start), duration=float(duration))


def _midi(note: Any, meta: Path, where: str) -> float:
    if _is_number(note):
        midi = float(note)
    elif isinstance(note, str):
        import librosa  # only song files that spell notes by name pay for this import

        try:
            midi = float(librosa.note_to_midi(note.strip()))
        except Exception:  # librosa raises ParameterError for a bad name
            midi = float("nan")
    else:
        midi = float("nan")
    if not 0 <= midi <= 127:
        raise _bad(meta, f"{where}.note", f"{note!r} 不是音名（如 C4、F#4）或 MIDI 编号（0–127）",
                   f"{note!r} is not a note name (like C4, F#4) or MIDI number (0-127)")
    return midi
