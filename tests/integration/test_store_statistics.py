"""After a large load, PostgreSQL's planner gets the statistics of what changed (``Store.refresh_statistics``,
called by ``run`` and ``watch`` before deciding): on a store just built, before autovacuum's analysis,
a refund's page and every API call of 20 users were read by sequential scans (2-9 s at 1,000,000 claims)."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from edirecon.engine.store.connection import open_store


def _modified(conn, table: str) -> int:  # type: ignore[no-untyped-def]
    row = conn.execute(text("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}).first()
    return int(row[0]) if row else 0


def test_a_large_load_is_analysed_and_a_small_one_is_not(pg_url: str) -> None:
    store = open_store(pg_url, create=True)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("CREATE TABLE loaded (n integer)"))
            conn.execute(text("INSERT INTO loaded SELECT g FROM generate_series(1, 5000) g"))
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        with store.engine.connect() as conn:  # the counters reach the shared statistics when the session is idle
            deadline = time.monotonic() + 20
            while _modified(conn, "loaded") < 5000 and time.monotonic() < deadline:
                time.sleep(0.2)
                conn.rollback()
            assert _modified(conn, "loaded") == 5000
        assert "loaded" in store.refresh_statistics()
        with store.engine.connect() as conn:
            analysed = conn.execute(text("SELECT last_analyze IS NOT NULL, n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'loaded'")).one()
            assert tuple(analysed) == (True, 0)
            assert conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'loaded'")).scalar_one() == 5000
        # a small batch into it (under 50 + 10 % of its rows) is left to autovacuum
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO loaded SELECT g FROM generate_series(1, 100) g"))
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        time.sleep(1.5)
        assert "loaded" not in store.refresh_statistics()
    finally:
        store.dispose()


def test_sqlite_has_nothing_to_analyse(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}", create=True)
    try:
        assert store.refresh_statistics() == []
    finally:
        store.dispose()


def test_the_fact_tables_are_analysed_in_two_sessions_side_by_side(pg_url: str) -> None:
    """After a bulk load (``Store.analyze``) the fact tables are analysed in two sessions at once,
    each table once, the claims (the widest) apart from the largest others."""
    from sqlalchemy import event

    from edirecon.engine.store.connection import FACT_TABLES

    store = open_store(pg_url, create=True)
    analysed: dict[int, list[str]] = {}

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("ANALYZE "):
            analysed.setdefault(id(conn.connection.dbapi_connection), []).extend(n.strip().strip('"') for n in statement[8:].split(","))

    try:
        event.listen(store.engine, "before_cursor_execute", seen)
        store.analyze()
        assert len(analysed) == 2
        assert sorted(n for names in analysed.values() for n in names) == sorted(FACT_TABLES)
        assert not any({"claims", "claim_payments"} <= set(names) for names in analysed.values())
        with store.engine.connect() as conn:
            never = conn.execute(
                text("SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:t) AND last_analyze IS NULL"), {"t": list(FACT_TABLES)}
            ).all()
            assert never == []
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
        store.dispose()
