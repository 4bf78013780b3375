"""The collector's index (stations, uploads, sittings, sessions …) on SQLite or PostgreSQL.

One district runs one collector on a SQLite file; a province runs several collector processes
on one PostgreSQL (psycopg 3 with its pool). Both speak the same plain SQL, written once with
``?`` placeholders (sqlite3's style; rewritten to psycopg's ``%s`` for PostgreSQL, as Django's
SQLite back-end rewrites the other way). No ORM: every statement is visible where it runs.

``with index.transaction("lock", …):`` is the one all-or-nothing write. SQLite has one write
lock for the whole file (BEGIN IMMEDIATE), so a check-then-write inside it never races. On
PostgreSQL (READ COMMITTED) the names given are taken as transaction-level advisory locks, the
same serialisation for exactly the rows that need it, across every collector process.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from qmbase.db import insert_sql, update_sql, upsert_sql

SQLITE, POSTGRESQL = "sqlite", "postgresql"
# Connections each collector process may hold. A request uses one for the few milliseconds of
# its statements; uvicorn serves on one thread, so a handful covers it plus worker threads.
POOL_MAX = 10

_PIECES = re.compile(r"('(?:[^']|'')*')|(\?)|(%)")


def to_format_style(sql: str) -> str:
    """``?`` → ``%s`` outside string literals, ``%`` → ``%%`` (psycopg's placeholder style)."""
    def swap(match: re.Match) -> str:
        literal, mark, percent = match.groups()
        if literal is not None:
            return literal.replace("%", "%%")
        return "%s" if mark else "%%"
    return _PIECES.sub(swap, sql)


def lock_key(name: str) -> int:
    """A lock name as PostgreSQL's advisory lock key (a signed 64-bit integer, stable)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


class Index:
    """Plain SQL over one connection (SQLite) or a pool (PostgreSQL); rows come back as dicts."""

    dialect: str
    url: str

    def __init__(self) -> None:
        # The connection of the transaction open in this task or thread, if any.
        self._current: contextvars.ContextVar = contextvars.ContextVar(f"tx{id(self)}",
                                                                         default=None)

    # -- the statements --------------------------------------------------------------

    def query(self, sql: str, params: Sequence = ()) -> list[dict]:
        with self._connection() as conn:
            return self._fetch(conn, sql, params)

    def one(self, sql: str, params: Sequence = ()) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def value(self, sql: str, params: Sequence = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def execute(self, sql: str, params: Sequence = ()) -> int:
        """Run one statement; returns the rows it changed."""
        with self._connection() as conn:
            return self._run(conn, sql, params)

    def script(self, statements: Sequence[str]) -> None:
        """DDL, as given (no placeholders); inside the caller's transaction."""
        with self._connection() as conn:
            for statement in statements:
                self._run(conn, statement, None)

    # -- row helpers (plain SQL, safe inside a transaction) ----------------------------

    def insert(self, table: str, row: dict, ignore: bool = False) -> int:
        """INSERT one row; ``ignore``: a row whose key is taken is left alone (returns 0)."""
        return self.execute(insert_sql(table, row, ignore), list(row.values()))

    def insert_all(self, table: str, rows: Sequence[dict]) -> None:
        """Many rows of one shape in one transaction (loading a district's data at once)."""
        if not rows:
            return
        columns = list(rows[0])
        with self.transaction(), self._connection() as conn:
            self._run_many(conn, insert_sql(table, columns),
                           [[row[c] for c in columns] for row in rows])

    def update(self, table: str, where: dict, fields: dict) -> int:
        return self.execute(update_sql(table, where, fields), [*fields.values(), *where.values()])

    def upsert(self, table: str, row: dict, pk: tuple[str, ...]) -> None:
        """INSERT one row, or UPDATE the columns given when its key exists."""
        self.execute(upsert_sql(table, row, pk), list(row.values()))

    def count(self, table: str, where: str = "1 = 1", params: Sequence = ()) -> int:
        return int(self.value(f'SELECT count(*) FROM "{table}" WHERE {where}', params))

    # -- transactions ------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *locks: str) -> Iterator["Index"]:
        """All or nothing. Inside one already open in this task it joins it (the outer one
        decides, and must have named the locks). No await inside: it holds a connection."""
        if self._current.get() is not None:
            yield self
            return
        with self._begin(sorted(set(locks))) as conn:
            token = self._current.set(conn)
            try:
                yield self
            finally:
                self._current.reset(token)

    @property
    def in_transaction(self) -> bool:
        return self._current.get() is not None

    # -- dialect -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self):
        """The open transaction's connection, else one borrowed for a statement."""
        conn = self._current.get()
        if conn is not None:
            yield conn
            return
        with self._borrow() as conn:
            yield conn

    def _borrow(self):
        raise NotImplementedError

    def _begin(self, locks: list[str]):
        raise NotImplementedError

    def _fetch(self, conn, sql: str, params: Sequence) -> list[dict]:
        raise NotImplementedError

    def _run(self, conn, sql: str, params: Sequence | None) -> int:
        raise NotImplementedError

    def _run_many(self, conn, sql: str, rows: list) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteIndex(Index):
    dialect = SQLITE

    def __init__(self, path: str | Path):
        super().__init__()
        self.url = f"sqlite:///{path}"
        # check_same_thread=False and one lock: the app is built in one thread and served from
        # uvicorn's loop (and a few worker threads); each statement runs under the lock.
        self.conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30,
                                    isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")

    @contextlib.contextmanager
    def _borrow(self):
        with self._lock:
            yield self.conn

    @contextlib.contextmanager
    def _begin(self, locks: list[str]):
        with self._lock:  # the whole file is one write lock: the names add nothing
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:  # SQLite may have rolled back already (disk full)
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _fetch(self, conn, sql, params):
        return [dict(row) for row in conn.execute(sql, params)]

    def _run(self, conn, sql, params):
        return conn.execute(sql, () if params is None else params).rowcount

    def _run_many(self, conn, sql, rows):
        conn.executemany(sql, rows)

    def close(self) -> None:
        self.conn.close()


class PostgresIndex(Index):
    dialect = POSTGRESQL

    def __init__(self, url: str, max_size: int = POOL_MAX):
        super().__init__()
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # the extra is only needed by a collector on PostgreSQL
            raise RuntimeError("PostgreSQL needs psycopg: pip install 'qm-station[postgresql]'") from exc
        self._psycopg = psycopg
        self.url = redact(url)
        # check: a pooled connection is tested before it is handed out (one round trip), so a
        # PostgreSQL restart costs the requests in flight, not every pooled connection's next user.
        self.pool = ConnectionPool(url, min_size=1, max_size=max_size, open=True, timeout=30,
                                   kwargs={"autocommit": True, "row_factory": dict_row},
                                   check=ConnectionPool.check_connection, name="qm-collector")
        self._sql: dict[str, str] = {}

    def _convert(self, sql: str) -> str:
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = to_format_style(sql)
        return converted

    def _borrow(self):
        return self.pool.connection()

    @contextlib.contextmanager
    def _begin(self, locks: list[str]):
        with self.pool.connection() as conn, conn.transaction():
            for name in locks:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])
            yield conn

    def _fetch(self, conn, sql, params):
        return conn.execute(self._convert(sql), params).fetchall()

    def _run(self, conn, sql, params):
        if params is None:
            return conn.execute(sql.encode()).rowcount  # bytes: run as written, no placeholders
        return conn.execute(self._convert(sql), params).rowcount

    def _run_many(self, conn, sql, rows):
        with conn.cursor() as cursor:
            cursor.executemany(self._convert(sql), rows)

    def close(self) -> None:
        self.pool.close()


def redact(url: str) -> str:
    """A database URL fit for logs and pages: the password left out."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0] in ("postgresql", "postgres")


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the index cannot be reached now" (answered 503, retried)."""
    errors: list[type[BaseException]] = [sqlite3.OperationalError]
    try:
        import psycopg
        from psycopg_pool import PoolTimeout
        errors += [psycopg.OperationalError, PoolTimeout]
    except ImportError:
        pass
    return tuple(errors)
