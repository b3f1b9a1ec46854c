"""The SQL of users and API tokens (``engine.workflow.users``): the ``users`` and ``api_tokens``
tables of schema.py.  Only hashes are stored: the argon2 hash of a password, the SHA-256 of a
token (why: schema.py).  Each function runs on the connection it is given, in its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from edirecon.engine.store import schema as t


def user_by_name(conn: Connection, name: str, for_update: bool = False) -> dict[str, Any] | None:
    """The ``users`` row of this name, or None.  ``for_update``: locked until the transaction
    ends (PostgreSQL's SELECT ... FOR UPDATE; a SQLite write transaction holds the whole store),
    so that two failed logins at once both count."""
    query = select(t.users).where(t.users.c.name == name)
    row = conn.execute(query.with_for_update() if for_update else query).mappings().first()
    return dict(row) if row is not None else None


def all_users(conn: Connection) -> list[dict[str, Any]]:
    """Every ``users`` row by name, with ``active_tokens``: its tokens not revoked."""
    active = (
        select(t.api_tokens.c.user_id, func.count().label("active_tokens"))
        .where(t.api_tokens.c.revoked_at.is_(None))
        .group_by(t.api_tokens.c.user_id)
        .subquery()
    )
    query = (
        select(t.users, func.coalesce(active.c.active_tokens, 0).label("active_tokens"))
        .select_from(t.users.outerjoin(active, active.c.user_id == t.users.c.id))
        .order_by(t.users.c.name)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def insert_user(conn: Connection, name: str, role: str, password_hash: str, created_at: datetime) -> int:
    """A new user (none of this name may exist: the name is unique); its id."""
    result = conn.execute(
        insert(t.users).values(name=name, role=role, password_hash=password_hash, failed_logins=0, created_at=created_at).returning(t.users.c.id)
    )
    return int(result.scalar_one())


def update_user(conn: Connection, user_id: int, **values: Any) -> None:
    """Set columns of one user (password_hash, failed_logins, locked_until, disabled_at)."""
    conn.execute(update(t.users).where(t.users.c.id == user_id).values(**values))


def insert_token(conn: Connection, token_id: str, user_id: int, token_sha256: str, created_at: datetime) -> None:
    """A new API token of a user, by its id and the SHA-256 of its text."""
    conn.execute(insert(t.api_tokens).values(token_id=token_id, user_id=user_id, token_sha256=token_sha256, created_at=created_at))


def _token_query() -> Any:
    tk, u = t.api_tokens.c, t.users.c
    return select(
        tk.token_id, tk.created_at, tk.revoked_at, u.name, u.role, u.disabled_at, u.locked_until, u.failed_logins, u.created_at.label("user_created_at")
    ).select_from(t.api_tokens.join(t.users, t.users.c.id == tk.user_id))


def token_by_sha256(conn: Connection, token_sha256: str) -> dict[str, Any] | None:
    """The token of this SHA-256 with its user's columns (name, role, disabled_at ...), or None."""
    row = conn.execute(_token_query().where(t.api_tokens.c.token_sha256 == token_sha256)).mappings().first()
    return dict(row) if row is not None else None


def token_by_id(conn: Connection, token_id: str) -> dict[str, Any] | None:
    """The token of this id with its user's columns, or None."""
    row = conn.execute(_token_query().where(t.api_tokens.c.token_id == token_id)).mappings().first()
    return dict(row) if row is not None else None


def revoke_token(conn: Connection, token_id: str, at: datetime) -> None:
    """Mark a token revoked (kept, so that its id stays known)."""
    conn.execute(update(t.api_tokens).where(t.api_tokens.c.token_id == token_id).values(revoked_at=at))
