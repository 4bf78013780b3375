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


def test_a_refusal_prints_chinese_then_english_and_exits_2(station):
    result = station("session", "close", "NOPE")
    assert result.returncode == 2
    zh, en = result.stderr.strip().splitlines()
    assert "没有编号为 NOPE 的场次" in zh and "There is no sitting NOPE" in en
    assert "内部出错" not in result.stderr and "Traceback" not in result.stderr


def test_a_broken_config_names_the_file_in_both_languages(station, data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text("station_id = [\n", encoding="utf-8")
    result = station("config", "show")
    assert result.returncode == 2
    zh, en = result.stderr.strip().splitlines()
    assert "station.toml" in zh and "配置文件格式错误" in zh
    assert "station.toml" in en and "not valid TOML" in en


def test_the_class_says_the_exit_code_and_the_words_come_from_its_fields(capsys):
    from recorder.takes import TakeError
    from station.errors import run_guarded
    from uploader.bundle import BundleError

    def refuse(error):
        def run(_args):
            raise error
        return run

    # A job that ran and was refused: exit 1, its own words (no "internal error" banner).
    assert run_guarded(refuse(TakeError("retake_limit", "重录次数已用完。", "No retakes left.")), None) == 1
    assert capsys.readouterr().err == "重录次数已用完。\nNo retakes left.\n"
    assert run_guarded(refuse(BundleError("磁盘已满，封存没有完成。", "The disk is full; not sealed.")), None) == 1
    assert capsys.readouterr().err.splitlines() == ["磁盘已满，封存没有完成。", "The disk is full; not sealed."]
    # Anything else is an internal error: exit 1, the banner in both languages.
    assert run_guarded(refuse(KeyError("code")), None) == 1
    err = capsys.readouterr().err
    assert "程序内部出错" in err and "An internal error" in err
