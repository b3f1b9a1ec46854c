"""The one logging setup of every ``edirecon`` command (``edirecon worker`` included): structured
log events, one JSON line each, on stderr; and the loggers of the package (``get_logger``).

Events carry refund ids, file names, hashes and counts, never patient data; their names (the
``event`` key) are a contract of their own (docs: the ``--verbose`` of each command).

structlog takes ~60 ms to import (its ``structlog.dev`` loads rich when it is installed), more
than a command such as ``refund show`` spends on its work.  So the package's loggers are
``Logger``: structlog is imported when an event is logged that the setup lets through, not when a
module is imported; and ``configure_logging`` in a process that has not loaded structlog yet only
remembers the setup, which is applied when structlog is first needed.  What is logged, and how,
is the same: a logger is a ``structlog.get_logger`` with the same name and values, bound when
first used, so that a program embedding the engine (or a test's ``structlog.testing.capture_logs``)
configures it as before.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

#: the setup ``configure_logging`` was given while structlog was not loaded: (verbose, only)
_pending: tuple[bool, str | None] | None = None


def configure_logging(verbose: bool, only: str | None = None) -> None:
    """Log events as JSON lines on stderr: warnings and errors always; info events only with
    ``verbose``.  With ``only`` (a component, e.g. ``"watch"``), that component's info events are
    logged always, and the others' only with ``verbose``."""
    global _pending
    if "structlog" in sys.modules:
        _pending = None
        _configure(verbose, only)
    else:  # applied when an event passes (``Logger``), or never: a command that logs nothing loads no structlog
        _pending = (verbose, only)


def _configure(verbose: bool, only: str | None) -> None:
    # deferred: structlog takes ~60 ms to import (structlog.dev loads rich), and most commands log nothing
    import structlog

    def only_component(_logger: object, method: str, event: dict[str, Any]) -> dict[str, Any]:
        if method in ("debug", "info") and event.get("component") != only and not verbose:
            raise structlog.DropEvent
        return event

    chosen: list[Any] = [only_component] if only is not None else []
    structlog.configure(
        processors=[*chosen, structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO if verbose or only is not None else logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _structlog() -> Any:
    """structlog, configured as ``configure_logging`` was last asked if it had to wait for it."""
    global _pending
    # deferred: structlog takes ~60 ms to import (structlog.dev loads rich): only once an event is logged
    import structlog

    if _pending is not None:
        verbose, only = _pending
        _pending = None
        _configure(verbose, only)
    return structlog


class Logger:
    """``structlog.get_logger(name, **values)``, bound when it first logs.  An info or debug event
    that the waiting setup of ``configure_logging`` would drop is dropped here, without loading
    structlog."""

    __slots__ = ("_bound", "_name", "_values")

    def __init__(self, name: str, **values: Any) -> None:
        self._name = name
        self._values = values
        self._bound: Any = None

    def _dropped(self, kw: dict[str, Any]) -> bool:
        """Whether the setup still waiting drops an info or debug event (as ``_configure``'s
        level and component filter would)."""
        if _pending is None:
            return False
        verbose, only = _pending
        return not verbose and (only is None or kw.get("component", self._values.get("component")) != only)

    def _logger(self) -> Any:
        structlog = _structlog()
        if self._bound is None:
            self._bound = structlog.get_logger(self._name, **self._values)
        return self._bound

    def debug(self, event: str, **kw: Any) -> Any:
        return None if self._dropped(kw) else self._logger().debug(event, **kw)

    def info(self, event: str, **kw: Any) -> Any:
        return None if self._dropped(kw) else self._logger().info(event, **kw)

    def warning(self, event: str, **kw: Any) -> Any:
        return self._logger().warning(event, **kw)

    def error(self, event: str, **kw: Any) -> Any:
        return self._logger().error(event, **kw)


def get_logger(name: str, **values: Any) -> Logger:
    """The logger of a module of the package: ``structlog.get_logger(name, **values)``, loaded when
    it first logs an event (``Logger``)."""
    return Logger(name, **values)
