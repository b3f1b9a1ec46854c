"""edirecon: a health-care EDI credit-balance engine (X12 5010 837 claims and 835 remittances).

Installed, this repository is one import package, ``edirecon`` (``edirecon.engine``,
``edirecon.parsers``, ``edirecon.mappings``, ``edirecon.cli``).  A program that embeds the engine
uses the entry points below (docs/embedding.md); each is imported on first use, so
``import edirecon`` stays cheap and pulls in neither SQLAlchemy nor the PDF or queue libraries.

    parse_file, iter_records, iter_transactions   read an 837/835 (typed, position-aware)
    run                                           ingest files, decide, write the outputs of ``edirecon run``
    Config                                        the run configuration (``--config FILE``)
    open_store                                    open (and create or upgrade) a store by URL
    book, act, act_many, events                   the refund workflow (``edirecon refund``)
    report                                        the reports of ``edirecon report``
    EdireconError, UsageError, InputError         the errors edirecon raises on purpose
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "parse_file": "edirecon.parsers.document",
    "iter_records": "edirecon.parsers.document",
    "iter_transactions": "edirecon.parsers.document",
    "run": "edirecon.engine.run",
    "Config": "edirecon.engine.config",
    "open_store": "edirecon.engine.store.connection",
    "book": "edirecon.engine.workflow.refunds",
    "act": "edirecon.engine.workflow.refunds",
    "act_many": "edirecon.engine.workflow.refunds",
    "events": "edirecon.engine.workflow.refunds",
    "report": "edirecon.engine.reports.report",
    "EdireconError": "edirecon.errors",
    "UsageError": "edirecon.errors",
    "InputError": "edirecon.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """The public entry points, each imported from its stage on first use."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'edirecon' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
