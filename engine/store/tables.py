"""Whole tables of the store read as they are: a count of rows, every row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from edirecon.engine.store import schema as t


def count_rows(conn: Connection, table: str) -> int:
    """How many rows the table named ``table`` holds."""
    return int(conn.execute(select(func.count()).select_from(t.metadata.tables[table])).scalar_one())


def all_rows(conn: Connection, table: str) -> list[dict[str, Any]]:
    """Every row of the table named ``table``, as dicts (in the order the database gives)."""
    return [dict(r) for r in conn.execute(select(t.metadata.tables[table])).mappings()]
