"""``workflow.csv`` and ``workflow.jsonl``: the team's work on each refund, as ``run`` and ``report``
write it (docs/outputs.md), so that a billing system that reads files sees what people decided.

One row per refund the workflow holds (``refund_workflow``), with its last audit event
(``refund_events``), in refund id order; the rows come from ``store.workflow.with_last_event``.
CSV text cells are made safe for spreadsheets by ``csvout`` (an assignee or a note is typed by
people, and a reference may be copied from a payer's letter); the JSON Lines keep the raw values.
Amounts are two-decimal text, dates ISO, the time of the last action UTC ``YYYY-MM-DDTHH:MM:SSZ``;
a value not set is an empty CSV cell and a JSON ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from edirecon.engine.record.csvout import Lines
from edirecon.engine.record.writers import _Atomic
from edirecon.money import text as money

NAME = "workflow"

#: the columns of workflow.csv and the keys of each workflow.jsonl line, in this order
WORKFLOW_COLUMNS = [
    "refund_id",
    "workflow_status",
    # what the engine said when the workflow first met the refund (kept when it no longer says so)
    "reason",
    "payee_type",
    "payer_id",
    "amount",
    "assigned_to",
    # the last step of the audit trail
    "last_action",
    "last_action_by",
    "last_action_at",
    "last_note",
    # mark-sent
    "method",
    "reference",
    "sent_on",
    "sent_amount",
    # the payer's acknowledgment (a PLB 72, or a letter or portal confirmation)
    "acknowledged_by",
    "acknowledged_on",
    "acknowledged_amount",
    # sent and also taken back by the payer, then recovered; a patient refund check cashed
    "double_refund_amount",
    "recovered_on",
    "recovered_amount",
    "cashed_on",
]

#: output column -> its ``with_last_event`` key, where the names differ
_SOURCE = {"workflow_status": "status"}

_encode = json.JSONEncoder(separators=(",", ":")).encode  # as the other JSON Lines (writers)


def _value(value: Any) -> Any:
    """A stored value as the text both files carry (None stays None)."""
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):  # naive UTC in the store
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def workflow_rows(states: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The output rows (column -> value as written, None when not set) of ``with_last_event`` rows,
    in refund id order."""
    rows = [{c: _value(state[_SOURCE.get(c, c)]) for c in WORKFLOW_COLUMNS} for state in states]
    rows.sort(key=lambda r: str(r["refund_id"]))
    return rows


def write_workflow(out_dir: Path, rows: list[dict[str, Any]]) -> list[Path]:
    """Write ``workflow.csv`` and ``workflow.jsonl`` (each atomically) into ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = Lines(WORKFLOW_COLUMNS)
    csv_path, jsonl_path = out_dir / f"{NAME}.csv", out_dir / f"{NAME}.jsonl"
    with _Atomic(csv_path) as csv_fh, _Atomic(jsonl_path) as jsonl_fh:
        csv_fh.write(lines.header())
        for row in rows:
            csv_fh.write(lines.row(["" if (v := row[c]) is None else v for c in WORKFLOW_COLUMNS]))
            jsonl_fh.write(_encode(row) + "\n")
    return [csv_path, jsonl_path]
