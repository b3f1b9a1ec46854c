"""What ``edirecon report`` computes, as rows: written as CSV by ``report``, drawn by ``dashboard``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from edirecon.engine.reports.cms838 import Quarter


@dataclass
class Report:
    """Everything the report writes, as rows (the dashboard reads the same)."""

    as_of: date
    quarter: Quarter
    #: the encounters the engine built from the store's claims
    encounters: int = 0
    worklist: list[dict[str, Any]] = field(default_factory=list)
    totals: list[dict[str, Any]] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)
    remittances: list[dict[str, Any]] = field(default_factory=list)
    payer_months: list[dict[str, Any]] = field(default_factory=list)
    discrepancies: list[dict[str, Any]] = field(default_factory=list)
    causes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cms838: list[dict[str, Any]] = field(default_factory=list)
    recoupments: list[dict[str, Any]] = field(default_factory=list)
    #: workflow.csv's rows: the team's work on each refund (``record.workflow``)
    workflow: list[dict[str, Any]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    #: PDF path -> characters printed as '?' because no installed font has a glyph for them
    unprintable: dict[str, int] = field(default_factory=dict)
    #: the letters without an address (report.json ``letters.not_mailable``): letter, kind, refund ids, what is missing
    not_mailable: list[dict[str, Any]] = field(default_factory=list)
    #: what the office should configure (report.json ``warnings``, one stderr line each)
    warnings: list[str] = field(default_factory=list)
