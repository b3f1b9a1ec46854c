"""The one place where edirecon makes the lines of the CSV files it writes (docs/outputs.md:
spreadsheet safety), for ``run`` (``writers``, ``shards``, and so ``watch``'s outbound/) and for
``report`` (``reports``).

Billing staff open these files in Excel or LibreOffice, where a cell that begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is taken as a formula (OWASP "CSV Injection").  Names and
ids come from 837s and 835s sent by outside parties, so every *text* cell that begins so is
written with a leading ``'``.  Whether a cell is text is decided by the declared type of its column
(``TYPES``, and the ``types`` a table adds for columns named by data), never by the value: an
amount, count or date column is written as it is (a balance ``-100.00`` stays ``-100.00``), while a
claim number ``-100.00`` is text and gets its ``'``.  JSON Lines are not written here: they keep
the raw values.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

AMOUNT, COUNT, DATE, TEXT = "amount", "count", "date", "text"

#: the declared type of each column of the CSV files that is not text (every other column is text)
TYPES: dict[str, str] = {
    **dict.fromkeys(
        [
            "amount",
            "total_charge",
            "payer_paid",
            "patient_paid",
            "write_offs",
            "patient_responsibility",
            "balance",
            "recouped",
            "outstanding",
            "overdue_amount",
            "bpr_amount",
            "claim_payments",
            "provider_adjustments",
            "expected",
            "difference",
            "received",
            "matched",
            "unmatched",
            "last_90_days",
            "previous_90_days",
            "credit_balance",
            "amount_repaid",
            "amount_outstanding",
            "sent_amount",
            "acknowledged_amount",
            "double_refund_amount",
            "recovered_amount",
        ],
        AMOUNT,
    ),
    **dict.fromkeys(["days_in_credit", "days_overdue", "days_since_sent", "segment", "remittances", "count", "overdue_count", "rank"], COUNT),
    **dict.fromkeys(
        [
            "service_date",
            "identified_on",
            "due_by",
            "effective_date",
            "credit_since",
            "sent_on",
            "payment_date",
            "month",
            "first_seen",
            "last_seen",
            "admission_or_from_date",
            "discharge_or_through_date",
            "paid_date",
            "acknowledged_on",
            "recovered_on",
            "cashed_on",
            # a UTC time (workflow.csv): not text either
            "last_action_at",
        ],
        DATE,
    ),
}

#: what a spreadsheet reads as the start of a formula (or of a cell that smuggles one in)
FORMULA_START = frozenset("=+-@\t\r")


class Lines:
    """The CSV lines of one table (UTF-8 text, ``\\n`` line ends, quoted where needed): the header,
    then the rows, their text cells neutralised."""

    def __init__(self, columns: Iterable[str], types: Mapping[str, str] | None = None):
        self.columns = list(columns)
        declared = {**TYPES, **(types or {})}
        self.text = [i for i, c in enumerate(self.columns) if declared.get(c, TEXT) == TEXT]
        self._buffer = io.StringIO()
        # a "\r\n" writer quotes a cell holding a carriage return (a "\n" writer leaves it bare, and
        # a spreadsheet would start a new row there, whose first cell escaped the check); the line
        # itself ends in "\n"
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")

    def _line(self, values: list[Any]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow(values)
        return self._buffer.getvalue()[:-2] + "\n"

    def header(self) -> str:
        return self._line(self.columns)

    def row(self, values: list[Any]) -> str:
        """The line of one row, ``values`` in column order (amounts and dates already text); the
        list's text cells are neutralised in place.  A cell holding a carriage return is quoted."""
        for i in self.text:
            value = values[i]
            if type(value) is str and value[:1] in FORMULA_START:
                values[i] = "'" + value
        return self._line(values)
