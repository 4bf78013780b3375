"""Where a station's data lives and how a command reaches it.

The data dir holds children's names and voices: it is created readable by its user only.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from qmbase.platform import make_private_dir, user_name
from station import config as config_mod

ENV_DATA_DIR = "STATION_DATA_DIR"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("qm-station", appauthor=False))


def resolve_data_dir(cli_value: str | None = None) -> tuple[Path, str]:
    """The data dir and where that choice came from (for `config show`)."""
    if cli_value:
        return Path(cli_value).expanduser().resolve(), "--data-dir"
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser().resolve(), ENV_DATA_DIR
    return default_data_dir(), "default"


@dataclass
class Station:
    """A data dir, its configuration and its database (one connection per thread)."""

    data_dir: Path
    config: config_mod.Config
    data_dir_source: str = "default"
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @classmethod
    def open(cls, cli_data_dir: str | None = None) -> "Station":
        data_dir, source = resolve_data_dir(cli_data_dir)
        make_private_dir(data_dir)
        return cls(data_dir, config_mod.load(data_dir), source)

    @property
    def db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            from station.db import open_db

            db = self._local.db = open_db(self.data_dir)
        return db

    @property
    def station_id(self) -> str:
        return self.config["station_id"]

    def collector_link(self):
        """How this station reaches its collector (``qmbase.collector_link.CollectorLink``)."""
        from qmbase.collector_link import CollectorLink

        return CollectorLink.from_config(self.config.section("upload"))

    def operator(self, given: str | None = None) -> str:
        return given or self.config["operator"] or user_name()

    def path(self, *parts: str) -> Path:
        """A folder inside the data dir, created private."""
        return make_private_dir(self.data_dir.joinpath(*parts))
