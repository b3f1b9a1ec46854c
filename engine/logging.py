"""The one logging setup of every ``edirecon`` command (``edirecon worker`` included): structured
log events, one JSON line each, on stderr.

Events carry refund ids, file names, hashes and counts, never patient data; their names (the
``event`` key) are a contract of their own (docs: the ``--verbose`` of each command).
"""

from __future__ import annotations

import logging
import sys
from typing import Any


def configure_logging(verbose: bool, only: str | None = None) -> None:
    """Log events as JSON lines on stderr: warnings and errors always; info events only with
    ``verbose``.  With ``only`` (a component, e.g. ``"watch"``), that component's info events are
    logged always, and the others' only with ``verbose``."""
    # deferred: structlog takes ~60 ms to import, and `parse`/`validate`/`--help` log nothing
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
