"""The rules 3–8 of docs/rules.md: reversals, duplicates, balances, refunds, recoupments.

``decide(facts, as_of, config)`` is a pure function of the facts: the same facts give the same
decisions, whatever the order they were ingested in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from edirecon import mappings
from edirecon.engine.config import Config
from edirecon.engine.decide.encounters import (
    Covered,
    Encounter,
    build_encounters,
    line_key,
    match_patient_payments,
    match_payments,
    service_key,
    stable_id,
)
from edirecon.engine.decide.facts import (
    ClaimFact,
    Evidence,
    Facts,
    PaymentFact,
    PaymentLine,
    PlbFact,
    RemittanceFact,
)
from edirecon.engine.decide.offsets import Offset, identity, offset_of, offsets
from edirecon.engine.logging import get_logger
from edirecon.money import ZERO

log = get_logger("edirecon.decide")

CONTRACTUAL = ("CO", "PI", "OA")
PAID_STATUSES = {"1", "2", "3", "19", "20", "21"}
AS_PRIMARY = {"1", "19"}  # CLP02: processed as primary (19: and forwarded to another payer)
FORWARDED = {"19", "20", "21"}  # CLP02: processed and forwarded to another payer (a crossover)


@dataclass(slots=True)
class Refund:
    refund_id: str
    reason: str
    payee_type: str
    payer_id: str
    payer_name: str
    encounter: Encounter
    icn: str
    amount: Decimal
    filing_indicator: str
    evidence: list[Evidence]
    payment_key: tuple[str, ...] = ()
    identified_on: date | None = None
    due_by: date | None = None
    recouped: Decimal = ZERO
    acknowledged: Decimal = ZERO  # by the payer's offset pairs tied to it (``offsets``): a check it booked
    acknowledgments: list[Offset] = field(default_factory=list)

    def __post_init__(self) -> None:
        mappings.registered("refund_reason", self.reason)

    @property
    def status(self) -> str:  # a refund_status of mappings/codes.csv (tests/unit/test_registry.py)
        if self.recouped >= self.amount:
            return "settled_by_recoupment"
        if self.acknowledged > 0:
            return "acknowledged"
        return "partially_recouped" if self.recouped > 0 else "open"


@dataclass(slots=True)
class Recoupment:
    recoupment_id: str
    kind: str
    payer_id: str
    payer_name: str
    trace_number: str
    effective_date: date | None
    amount: Decimal
    encounter: Encounter | None
    icn: str
    refund_id: str = ""

    def __post_init__(self) -> None:
        mappings.registered("recoupment_kind", self.kind)

    @property
    def status(self) -> str:  # a recoupment_status of mappings/codes.csv (tests/unit/test_registry.py)
        return "applied" if self.encounter is not None else "untied"


@dataclass(slots=True)
class Balance:
    encounter: Encounter
    primary_payer_id: str
    total_charge: Decimal
    payer_paid: Decimal
    patient_paid: Decimal
    write_offs: Decimal
    patient_responsibility: Decimal
    balance: Decimal
    in_credit_since: date | None


@dataclass(slots=True)
class ExceptionRow:
    kind: str
    severity: str
    source_file: str
    segment: int
    pcn: str
    payer_id: str
    amount: Decimal | None
    detail: str

    def __post_init__(self) -> None:
        mappings.registered("exception_kind", self.kind, self.severity)


@dataclass(slots=True)
class Decisions:
    encounters: list[Encounter]
    refunds: list[Refund] = field(default_factory=list)
    recoupments: list[Recoupment] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    exceptions: list[ExceptionRow] = field(default_factory=list)
    acknowledgments: list[tuple[Offset, Encounter]] = field(default_factory=list)
    matched: int = 0


def unmatched_detail(icn: str | None, trace_number: str) -> str:
    """The detail of the UNMATCHED_PAYMENT exception of a claim payment (its CLP07 and trace)."""
    return f"claim payment {icn or '(no CLP07)'} of trace {trace_number} matches no encounter (CLP01 + payee NPI/TIN)"


def decide(facts: Facts, as_of: date, config: Config) -> Decisions:
    encounters = build_encounters(facts.claims)
    out = Decisions(encounters)
    for p in match_payments(encounters, facts.payments):
        out.exceptions.append(
            ExceptionRow(
                "UNMATCHED_PAYMENT",
                "error",
                p.source_file,
                p.segment,
                p.pcn,
                p.payer_id,
                p.paid,
                unmatched_detail(p.icn, p.trace_number),
            )
        )
    for pp in match_patient_payments(encounters, facts.patient_payments):
        out.exceptions.append(
            ExceptionRow(
                "UNMATCHED_PAYMENT",
                "error",
                pp.source_file,
                pp.row_number,
                pp.pcn,
                "",
                pp.amount,
                f"patient payment {pp.payment_id} of {pp.paid_on} (CSV row {pp.row_number}) matches no single encounter",
            )
        )
    out.matched = sum(len(e.payments) for e in encounters)
    pairs = offsets(facts.plbs, facts.payments)  # rule 6's offset pairs, of PLB take-backs and of claim reversals
    covered = offset_of(pairs)
    reversed_by: dict[int, PaymentFact] = {}
    for e in encounters:
        reversed_by.update(_reversals(e, covered, out))
    seen_services: dict[tuple[str, ...], tuple[Encounter, PaymentFact]] = {}
    reversals = _reversal_recoupments(out.recoupments)
    for e, p in sorted(((enc, pay) for enc in encounters for pay in enc.payments), key=lambda ep: ep[1].order):
        _duplicates(e, p, reversed_by, covered, seen_services, out, reversals)
    del seen_services
    for e in encounters:
        e.covered = None
    dup_by_encounter: dict[int, dict[tuple[str, ...], Decimal]] = defaultdict(dict)
    for r in out.refunds:
        if r.reason == "DUPLICATE_PAYMENT":
            dup_by_encounter[id(r.encounter)][r.payment_key] = r.amount
    paired = {rev.id for rev in reversed_by.values()}
    for e in encounters:
        _balance(e, reversed_by, paired, dup_by_encounter.get(id(e), {}), out)
    _plb_recoupments(facts.plbs, pairs, covered, encounters, out)
    _settle(out)
    _balancing(facts, out)
    for e in encounters:
        if e.voided:
            paid: dict[str, Decimal] = defaultdict(lambda: ZERO)
            for p in e.payments:
                paid[p.payer_id] += p.paid
            c = e.billing_claim
            for payer_id, amount in sorted(paid.items()):
                if amount:
                    out.exceptions.append(
                        ExceptionRow(
                            "VOIDED_ENCOUNTER_PAID",
                            "info",
                            c.source_file,
                            c.segment,
                            e.pcn,
                            payer_id,
                            amount,
                            "the encounter was voided (CLM05-3 = 8) but carries this payer's payments: they are a credit",
                        )
                    )
    for r in out.refunds:
        r.identified_on = facts.identified.get(r.refund_id, as_of)
        r.due_by = r.identified_on + timedelta(days=_days(r, config))
    return out


def _taken_back(rev: PaymentFact, offset: dict[tuple[str, str, int, int], Decimal]) -> Decimal:
    """What a claim reversal takes back: its amount less what a PLB 72 of its remittance offsets."""
    return -rev.paid - offset.get(identity(rev), ZERO)


def _reversals(e: Encounter, covered: dict[tuple[str, str, int, int], Decimal], out: Decisions) -> dict[int, PaymentFact]:
    """Pair each CLP02 = 22 with the payment it reverses; each is a CLAIM_REVERSAL recoupment of
    what a PLB 72 of its remittance does not offset (rule 6: that is the payer booking a refund
    check).  The reversed payment no longer counts either way."""
    pairs: dict[int, PaymentFact] = {}
    ordered = sorted(e.payments, key=lambda p: p.order)
    live = _Live()
    upto = 0  # the payments of ``ordered`` before it are in ``live``: those up to the reversal in hand
    for rev in (p for p in ordered if p.status == "22"):
        order = rev.order
        while upto < len(ordered) and ordered[upto].order <= order:
            if ordered[upto].status != "22":
                live.add(ordered[upto])
            upto += 1
        target = live.target(rev, pairs)
        if target is not None:
            pairs[target.id] = rev
        amount = _taken_back(rev, covered)
        if amount <= 0 and rev.paid < 0:  # wholly offset by a 72: no take-back
            continue
        out.recoupments.append(
            Recoupment(
                stable_id("RC", "CLAIM_REVERSAL", rev.payer_id, rev.trace_number, rev.icn, rev.pcn, rev.ordinal),
                "CLAIM_REVERSAL",
                rev.payer_id,
                rev.payer_name,
                rev.trace_number,
                rev.payment_date,
                amount,
                e,
                target.icn if target is not None else rev.icn,
            )
        )
    return pairs


class _Live:
    """Rule 3: the payments a reversal may pair with (not reversals, not yet paired, up to it), each
    a stack per payer, per payer and payer claim number, and per payer and amount paid, the latest
    on top: finding a reversal's target costs a lookup, not a pass over the encounter's payments."""

    __slots__ = ("by_icn", "by_paid", "latest")

    def __init__(self) -> None:
        self.latest: dict[str, list[PaymentFact]] = defaultdict(list)
        self.by_icn: dict[tuple[str, str], list[PaymentFact]] = defaultdict(list)
        self.by_paid: dict[tuple[str, Decimal], list[PaymentFact]] = defaultdict(list)

    def add(self, p: PaymentFact) -> None:
        self.latest[p.payer_id].append(p)
        self.by_icn[(p.payer_id, p.icn)].append(p)
        self.by_paid[(p.payer_id, p.paid)].append(p)

    def target(self, rev: PaymentFact, paired: dict[int, PaymentFact]) -> PaymentFact | None:
        """The latest of the same payer claim number, else of the amount reversed, else the latest."""
        found = _top(self.by_icn.get((rev.payer_id, rev.icn)), paired) if rev.icn else None
        return found or _top(self.by_paid.get((rev.payer_id, -rev.paid)), paired) or _top(self.latest.get(rev.payer_id), paired)


def _top(stack: list[PaymentFact] | None, paired: dict[int, PaymentFact]) -> PaymentFact | None:
    """The latest payment of ``stack`` not yet paired (those paired since are dropped from it)."""
    while stack and stack[-1].id in paired:
        stack.pop()
    return stack[-1] if stack else None


def _reversal_recoupments(recoupments: list[Recoupment]) -> dict[tuple[str, int, str], list[Recoupment]]:
    """The CLAIM_REVERSAL recoupments by trace number, encounter (its ``id()``) and payer claim number."""
    index: dict[tuple[str, int, str], list[Recoupment]] = defaultdict(list)
    for rc in recoupments:
        if rc.kind == "CLAIM_REVERSAL":
            index[(rc.trace_number, id(rc.encounter), rc.icn)].append(rc)
    return index


def _duplicates(
    e: Encounter,
    p: PaymentFact,
    reversed_by: dict[int, PaymentFact],
    offset: dict[tuple[str, str, int, int], Decimal],
    seen: dict[tuple[str, ...], tuple[Encounter, PaymentFact]],
    out: Decisions,
    reversals: dict[tuple[str, int, str], list[Recoupment]],
) -> None:
    """Rule 4: a later payment of lines (or services) a live earlier payment of the same payer already paid."""
    if p.status == "22" or p.status not in PAID_STATUSES or p.paid <= 0:
        return
    live = p.id not in reversed_by
    if e.covered is None:
        e.covered = Covered()
    covered = e.covered
    dup_amount = ZERO
    earlier: list[PaymentFact] = []
    if not p.lines:
        whole = ("ALL", p.payer_id)
        prior = covered.get(whole) or covered.first.get(p.payer_id)
        if prior is not None:
            dup_amount, earlier = p.paid, [prior]
        elif live:
            covered.add(whole, p)
    for line in p.lines:
        if line.paid <= 0:
            continue
        lk = (p.payer_id, *line_key(e, line))
        sk = service_key(e, p, line)
        prior = covered.get(lk) or covered.get(("ALL", p.payer_id))
        if prior is p:  # two billed lines alike, both paid in this claim payment: not a duplicate
            prior = None
        # a voided encounter's payments are its credit (rule 1), never the earlier or the later of a
        # service paid under another CLM01: a void re-billed under a new claim number is one refund
        other = None if e.voided else seen.get(sk)
        if prior is None and other is not None and other[0] is not e:
            prior = other[1]
        if prior is not None:
            dup_amount += line.paid
            earlier.append(prior)
        elif live:
            covered.add(lk, p)
            if not e.voided:
                seen.setdefault(sk, (e, p))
    if dup_amount > 0:
        evidence: list[Evidence] = [{**q.evidence(), "role": "earlier payment"} for q in earlier[:1]]
        evidence.append({**p.evidence(), "role": "duplicate payment"})
        out.refunds.append(
            Refund(
                stable_id("RF", "DUPLICATE_PAYMENT", e.id, *p.key),
                "DUPLICATE_PAYMENT",
                "payer",
                p.payer_id,
                p.payer_name,
                e,
                p.icn,
                min(dup_amount, p.paid),
                p.filing_indicator or e.payer_filing(p.payer_id),
                evidence,
                payment_key=p.key,
            )
        )
        rev = reversed_by.get(p.id)
        taken = _taken_back(rev, offset) if rev is not None else ZERO
        if rev is not None and taken > 0:  # the payer reversed the duplicate itself (what a 72 offsets acknowledges it: ``_settle``)
            out.refunds[-1].recouped += min(dup_amount, taken)
            for rc in reversals.get((rev.trace_number, id(e), p.icn), ()):
                rc.refund_id = out.refunds[-1].refund_id


def _balance(e: Encounter, reversed_by: dict[int, PaymentFact], reversal_ids: set[int], dup: dict[tuple[str, ...], Decimal], out: Decisions) -> None:
    """Rule 5: the balance of an encounter and the attribution of a credit."""
    current = [p for p in e.payments if p.status != "22" and p.id not in reversed_by]
    # a denial is superseded when the same payer later paid: its adjustments are not current
    paying = {p.payer_id for p in current if p.status in PAID_STATUSES}
    current = [p for p in current if p.status in PAID_STATUSES or p.payer_id not in paying]
    orphans = [p for p in e.payments if p.status == "22" and p.id not in reversal_ids]
    not_billed = _not_billed(e, current)
    if not_billed:  # refunded whole on their own: neither paid nor an adjudication of this encounter
        current = [p for p in current if p.id not in not_billed]
    paid_by: dict[str, Decimal] = {}
    for p in current:
        paid_by[p.payer_id] = paid_by.get(p.payer_id, ZERO) + p.paid - (dup.get(p.key, ZERO) if dup else ZERO)
    for p in orphans:
        paid_by[p.payer_id] = paid_by.get(p.payer_id, ZERO) + p.paid
    payer_paid = sum(paid_by.values(), ZERO)
    patient_paid = sum((pp.amount for pp in e.patient_payments), ZERO) if e.patient_payments else ZERO
    if dup:  # a payment refunded whole as a duplicate is not an adjudication: its CAS and CLP05 do not count
        current = [p for p in current if dup.get(p.key, ZERO) < p.paid or p.paid <= 0]
    primary = e.primary_claim.payer_id
    primary_payments = [p for p in current if p.payer_id == primary] or [p for p in current if p.sequence == 1]
    primary_id = primary_payments[0].payer_id if primary_payments else primary
    write_offs = _write_offs(e, primary_payments)
    by_sequence = sorted(current, key=lambda p: (p.sequence, p.order)) if len(current) > 1 else current
    final_pr = _responsibility(by_sequence)
    balance = e.total_charge - payer_paid - write_offs - patient_paid
    since = max([*(p.payment_date for p in e.payments if p.payment_date), *(pp.paid_on for pp in e.patient_payments)], default=None)
    out.balances.append(Balance(e, primary_id, e.total_charge, payer_paid, patient_paid, write_offs, final_pr, balance, since if balance < 0 else None))
    for payments in _by_payer(not_billed.values()):
        amount = sum((p.paid - dup.get(p.key, ZERO) for p in payments), ZERO)
        if amount > 0:
            refund = _payer_refund("PAYER_OVERPAYMENT", e, payments[0], amount, payments)
            refund.evidence = [{**ev, "role": "payer not billed"} for ev in refund.evidence]
            out.refunds.append(refund)
    credit = -balance
    if credit <= 0:
        return
    payers = sorted({p.payer_id: p for p in by_sequence}.values(), key=lambda p: (p.sequence, p.order))
    for i, payer in enumerate(payers[1:], start=1):
        left = _responsibility([p for p in by_sequence if p.payer_id in {q.payer_id for q in payers[:i]}])
        excess = paid_by.get(payer.payer_id, ZERO) - left
        if excess > 0 and credit > 0:
            amount = min(excess, credit)
            credit -= amount
            out.refunds.append(_payer_refund("COB_OVERPAYMENT", e, payer, amount, [p for p in current if p.payer_id == payer.payer_id]))
    excess = patient_paid - final_pr
    if excess > 0 and credit > 0:
        amount = min(excess, credit)
        credit -= amount
        out.refunds.append(
            Refund(
                stable_id("RF", "PATIENT_OVERPAYMENT", e.id),
                "PATIENT_OVERPAYMENT",
                "patient",
                "",
                "",
                e,
                "",
                amount,
                "",
                [{"patient_payment_id": pp.payment_id, "paid_on": pp.paid_on, "amount": pp.amount} for pp in e.patient_payments],
            )
        )
    if credit > 0:
        first = next((p for p in by_sequence if p.payer_id == primary_id), by_sequence[0] if by_sequence else None)
        if first is not None:
            out.refunds.append(_payer_refund("PAYER_OVERPAYMENT", e, first, credit, [p for p in current if p.payer_id == first.payer_id]))


def _not_billed(e: Encounter, current: list[PaymentFact]) -> dict[int, PaymentFact]:
    """Rule 5: the payments of a payer no claim of the encounter names (2010BB, 2330B) that
    processed it as primary (CLP02 = 1 or 19).  Such a payer is not liable: its whole payment is
    owed back.  A crossover carrier a billed payer's 835 names for the claim (NM1*TT) was billed
    too, by that payer on the provider's behalf.  Judged only once a payer that was billed has
    adjudicated the encounter (so a payer known by another id in the 835 is never taken for an
    unbilled one), never when a billed payer forwarded the claim (CLP02 = 19, 20, 21: a crossover,
    whose receiver was billed for it), and never for claims stored before the store kept their
    other payers, nor when a billed payer's claim payment was stored before it kept NM1*TT."""
    billed: set[str] = set()
    for c in e.claims:
        payers = c.payers
        if payers is None:
            return {}
        billed |= payers
    by_billed = [p for p in e.payments if p.payer_id in billed]
    if any(p.crossover_carrier is None for p in by_billed):
        return {}
    billed |= {p.crossover_carrier for p in by_billed if p.crossover_carrier}
    if not any(p.payer_id in billed for p in current) or any(p.status in FORWARDED and p.payer_id in billed for p in e.payments):
        return {}
    return {p.id: p for p in current if p.status in AS_PRIMARY and p.payer_id and p.payer_id not in billed}


def _by_payer(payments: Iterable[PaymentFact]) -> list[list[PaymentFact]]:
    groups: dict[str, list[PaymentFact]] = defaultdict(list)
    for p in sorted(payments, key=lambda p: p.order):
        groups[p.payer_id].append(p)
    return [groups[k] for k in sorted(groups)]


def _contractual(adjustments: Iterable[tuple[str, str, Decimal]]) -> Decimal:
    """CO, PI and OA (but OA-23) adjustments; a negative one (e.g. CO-94 -12.00) would raise the
    billed charge, which a payer cannot do: it counts as zero."""
    total = ZERO
    for a in adjustments:  # a loop, not sum() over a generator: called for every payment and line
        if a[0] in CONTRACTUAL and not (a[0] == "OA" and a[1] == "23"):
            total += max(ZERO, a[2])
    return total


def _write_offs(e: Encounter, payments: list[PaymentFact]) -> Decimal:
    """The primary payer's contractual adjustments, on what is still billed.

    Line by line (each billed line with all the payer's current adjudications of it), a write-off
    cannot exceed the line's billed charge less the payer's allowed amount: a line a replacement
    removed (or a voided encounter) writes nothing off, a line billed lower than adjudicated
    writes off only down to the allowed amount, and a line denied (paid 0) then paid in a later
    claim payment (an appeal) keeps only the adjudication that paid it.
    """
    if e.voided:
        return ZERO
    if len(payments) == 1:  # most encounters: each billed line adjudicated once, nothing to group
        p = payments[0]
        if not p.lines:
            contractual = _contractual(p.claim_adjustments)
            return min(contractual, max(ZERO, e.total_charge - (p.charge - contractual)))
        billed = e.billing_claim
        return _contractual(p.claim_adjustments) + sum((_written_off(e, billed, line) for line in p.lines), ZERO)
    return _adjudicated_write_offs(e, payments)


def _adjudicated_write_offs(e: Encounter, payments: list[PaymentFact]) -> Decimal:
    """``_write_offs`` of an encounter not voided, its billed lines grouped with every
    adjudication of them (what one payment gives without grouping: ``_write_offs``)."""
    billed = e.billing_claim
    total = ZERO
    # billed line -> the payer's adjudications of it, one list of payment lines per claim payment, in order
    by_line: dict[tuple[str, ...], dict[int, list[PaymentLine]]] = defaultdict(dict)
    for p in sorted(payments, key=lambda p: p.order):
        total += _contractual(p.claim_adjustments)
        for line in p.lines:
            by_line[line_key(e, line)].setdefault(p.id, []).append(line)
    for groups in by_line.values():
        adjudications = list(groups.values())
        last_paid = max((i for i, lines in enumerate(adjudications) if any(line.paid > 0 for line in lines)), default=None)
        if last_paid is not None:  # a denial (paid 0) the payer paid in a later claim payment is not current
            adjudications = [[line for line in lines if line.paid > 0 or i >= last_paid] for i, lines in enumerate(adjudications)]
        written = sum((_written_off(e, billed, line) for lines in adjudications for line in lines), ZERO)
        if written and len(adjudications) > 1:  # adjudicated more than once: at most what the latest leaves
            written = min(written, sum((_room(e, billed, line, _contractual(line.adjustments)) for line in adjudications[-1]), ZERO))
        total += written
    if not any(p.lines for p in payments) and payments:
        contractual = total
        allowed = sum((p.charge for p in payments), ZERO) - contractual
        total = min(contractual, max(ZERO, e.total_charge - allowed))
    return total


def _written_off(e: Encounter, billed: ClaimFact, line: PaymentLine) -> Decimal:
    """A payment line's contractual adjustments, at most the billed charge less the allowed amount."""
    if not line.adjustments:
        return ZERO
    contractual = _contractual(line.adjustments)
    return min(contractual, _room(e, billed, line, contractual)) if contractual else ZERO


def _room(e: Encounter, billed: ClaimFact, line: PaymentLine, contractual: Decimal) -> Decimal:
    """What a payment line may write off: the billed charge of its line less the allowed amount
    (its charge less ``contractual``, its contractual adjustments)."""
    charge = _billed_charge(e, billed, line)
    allowed = (line.charge if line.charge is not None else charge) - contractual
    return max(ZERO, charge - allowed)


def _billed_charge(e: Encounter, billed: ClaimFact, line: PaymentLine) -> Decimal:
    """The charge the current claim bills for the line a payment line paid (0 when no longer billed)."""
    if not billed.lines:
        return line.charge if line.charge is not None else ZERO
    ln = e.billed_line(billed, line_key(e, line))
    if ln is not None:
        return ln.charge if ln.charge is not None else ZERO
    return ZERO


def _responsibility(payments: list[PaymentFact]) -> Decimal:
    """The patient responsibility left after these payments: CLP05 of the last payer's adjudications."""
    if not payments:
        return ZERO
    if len(payments) == 1:
        return ZERO + payments[0].patient_responsibility
    last = max(payments, key=lambda p: (p.sequence, p.order)).payer_id
    return sum((p.patient_responsibility for p in payments if p.payer_id == last), ZERO)


def _payer_refund(reason: str, e: Encounter, payer: PaymentFact, amount: Decimal, payments: list[PaymentFact]) -> Refund:
    latest = max(payments, key=lambda p: p.order) if payments else payer
    return Refund(
        stable_id("RF", reason, e.id, payer.payer_id),
        reason,
        "payer",
        payer.payer_id,
        payer.payer_name,
        e,
        latest.icn,
        amount,
        latest.filing_indicator or e.payer_filing(payer.payer_id),
        [p.evidence() for p in sorted(payments, key=lambda p: p.order)],
    )


def _plb_recoupments(
    plbs: list[PlbFact], pairs: list[Offset], covered: dict[tuple[str, str, int, int], Decimal], encounters: list[Encounter], out: Decisions
) -> None:
    """Rule 6: PLB take-backs less what a 72 offsets (``offsets``), netted per payer, reason and
    reference (a give-back after a take-back as well as a deferral before it), tied to encounters;
    the offset pairs tied to an encounter (a PLB by its reference, a claim reversal by the
    encounter it was matched to) are acknowledgments."""
    kinds = mappings.plb_kinds()
    by_icn: dict[tuple[str, str], Encounter] = {}
    by_pcn: dict[tuple[str, str], Encounter] = {}
    of_payment: dict[int, Encounter] = {}
    for enc in encounters:
        for p in enc.payments:
            if p.icn:
                by_icn.setdefault((p.payer_id, p.icn), enc)
            by_pcn.setdefault((p.payer_id, p.pcn), enc)
            of_payment[p.id] = enc
    for o in pairs:
        if isinstance(o.recovery, PaymentFact):
            tied = of_payment.get(o.recovery.id)
        else:
            tied = by_icn.get((o.recovery.payer_id, o.recovery.reference)) or by_pcn.get((o.recovery.payer_id, o.recovery.reference))
        if tied is not None:
            out.acknowledgments.append((o, tied))
    groups: dict[tuple[str, str, str], list[PlbFact]] = defaultdict(list)
    for plb in plbs:
        if kinds.get(plb.reason) == "recovery":
            groups[(plb.payer_id, plb.reason, plb.reference)].append(plb)
    for (payer_id, reason, reference), entries in sorted(groups.items()):
        e = by_icn.get((payer_id, reference)) or by_pcn.get((payer_id, reference))
        icn = reference if (payer_id, reference) in by_icn else ""
        taken: list[tuple[Recoupment, PlbFact]] = []
        untouched: list[Recoupment] = []  # those of ``taken`` not yet netted to zero, the latest last
        deferred = ZERO
        for plb in sorted(entries, key=lambda x: x.order):
            used = covered.get(identity(plb), ZERO)
            amount = plb.amount - used if plb.amount > 0 else plb.amount + used
            if amount < 0:  # given back: it nets what was taken (the latest first), else defers a later take-back
                back = _give_back(untouched, -amount)
                deferred += back
                continue
            offset = min(amount, deferred)
            deferred -= offset
            amount -= offset
            if amount <= 0:
                continue
            taken.append(
                (
                    Recoupment(
                        stable_id("RC", f"PLB_{reason}", payer_id, plb.trace_number, reference, plb.position),
                        f"PLB_{reason}",
                        payer_id,
                        plb.payer_name,
                        plb.trace_number,
                        plb.payment_date,
                        amount,
                        e,
                        icn,
                    ),
                    plb,
                )
            )
            untouched.append(taken[-1][0])
        for rc, plb in taken:
            if rc.amount <= 0:
                continue
            out.recoupments.append(rc)
            if e is None:
                out.exceptions.append(
                    ExceptionRow(
                        "UNTIED_RECOUPMENT",
                        "warning",
                        plb.source_file,
                        plb.segment,
                        "",
                        payer_id,
                        rc.amount,
                        f"PLB {reason} reference {reference!r} matches no claim payment of payer {payer_id}",
                    )
                )


def _give_back(untouched: list[Recoupment], back: Decimal) -> Decimal:
    """Net a give-back of ``back`` against the take-backs still standing, the latest first (each
    netted to zero leaves the stack: none is passed over twice); what is left of it."""
    while back > 0 and untouched:
        rc = untouched[-1]
        give = min(back, rc.amount)
        rc.amount -= give
        back -= give
        if rc.amount <= 0:
            untouched.pop()
    return back


def _settle(out: Decisions) -> None:
    """Recoupments by the same payer settle that payer's open refunds on the encounter they are tied
    to; the offset pairs tied to it acknowledge them."""
    balance_of = {id(b.encounter): b for b in out.balances}
    recouping = _Open(out.refunds, lambda r: r.recouped >= r.amount)
    for rc in sorted((r for r in out.recoupments if r.kind != "CLAIM_REVERSAL" and r.encounter is not None), key=lambda r: r.recoupment_id):

        def recoup(r: Refund, left: Decimal, rc: Recoupment = rc) -> Decimal:
            take = min(left, r.amount - r.recouped)
            r.recouped += take
            rc.refund_id = rc.refund_id or r.refund_id
            return take

        left = recouping.settle(rc.encounter, rc.payer_id, rc.icn, rc.amount, recoup)
        b = balance_of.get(id(rc.encounter))
        if left > 0 and b is not None:  # money taken back beyond any refund owed: it is owed again
            b.balance += left
            b.payer_paid -= left
    acknowledging = _Open(out.refunds, lambda r: r.acknowledged >= r.amount)
    for o, e in out.acknowledgments:  # a check the payer booked (an offset pair): acknowledged, not recouped

        def acknowledge(r: Refund, left: Decimal, o: Offset = o) -> Decimal:
            take = min(left, r.amount - r.acknowledged)
            r.acknowledged += take
            r.acknowledgments.append(o)
            return take

        acknowledging.settle(e, o.recovery.payer_id, o.reference, o.amount, acknowledge)


class _Open:
    """The refunds a payer's recoupment (or offset pair) settles on an encounter, in the order it
    settles them: those of its payer claim number first, then the others; of each, the duplicates
    first, then by refund id.  Each list is ranked once and passed over only where its refunds are
    settled (``done``), so settling is linear in the refunds and recoupments, not their product."""

    __slots__ = ("done", "fronts", "ranked")

    def __init__(self, refunds: list[Refund], done: Callable[[Refund], bool]):
        self.done = done
        self.ranked: dict[tuple[int, str] | tuple[int, str, str], list[Refund]] = defaultdict(list)
        for r in sorted(refunds, key=lambda r: (r.reason != "DUPLICATE_PAYMENT", r.refund_id)):
            self.ranked[(id(r.encounter), r.payer_id, r.icn)].append(r)
            self.ranked[(id(r.encounter), r.payer_id)].append(r)
        self.fronts: dict[tuple[int, str] | tuple[int, str, str], int] = defaultdict(int)

    def settle(self, e: Encounter | None, payer_id: str, icn: str, left: Decimal, give: Callable[[Refund, Decimal], Decimal]) -> Decimal:
        """Give ``left`` to the refunds open, in turn, until it is used up; what is left of it.  Those
        of the payer claim number come first: by the others, they are all settled."""
        for key in ((id(e), payer_id, icn), (id(e), payer_id)):
            refunds = self.ranked.get(key, [])
            at = self.fronts[key]
            while left > 0 and at < len(refunds):
                r = refunds[at]
                if not self.done(r):
                    left -= give(r, left)
                if self.done(r):
                    at += 1
            self.fronts[key] = at
        return left


def _balancing(facts: Facts, out: Decisions) -> None:
    """Rule 7: unbalanced claim payments, service lines and remittances."""
    for p in facts.payments:
        line_sums = [sum((a[2] for a in line.adjustments), ZERO) if line.adjustments else ZERO for line in p.lines]
        adjusted = sum((a[2] for a in p.claim_adjustments), ZERO) + sum(line_sums, ZERO)
        if p.charge - adjusted != p.paid:
            out.exceptions.append(
                ExceptionRow(
                    "UNBALANCED_CLAIM",
                    "warning",
                    p.source_file,
                    p.segment,
                    p.pcn,
                    p.payer_id,
                    p.charge - adjusted - p.paid,
                    f"CLP03 {p.charge} − Σ CAS {adjusted} ≠ CLP04 {p.paid}",
                )
            )
            continue
        for line, line_adj in zip(p.lines, line_sums):
            if line.charge is not None and line.charge - line_adj != line.paid:
                out.exceptions.append(
                    ExceptionRow(
                        "UNBALANCED_CLAIM",
                        "warning",
                        p.source_file,
                        p.segment,
                        p.pcn,
                        p.payer_id,
                        line.charge - line_adj - line.paid,
                        f"service line {line.ordinal}: SVC02 {line.charge} − Σ CAS {line_adj} ≠ SVC03 {line.paid}",
                    )
                )
    out.exceptions += unbalanced_remittances(facts.remittances)


def unbalanced_remittances(remittances: list[RemittanceFact]) -> list[ExceptionRow]:
    """Rule 7 for whole remittances: BPR02 = Σ CLP04 − Σ PLB."""
    return [
        ExceptionRow(
            "UNBALANCED_REMITTANCE",
            "warning",
            r.source_file,
            r.segment,
            "",
            r.payer_id,
            r.amount - (r.paid_total - r.plb_total),
            f"BPR02 {r.amount} ≠ Σ CLP04 {r.paid_total} − Σ PLB {r.plb_total} (trace {r.trace_number})",
        )
        for r in remittances
        if r.amount != r.paid_total - r.plb_total
    ]


def _days(r: Refund, config: Config) -> int:
    if r.payee_type == "patient":
        return config.patient_refund_days
    if r.filing_indicator in mappings.federal_filing_indicators() or r.payer_id in config.federal_payers:
        return 60
    return config.payer_refund_days


def payer_member_id(r: Refund) -> str:
    """The member id the refund's payee knows the patient by: the one on that payer's 835 (a
    secondary payer has its own), else the encounter's."""
    if r.payee_type == "payer":
        for p in r.encounter.payments:
            if p.payer_id == r.payer_id and p.member_id and (not r.icn or p.icn == r.icn):
                return str(p.member_id)
        for c in r.encounter.claims:
            if c.payer_id == r.payer_id and c.member_id:
                return str(c.member_id)
    return str(r.encounter.member_id)


def credit_arose_on(d: Decisions) -> dict[str, date | None]:
    """refund_id -> the day the money that made the credit came in: the duplicate payment's date for
    a duplicate; for the other reasons, the day the encounter went into credit (the engine's
    ``days_in_credit`` counts from it)."""
    since = {id(b.encounter): b.in_credit_since for b in d.balances}
    # per encounter, worked out once (an encounter may hold many refunds and many payments):
    # payment key -> its day (the first payment of a key), and the last day money came in
    paid_on: dict[int, dict[tuple[str, ...], date | None]] = {}
    last_in: dict[int, date | None] = {}
    out: dict[str, date | None] = {}
    for r in d.refunds:
        e = id(r.encounter)
        if r.reason == "DUPLICATE_PAYMENT":
            if e not in paid_on:
                days: dict[tuple[str, ...], date | None] = {}
                for p in r.encounter.payments:
                    days.setdefault(p.key, p.payment_date)
                paid_on[e] = days
            out[r.refund_id] = paid_on[e].get(r.payment_key)
        else:
            if e not in last_in:
                last_in[e] = max(
                    [*(p.payment_date for p in r.encounter.payments if p.payment_date), *(pp.paid_on for pp in r.encounter.patient_payments)], default=None
                )
            out[r.refund_id] = since.get(e) or last_in[e]
    return out
