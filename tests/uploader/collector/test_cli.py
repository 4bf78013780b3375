"""The plain functions behind `station collector add-station | admin-token`, and their module CLI."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from uploader.collector.cli import add_station, admin_token

ROOT = Path(__file__).resolve().parents[3]


def database_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("collector.db*"))


def test_tokens_are_stored_only_as_hashes(tmp_path):
    token = add_station("S01", tmp_path, school="第一小学", room="201")
    admin = admin_token(tmp_path)
    stored = database_bytes(tmp_path)
    assert token.encode() not in stored and admin.encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored


def test_each_station_gets_its_own_token_and_asking_again_replaces_it(tmp_path):
    first = add_station("S01", tmp_path)
    assert add_station("S02", tmp_path) != first
    assert add_station("S01", tmp_path) != first


def test_module_cli_prints_the_token_last_and_refuses_bad_ids(tmp_path):
    run = [sys.executable, "-m", "uploader.collector.cli"]
    ok = subprocess.run([*run, "add-station", "S07", "--data", str(tmp_path)], cwd=ROOT,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0
    assert len(ok.stdout.strip().splitlines()[-1]) >= 40
    bad = subprocess.run([*run, "add-station", "../S07", "--data", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "站点编号" in bad.stderr and bad.stdout == ""
