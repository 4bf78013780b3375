"""`station upload status` (rich tables with progress bars, or JSON) and live progress for `upload run`."""
from __future__ import annotations

import json
import threading

from rich.console import Console, Group
from rich.filesize import decimal
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

STATE_LABELS = {
    "queued": ("排队中", "queued", "yellow"),
    "uploading": ("上传中", "uploading", "cyan"),
    "done": ("已完成", "done", "green"),
    "failed": ("失败，将自动重试", "failed, will retry", "red"),
}


def state_label(state: str) -> Text:
    zh, en, style = STATE_LABELS.get(state, (state, state, ""))
    return Text(f"{zh} {en}", style=style)


def to_json(status_rows: list[dict]) -> str:
    """The `--json` document: the queue as `queue.status` gives it."""
    return json.dumps({"sittings": status_rows}, ensure_ascii=False, indent=2)


def _bar(done: int, total: int) -> ProgressBar:
    return ProgressBar(total=max(total, 1), completed=done if total else 1, width=24)


def _bytes(done: int, total: int) -> str:
    return f"{decimal(done)} / {decimal(total)}"


def render(status_rows: list[dict]) -> Group | Text:
    """One table per sitting: its seal code and state, then a bar per file."""
    if not status_rows:
        return Text("上传队列为空：还没有封存的场次。 / The upload queue is empty: no sitting has been sealed yet.")
    tables = []
    for s in status_rows:
        t = Table(title=f"场次 Sitting {s['sitting']}   封签 Seal {s['seal_code']}", title_justify="left",
                  expand=False, show_edge=False)
        t.add_column("文件 File")
        t.add_column("进度 Progress")
        t.add_column("字节 Bytes", justify="right")
        t.add_column("状态 State")
        t.add_row(Text(f"全部 all ({s['files_done']}/{s['files_total']})", style="bold"),
                  _bar(s["bytes_done"], s["bytes_total"]), _bytes(s["bytes_done"], s["bytes_total"]),
                  state_label(s["state"]))
        for f in s["files"]:
            state = state_label(f["state"])
            if f["state"] == "failed" and f["retry_in_s"] is not None:
                state.append(f"  {f['retry_in_s']:.0f} 秒后重试 retry in {f['retry_in_s']:.0f} s")
            t.add_row(f["path"], _bar(f["bytes_done"], f["size"]), _bytes(f["bytes_done"], f["size"]), state)
        if s["last_error"]:
            t.caption = s["last_error"]
            t.caption_justify = "left"
            t.caption_style = "red"
        tables.append(t)
    return Group(*tables)


def print_status(status_rows: list[dict], console: Console | None = None) -> None:
    (console or Console()).print(render(status_rows))


class LiveProgress:
    """Progress bars with rates while the worker runs: pass ``update`` as ``on_progress``.

    The worker calls ``update`` from its own thread once per block sent; rich's Progress is
    thread-safe and redraws on its own timer, so this does no more than move a counter.
    """

    def __init__(self, console: Console | None = None):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=False),
            TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False)
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> "LiveProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, event: dict) -> None:
        key = (event["sitting"], event["path"])
        with self.lock:
            task = self.tasks.get(key)
            if task is None:
                task = self.progress.add_task(f"{event['sitting']} {event['path']}", total=event["size"])
                self.tasks[key] = task
        description = f"{event['sitting']} {event['path']}"
        if event["state"] == "failed":
            description += " [red]失败，将重试 failed, will retry[/red]"
        self.progress.update(task, completed=event["bytes_done"], description=description)
