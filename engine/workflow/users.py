"""Users, roles and API tokens (``edirecon user``, ``edirecon token``; the web app of ``edirecon
serve`` logs in through the same functions): docs/users.md.

- a user has a name, one role (the ``role`` family of mappings/codes.csv) and a password of at
  least MIN_PASSWORD_LENGTH characters, kept as an argon2id hash (argon2-cffi);
- MAX_FAILED_LOGINS wrong passwords in a row lock the user for LOCK_MINUTES: no login then, even
  with the right password; a success resets the count;
- an API token is ``edr_<token id>_<secret>``, shown once and stored as its SHA-256 (schema.py
  says why); it acts for its user alone, and is refused once revoked or its user disabled;
- ``ROLE_ACTIONS``: the workflow actions each role may take (everyone may read).

No password, password hash or token is ever logged or put in an error message; log events name
the user and the token id only.  The SQL is in ``engine.store.users``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from edirecon import mappings
from edirecon.engine.logging import get_logger
from edirecon.engine.store import users as st
from edirecon.engine.store.connection import Store
from edirecon.errors import Forbidden, Unauthorized, UsageError

log = get_logger("edirecon.users")

#: the roles, from least to most allowed (the ``role`` family of mappings/codes.csv)
ROLES = tuple(mappings.registry("role"))
MIN_PASSWORD_LENGTH = 12
#: longer is refused: hashing megabytes of "password" is a way to load the server
MAX_PASSWORD_LENGTH = 1024
#: wrong passwords in a row that lock a user, and for how long
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
#: how long a login of ``edirecon serve`` lasts (its signed session cookie expires then)
SESSION_HOURS = 8
#: the action of managing users and their tokens (admin only; the CLI's own user is trusted as the store's owner)
MANAGE_USERS = "manage-users"

_ANALYST = frozenset({"hold", "note", "assign"})
_APPROVER = _ANALYST | {"approve", "mark-sent", "void", "mark-cashed", "mark-recovered", "acknowledge"}
#: role -> the workflow actions it may take (together, exactly ``refunds.ACTIONS``: tests/integration/test_refund_actions.py); reading needs none
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(),
    "analyst": _ANALYST,
    "approver": _APPROVER,
    "admin": _APPROVER | {MANAGE_USERS},
}

#: a user name: it is also the audit trail's user_name (64 characters at most)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN_PREFIX = "edr_"
_TOKEN = re.compile(rf"{TOKEN_PREFIX}([0-9a-f]{{8}})_[A-Za-z0-9_-]{{43}}")

_hasher = PasswordHasher()  # argon2id with the library's defaults (RFC 9106's low-memory profile)
#: checked against when the user name is unknown, so that a wrong name takes as long as a wrong password
_NOBODY = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    """A user as the app and the CLI see it (never its password hash)."""

    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None = None
    locked_until: datetime | None = None
    failed_logins: int = 0
    active_tokens: int = 0

    def may(self, action: str) -> bool:
        """Whether this user's role allows the action (a disabled user may do nothing)."""
        return self.disabled_at is None and action in ROLE_ACTIONS[self.role]

    def require(self, action: str) -> None:
        """Raise :class:`Forbidden` unless this user may take the action."""
        if not self.may(action):
            raise Forbidden(f"user {self.name} ({self.role}) may not {action}")

    def state(self, at: datetime) -> str:
        """active, disabled, or locked until ... (UTC)."""
        if self.disabled_at is not None:
            return f"disabled since {self.disabled_at:%Y-%m-%d %H:%M}"
        if self.locked_until is not None and self.locked_until > at:
            return f"locked until {self.locked_until:%Y-%m-%d %H:%M} UTC"
        return "active"


@dataclass(frozen=True)
class Token:
    """A token just made: its text is shown once, then only its SHA-256 is kept."""

    token_id: str
    user: str
    text: str


def now() -> datetime:
    """UTC, without tzinfo (the store's DateTime columns are naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _user(row: dict[str, Any]) -> User:
    return User(
        name=row["name"],
        role=row["role"],
        created_at=row.get("user_created_at") or row["created_at"],
        disabled_at=row["disabled_at"],
        locked_until=row["locked_until"],
        failed_logins=row["failed_logins"],
        active_tokens=row.get("active_tokens", 0),
    )


def check_name(name: str) -> str:
    """A user name: letters, digits and ``. _ @ -``, at most 64 characters (a usage error otherwise)."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"user name {name[:70]!r} is not one: 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"role {role[:40]!r} is not one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    """A password of MIN_PASSWORD_LENGTH to MAX_PASSWORD_LENGTH characters (the message never shows it)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UsageError(f"the password is too long: at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _existing(row: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if row is None:
        raise UsageError(f"no user {name[:70]!r} in the store (see `edirecon user list`)")
    return row


# -- users -----------------------------------------------------------------------------------------


def add_user(store: Store, name: str, role: str, password: str) -> User:
    """A new user with this role and password (a name taken, a role unknown or a password too short: :class:`UsageError`)."""
    check_name(name)
    check_role(role)
    password_hash = _hasher.hash(check_password(password))
    at = now()
    with store.write() as conn:
        if st.user_by_name(conn, name) is not None:
            raise UsageError(f"a user named {name!r} already exists")
        st.insert_user(conn, name, role, password_hash, at)
    log.info("user_added", user=name, role=role)
    return User(name, role, at)


def users(store: Store) -> list[User]:
    """Every user, by name, with its count of tokens not revoked."""
    with store.engine.connect() as conn:
        return [_user(row) for row in st.all_users(conn)]


def get_user(store: Store, name: str) -> User:
    """The user of this name (none: :class:`UsageError`)."""
    with store.engine.connect() as conn:
        return _user(_existing(st.user_by_name(conn, name), name))


def disable_user(store: Store, name: str) -> tuple[User, bool]:
    """Disable a user: its logins and tokens are refused from now on.  (the user, whether it was
    disabled by this call: False when it already was)."""
    with store.write() as conn:
        row = _existing(st.user_by_name(conn, name, for_update=True), name)
        if row["disabled_at"] is not None:
            return _user(row), False
        row["disabled_at"] = now()
        st.update_user(conn, row["id"], disabled_at=row["disabled_at"])
    log.info("user_disabled", user=name)
    return _user(row), True


def set_password(store: Store, name: str, password: str) -> None:
    """A new password for a user (too short: :class:`UsageError`); it also lifts a lock."""
    password_hash = _hasher.hash(check_password(password))
    with store.write() as conn:
        row = _existing(st.user_by_name(conn, name), name)
        st.update_user(conn, row["id"], password_hash=password_hash, failed_logins=0, locked_until=None)
    log.info("user_password_set", user=name)


def login(store: Store, name: str, password: str, at: datetime | None = None) -> User:
    """The user, when ``password`` is theirs and they are neither disabled nor locked; else
    :class:`Unauthorized`.  A wrong password is counted: the MAX_FAILED_LOGINS-th in a row locks
    the user for LOCK_MINUTES (the count starts again after the lock)."""
    at = at or now()
    refused: Unauthorized | None = None
    with store.write() as conn:
        row = st.user_by_name(conn, name, for_update=True)
        if row is None:
            _matches(_NOBODY, password)  # as long as for a known user; the name is not logged (it may be a password typed in the wrong field)
            log.info("login_refused", reason="unknown_user")
            raise Unauthorized("wrong user name or password")
        if row["disabled_at"] is not None:
            log.info("login_refused", user=name, reason="disabled")
            raise Unauthorized(f"user {name} is disabled")
        if row["locked_until"] is not None and row["locked_until"] > at:
            log.info("login_refused", user=name, reason="locked")
            raise Unauthorized(f"user {name} is locked after {MAX_FAILED_LOGINS} failed logins until {row['locked_until']:%Y-%m-%d %H:%M} UTC")
        if _matches(row["password_hash"], password):
            changes: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
            if _hasher.check_needs_rehash(row["password_hash"]):
                changes["password_hash"] = _hasher.hash(password)
            st.update_user(conn, row["id"], **changes)
            row.update(changes)
        else:
            failed = row["failed_logins"] + 1
            if failed >= MAX_FAILED_LOGINS:
                until = at + timedelta(minutes=LOCK_MINUTES)
                st.update_user(conn, row["id"], failed_logins=0, locked_until=until)
                log.warning("user_locked", user=name, failed_logins=failed, minutes=LOCK_MINUTES)
            else:
                st.update_user(conn, row["id"], failed_logins=failed)
                log.info("login_refused", user=name, reason="wrong_password", failed_logins=failed)
            refused = Unauthorized("wrong user name or password")  # raised once the count is committed
    if refused is not None:
        raise refused
    log.info("login", user=name)
    return _user(row)


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- API tokens ------------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create_token(store: Store, name: str) -> Token:
    """A new API token for a user (not a disabled one): its text, to be shown once."""
    token_id = secrets.token_hex(4)
    text = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    with store.write() as conn:
        row = _existing(st.user_by_name(conn, name), name)
        if row["disabled_at"] is not None:
            raise UsageError(f"user {name} is disabled: no token can be made for them")
        st.insert_token(conn, token_id, row["id"], _sha256(text), now())
    log.info("token_created", user=name, token_id=token_id)
    return Token(token_id, name, text)


def token_id_of(text: str) -> str:
    """The token id of a token's text, or the text itself when it is an id (`token revoke` takes either)."""
    found = _TOKEN.fullmatch(text.strip())
    return found.group(1) if found else text.strip()


def revoke_token(store: Store, token: str) -> tuple[str, str, bool]:
    """Revoke a token, named by its id (or its whole text): (token id, its user, whether it was
    revoked by this call: False when it already was).  Unknown: :class:`UsageError`."""
    token_id = token_id_of(token)
    with store.write() as conn:
        row = st.token_by_id(conn, token_id)
        if row is None:
            raise UsageError(f"no API token {token_id[:20]!r} in the store")
        if row["revoked_at"] is not None:
            return token_id, row["name"], False
        st.revoke_token(conn, token_id, now())
    log.info("token_revoked", user=row["name"], token_id=token_id)
    return token_id, row["name"], True


def resolve_token(store: Store, text: str) -> User:
    """The user an API token acts for; :class:`Unauthorized` when the token is unknown or
    revoked, or its user disabled."""
    with store.engine.connect() as conn:
        row = st.token_by_sha256(conn, _sha256(text))
    if row is None:
        log.info("token_refused", reason="unknown")
        raise Unauthorized("not a valid API token")
    if row["revoked_at"] is not None:
        log.info("token_refused", token_id=row["token_id"], reason="revoked")
        raise Unauthorized(f"API token {row['token_id']} is revoked")
    if row["disabled_at"] is not None:
        log.info("token_refused", token_id=row["token_id"], user=row["name"], reason="disabled")
        raise Unauthorized(f"user {row['name']} is disabled")
    return _user(row)
