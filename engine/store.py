"""The store: one SQLAlchemy engine, SQLite embedded by default, PostgreSQL the same code path.

``Store(url).upgrade()`` creates or upgrades the schema with alembic.  SQLite runs in WAL mode
with foreign keys on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError

from parsers.errors import UsageError

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_URL = "sqlite:///edirecon.db"
#: seconds a SQLite writer waits for another process's write transaction (one transaction set)
SQLITE_BUSY_TIMEOUT = 600


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Where facts, ingestion records and refund history live."""

    def __init__(self, url: str = DEFAULT_URL):
        # "postgresql://" means the driver edirecon ships with (psycopg 3), not SQLAlchemy's default
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.url = url
        try:
            connect_args = {"timeout": SQLITE_BUSY_TIMEOUT} if url.startswith("sqlite") else {}
            self.engine: Engine = create_engine(url, future=True, connect_args=connect_args)
        except (ArgumentError, ImportError) as exc:
            raise UsageError(f"--db {url!r} is not a usable database URL ({exc})") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction.  On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so
        that processes ingesting side by side queue for it instead of failing on a stale read."""
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def analyze(self) -> None:
        """Refresh PostgreSQL's statistics of the fact tables after a bulk load, so that the
        indexed queries of detection by key are planned as such (autovacuum would come later)."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE claims, claim_lines, claim_payments, payment_lines, adjustments, provider_adjustments, "
                                     "remittances, patient_payments")

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database file and empty it (a TRUNCATE
        checkpoint), so that the processes reading next (the shards of ``decide``) find one file
        and no log to index.  A no-op on PostgreSQL, and when another connection is reading."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def upgrade(self, revision: str = "head") -> None:
        """Create the schema or bring it to the newest revision (alembic), or to ``revision``."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":  # processes starting together upgrade one at a time
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727271)")
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

    def dispose(self) -> None:
        self.engine.dispose()
