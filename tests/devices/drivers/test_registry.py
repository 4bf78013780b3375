import json

import pytest

from devices import drivers
from devices.drivers.qm_frame import format_frame


def test_every_driver_of_the_design_is_registered():
    assert set(drivers.NAMES) == {"alge-timy", "mt-sics", "kern", "qm-frame", "line"}
    assert drivers.get("alge-timy").baud == 9600      # Timy3 factory setting


def test_unknown_driver_names_the_drivers_there_are():
    with pytest.raises(drivers.UnknownDriver) as e:
        drivers.get("mettler")
    assert "没有名为" in str(e.value) and "mt-sics" in str(e.value)


def test_unknown_option_is_a_clear_error():
    with pytest.raises(drivers.UnknownDriver) as e:
        drivers.get("kern", pattern="x")
    assert "选项" in str(e.value) and "options" in str(e.value)


def test_reading_json_has_the_design_fields_and_escapes_control_bytes():
    [r] = drivers.get("mt-sics").feed(b"S S      32.40 kg\r\n", at=1_700_000_000.5)
    j = r.to_json(port="COM3", item="weight")
    assert set(j) >= {"at", "driver", "port", "value", "unit", "stable", "code", "item",
                      "channel", "raw"}
    assert (j["port"], j["item"], j["driver"], j["raw"]) == (
        "COM3", "weight", "mt-sics", "S S      32.40 kg\\r")   # the frame ends at its CR
    assert j["at"] == "2023-11-14T22:13:20.500+00:00"
    assert json.loads(json.dumps(j))["value"] == 32.4


def test_reset_drops_a_partial_frame_and_counts_it():
    d = drivers.get("mt-sics")
    d.feed(b"S S    ")
    assert d.reset() == 7 and d.pending == 0 and d.counters.garbage_bytes == 7


def test_reading_as_a_line_for_staff_says_value_stability_and_code():
    [r] = drivers.get("qm-frame").feed(format_frame("SR", "sit_and_reach", "0001", "-3.5", "cm"))
    text = r.to_text(port="COM5")
    assert "-3.5 cm" in text and "稳定 stable" in text and "0001" in text and "COM5" in text
