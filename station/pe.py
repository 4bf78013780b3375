"""The PE runtime on this station, as the /pe page and ``station pe run`` both run it:
the station's database (a connection per sitting), roster, audit trail, items file,
configured devices and raw-log folder."""
from __future__ import annotations

from pe_station import rules
from pe_station.runtime import Runtime
from station import audit, roster
from station.context import Station
from station.db import FILE_NAME, connect


def runtime_for(station: Station, items: dict[str, rules.Item] | None = None) -> Runtime:
    """``items``: the rules already loaded (default: station.toml's ``pe.items_file``)."""
    return Runtime(connect=lambda: connect(station.data_dir / FILE_NAME),
                   items=items if items is not None else rules.load(station.config["pe.items_file"] or None),
                   rawlog_dir=station.path("pe", "rawlogs"), devices=station.config["pe.devices"],
                   lookup=lambda db: (lambda code: roster.lookup(db, code)), audit=audit.record)
