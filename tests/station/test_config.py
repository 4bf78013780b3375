"""station.toml: defaults for everything, commented init, sources, clear errors."""
import json
import re
import tomllib

from qmbase.platform import is_private
from tests.helpers import UNDER_WINE, reads_acls_back


def show(station):
    result = station("config", "show", "--json", check=True)
    return json.loads(result.stdout)


def test_defaults_without_a_file(station, data_dir):
    doc = show(station)
    assert doc["file"] is None
    assert doc["values"]["audio.sample_rate"] == 48000
    assert doc["values"]["upload.collector_url"] == ""
    assert doc["values"]["station_id"]  # the host name
    assert set(doc["sources"].values()) == {"default"}
    assert doc["data_dir"] == str(data_dir) and doc["data_dir_source"] == "STATION_DATA_DIR"


@reads_acls_back
def test_data_dir_is_private(station, data_dir):
    show(station)
    assert is_private(data_dir)


def test_init_writes_a_commented_file_every_key_of_which_parses(station, data_dir):
    station("config", "init", check=True)
    text = (data_dir / "station.toml").read_text(encoding="utf-8")
    assert is_private(data_dir / "station.toml") or UNDER_WINE
    def leaves(table):
        return [v for x in table.values() for v in (leaves(x) if isinstance(x, dict) else [x])]

    assert leaves(tomllib.loads(text)) == []  # every key commented: the defaults stand
    uncommented = re.sub(r"(?m)^# (\[\[pe\.devices\]\]|[a-z_]+ = )", r"\1", text)
    table = tomllib.loads(uncommented)
    assert table["audio"]["sample_rate"] == 48000
    assert table["pe"]["devices"][0]["driver"] == "mt-sics"
    (data_dir / "station.toml").write_text(uncommented, encoding="utf-8")
    assert show(station)["values"]["pe.devices"][0]["port"] == "COM3"
    again = station("config", "init")
    assert again.returncode == 2 and "--force" in again.stderr


def test_show_names_the_line_each_value_came_from(station, data_dir):
    data_dir.mkdir()
    (data_dir / "station.toml").write_text(
        'school = "测试实验小学"\n\n[audio]\ninput = "USB"\n', encoding="utf-8")
    doc = show(station)
    assert doc["values"]["school"] == "测试实验小学"
    assert doc["sources"]["school"].endswith("station.toml:1")
    assert doc["sources"]["audio.input"].endswith("station.toml:4")
    assert doc["sources"]["audio.output"] == "default"
    table = station("config", "show", check=True).stdout
    assert "station.toml:4" in table


def test_malformed_toml_names_the_line(station, data_dir):
    data_dir.mkdir()
    (data_dir / "station.toml").write_text('school = "a"\n[audio]\ninput = USB\n', encoding="utf-8")
    result = station("config", "show")
    assert result.returncode == 2
    assert "station.toml:3" in result.stderr
    assert "配置文件格式错误" in result.stderr and "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_type_names_line_and_key(station, data_dir):
    data_dir.mkdir()
    (data_dir / "station.toml").write_text('[audio]\n\nsample_rate = "high"\n', encoding="utf-8")
    result = station("roster", "list")
    assert result.returncode == 2
    assert "station.toml:3" in result.stderr and "audio.sample_rate" in result.stderr


def test_unknown_key_suggests_the_right_one(station, data_dir):
    data_dir.mkdir()
    (data_dir / "station.toml").write_text('[upload]\ncolector_url = "http://x"\n', encoding="utf-8")
    result = station("config", "show")
    assert result.returncode == 2
    assert "station.toml:2" in result.stderr and "upload.collector_url" in result.stderr


def test_pe_device_without_port_is_refused(station, data_dir):
    data_dir.mkdir()
    (data_dir / "station.toml").write_text('[[pe.devices]]\ndriver = "kern"\n', encoding="utf-8")
    result = station("config", "show")
    assert result.returncode == 2 and "port" in result.stderr


def test_data_dir_option_beats_the_environment(station, tmp_path):
    other = tmp_path / "elsewhere"
    result = station("--data-dir", str(other), "config", "show", "--json", check=True)
    doc = json.loads(result.stdout)
    assert doc["data_dir"] == str(other) and doc["data_dir_source"] == "--data-dir"


def test_show_never_prints_the_token_or_the_pin(station, data_dir):
    data_dir.mkdir()
    token, pin = "tok-" + "x7Q" * 10, "482913"
    (data_dir / "station.toml").write_text(
        f'[upload]\ntoken = "{token}"\n[web]\npin = "{pin}"\n', encoding="utf-8")
    for result in (station("config", "show", "--json", check=True), station("config", "show", check=True)):
        assert token not in result.stdout and pin not in result.stdout
        assert "已设置" in result.stdout and "set" in result.stdout
    doc = show(station)
    assert doc["sources"]["upload.token"].endswith("station.toml:2")
    assert doc["values"]["upload.collector_url"] == ""  # only secrets are masked
