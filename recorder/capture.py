"""A whole take, the flow the CLI and the /sing page call: journal, record, keep, verdict.

``record_take`` picks the attempt and the rate, opens the take's crash-safe journal, runs the
:class:`~recorder.recording.Recorder` into it, keeps the file, hands it to the verifier and
records the verdict, with the capture's own gaps added (``dropouts``). The stream itself is
``recorder.recording``'s, and every PortAudio call ``devices.audio``'s.

``python -m recorder.capture`` is a debug entry (and what the crash test and the benchmark
run): it records into a journal, printing one JSON progress line every 0.2 s.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from devices.audio import device_names
from recorder import takes
from recorder.journal import (Journal, JournalError, JournalHeader, JournalWriter, finalize,
                              journal_dir, sidecar_for, sidecar_path, utc_now, write_json_durably)
from recorder.recording import LATENCY_S, CaptureResult, Recorder, choose_rate
from recorder.salvage import run_verify
from recorder.takes import CaptureError

LOSS_TOLERANCE_S = takes.LOSS_TOLERANCE_S


Verify = Callable[[Path], dict]


@dataclass
class TakeOutcome:
    take: takes.Take
    sidecar: dict[str, Any]
    capture: CaptureResult

    def to_json(self) -> dict[str, Any]:
        return {"take": asdict(self.take), "sidecar": self.sidecar}


def kept_path(data_dir: Path, sitting_id: str, student_code: str, attempt: int, fmt: str) -> Path:
    """``<data>/recordings/<sitting>/<student>-<attempt>.flac``: codes only, never names."""
    return Path(data_dir) / "recordings" / sitting_id / f"{student_code}-{attempt}.{fmt}"


def _with_dropouts(found: dict, overflows: int, restarts: int = 0, lost_s: float = 0.0) -> dict:
    """An input overflow, a stream restart or audio lost on the way means part of the take
    is missing: flag ``dropouts`` even if what is left sounds fine, and never let such a
    take be accepted as it is."""
    found = dict(found)
    reasons = list(found.get("reasons") or [])
    lost = lost_s > LOSS_TOLERANCE_S
    if (overflows or restarts or lost) and not any(r.get("code") == "dropouts" for r in reasons):
        zh, en = [], []
        if overflows:
            zh.append(f"有 {overflows} 次声音数据丢失（电脑太忙）")
            en.append(f"{overflows} pieces of audio were lost (the computer was too busy)")
        if restarts:
            zh.append(f"耳机连接中断 {restarts} 次")
            en.append(f"the headset connection dropped {restarts} times")
        if lost:
            zh.append(f"约 {lost_s:.1f} 秒声音没有录到")
            en.append(f"about {lost_s:.1f} s of sound never arrived")
        reasons.append({"code": "dropouts",
                        "zh": "录音过程中" + "，".join(zh) + "。请关闭其他程序、检查耳机后重录。",
                        "en": "While recording, " + "; ".join(en)
                              + ". Close other programs, check the headset and record again."})
        if found.get("verdict") == "accept":
            found["verdict"] = "retake"
    found["reasons"] = reasons
    return found


def record_take(db, *, data_dir: Path, sitting_id: str, student_code: str, verify: Verify,
                song_id: str | None = None, accompaniment: Path | None = None,
                max_seconds: float | None = None, fmt: str = "flac",
                retakes: int = takes.DEFAULT_RETAKES, policy: str = "last_accepted",
                device: Any = None, stop: threading.Event | None = None,
                progress: Callable[[Recorder], None] | None = None) -> TakeOutcome:
    """Record, keep and verify one take. The caller has checked the roster and the sitting."""
    attempt = takes.next_attempt(db, sitting_id, student_code, retakes=retakes)
    rate = choose_rate(device)
    take_id = uuid.uuid4().hex
    target = kept_path(data_dir, sitting_id, student_code, attempt, fmt)
    header = JournalHeader(take_id=take_id, rate=rate, target=str(target), format=fmt,
                           student=student_code, sitting=sitting_id, song=song_id,
                           attempt=attempt, device=device_names(device))
    journal = Journal(journal_dir(data_dir), header)
    takes.begin(db, take_id=take_id, sitting_id=sitting_id, student_code=student_code,
                attempt=attempt, started_at=header.started_at, song_id=song_id,
                sample_rate=rate, device=header.device, format=fmt)
    writer = JournalWriter(journal).open()
    try:
        recorder = Recorder(writer, rate=rate, accompaniment=accompaniment,
                            max_seconds=max_seconds, device=device)
        result = recorder.run(stop, progress)
    except BaseException:
        writer.close()
        _fail_if_empty(db, journal, policy)
        raise
    writer.close()
    disk_error = CaptureError(
        "disk_error", f"录音无法写入磁盘（{result.error}）。已录下的部分会在下次启动时自动修复。请检查磁盘空间后重录。",
        f"The recording could not be written to disk ({result.error}). What was recorded is repaired "
        "at the next start. Check the free disk space, then record again.")
    if journal.frames_on_disk() == 0:
        _fail_if_empty(db, journal, policy)
        if result.stopped_by == "disk_error":
            raise disk_error
        raise CaptureError("no_audio", "耳机麦克风没有送来任何声音数据。请检查耳机是否插好，运行设备检查后重录。",
                           "The headset microphone delivered no audio at all. Check the headset is "
                           "plugged in, run the equipment pre-check, then record again.")
    if result.stopped_by == "disk_error":
        raise disk_error   # the journal stays: salvage keeps every frame that reached the disk
    recorder.measure_xcorr(journal, result)
    kept = finalize(journal)
    measured = run_verify(verify, kept.path)
    found = _with_dropouts(measured, result.overflow_count, result.stream_restarts, result.lost_s)
    sidecar = sidecar_for(header, kept, interrupted=False, stopped_by=result.stopped_by,
                          overflow_count=result.overflow_count,
                          stream_restarts=result.stream_restarts, lost_s=result.lost_s,
                          segments=result.segments, output_underruns=result.output_underruns,
                          accompaniment_rate=result.accompaniment_rate,
                          offsets=result.offsets, ended_at=result.ended_at,
                          verdict=found.get("verdict"), reasons=found.get("reasons", []),
                          metrics=measured)   # the verifier's own words; verdict is the station's
    write_json_durably(sidecar_path(kept.path), sidecar)
    take = takes.keep(db, take_id, policy=policy, path=str(kept.path), sha256=kept.sha256,
                      channels=kept.channels, frames=kept.frames, duration_s=kept.duration_s,
                      accompaniment_rate=result.accompaniment_rate,
                      offset_latency_s=result.offset_latency_s,
                      offset_xcorr_s=result.offset_xcorr_s, offset_method=result.offset_method,
                      overflow_count=result.overflow_count,
                      stream_restarts=result.stream_restarts, lost_s=result.lost_s,
                      verdict=found.get("verdict"),
                      reasons=found.get("reasons", []), ended_at=result.ended_at)
    journal.discard()
    return TakeOutcome(take=take, sidecar=sidecar, capture=result)


def _fail_if_empty(db, journal: Journal, policy: str) -> None:
    if journal.frames_on_disk() == 0:
        takes.mark_failed(db, journal.header.take_id, policy=policy, frames=0, ended_at=utc_now())
        journal.discard()


# --- debug entry: python -m recorder.capture --------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recorder.capture",
                                     description="Record into a crash-safe journal (debug/bench).")
    parser.add_argument("--journal-dir", type=Path, required=True)
    parser.add_argument("--target", type=Path, required=True, help="the kept .flac/.wav")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--accompaniment", type=Path, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--latency", type=float, default=LATENCY_S)
    parser.add_argument("--keep-journal", action="store_true",
                        help="do not finalize: leave the journal (as a crash would)")
    args = parser.parse_args(argv)
    try:
        rate = choose_rate(args.device)
        header = JournalHeader(take_id=uuid.uuid4().hex, rate=rate, target=str(args.target),
                               format=args.target.suffix.lstrip(".") or "flac",
                               student="DEBUG", sitting="DEBUG", device=device_names(args.device))
        journal = Journal(args.journal_dir, header)
        writer = JournalWriter(journal).open()

        def report(rec: Recorder) -> None:
            print(json.dumps({"t": time.time(), "captured": rec.captured,
                              "written": writer.frames_written, "overflows": rec.overflows}),
                  flush=True)

        result = Recorder(writer, rate=rate, accompaniment=args.accompaniment,
                          max_seconds=args.seconds, device=args.device,
                          latency=args.latency).run(progress=report)
        writer.close()
        out: dict[str, Any] = {"result": asdict(result), "journal": str(journal.header_path)}
        if not args.keep_journal:
            kept = finalize(journal)
            journal.discard()
            out.update(path=str(kept.path), sha256=kept.sha256, frames=kept.frames)
        print(json.dumps(out), flush=True)
        return 0
    except (CaptureError, JournalError) as exc:
        print(f"{exc.zh}\n{exc.en}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
