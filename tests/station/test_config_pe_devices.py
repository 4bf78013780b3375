"""[[pe.devices]] keys for timers, line settings and the line driver, checked at load."""
from __future__ import annotations

import pytest

from station import config


def write(data_dir, body: str):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text(body, encoding="utf-8")
    return data_dir


def test_a_line_device_with_its_rule_and_a_sequence_timer_load(tmp_path):
    d = write(tmp_path, '[[pe.devices]]\nname = "stadiometer"\ndriver = "line"\nport = "COM4"\n'
                        "pattern = '(?P<stable>ST|US),(?P<value>[0-9.]+) cm'\nstable_when = \"ST\"\n"
                        'parity = "E"\nbytesize = 7\nflow_control = "xonxoff"\n\n'
                        '[[pe.devices]]\ndriver = "alge-timy"\nport = "COM5"\npairing = "sequence"\n'
                        "require_checksum = true\n")
    devices = config.load(d)["pe.devices"]
    assert devices[0]["stable_when"] == "ST" and devices[1]["pairing"] == "sequence"


@pytest.mark.parametrize("extra, words", [
    ('pairing = "lane"', ("pairing", "sequence")),
    ('flow_control = "cts"', ("flow_control", "rtscts")),
    ('baud = 0', ("baud=0", "串口参数")),
    ("stopbits = 3", ("stopbits=3", "station.toml")),
])
def test_a_bad_timer_or_line_setting_is_named_with_what_to_write(tmp_path, extra, words):
    d = write(tmp_path, f'[[pe.devices]]\ndriver = "alge-timy"\nport = "COM5"\n{extra}\n')
    with pytest.raises(config.ConfigError) as e:
        config.load(d)
    assert all(w in str(e.value) for w in words) and "station.toml" in str(e.value)


@pytest.mark.parametrize("extra, words", [
    ("pattern = '(?P<value>[0-9.]+'", "not a valid regex"),
    ("pattern = '(?P<stable>S|D) (?P<value>[0-9.]+)'", "stable_when"),
    ("repeat = 0", "repeat"),
])
def test_a_line_pattern_that_cannot_read_is_refused_at_load(tmp_path, extra, words):
    d = write(tmp_path, f'[[pe.devices]]\ndriver = "line"\nport = "COM6"\n{extra}\n')
    with pytest.raises(config.ConfigError) as e:
        config.load(d)
    assert words in str(e.value)


def test_a_line_key_on_another_driver_is_refused(tmp_path):
    d = write(tmp_path, '[[pe.devices]]\ndriver = "mt-sics"\nport = "COM3"\npattern = "(?P<value>.*)"\n')
    with pytest.raises(config.ConfigError) as e:
        config.load(d)
    assert "mt-sics" in str(e.value) and "pattern" in str(e.value)
