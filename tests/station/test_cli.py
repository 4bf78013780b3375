"""The command line answers at once and keeps the exit-code contract."""
import subprocess
import sys

from station import __version__


def test_version_and_help(station):
    assert station("--version").stdout.strip() == f"qm-station {__version__}"
    result = station("--help")
    assert result.returncode == 0
    for command in ("serve", "config", "roster", "session"):
        assert command in result.stdout


def test_help_imports_nothing_heavy():
    # --help must not load the audio, analysis or web stacks (the 0.5 s budget is
    # measured in scripts/bench/cli.py; here we check the cause, not the clock).
    code = ("import sys; from station.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('numpy', 'librosa', 'sounddevice', 'fastapi', 'uvicorn', "
            "'sqlite_utils', 'rich') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_command_is_usage_error(station):
    assert station().returncode == 2


def test_unknown_option_is_usage_error(station):
    result = station("roster", "list", "--colour")
    assert result.returncode == 2
    assert "--colour" in result.stderr
