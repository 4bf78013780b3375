"""Rehearsal mode (演练模式): ``station serve --simulate``.

A trainer runs a whole test day on any laptop: a rehearsal station kept apart from the
real one (``<data dir>/rehearsal/``), simulated PE devices on PTY pairs, the virtual
headset, a generated demo roster and a local collector whose dashboard shows the uploads
arrive. Nothing here ever reaches a real collector (see `guard`).
"""
