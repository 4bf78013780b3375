"""The one catalog of verification reasons: code, severity and the bilingual texts.

Texts are for proctors (teachers): Chinese first, then English; each says what happened
and what to do next. Severity decides the verdict: the worst reason wins.
"""
from __future__ import annotations

from typing import Literal, TypedDict

Severity = Literal["accept", "retake", "reject"]
SEVERITY_ORDER: dict[str, int] = {"accept": 0, "retake": 1, "reject": 2}


class Reason(TypedDict):
    code: str
    zh: str
    en: str


# code: (severity, zh, en). "accept" severity marks a flag: shown, verdict unchanged.
CATALOG: dict[str, tuple[Severity, str, str]] = {
    "unreadable": (
        "reject",
        "录音文件无法读取或不完整。请重新录制；如反复出现，请检查磁盘并联系信息中心。",
        "The recording file cannot be read or is incomplete. Record again; if it keeps "
        "happening, check the disk and call the information center.",
    ),
    "silent": (
        "reject",
        "录音中几乎没有声音。请检查耳麦是否插好、麦克风是否静音，然后重新录制。",
        "The recording is almost silent. Check that the headset is plugged in and the "
        "microphone is not muted, then record again.",
    ),
    "no_singing": (
        "reject",
        "录音中没有检测到歌声（只有噪声或说话声）。请让学生对着麦克风演唱后重新录制。",
        "No singing was detected (only noise or speech). Ask the student to sing into the "
        "microphone and record again.",
    ),
    "too_quiet": (
        "retake",
        "歌声太小。请把麦克风靠近学生嘴边（约两指宽）或调高录音音量，然后重新录制。",
        "The singing is too quiet. Move the microphone closer to the student's mouth (about "
        "two fingers away) or raise the recording level, then record again.",
    ),
    "clipped": (
        "retake",
        "声音过大，录音失真（削波）。请调低录音音量或让麦克风离嘴稍远，然后重新录制。",
        "The sound is too loud and the recording is distorted (clipped). Lower the recording "
        "level or move the microphone a little away from the mouth, then record again.",
    ),
    "too_short": (
        "retake",
        "录音太短。请让学生完整演唱后再停止录制，然后重新录制。",
        "The recording is too short. Let the student finish the song before stopping, then "
        "record again.",
    ),
    "dropouts": (
        "retake",
        "录音中有断音（声音数据丢失）。请关闭其他程序、检查耳麦连接，然后重新录制。",
        "Sound was lost during recording (dropouts). Close other programs, check the headset "
        "connection, then record again.",
    ),
    "accompaniment_bleed": (
        "retake",
        "麦克风录进了伴奏声：耳机音量太大，或使用了外放音箱。请调低耳机音量并使用耳麦，然后重新录制。",
        "The microphone picked up the accompaniment: the earphones are too loud, or speakers "
        "are used instead of a headset. Lower the earphone volume, use the headset, then "
        "record again.",
    ),
    "wrong_melody": (
        "accept",
        "演唱的旋律与所选歌曲不符。请确认选择的歌曲是否正确；如不正确，请选对歌曲后重新录制。",
        "The sung melody does not match the selected song. Check that the right song was "
        "selected; if not, select it and record again.",
    ),
}


def reason(code: str) -> Reason:
    """The reason object of the verify JSON; an unknown code is a programming error."""
    _, zh, en = CATALOG[code]
    return {"code": code, "zh": zh, "en": en}


def severity(code: str) -> Severity:
    return CATALOG[code][0]
