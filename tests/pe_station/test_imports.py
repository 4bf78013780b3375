"""pe_station's import rules: each module imports alone (no cycles), and the package never
imports the station (``station → pe_station → devices``)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "pe_station").glob("*.py"))


@pytest.mark.parametrize("module", [f"pe_station.{p.stem}" for p in FILES if p.stem != "__init__"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    # Alone and first: an import cycle shows up as a half-initialised module here.
    out = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_import_runs_against_the_arrows(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            assert name.split(".")[0] not in ("station", "recorder", "uploader", "precheck"), \
                f"{path.name} imports {name}"
