"""Alembic environment: migrations run on the connection edirecon hands over (see engine/store.py)."""

from __future__ import annotations

from alembic import context

from edirecon.engine.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - edirecon always passes its connection
    raise RuntimeError("run migrations through engine.store.Store.upgrade()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
