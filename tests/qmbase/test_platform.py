"""qmbase.platform on the system it runs on: Linux in scripts/test, Windows (under Wine) in
scripts/test-windows, which runs this file with the Windows Python."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from qmbase import platform
from qmbase.platform import (WINDOWS, child_group_options, free_bytes, is_com_port, is_private,
                             held, make_private_dir, port_name, replace_durably, stop_child, try_lock,
                             unlock, write_private_text)
from tests.helpers import reads_acls_back


def open_to_everyone(path):
    if WINDOWS:
        platform._win_acl.set_dacl(path, "D:(A;OICI;FA;;;WD)")   # WD: Everyone
    else:
        os.chmod(path, 0o755)


@reads_acls_back
def test_a_private_dir_its_files_and_subfolders_are_private(tmp_path):
    data = make_private_dir(tmp_path / "工作站数据")
    assert is_private(data)
    write_private_text(data / "station.toml", 'token = "密"\n')
    assert is_private(data / "station.toml")
    assert (data / "station.toml").read_text(encoding="utf-8") == 'token = "密"\n'
    assert is_private(make_private_dir(data / "takes" / "S01"))


@reads_acls_back
def test_a_folder_open_to_everyone_is_made_private(tmp_path):
    folder = tmp_path / "unzipped"
    folder.mkdir()
    open_to_everyone(folder)
    assert not is_private(folder)
    make_private_dir(folder)
    assert is_private(folder)


@pytest.mark.skipif(not WINDOWS, reason="Windows ACLs")
@reads_acls_back
def test_the_acl_names_the_user_and_system_only(tmp_path):
    data = make_private_dir(tmp_path / "data")
    assert platform._win_acl.allowed_trustees(data) == {platform._win_acl.user_sid(), "SY"}
    assert platform._win_acl.user_sid().startswith("S-1-5-")


@pytest.mark.skipif(not WINDOWS, reason="Windows ACLs")
def test_the_owner_only_acl_is_accepted_by_windows(tmp_path):
    # Under Wine this is what can be checked: every call succeeds with the SDDL we build.
    platform._win_acl.set_owner_only(tmp_path, inherit=True)
    write_private_text(tmp_path / "token.txt", "x")


@pytest.mark.parametrize("given, expected", [
    ("COM3", "COM3"), ("com3", "COM3"), (" COM4 ", "COM4"), ("COM5:", "COM5"),
    ("\\\\.\\COM10", "COM10"), ("\\\\.\\com256", "COM256"),
    ("COM257", "COM257"), ("COM0", "COM0"), ("/dev/ttyUSB0", "/dev/ttyUSB0"),
    ("socket://127.0.0.1:4001", "socket://127.0.0.1:4001"),
])
def test_port_names(given, expected):
    assert port_name(given) == expected
    assert is_com_port(given) == (expected.startswith("COM") and 1 <= int(expected[3:] or 0) <= 256)


def test_com_ports_are_listed_on_windows_only():
    present = platform.com_ports_present()
    assert (present is None) != WINDOWS
    assert all(is_com_port(p) for p in present or ())


def test_a_lock_keeps_a_second_holder_out_until_released(tmp_path):
    path = tmp_path / "take.lock"
    path.write_bytes(b"\0")
    first, second = os.open(path, os.O_RDWR), os.open(path, os.O_RDWR)
    try:
        assert try_lock(first)
        assert not try_lock(second)
        unlock(first)
        assert try_lock(second)
        unlock(second)
    finally:
        os.close(first)
        os.close(second)



def test_held_waits_for_the_holder_and_gives_up_after_its_wait(tmp_path):
    path = tmp_path / "seal.lock"
    with held(path):
        with pytest.raises(TimeoutError):
            with held(path, wait_s=0.2):
                pass
    with held(path, wait_s=0.2):   # released: the next holder gets it at once
        pass

def test_replace_durably_and_free_bytes(tmp_path):
    tmp = tmp_path / "a.json.tmp"
    tmp.write_text("{}", encoding="utf-8")
    replace_durably(tmp, tmp_path / "a.json")
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == "{}" and not tmp.exists()
    assert free_bytes(tmp_path / "not" / "yet") == free_bytes(tmp_path) > 0


def test_a_child_in_its_own_group_is_stopped(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **child_group_options())
    stop_child(proc, timeout=10)
    assert proc.returncode is not None
    stop_child(proc)  # already gone: fine


@pytest.mark.parametrize("encoding", ["gbk", "cp936"])
def test_a_gbk_console_writes_every_name(monkeypatch, encoding):
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding=encoding)
    monkeypatch.setattr(sys, "stdout", out)
    platform.configure_console()
    print(json.dumps({"name": "刘䶮"}, ensure_ascii=False))
    out.flush()
    # GB18030: the same bytes as GBK for 刘, and 䶮 (which GBK lacks) written at all.
    assert raw.getvalue().decode("gb18030").strip() == '{"name": "刘䶮"}'
    assert raw.getvalue().startswith(b'{"name": "' + "刘".encode("gbk"))


def test_an_english_console_escapes_what_it_cannot_write(monkeypatch):
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="cp1252")
    monkeypatch.setattr(sys, "stdout", out)
    platform.configure_console()
    print(json.dumps({"name": "王子涵"}, ensure_ascii=False))
    out.flush()
    assert json.loads(raw.getvalue().decode("cp1252")) == {"name": "王子涵"}


def test_a_utf8_console_is_left_alone(monkeypatch):
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    platform.configure_console()
    assert (out.encoding, out.errors) == ("utf-8", "strict")
