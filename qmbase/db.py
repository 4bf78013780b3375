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


# The statements, built once for every database that speaks them (the station's SQLite here,
# the collector's SQLite or PostgreSQL through uploader/collector/index.py): ``?`` placeholders.

def insert_sql(table: str, columns, ignore: bool = False) -> str:
    """INSERT one row; ``ignore``: a row whose key is taken is left alone."""
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    conflict = " ON CONFLICT DO NOTHING" if ignore else ""
    return f'INSERT INTO "{table}" ({names}) VALUES ({marks}){conflict}'


def update_sql(table: str, where, fields) -> str:
    """UPDATE the rows matching ``where``; parameters: the fields' values, then where's."""
    sets = ", ".join(f'"{c}" = ?' for c in fields)
    cond = " AND ".join(f'"{c}" = ?' for c in where)
    return f'UPDATE "{table}" SET {sets} WHERE {cond}'


def upsert_sql(table: str, columns, pk: tuple[str, ...]) -> str:
    """INSERT one row, or UPDATE the columns given when its key exists."""
    keys = ", ".join(f'"{c}"' for c in pk)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in pk)
    action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
    return f"{insert_sql(table, columns)} ON CONFLICT ({keys}) {action}"


def insert_row(db, table: str, row: dict) -> int:
    """INSERT one row with plain SQL (safe inside ``transaction``); returns its rowid."""
    return _conn(db).execute(insert_sql(table, row), list(row.values())).lastrowid


def update_row(db, table: str, where: dict, fields: dict) -> None:
    """UPDATE one table's rows matching ``where`` with plain SQL (safe inside ``transaction``)."""
    _conn(db).execute(update_sql(table, where, fields), [*fields.values(), *where.values()])


def upsert_row(db, table: str, row: dict, pk: tuple[str, ...]) -> None:
    """INSERT one row, or UPDATE the columns given when its key exists (safe inside
    ``transaction``; columns not given keep their values)."""
    _conn(db).execute(upsert_sql(table, row, pk), list(row.values()))
