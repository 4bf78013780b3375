"""All-or-nothing writes on an autocommit SQLite connection (the station opens its database so).

On such a connection ``with conn:`` is not a transaction: each statement commits by itself,
and a crash between two of them leaves the first alone. ``transaction`` opens one for real.
"""
from __future__ import annotations

import sqlite3


def _conn(db) -> sqlite3.Connection:
    return db if isinstance(db, sqlite3.Connection) else db.conn


class transaction:
    """``with transaction(db):`` — all or nothing, taking the write lock at once.

    Inside one already open on the same connection it joins that one (the outer one decides).
    Write with plain SQL inside it (``db.execute``): sqlite-utils' table helpers wrap themselves
    in ``with conn:``, which would commit the transaction halfway.
    """

    def __init__(self, db):
        self.db = db
        self.conn = _conn(db)
        self.outer = False

    def __enter__(self):
        if self.conn.in_transaction:
            self.outer = True
            return self.db
        self.conn.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, tb) -> None:
        if self.outer:
            return
        if kind is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
            self.conn.execute("ROLLBACK")


def insert_row(db, table: str, row: dict) -> int:
    """INSERT one row with plain SQL (safe inside ``transaction``); returns its rowid."""
    columns = ", ".join(f'"{c}"' for c in row)
    marks = ", ".join("?" for _ in row)
    return _conn(db).execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})',
                             list(row.values())).lastrowid


def update_row(db, table: str, where: dict, fields: dict) -> None:
    """UPDATE one table's rows matching ``where`` with plain SQL (safe inside ``transaction``)."""
    sets = ", ".join(f'"{c}" = ?' for c in fields)
    cond = " AND ".join(f'"{c}" = ?' for c in where)
    _conn(db).execute(f'UPDATE "{table}" SET {sets} WHERE {cond}',
                      [*fields.values(), *where.values()])


def upsert_row(db, table: str, row: dict, pk: tuple[str, ...]) -> None:
    """INSERT one row, or UPDATE the columns given when its key exists (safe inside
    ``transaction``; columns not given keep their values)."""
    columns = ", ".join(f'"{c}"' for c in row)
    marks = ", ".join("?" for _ in row)
    keys = ", ".join(f'"{c}"' for c in pk)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in row if c not in pk)
    action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
    _conn(db).execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) '
                      f'ON CONFLICT ({keys}) {action}', list(row.values()))
