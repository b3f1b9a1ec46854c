"""The store: one SQLAlchemy engine, SQLite embedded by default, PostgreSQL the same code path.

``Store(url).upgrade()`` creates or upgrades the schema with alembic.  SQLite runs in WAL mode
with foreign keys on.  ``open_store(url, create=...)`` opens a store for a command: only the
commands that ingest (run, watch, worker) create one; the others require one to exist.

What a store can raise (a file that is not a database, a schema revision of a newer edirecon, a
read-only file, a server that cannot be reached) becomes one :class:`StoreUnavailable` line by
``store_error``: the kind of failure, never SQL or its parameters (claim rows are patient data).
Every text that can carry a database URL goes through ``mask_credentials``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from edirecon.errors import EdireconError, StoreUnavailable, UsageError

MIGRATIONS = Path(__file__).parent / "migrations"
#: alembic's ``command.upgrade`` keeps its context in module globals: one upgrade at a time in a
#: process whose threads open stores side by side (the requests of ``edirecon serve``)
_UPGRADING = threading.Lock()

#: the newest schema revision: its file is the highest numbered under migrations/versions/
#: (revision ids are those numbers, one after the other)
HEAD = max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def is_migration_error(exc: BaseException) -> bool:
    """An alembic ``CommandError`` (told by its class: alembic is imported only to migrate)."""
    return any(c.__name__ == "CommandError" and c.__module__.startswith("alembic") for c in type(exc).__mro__)


DEFAULT_URL = "sqlite:///edirecon.db"
#: seconds a SQLite writer waits for another process's write transaction (one transaction set)
SQLITE_BUSY_TIMEOUT = 600
#: pages of SQLite's write-ahead log that trigger a checkpoint (``_sqlite_pragmas``)
WAL_PAGES = 20_000
#: the tables a bulk load fills (``Store.analyze``)
FACT_TABLES = ("claims", "claim_lines", "claim_payments", "payment_lines", "adjustments", "provider_adjustments", "remittances", "patient_payments")


#: user:password@ in a URL (greedy to the last @ of the word: too much masked is safe), and libpq's password=
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*):[^\s'\"]*@")
_KEY_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'[^']*'|[^\s'\"]+)", re.IGNORECASE)


def mask_credentials(text: object) -> str:
    """``text`` with the password of every database URL in it (``scheme://user:password@``, and
    libpq's ``password=...``) replaced by ``***``: for every message and log event that can carry
    a URL."""
    return _KEY_PASSWORD.sub(r"\g<head>***", _URL_PASSWORD.sub(r"\g<head>:***@", str(text)))


def store_error(exc: BaseException, url: str) -> StoreUnavailable:
    """What a database or migration error means for the user, as one line without SQL, its
    parameters or a password."""
    where = f"the store at {mask_credentials(url)}" if url else "the store"
    if is_migration_error(exc):
        found = re.search(r"revision identified by '([^']*)'", str(exc))
        if found:
            return StoreUnavailable(
                f"{where} was made by a newer edirecon (its schema revision {found.group(1)[:40]!r} is unknown to this version): upgrade edirecon to use it"
            )
        return StoreUnavailable(f"{where} cannot be migrated: {mask_credentials(_first_line(exc))}")
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    text = _first_line(orig if orig is not None else exc).lower()
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if "file is not a database" in text or "file is encrypted" in text:
        return StoreUnavailable(f"{where} is not a database (file is not a database): give the path of an edirecon store with --db")
    if "readonly" in text or "read-only" in text or sqlstate in ("25006", "42501"):
        return StoreUnavailable(f"{where} is read-only: edirecon writes to its store (the refund workflow too); give a writable --db")
    if "unable to open database file" in text:
        return StoreUnavailable(f"{where} cannot be opened: its folder is missing or not writable")
    if "database is locked" in text:
        return StoreUnavailable(f"{where} is locked by another process: try again when it is done")
    if "disk is full" in text or "disk i/o error" in text:
        return StoreUnavailable(f"{where} cannot be written: {text}")
    if "does not exist" in text and sqlstate in ("3D000", ""):
        return StoreUnavailable(f"{where} cannot be opened: the database does not exist (create it, or give another --db)")
    if orig is not None and (sqlstate.startswith("08") or "connection" in text or "password authentication" in text):
        return StoreUnavailable(f"{where} cannot be opened: {mask_credentials(_first_line(orig))}")
    kind = type(orig if orig is not None else exc).__name__
    return StoreUnavailable(f"{where} failed: a database error ({kind}{', SQLSTATE ' + sqlstate if sqlstate else ''})")


def error_text(exc: BaseException) -> str:
    """Any error as one line for a message or a record: a database error by its kind
    (``store_error``), any other by its type and text; passwords masked."""
    if isinstance(exc, SQLAlchemyError) or is_migration_error(exc):
        return f"{type(exc).__name__}: {store_error(exc, '')}"
    return mask_credentials(f"{type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: object) -> str:
    """The first line of an error's text (psycopg adds hints and DETAIL lines, which can quote row
    values), white space folded."""
    lines = str(exc).strip().splitlines()
    return " ".join(lines[0].split()) if lines else ""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # the write-ahead log folded into the database every WAL_PAGES pages rather than SQLite's 1,000:
    # ingest rewrites the same index pages many times between two checkpoints, each copied once
    # (100,000-encounter mix, two workers, 8 of 8 runs side by side: ingest 11.8 -> 11.0 s).  ``run``
    # empties the log after ingesting (``checkpoint``); between two, the log holds at most ~80 MiB
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Where facts, ingestion records and refund history live."""

    def __init__(self, url: str = DEFAULT_URL, connections: int | None = None):
        """``connections``: how many connections the pool keeps open and how many more it may open
        at a busy moment (SQLAlchemy's defaults, 5 and 10, when None): ``edirecon serve`` answers
        many requests at once, each with a connection or two."""
        # "postgresql://" means the driver edirecon ships with (psycopg 3), not SQLAlchemy's default
        given = self.given_url = url  # as the user wrote it: what messages show (masked)
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.url = url
        try:
            connect_args = {"timeout": SQLITE_BUSY_TIMEOUT} if url.startswith("sqlite") else {}
            pool = {} if connections is None else {"pool_size": connections, "max_overflow": connections}
            self.engine: Engine = create_engine(url, future=True, connect_args=connect_args, **pool)
        except ValueError as exc:  # SQLAlchemy's URL parser: a port that is not a number
            raise UsageError(f"--db {mask_credentials(given)!r} is not a usable database URL (its port is not a number)") from exc
        except (ArgumentError, ImportError) as exc:
            raise UsageError(
                f"--db {mask_credentials(given)!r} is not a usable database URL: give a sqlite:/// or postgresql:// URL ({mask_credentials(_first_line(exc))})"
            ) from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # the threads of one process (``edirecon serve``) take turns at SQLite's write lock here,
        # in order, rather than each polling the lock in SQLite's busy handler (sleeps of up to
        # 100 ms between tries); other processes still queue in the busy handler
        self._writer = threading.RLock()

    @property
    def where(self) -> str:
        """The URL to show in messages and logs: its password masked."""
        return mask_credentials(self.given_url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction.  On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so
        that processes ingesting side by side queue for it instead of failing on a stale read."""
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        with self._writer, self.engine.begin() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    @contextmanager
    def write_if_free(self) -> Iterator[Connection | None]:
        """A write transaction if SQLite's write lock is free at once, else None (and nothing is
        written): a process that has other work in hand (the next transaction sets to parse) does
        it rather than wait.  On PostgreSQL, whose writers do not exclude each other, always a
        write transaction."""
        if self.engine.dialect.name != "sqlite":
            with self.write() as conn:
                yield conn
            return
        with self._writer, self.engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                free = True
            except DBAPIError as exc:
                if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                    raise
                free = False
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
            yield conn if free else None

    def analyze(self) -> None:
        """Refresh PostgreSQL's statistics of the fact tables after a bulk load, so that the
        indexed queries of detection by key are planned as such (autovacuum would come later)."""
        if self.engine.dialect.name == "postgresql":
            self._analyze(list(FACT_TABLES))

    def _analyze(self, tables: list[str]) -> None:
        """``ANALYZE`` the tables (PostgreSQL), in two sessions side by side when there are several:
        one statement analyses its tables one after another on one of the server's cores (the
        fact tables of 100,000 encounters: 1.9 s, of which the claims, with their many columns,
        0.9 s).  The tables are dealt out by what the analysis reads: its sample (at most 30,000
        rows a table, at the default statistics target) times the columns."""
        quote = self.engine.dialect.identifier_preparer.quote
        with self.engine.connect() as conn:
            sizes = dict(
                conn.exec_driver_sql(
                    "SELECT c.relname, (LEAST(GREATEST(c.reltuples, s.n_live_tup, 1), 30000) * c.relnatts)::bigint FROM pg_class c"
                    " JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE s.schemaname = current_schema()"
                ).all()
            )
        groups: list[list[str]] = [[], []]
        weights = [0, 0]
        for name in sorted(tables, key=lambda n: (-sizes.get(n, 1), n)):  # the heaviest first, each to the lighter session
            k = weights.index(min(weights))
            groups[k].append(name)
            weights[k] += sizes.get(name, 1)
        groups = [g for g in groups if g]

        def analyze(names: list[str]) -> None:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE " + ", ".join(quote(n) for n in names))

        if len(groups) == 1:
            analyze(groups[0])
            return
        # deferred: a thread pool only for the analysis of several tables (PostgreSQL)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(groups)) as pool:  # the server works; these threads wait for it
            for done in [pool.submit(analyze, g) for g in groups]:
                done.result()

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database file and empty it (a TRUNCATE
        checkpoint), so that the processes reading next (the shards of ``decide``) find one file
        and no log to index.  A no-op on PostgreSQL, and when another connection is reading."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def refresh_statistics(self) -> list[str]:
        """After a large load, give PostgreSQL's planner the statistics of the tables that changed
        (``ANALYZE``), as autovacuum would some minutes later: by its default rule, a table whose
        rows changed since its last analysis by more than 50 + 10 % of its rows.  Without them the
        planner read a refund's claim-number closure on a store just built by sequential scans (1,000,000 claims: a
        refund's page 0.38 s, every call of 20 users 2-9 s; after ANALYZE, 1.9 s, 0.02 s).  A small batch
        into a large store analyses nothing.  The tables analysed; a no-op on SQLite."""
        if self.engine.dialect.name != "postgresql":
            return []
        with self.engine.connect() as conn:
            changed = [
                name
                for (name,) in conn.exec_driver_sql(
                    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema()"
                    " AND n_mod_since_analyze > 50 + 0.1 * GREATEST(n_live_tup, 0) ORDER BY relname"
                )
            ]
        if changed:
            self._analyze(changed)
        return changed

    def upgrade(self, revision: str = "head") -> None:
        """Create the schema or bring it to the newest revision (alembic), or to ``revision``.  A
        store at the newest revision already is left as it is without loading alembic (one query:
        every command opens its store this way)."""
        if revision == "head" and self.revision() == HEAD:
            return
        # deferred: alembic (and its migration scripts) only when the schema has to change
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with _UPGRADING, self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":  # processes starting together upgrade one at a time
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727271)")
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

    def revision(self) -> str | None:
        """The store's schema revision (None: no schema yet, or not readable)."""
        try:
            with self.engine.connect() as conn:
                found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except SQLAlchemyError:
            return None
        return None if found is None else str(found)

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str, create: bool = False, connections: int | None = None) -> Store:
    """The store at ``url``, its schema created (``create``) or brought to the newest revision.

    Without ``create`` (every command but run, watch and worker) a store must already be there:
    none is a :class:`StoreUnavailable` and nothing is created.  Any failure is one
    :class:`StoreUnavailable` line (``store_error``), and the store is left as it was."""
    store = Store(url, connections)
    try:
        if not create:
            _require(store)
        store.upgrade()
    except SQLAlchemyError as exc:
        store.dispose()
        raise store_error(exc, url) from None
    except EdireconError:
        store.dispose()
        raise
    except Exception as exc:
        store.dispose()
        if is_migration_error(exc):
            raise store_error(exc, url) from None
        raise
    return store


def sqlite_path(store: Store) -> Path | None:
    """The file of a SQLite store (also for ``sqlite:///file:...?mode=ro&uri=true``); None for
    PostgreSQL and an in-memory store."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    name = url.database
    if url.query.get("uri") in ("true", "1") and name.startswith("file:"):
        name = name[len("file:") :].split("?", 1)[0]
        if name.startswith("//"):  # file://host/path: only the local form is meant
            name = name[2:].partition("/")[2]
            name = "/" + name
    return Path(name)


def _require(store: Store) -> None:
    """No store at ``store``'s URL: a one-line error, and nothing created."""
    path = sqlite_path(store)
    hint = "run `edirecon run` (or watch) to create one, or give --db (or EDIRECON_DB) the store's URL"
    if path is not None:
        if path.is_dir():
            raise StoreUnavailable(f"--db {store.where}: {path} is a folder, not a store file")
        if not path.is_file() or path.stat().st_size == 0:
            raise StoreUnavailable(f"no store at {path}: {hint}")
        return
    if store.engine.url.get_backend_name() == "sqlite":
        return  # in memory
    with store.engine.connect() as conn:
        exists = conn.exec_driver_sql("SELECT to_regclass('alembic_version') IS NOT NULL").scalar_one()
    if not exists:
        raise StoreUnavailable(f"no store in the database {store.where}: {hint}")
