"""One small exception tree.

Parsing returns documents and findings; it raises only when an input cannot be read at all
(a missing file, a directory where a file was expected).  The CLI catches :class:`EdireconError`
once and maps it to an exit code.
"""

from __future__ import annotations


class EdireconError(Exception):
    """Base of every error edirecon raises on purpose."""

    exit_code = 1


class InputError(EdireconError):
    """An input cannot be opened or read (missing file, permission denied, a directory)."""

    exit_code = 2


class UsageError(EdireconError):
    """The command was called wrongly (bad option value, nothing to read)."""

    exit_code = 2
