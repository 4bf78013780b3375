"""Write station.toml files: the commented one of ``config init`` and the rehearsal's.

Python reads TOML (tomllib) but does not write it, and the files need only tables, arrays
of tables and plain values: a few lines here instead of a new dependency.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from qmbase.refusal import Refusal


class TomlFileError(Refusal, ValueError):
    """A station.toml that cannot be read; the message says which and what to do."""

    code, status = "config", 400


def read(path: Path) -> dict:
    """The file's tables ({} when there is none); a broken file is refused, never overwritten."""
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TomlFileError(f"{path}：文件格式错误（{exc}）。请改正它，或用 --reset 重新开始演练。",
                         f"{path}: the file is not valid TOML ({exc}); correct it, or start the "
                         f"rehearsal afresh with --reset.") from None


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)     # a JSON string is a TOML basic string
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    return repr(v)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps(table: dict, prefix: str = "") -> str:
    lines = [f"{k} = {value(v)}" for k, v in table.items()
             if not isinstance(v, dict) and not _is_table_array(v)]
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in table.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out += f"\n[{name}]\n" + dumps(v, name + ".")
        elif _is_table_array(v):
            for entry in v:
                out += f"\n[[{name}]]\n" + "".join(f"{ek} = {value(ev)}\n" for ek, ev in entry.items())
    return out


def write(path: Path, table: dict, header: str = "") -> None:
    path.write_text(header + dumps(table), encoding="utf-8")
