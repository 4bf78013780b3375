"""The collector's index opened and migrated: SQLite in its data folder, or PostgreSQL by URL."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from qmbase.platform import make_private_dir

from .index import Index, PostgresIndex, SqliteIndex, is_postgres_url
from .schema import MIGRATIONS

DB_NAME = "collector.db"
MIGRATION_LOCK = "schema-migrations"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def open_db(data_dir: str | Path, db_url: str | None = None) -> Index:
    """Open (creating and migrating) the collector's index: ``db_url`` (``postgresql://…``,
    ``sqlite:///FILE``) or, by default, ``collector.db`` in ``data_dir``."""
    if is_postgres_url(db_url):
        index: Index = PostgresIndex(db_url)
    else:
        if db_url and db_url.startswith("sqlite:///"):
            path = Path(db_url[len("sqlite:///"):])
            make_private_dir(path.parent)
        elif db_url:
            raise ValueError(f"不支持的数据库地址：{db_url}（应为 postgresql://… 或 sqlite:///文件） / "
                             f"Unsupported database URL: {db_url} (use postgresql://… or sqlite:///FILE)")
        else:
            # tokens' hashes, names of schools and sittings: private to the collector's user
            path = make_private_dir(Path(data_dir)) / DB_NAME
        index = SqliteIndex(path)
    try:
        migrate(index)
    except BaseException:
        index.close()
        raise
    return index


def schema_version(index: Index) -> int:
    return int(index.value("SELECT coalesce(max(version), 0) FROM schema_version"))


def migrate(index: Index) -> None:
    """Apply the migrations this index lacks, each with its version in one transaction. Several
    collector processes starting at once on one PostgreSQL take turns (an advisory lock)."""
    with index.transaction(MIGRATION_LOCK):
        index.execute("CREATE TABLE IF NOT EXISTS schema_version "
                      "(version INTEGER PRIMARY KEY, applied_at TEXT)")
        if index.dialect == "sqlite" and not schema_version(index):
            # Databases made before this table kept their version in SQLite's user_version.
            for number in range(1, int(index.value("PRAGMA user_version")) + 1):
                index.insert("schema_version", {"version": number, "applied_at": None})
    while True:
        with index.transaction(MIGRATION_LOCK):
            version = schema_version(index)
            if version >= len(MIGRATIONS):
                if version > len(MIGRATIONS):
                    raise RuntimeError(
                        f"数据库结构版本 {version} 比本程序新（{len(MIGRATIONS)}）：请升级收集端程序。 / "
                        f"The database's schema version {version} is newer than this program's "
                        f"({len(MIGRATIONS)}): upgrade the collector.")
                return
            index.script(MIGRATIONS[version](index.dialect))
            index.insert("schema_version", {"version": version + 1, "applied_at": now_iso()})
