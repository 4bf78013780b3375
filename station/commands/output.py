"""How commands print: one JSON document with --json, else a rich table for people."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def console():
    from rich.console import Console

    return Console()


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for column in columns:
        t.add_column(column, overflow="fold")  # CJK has no spaces to wrap at
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console().print(t)
