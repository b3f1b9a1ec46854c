"""Users, roles and API tokens (``edirecon.engine.workflow.users``; docs/users.md), on SQLite and
PostgreSQL: add, list and disable; passwords of at least 12 characters kept as argon2 hashes;
wrong passwords counted and the lock after MAX_FAILED_LOGINS; tokens stored as SHA-256 only,
refused once revoked or their user disabled; no password or token in any log event; a store of
revision 0007 upgrades.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from structlog.testing import capture_logs

from edirecon import mappings
from edirecon.engine.store import schema as t
from edirecon.engine.store.connection import HEAD, Store, open_store
from edirecon.engine.workflow import refunds
from edirecon.engine.workflow import users as u
from edirecon.errors import Forbidden, Unauthorized, UsageError

PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url, create=True)
    yield s
    s.dispose()


def rows(store: Store, table: Any) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


def test_add_list_and_disable(store: Store) -> None:
    u.add_user(store, "alice", "admin", PASSWORD)
    u.add_user(store, "bob.smith@clinic", "viewer", "another long password")
    assert [(x.name, x.role, x.disabled_at, x.active_tokens) for x in u.users(store)] == [
        ("alice", "admin", None, 0),
        ("bob.smith@clinic", "viewer", None, 0),
    ]
    with pytest.raises(UsageError, match="a user named 'alice' already exists"):
        u.add_user(store, "alice", "viewer", PASSWORD)
    with pytest.raises(UsageError, match="role 'boss' is not one of viewer, analyst, approver, admin"):
        u.add_user(store, "carol", "boss", PASSWORD)
    with pytest.raises(UsageError, match="is not one"):
        u.add_user(store, "carol smith", "viewer", PASSWORD)
    user, changed = u.disable_user(store, "bob.smith@clinic")
    assert changed and user.disabled_at is not None
    assert u.disable_user(store, "bob.smith@clinic")[1] is False
    with pytest.raises(UsageError, match="no user 'nobody'"):
        u.disable_user(store, "nobody")
    listed = {x.name: x for x in u.users(store)}
    assert listed["bob.smith@clinic"].disabled_at == user.disabled_at
    assert listed["bob.smith@clinic"].state(u.now()).startswith("disabled since ")
    assert listed["alice"].state(u.now()) == "active"


def test_a_password_too_short_is_refused_and_nothing_stored(store: Store) -> None:
    with pytest.raises(UsageError, match="the password is too short: at least 12 characters") as refused:
        u.add_user(store, "alice", "admin", "elevenchars")
    assert "elevenchars" not in str(refused.value)
    assert rows(store, t.users) == []
    u.add_user(store, "alice", "admin", "twelve chars")  # 12 is enough
    with pytest.raises(UsageError, match="too short"):
        u.set_password(store, "alice", "short")


def test_the_password_is_stored_as_an_argon2_hash_and_logs_in(store: Store) -> None:
    u.add_user(store, "alice", "analyst", PASSWORD)
    (row,) = rows(store, t.users)
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    assert u.login(store, "alice", PASSWORD).role == "analyst"
    with pytest.raises(Unauthorized, match=r"^wrong user name or password$"):
        u.login(store, "nobody", PASSWORD)
    u.set_password(store, "alice", "a brand new password")
    with pytest.raises(Unauthorized):
        u.login(store, "alice", PASSWORD)
    assert u.login(store, "alice", "a brand new password").name == "alice"


def test_wrong_passwords_are_counted_and_lock_the_user(store: Store) -> None:
    u.add_user(store, "alice", "approver", PASSWORD)
    at = u.now()
    for n in range(1, u.MAX_FAILED_LOGINS):
        with pytest.raises(Unauthorized, match=r"^wrong user name or password$"):
            u.login(store, "alice", "not the password", at)
        assert rows(store, t.users)[0]["failed_logins"] == n  # committed although the login raised
    u.login(store, "alice", PASSWORD, at)  # a success resets the count
    assert rows(store, t.users)[0]["failed_logins"] == 0
    for _ in range(u.MAX_FAILED_LOGINS):
        with pytest.raises(Unauthorized, match="wrong user name or password"):
            u.login(store, "alice", "not the password", at)
    (row,) = rows(store, t.users)
    assert row["locked_until"] == at + timedelta(minutes=u.LOCK_MINUTES)
    # locked: even the right password is refused until then
    with pytest.raises(Unauthorized, match="alice is locked after 5 failed logins until"):
        u.login(store, "alice", PASSWORD, at + timedelta(minutes=u.LOCK_MINUTES - 1))
    assert u.get_user(store, "alice").state(at).startswith("locked until ")
    assert u.login(store, "alice", PASSWORD, at + timedelta(minutes=u.LOCK_MINUTES, seconds=1)).name == "alice"
    assert rows(store, t.users)[0]["locked_until"] is None


def test_failed_logins_at_the_same_time_all_count(store: Store) -> None:
    """Wrong passwords tried at once (the app serves requests in parallel) are each counted: the
    user's row is read for update, so no count is lost and the lock cannot be outrun."""
    u.add_user(store, "alice", "viewer", PASSWORD)
    tries = u.MAX_FAILED_LOGINS - 1

    def wrong(_: int) -> bool:
        try:
            u.login(store, "alice", "not the password")
        except Unauthorized:
            return True
        return False

    with ThreadPoolExecutor(tries) as pool:
        assert all(pool.map(wrong, range(tries)))
    assert rows(store, t.users)[0]["failed_logins"] == tries


def test_a_disabled_user_cannot_log_in(store: Store) -> None:
    u.add_user(store, "alice", "admin", PASSWORD)
    u.disable_user(store, "alice")
    with pytest.raises(Unauthorized, match="user alice is disabled"):
        u.login(store, "alice", PASSWORD)


def test_a_token_verifies_and_is_stored_only_as_its_sha256(store: Store) -> None:
    u.add_user(store, "alice", "approver", PASSWORD)
    token = u.create_token(store, "alice")
    assert token.text.startswith(f"edr_{token.token_id}_") and len(token.text) == 4 + 8 + 1 + 43
    (row,) = rows(store, t.api_tokens)
    assert row["token_id"] == token.token_id and row["revoked_at"] is None
    assert row["token_sha256"] == hashlib.sha256(token.text.encode()).hexdigest()
    secret = token.text.rsplit("_", 1)[1]
    assert not [v for v in row.values() if isinstance(v, str) and (token.text in v or secret in v)]
    user = u.resolve_token(store, token.text)
    assert (user.name, user.role) == ("alice", "approver")
    assert user.may("approve") and not user.may(u.MANAGE_USERS)
    with pytest.raises(Unauthorized, match="not a valid API token"):
        u.resolve_token(store, token.text[:-1] + ("A" if token.text[-1] != "A" else "B"))
    assert u.users(store)[0].active_tokens == 1


def test_a_revoked_token_is_refused(store: Store) -> None:
    u.add_user(store, "alice", "admin", PASSWORD)
    kept, revoked = u.create_token(store, "alice"), u.create_token(store, "alice")
    assert u.revoke_token(store, revoked.token_id) == (revoked.token_id, "alice", True)
    assert u.revoke_token(store, revoked.text) == (revoked.token_id, "alice", False)  # by its whole text too
    with pytest.raises(Unauthorized, match=f"API token {revoked.token_id} is revoked"):
        u.resolve_token(store, revoked.text)
    assert u.resolve_token(store, kept.text).name == "alice"
    assert u.users(store)[0].active_tokens == 1
    with pytest.raises(UsageError, match="no API token 'deadbeef'"):
        u.revoke_token(store, "deadbeef")


def test_a_disabled_users_token_is_refused(store: Store) -> None:
    u.add_user(store, "alice", "admin", PASSWORD)
    token = u.create_token(store, "alice")
    u.disable_user(store, "alice")
    with pytest.raises(Unauthorized, match="user alice is disabled"):
        u.resolve_token(store, token.text)
    with pytest.raises(UsageError, match="disabled"):
        u.create_token(store, "alice")


def test_roles_allow_their_actions() -> None:
    """A viewer only reads; an analyst holds, notes, assigns; an approver also takes every manual
    action of the workflow; an admin also manages users.  Each role allows what the one below does."""
    assert u.ROLES == tuple(mappings.registry("role")) == ("viewer", "analyst", "approver", "admin")
    assert set(u.ROLE_ACTIONS) == set(u.ROLES)
    assert u.ROLE_ACTIONS["viewer"] == frozenset()
    assert u.ROLE_ACTIONS["analyst"] == {"hold", "note", "assign"}
    assert set(refunds.MANUAL) <= u.ROLE_ACTIONS["approver"]
    assert u.MANAGE_USERS in u.ROLE_ACTIONS["admin"] and u.MANAGE_USERS not in u.ROLE_ACTIONS["approver"]
    for lower, higher in zip(u.ROLES, u.ROLES[1:]):
        assert u.ROLE_ACTIONS[lower] < u.ROLE_ACTIONS[higher]
    viewer = u.User("v", "viewer", u.now())
    with pytest.raises(Forbidden, match=r"user v \(viewer\) may not approve"):
        viewer.require("approve")
    u.User("a", "analyst", u.now()).require("hold")
    with pytest.raises(Forbidden):
        u.User("a", "analyst", u.now()).require("void")
    assert not u.User("x", "admin", u.now(), disabled_at=u.now()).may("hold")


def test_no_password_or_token_in_any_log_event(store: Store) -> None:
    """Every event of the user and token functions, rendered as the CLI renders them (JSON), names
    users and token ids, never a password, its hash or a token."""
    with capture_logs() as events:
        u.add_user(store, "alice", "admin", PASSWORD)
        u.login(store, "alice", PASSWORD)
        for _ in range(u.MAX_FAILED_LOGINS):
            with pytest.raises(Unauthorized):
                u.login(store, "alice", "wrong password typed")
        with pytest.raises(Unauthorized):
            u.login(store, "correct horse in the name field", PASSWORD)
        u.set_password(store, "alice", "a brand new password")
        token = u.create_token(store, "alice")
        u.resolve_token(store, token.text)
        u.revoke_token(store, token.token_id)
        with pytest.raises(Unauthorized):
            u.resolve_token(store, token.text)
        u.disable_user(store, "alice")
    names = [e["event"] for e in events]
    assert {
        "user_added",
        "login",
        "login_refused",
        "user_locked",
        "user_password_set",
        "token_created",
        "token_revoked",
        "token_refused",
        "user_disabled",
    } <= set(names)
    text = json.dumps(events, default=str)
    password_hash = rows(store, t.users)[0]["password_hash"]
    for secret in (PASSWORD, "wrong password typed", "correct horse in the name field", "a brand new password", token.text, token.text[13:], password_hash):
        assert secret not in text
    assert token.token_id in text  # the id names it


def test_the_schema_of_0008_is_the_model(store: Store) -> None:
    """The migration makes users and api_tokens as schema.py declares them (autogenerate finds no difference)."""
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert [d for d in diff if "users" in repr(d) or "api_tokens" in repr(d)] == []


def test_upgrade_of_a_store_made_at_revision_0007(store_url: str) -> None:
    """A store at revision 0007 (with a refund's audit trail) upgrades on the first user command:
    it gains the two tables, empty, and what it held is kept."""
    store = Store(store_url)
    store.upgrade("0007")
    at = u.now()
    with store.write() as conn:
        conn.execute(
            t.refund_workflow.insert().values(
                refund_id="RF-1",
                status="pending",
                reason="DUPLICATE_PAYMENT",
                payee_type="payer",
                payer_id="P1",
                amount="10.00",
                method="",
                reference="",
                acknowledged_by="",
                double_refund_traces="",
                updated_at=at,
            )
        )
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == "0007"
        assert "users" not in store.engine.dialect.get_table_names(conn)
    store.dispose()
    upgraded = open_store(store_url)  # what every user command does
    try:
        with upgraded.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == HEAD
            assert [r.refund_id for r in conn.execute(select(t.refund_workflow.c.refund_id))] == ["RF-1"]
        assert u.users(upgraded) == []
        u.add_user(upgraded, "alice", "admin", PASSWORD)
        assert u.resolve_token(upgraded, u.create_token(upgraded, "alice").text).name == "alice"
    finally:
        upgraded.dispose()
    structlog.reset_defaults()
