"""A closed sitting's seal code (电子封签), shown on its page for the proctor to copy onto
the paper sitting sheet; the card itself is ``templates/sealed_card.html``."""
from __future__ import annotations

from station import sittings


def sealed(station, sitting_id: str | None) -> dict | None:
    """The sitting with its seal code if it exists and is closed, else None."""
    from station import sealing

    if not sitting_id:
        return None
    try:
        sitting = sittings.get(station.db, sitting_id)
    except sittings.SittingError:
        return None
    if sitting["state"] != "closed":
        return None
    return {**sitting, "seal_code": sealing.seal_code(station, sitting_id)}
