"""What every check of one run may read: the station's settings, typed, and what checks share.

The station builds one ``Context`` per run (``station/precheck.py``, from station.toml); the
checks read its fields and never see the config file's shape. Defaults are the pre-check's
own, so a test or a one-off run names only what it changes.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from qmbase.collector_link import CollectorLink
from precheck.dayplan import DayPlan

T = TypeVar("T")
MiB = 1024 * 1024


@dataclass
class Context:
    station_id: str = ""
    data_dir: Path | None = None              # where recordings go: disk.free measures it
    version: str = ""                         # this station's; "" = the installed package's
    # The one collector client (TLS trust, district CA, token); an empty url: no uploads,
    # every network check says skip (also in rehearsal, which never probes the district).
    link: CollectorLink = field(default_factory=CollectorLink)
    # The configured PE devices, one ``[[pe.devices]]`` table each (devices.ports reads them).
    serial_devices: list[Mapping[str, Any]] = field(default_factory=list)
    audio_input: str = ""                     # part of the microphone's name; "" = default
    audio_output: str = ""                    # part of the earphones' name; "" = default
    interactive: bool = False                 # ask the operator to listen and to speak
    prompt: Callable[[str], Any] | None = None  # shows a question, returns the answer
    plan: DayPlan = field(default_factory=DayPlan)
    # Thresholds ([precheck] in station.toml).
    loopback_expected: bool = False           # a loopback is fitted: no test signal fails
    input_seconds: float = 3.0                # length of the microphone recording
    speech_seconds: float = 5.0               # length of the interactive speech recording
    noise_floor_warn_dbfs: float = -40.0      # a louder noise floor is a warning
    speech_peak_min_dbfs: float = -30.0       # interactive speech test: pass thresholds
    speech_peak_max_dbfs: float = -3.0
    speech_snr_min_db: float = 20.0
    serial_wait_s: float = 3.0                # how long a device may take to send a frame
    http_timeout_s: float = 5.0
    probe_bytes: int = 4 * MiB                # the upload speed probe
    probe_max_s: float = 6.0                  # stop the probe early on a slow line
    # Left by one check for another within the run.
    noise_floor_dbfs: float | None = None     # audio.input's, for the speech test
    _shared: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def once(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per run, shared by the checks that need it (the collector's
        health answer: a dead collector costs one timeout, not three)."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = compute()
            return self._shared[key]
