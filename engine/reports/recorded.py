"""What ``report`` reads of the records ``run`` made instead of deciding the whole store again
(issue 15, step 0: decisions recorded, not recomputed): the refunds with their claim-number
closure decided again (``refunds.book_from_records``), the recorded rows of recoupments and
exceptions (``lists.recorded_rows``), the claim payments per remittance summed from the store
(those matched to an encounter: all but the ones an UNMATCHED_PAYMENT exception names), and the
number of encounters (claims grouped by billing NPI and claim number; only the groups of more
than one claim are built into encounters by rule 1).  Used only while the records are those of
the store's facts now, under the same configuration and day; otherwise ``report`` decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from edirecon.engine.config import Config
from edirecon.engine.decide.encounters import build_encounters
from edirecon.engine.decide.rules import unmatched_detail
from edirecon.engine.record.writers import Sums
from edirecon.engine.store import records
from edirecon.engine.store.connection import Connection, Store
from edirecon.engine.store.facts import claims_of
from edirecon.engine.workflow import lists
from edirecon.engine.workflow.refunds import Book, book_from_records
from edirecon.money import ZERO


@dataclass
class FromRecords:
    """The book of the refunds, the recorded rows of recoupments and exceptions, the claim
    payments per payer and trace (all, and those matched to an encounter) and the number of
    encounters: what ``report`` reads of the decisions."""

    book: Book
    outputs: dict[str, list[dict[str, Any]]]
    paid: Sums
    matched: Sums
    encounters: int


def from_records(store: Store, as_of: date, config: Config) -> FromRecords | None:
    """What ``report`` reads, from the records (None: they are not current, and the caller decides)."""
    with store.engine.connect() as conn:
        if not lists.rows_current(conn, config):
            return None
    b = book_from_records(store, as_of, config)
    if b is None:
        return None
    with store.engine.connect() as conn:
        outputs = lists.recorded_rows(conn, config)
        if outputs is None:  # facts came in meanwhile
            return None
        paid = records.trace_paid(conn)
        unmatched = _unmatched(conn, outputs["exceptions"])
        if unmatched is None:
            return None
        matched = {key: amount - unmatched.get(key, ZERO) for key, amount in paid.items()}
        return FromRecords(b, outputs, paid, matched, _encounters(conn))


def _unmatched(conn: Connection, exceptions: list[dict[str, Any]]) -> Sums | None:
    """Per payer and trace number, the claim payments that match no encounter: each is the
    UNMATCHED_PAYMENT exception of a claim payment, found again by its position and its row (None
    when one is not found: the caller decides)."""
    named = [x for x in exceptions if x["kind"] == "UNMATCHED_PAYMENT" and isinstance(x["segment"], int) and x["detail"].startswith("claim payment ")]
    if not named:
        return {}
    trace_of: dict[tuple[Any, ...], tuple[str, str]] = {}
    for source_file, segment, pcn, payer_id, trace, icn, paid in records.payments_at(conn, [x["segment"] for x in named]):
        trace_of.setdefault((source_file, segment, pcn, payer_id, paid, unmatched_detail(icn, trace)), (payer_id, trace))
    out: dict[tuple[str, str], Decimal] = {}
    for x in named:
        key = trace_of.get((x["source_file"], x["segment"], x["patient_control_number"], x["payer_id"], x["amount"], x["detail"]))
        if key is None:
            return None
        out[key] = out.get(key, ZERO) + x["amount"]
    return out


def _encounters(conn: Connection) -> int:
    """The number of encounters of the store (rule 1): one per billing NPI and claim number of a
    single claim; the groups of more claims built into encounters."""
    single, more = records.claim_groups(conn)
    groups = set(more)
    claims = [c for c in claims_of(conn, sorted({pcn for _npi, pcn in more})) if (c.npi, c.pcn) in groups]
    return single + len(build_encounters(claims))
