"""The package's import rules: each module imports alone, no cycles, the arrow
station → precheck → devices, and nothing heavy loaded before a check runs."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(f"precheck.{p.stem}" for p in (ROOT / "precheck").glob("*.py") if p.stem != "__init__")


def test_the_package_has_the_modules_this_file_expects():
    assert {"precheck.check", "precheck.context", "precheck.registry", "precheck.runner",
            "precheck.report", "precheck.audio", "precheck.serialcheck"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    # Alone and first: an import cycle shows up as a half-initialised module here.
    out = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def imports(path: Path) -> set[str]:
    """Every module a file imports, wherever in the file (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def top_level_imports(path: Path) -> set[str]:
    """What importing the module imports: its module-level statements, not TYPE_CHECKING."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_no_import_cycle_inside_the_package():
    graph = {m: {i for i in top_level_imports(ROOT / (m.replace(".", "/") + ".py")) if i in MODULES}
             for m in MODULES}

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " → ".join((*path, module))
        for nxt in graph[module]:
            visit(nxt, (*path, module))

    for module in MODULES:
        visit(module, ())


def test_devices_never_import_the_precheck():
    for path in (ROOT / "devices").rglob("*.py"):
        assert not {i for i in imports(path) if i == "precheck" or i.startswith("precheck.")}, path


def test_the_precheck_never_imports_the_station():
    for path in (ROOT / "precheck").glob("*.py"):
        assert not {i for i in imports(path) if i.split(".")[0] in ("station", "recorder", "pe_station",
                                                                    "uploader")}, path


def test_declaring_and_reporting_loads_nothing_heavy():
    # `station --help` and the page stay fast: heavy libraries load when a check or picture runs.
    code = ("import sys, precheck.runner, precheck.registry, precheck.network, precheck.system, "
            "precheck.report, precheck.report_console, precheck.report_html; "
            "print(sorted(m for m in ('numpy', 'httpx', 'matplotlib', 'serial', 'rich', "
            "'jinja2', 'sounddevice') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_collector_is_reached_only_through_the_one_collector_link():
    # qmbase.collector_link builds every client (TLS trust, district CA, timeouts, token).
    clients = ("httpx", "requests", "urllib.request", "http.client", "urllib3", "aiohttp")
    for path in (ROOT / "precheck").glob("*.py"):
        found = {i for i in imports(path) if i.split(".")[0] in clients or i in clients}
        assert not found, (path, found)


def test_serial_ports_are_opened_only_through_devices_ports():
    for path in (ROOT / "precheck").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "serial_for_url" not in text and "serial.Serial(" not in text, path
