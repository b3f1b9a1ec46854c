"""What the letters of ``edirecon report`` are addressed with, read from the store: per claim, the
billing provider's name, address and contact (837 2010AA) and the patient's address (2010CA, else
the subscriber's 2010BA), kept by revision 0010.  (The payers' addresses, 835 N1*PR N3/N4, come
with the remittances' rows.)  Patient data: the callers never log it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from edirecon.engine.store import schema as t

#: the parts of a stored address, as column suffixes (address1, address2, city, state, postal_code, country)
ADDRESS_PARTS = t.ADDRESS_PARTS
#: the columns read per claim, the id first
MAILING_COLUMNS = (
    "id",
    "billing_name",
    *(f"billing_{part}" for part in t.ADDRESS_PARTS),
    "billing_contact",
    "billing_phone",
    *(f"patient_{part}" for part in t.ADDRESS_PARTS),
)
#: ids per query: well under SQLite's and PostgreSQL's limits on bound parameters
_CHUNK = 500


def claim_mailing(conn: Connection, claim_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per claim id, its MAILING_COLUMNS as a dict (a value NULL for a claim stored before
    revision 0010 is None)."""
    ids = sorted(set(claim_ids))
    columns = [t.claims.c[name] for name in MAILING_COLUMNS]
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        for row in conn.execute(select(*columns).where(t.claims.c.id.in_(ids[start : start + _CHUNK]))).mappings():
            out[row["id"]] = dict(row)
    return out
