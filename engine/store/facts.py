"""Reading the store's facts back into memory for deciding (the typed facts of ``decide.facts``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from sys import intern
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, select

from edirecon import mappings
from edirecon.engine.decide.facts import (
    ClaimFact,
    ClaimLine,
    Facts,
    PatientPaymentFact,
    PaymentFact,
    PaymentLine,
    PlbFact,
    RemittanceFact,
)
from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import (
    Converted,
    codec,
    insert_rows,
    member_of,
    select_rows,
)
from edirecon.money import ZERO


def load(conn: Connection, pcns: Sequence[str] | None = None) -> Facts:
    """Every fact in the store (read as plain tuples at the driver level: see ``bulk``); or, given
    ``pcns``, only the facts of those patient control numbers: their claims, their claim payments,
    the PLBs whose reference is one of them or one of those payments' payer claim numbers (and the
    negative 72s of the same remittances, and of the remittances of their claim reversals), their
    patient payments (the ingest exceptions are left out).  Each is one indexed query, and the day
    each refund decided from them was first identified is read as ``decide`` asks (``History``)."""
    if pcns is None:
        return _load(conn, dict.fromkeys(_PARTS, ("", [])), whole=True)
    if len(pcns) > _BOUND:  # many claim numbers (a report's refunds): in a temporary table, as a shard's
        _keep_keys(conn, pcns, [])
        keys: list[Any] = []
        pcn_in, reference_in = (f"{column} IN (SELECT pcn FROM {SHARD_PCNS})" for column in ("patient_control_number", "reference"))
    else:
        pcn_in, keys = member_of(conn, "patient_control_number", list(pcns))
        reference_in, _ = member_of(conn, "reference", list(pcns))
    named = f"({reference_in} OR reference IN (SELECT payer_claim_control_number FROM claim_payments WHERE {pcn_in}))"
    acknowledging, codes = acknowledgment_condition()
    # and the negative 72s of their remittances and of their claim reversals', which may offset them (rule 6's offset pairs)
    plb_of = (
        f"({named} OR ({acknowledging} AND (remittance_id IN "
        f"(SELECT remittance_id FROM provider_adjustments WHERE {named}) OR remittance_id IN "
        f"(SELECT remittance_id FROM claim_payments WHERE status = '22' AND {pcn_in}))))"
    )
    many = len(pcns) > _BOUND
    # the refunds of many claim numbers ask for most of the history: read it whole, in one query
    facts = _load(conn, _conditions(pcn_in, keys, plb_of, keys * 2 + codes + keys * 2 + keys), whole=False, history=many)
    if not many:
        facts.identified = History(conn)
    return facts


def plbs_referencing(conn: Connection, references: Sequence[str]) -> list[PlbFact]:
    """The PLB adjustments whose reference is one of ``references`` (e.g. the check or EFT number
    of a refund sent, which the payer's acknowledgment may name), with their remittances' fields."""
    if not references:
        return []
    reference_in, params = member_of(conn, "reference", sorted(set(references)))
    nothing = ("1 = 0", [])
    by_part: dict[str, tuple[str, list[Any]]] = dict.fromkeys(_PARTS, nothing)
    by_part["plbs"] = (reference_in, params)
    by_part["remittances"] = (f"id IN (SELECT remittance_id FROM provider_adjustments WHERE {reference_in})", params)
    return _load(conn, by_part, whole=False, history=False).plbs


def acknowledgment_condition() -> tuple[str, list[str]]:
    """The SQL condition on ``provider_adjustments`` of a payer's acknowledgment of a refund (a
    negative PLB 72: ``mappings/refund_acknowledgment_codes.csv``), and its parameters."""
    codes = sorted(mappings.refund_acknowledgment_codes())
    return f"amount < 0 AND reason IN ({', '.join('?' * len(codes))})", codes


#: the temporary tables a shard's keys are put in (one connection's own)
SHARD_PCNS = "shard_pcns"
SHARD_PLBS = "shard_plbs"


def load_shard(conn: Connection, pcns: Sequence[str], plb_ids: Sequence[int]) -> Facts:
    """The facts of one shard (``engine.shards``): the claims, claim payments and patient payments
    of ``pcns``, and the PLBs ``plb_ids``.  The keys go into temporary tables of this connection,
    so a shard of any size is a handful of joins.  The remittances are left out of the facts
    returned: whether a remittance balances is a question about all of it (``remittance_facts``)."""
    _keep_keys(conn, pcns, plb_ids)
    pcn_in = f"patient_control_number IN (SELECT pcn FROM {SHARD_PCNS})"
    facts = _load(conn, _conditions(pcn_in, [], f"id IN (SELECT id FROM {SHARD_PLBS})", []), whole=False)
    facts.remittances = []
    return facts


#: claim numbers ``load`` binds as parameters; more go into a temporary table (a query binds each
#: several times, and SQLite binds 32,766 parameters at most)
_BOUND = 2000


def _keep_keys(conn: Connection, pcns: Sequence[str], plb_ids: Sequence[int]) -> None:
    """The claim numbers and PLB ids of a shard (or of ``load``'s many claim numbers) in the
    temporary tables of this connection, replacing what they held."""
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {SHARD_PCNS} (pcn VARCHAR PRIMARY KEY)")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {SHARD_PLBS} (id BIGINT PRIMARY KEY)")
    conn.exec_driver_sql(f"DELETE FROM {SHARD_PCNS}")
    conn.exec_driver_sql(f"DELETE FROM {SHARD_PLBS}")
    temporary = MetaData()
    insert_rows(conn, Table(SHARD_PCNS, temporary, Column("pcn", String)), ["pcn"], [(k,) for k in sorted(set(pcns))])
    insert_rows(conn, Table(SHARD_PLBS, temporary, Column("id", BigInteger)), ["id"], [(k,) for k in plb_ids])


def looked_up(conn: Connection, icns: Sequence[str]) -> Facts:
    """What ``report`` looks up beside the refunds' own facts (``refunds.book_from_records``):
    every PLB of the store, and the claim payments that are claim reversals (CLP02 = 22) or
    whose payer claim number is one of ``icns`` (those of the refunds' earlier payments), with
    their remittances' fields; no claims, no patient payments, no refund history."""
    nothing = ("1 = 0", [])
    # a payment without CLP07 has "" or NULL there
    none = " OR payer_claim_control_number IS NULL" if "" in icns else ""
    if len(icns) > _BOUND:
        _keep_keys(conn, icns, [])
        chosen, keys = f"(status = '22' OR payer_claim_control_number IN (SELECT pcn FROM {SHARD_PCNS}){none})", []
    elif icns:
        icn_in, keys = member_of(conn, "payer_claim_control_number", sorted(set(icns)))
        chosen = f"(status = '22' OR {icn_in}{none})"
    else:
        chosen, keys = "status = '22'", []
    by_part: dict[str, tuple[str, list[Any]]] = dict.fromkeys(_PARTS, nothing)
    by_part["payments"] = (chosen, keys)
    by_part["payment_children"] = (f"claim_payment_id IN (SELECT id FROM claim_payments WHERE {chosen})", keys)
    by_part["remittances"] = ("", [])
    by_part["plbs"] = ("", [])
    return _load(conn, by_part, whole=False, history=False)


def claims_of(conn: Connection, pcns: Sequence[str]) -> list[ClaimFact]:
    """The claims (with their lines) of the claim numbers ``pcns``, and nothing else."""
    if not pcns:
        return []
    by_part: dict[str, tuple[str, list[Any]]] = dict.fromkeys(_PARTS, ("1 = 0", []))
    if len(pcns) > _BOUND:
        _keep_keys(conn, pcns, [])
        pcn_in, keys = f"patient_control_number IN (SELECT pcn FROM {SHARD_PCNS})", []
    else:
        pcn_in, keys = member_of(conn, "patient_control_number", sorted(set(pcns)))
    by_part["claims"] = (pcn_in, keys)
    by_part["claim_lines"] = (f"claim_id IN (SELECT id FROM claims WHERE {pcn_in})", keys)
    return _load(conn, by_part, whole=False, history=False).claims


_PARTS = ("claims", "claim_lines", "payments", "payment_children", "remittances", "plbs", "patient")


def _conditions(pcn_in: str, keys: list[Any], plb_of: str, plb_keys: list[Any]) -> dict[str, tuple[str, list[Any]]]:
    """Per table, the condition (and its parameters) that selects the facts of some claim numbers."""
    payments_of = f"SELECT id FROM claim_payments WHERE {pcn_in}"
    return {
        "claims": (pcn_in, keys),
        "claim_lines": (f"claim_id IN (SELECT id FROM claims WHERE {pcn_in})", keys),
        "payments": (pcn_in, keys),
        "payment_children": (f"claim_payment_id IN ({payments_of})", keys),
        "remittances": (
            f"id IN (SELECT remittance_id FROM claim_payments WHERE {pcn_in}) OR id IN (SELECT remittance_id FROM provider_adjustments WHERE {plb_of})",
            keys + plb_keys,
        ),
        "plbs": (plb_of, plb_keys),
        "patient": (pcn_in, keys),
    }


def _load(conn: Connection, by_pcn: dict[str, tuple[str, list[Any]]], whole: bool, history: bool = True) -> Facts:
    """The facts selected by ``by_pcn``'s conditions; every ingest exception with ``whole``; the whole
    refund history with ``history`` (else none: the caller sets its own)."""
    c = codec(conn)
    # a store holds the same amounts, dates and codes over and over: one object serves them all
    money = Converted(c.money, None).__getitem__  # Decimal, None for NULL
    d = Converted(c.money, ZERO).__getitem__  # Decimal, 0.00 for NULL
    day = Converted(c.day, None).__getitem__
    quantity = Converted(lambda units: Decimal(str(units)), None).__getitem__

    lines_by_claim: dict[int, list[ClaimLine]] = defaultdict(list)
    for claim_id, number, proc, mods, charge, units, served, control in select_rows(
        conn,
        t.claim_lines,
        ["claim_id", "line_number", "procedure_code", "modifiers", "charge", "units", "service_date", "line_item_control_number"],
        "claim_id, id",
        *by_pcn["claim_lines"],
    ):
        lines_by_claim[claim_id].append(ClaimLine(intern(number), intern(proc), intern(mods), money(charge), quantity(units), day(served), intern(control)))
    claim_cols = [
        "id",
        "transaction_type",
        "patient_control_number",
        "billing_npi",
        "billing_tin",
        "member_id",
        "other_member_ids",
        "patient_last",
        "patient_first",
        "patient_dob",
        "service_from",
        "service_to",
        "total_charge",
        "frequency",
        "original_reference",
        "payer_id",
        "payer_name",
        "payer_responsibility",
        "filing_indicator",
        "created_on",
        "source_file",
        "segment",
        "type_of_bill",
        "statement_from",
        "statement_to",
        "admission_date",
        "other_payer_ids",
    ]
    claims = [
        ClaimFact(
            r[0],
            intern(r[1]),
            intern(r[2]),
            intern(r[3]),
            intern(r[4]),
            intern(r[5]),
            tuple(intern(m) for m in r[6].split("|") if m),
            intern(r[7]),
            intern(r[8]),
            day(r[9]),
            day(r[10]),
            day(r[11]),
            d(r[12]),
            intern(r[13]),
            r[14],
            intern(r[15]),
            intern(r[16]),
            intern(r[17]),
            intern(r[18]),
            day(r[19]),
            intern(r[20]),
            r[21],
            lines_by_claim.pop(r[0], []),
            intern(r[22]),
            day(r[23]),
            day(r[24]),
            day(r[25]),
            None if r[26] is None else tuple(intern(p) for p in r[26].split("|") if p),
        )
        for r in select_rows(conn, t.claims, claim_cols, "", *by_pcn["claims"])
    ]
    adjustments: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for pid, line, group, reason, amount in select_rows(
        conn, t.adjustments, ["claim_payment_id", "line_ordinal", "group_code", "reason", "amount"], "claim_payment_id, id", *by_pcn["payment_children"]
    ):
        adjustments[pid].append((line, intern(group), intern(reason), d(amount)))
    plines: dict[int, list[PaymentLine]] = defaultdict(list)
    for pid, ordinal, proc, mods, charge, paid, units, served, control in select_rows(
        conn,
        t.payment_lines,
        ["claim_payment_id", "ordinal", "procedure_code", "modifiers", "charge", "paid", "units", "service_date", "line_item_control_number"],
        "claim_payment_id, ordinal",
        *by_pcn["payment_children"],
    ):
        plines[pid].append(PaymentLine(ordinal, intern(proc), intern(mods), money(charge), d(paid), quantity(units), day(served), intern(control)))
    rem_cols = [
        "id",
        "payer_id",
        "payer_name",
        "trace_number",
        "payment_amount",
        "credit_debit",
        "payment_date",
        "payee_npi",
        "payee_tin",
        "source_file",
        "segment",
    ]
    rems = {r[0]: r for r in select_rows(conn, t.remittances, rem_cols, "", *by_pcn["remittances"])}
    remittances = {rid: RemittanceFact(r[1], r[3], d(r[4]), r[5], r[9], r[10]) for rid, r in rems.items()}
    pay_cols = [
        "id",
        "remittance_id",
        "ordinal",
        "patient_control_number",
        "status",
        "charge",
        "paid",
        "patient_responsibility",
        "filing_indicator",
        "payer_claim_control_number",
        "member_id",
        "patient_last",
        "patient_first",
        "service_from",
        "service_to",
        "source_file",
        "segment",
        "byte_offset",
        "crossover_carrier_id",
    ]
    payments: list[PaymentFact] = []
    for r in select_rows(conn, t.claim_payments, pay_cols, "", *by_pcn["payments"]):
        rm = rems[r[1]]
        p = PaymentFact(
            r[0],
            rm[1],
            rm[2],
            rm[3],
            day(rm[6]),
            rm[7],
            rm[8],
            r[2],
            intern(r[3]),
            intern(r[4]),
            d(r[5]),
            d(r[6]),
            d(r[7]),
            intern(r[8]),
            r[9],
            intern(r[10]),
            intern(r[11]),
            intern(r[12]),
            day(r[13]),
            day(r[14]),
            intern(r[15]),
            r[16],
            r[17],
        )
        p.crossover_carrier = None if r[18] is None else intern(r[18])
        p.lines = tuple(plines.pop(r[0], ()))
        if r[0] in adjustments:
            _attach(p, adjustments.pop(r[0]))
        remittances[r[1]].paid_total += p.paid
        payments.append(p)
    plbs: list[PlbFact] = []
    for rid, reason, reference, amount, segment, position in select_rows(
        conn,
        t.provider_adjustments,
        ["remittance_id", "reason", "reference", "amount", "segment", "position"],
        "",
        *by_pcn["plbs"],
    ):
        rm = rems[rid]
        remittances[rid].plb_total += d(amount)
        plbs.append(PlbFact(rm[1], rm[2], rm[3], day(rm[6]), reason, reference, d(amount), rm[9], segment, position))
    file_paths = dict(select_rows(conn, t.files, ["id", "path"]))
    patient = [
        PatientPaymentFact(r[0], r[1], d(r[2]), day(r[3]), r[4], r[5], file_paths.get(r[6], ""), r[7])  # type: ignore[arg-type]
        for r in select_rows(
            conn,
            t.patient_payments,
            ["payment_id", "patient_control_number", "amount", "paid_on", "billing_npi", "member_id", "file_id", "row_number"],
            "",
            *by_pcn["patient"],
        )
    ]
    exceptions = [dict(r) for r in conn.execute(select(t.ingest_exceptions)).mappings()] if whole else []
    identified = {r["refund_id"]: r["identified_on"] for r in conn.execute(select(t.refund_history)).mappings()} if history else {}
    return Facts(claims, payments, plbs, list(remittances.values()), patient, exceptions, identified)


class History(Mapping[str, date]):
    """The days refunds were first identified (``refund_history``), read one refund at a time as
    ``decide`` asks for them, on the connection the facts were loaded on: the facts of a few claim
    numbers (a refund's page, an action) decide a handful of refunds, and reading the whole history
    for them cost more than the rest of the load on a large store (1,000,000 claims: 40,000 rows)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._known: dict[str, date | None] = {}

    def _day(self, refund_id: str) -> date | None:
        if refund_id not in self._known:
            h = t.refund_history.c
            self._known[refund_id] = self._conn.execute(select(h.identified_on).where(h.refund_id == refund_id)).scalar()
        return self._known[refund_id]

    def __getitem__(self, refund_id: str) -> date:
        found = self._day(refund_id)
        if found is None:
            raise KeyError(refund_id)
        return found

    def __contains__(self, refund_id: object) -> bool:
        return isinstance(refund_id, str) and self._day(refund_id) is not None

    def __iter__(self) -> Iterator[str]:  # the refunds asked for so far that have a day: never the whole table
        return (k for k, v in self._known.items() if v is not None)

    def __len__(self) -> int:
        return sum(1 for v in self._known.values() if v is not None)


def _attach(p: PaymentFact, rows: list[tuple[Any, ...]]) -> None:
    """Hand a claim payment's adjustment rows (line ordinal or None, group, reason, amount), in
    store order, to its lines and to the claim; each tuple is built once, so a claim payment with
    many adjustments loads in linear time."""
    by_line = {line.ordinal: line for line in p.lines}
    claim_level: list[tuple[str, str, Decimal]] = []
    per_line: dict[int, list[tuple[str, str, Decimal]]] = {}
    for line_no, group, reason, amount in rows:
        if line_no is not None and line_no in by_line:
            per_line.setdefault(line_no, []).append((group, reason, amount))
        else:
            claim_level.append((group, reason, amount))
    p.claim_adjustments = tuple(claim_level)
    for line_no, adjs in per_line.items():
        by_line[line_no].adjustments = tuple(adjs)


def remittance_facts(conn: Connection) -> list[RemittanceFact]:
    """Every remittance with the totals of all its claim payments and PLBs (rule 7 asks it of a
    remittance as a whole, so a shard of claim numbers cannot; ``engine.shards``)."""
    d = Converted(codec(conn).money, ZERO).__getitem__
    remittances = {
        r[0]: RemittanceFact(r[1], r[2], d(r[3]), r[4], r[5], r[6])
        for r in select_rows(conn, t.remittances, ["id", "payer_id", "trace_number", "payment_amount", "credit_debit", "source_file", "segment"])
    }
    for rid, paid in select_rows(conn, t.claim_payments, ["remittance_id", "paid"]):
        remittances[rid].paid_total += d(paid)
    for rid, amount in select_rows(conn, t.provider_adjustments, ["remittance_id", "amount"]):
        remittances[rid].plb_total += d(amount)
    return list(remittances.values())
