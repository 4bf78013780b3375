"""`station pe listen|run` refuse bad line settings and driver options once, clearly (exit 2)."""
import pytest


@pytest.mark.parametrize("args, words", [
    (["pe", "run", "--item", "run_50m", "--driver", "alge-timy", "--port", "COM9", "--baud", "0"],
     ("baud=0", "串口参数", "bad serial settings")),
    (["pe", "listen", "--driver", "kern", "--port", "COM9", "--parity", "X", "--flow-control", "cts"],
     ("parity='X'", "flow_control='cts'")),
    (["pe", "listen", "--driver", "line", "--port", "COM9", "--pattern", "(?P<v>[0-9]+)"],
     ("value", "正则表达式")),
    (["pe", "listen", "--driver", "mt-sics", "--port", "COM9", "--repeat", "3"],
     ("mt-sics", "repeat")),
    (["pe", "listen", "--device", "scale-9"], ("scale-9", "[[pe.devices]]")),
    (["pe", "listen", "--port", "COM9"], ("--driver", "--device")),
])
def test_bad_settings_are_refused_before_any_port_is_opened(station, data_dir, args, words):
    result = station(*args)
    assert result.returncode == 2, result.stderr
    assert all(w in result.stderr for w in words), result.stderr
