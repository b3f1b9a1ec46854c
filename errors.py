"""Every error edirecon raises on purpose: one tree, each class with the exit code of the command
that meets it.

The CLI catches :class:`EdireconError` in one place (``edirecon.cli``) and prints it as one line,
``edirecon: <message>`` (a database password masked), then exits with the class's ``exit_code``.
Anything else escaping a command is a bug, printed by its kind only.

Exit codes: 1 when the command ran but what it was asked could not be done (a refused workflow
action, a failed shard); 2 when it could not start (a usage error, an unreadable input, a store
or drop folder that cannot be used, queue jobs that could not be done).

Each error carries one message, its only argument, so it pickles: the processes of a run and the
shards pass them back to the parent.  This module imports nothing, so every stage may raise
these (``engine/decide/`` included).
"""

from __future__ import annotations

__all__ = [
    "EdireconError",
    "Forbidden",
    "InputError",
    "NotAllowed",
    "QueueError",
    "ShardError",
    "StoreUnavailable",
    "Unauthorized",
    "UsageError",
    "WatchError",
]


class EdireconError(Exception):
    """Base of every error edirecon raises on purpose: its message is for the user (one line,
    no patient data), its ``exit_code`` that of the command (1 unless a subclass says 2)."""

    exit_code = 1


# -- exit 2: the command could not start -------------------------------------------------------


class UsageError(EdireconError):
    """The command was called wrongly: a bad option value (a date, an amount, a quarter, a
    --status), a configuration file that cannot be read or is not valid, a path that does not
    exist, a SQLite URL where the job queue needs PostgreSQL (exit 2)."""

    exit_code = 2


class InputError(EdireconError):
    """An input cannot be opened or read (permission denied, a directory where a file was
    expected).  Parsing raises only this; everything else wrong with an input is a finding (exit 2)."""

    exit_code = 2


class StoreUnavailable(EdireconError):
    """The store given with --db cannot be used: missing, not a database, of a newer edirecon,
    read-only, unreachable.  One line saying what is wrong and what to do (exit 2)."""

    exit_code = 2


class WatchError(EdireconError):
    """`edirecon watch`: the drop-folder ROOT (its error/, outbound/ or work/ folders) or the store
    cannot be used (exit 2)."""

    exit_code = 2


class QueueError(EdireconError):
    """Queued jobs that could not be done: ingestion jobs parked as failed, or files not ingested
    within the time given (are workers running?) (exit 2)."""

    exit_code = 2


# -- exit 1: the command ran, and what it was asked failed or was refused ----------------------


class NotAllowed(EdireconError):
    """A refund workflow action not allowed in the refund's current state (approve a sent refund,
    send more than is outstanding...) (exit 1)."""

    exit_code = 1


class Unauthorized(EdireconError):
    """A login or an API token refused: a wrong user name or password, a user locked after too
    many failed logins or disabled, an unknown or revoked token (exit 1; HTTP 401 in `serve`)."""

    exit_code = 1


class Forbidden(EdireconError):
    """A user whose role does not allow the action (a viewer approving, an analyst voiding...)
    (exit 1; HTTP 403 in `serve`)."""

    exit_code = 1


class ShardError(EdireconError):
    """A shard's process failed: the run fails rather than write partial outputs (exit 1)."""

    exit_code = 1
