"""Encounters (rule 1) and matching payments to them (rule 2)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from edirecon.engine.decide.facts import (
    ClaimFact,
    ClaimLine,
    PatientPaymentFact,
    PaymentFact,
    PaymentLine,
)
from edirecon.money import ZERO

_SEQUENCE = {"P": 1, "S": 2, "T": 3}
ONE = Decimal(1)


def stable_id(prefix: str, *parts: object) -> str:
    """A deterministic id: the same parts give the same id in any run and any database."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}-{digest[:16].upper()}"


@dataclass(slots=True, eq=False)
class Encounter:
    """One encounter and what is attached to it.  ``settle()`` fixes its derived facts once all
    its claims are attached (``build_encounters`` does it)."""

    key: tuple[str, ...]
    npi: str
    tins: tuple[str, ...]  # small tuples, not sets: an encounter has one or two of each
    pcn: str
    service_from: date | None
    service_to: date | None
    claims: list[ClaimFact] = field(default_factory=list)
    members: tuple[str, ...] = ()
    payments: list[PaymentFact] = field(default_factory=list)
    patient_payments: tuple[PatientPaymentFact, ...] = ()
    id: str = ""
    # set by ``settle()`` (unset before it): the claim whose charge counts, and the claim to the first payer
    billing_claim: ClaimFact = field(init=False)
    primary_claim: ClaimFact = field(init=False)
    covered: Covered | None = None  # the lines already paid (rule 4, ``Covered``), while ``rules.decide`` runs
    lines_index: _LineIndex | None = None  # its claims' lines by what matches them (``line_key``), built once

    def settle(self) -> None:
        """Derive the billing and primary claims (the latest original/replacement/void to the first
        payer counts) and the deterministic id."""
        if len(self.claims) == 1:
            self.billing_claim = self.primary_claim = self.claims[0]
            self.id = stable_id("EN", self.npi, self.pcn, self.service_from, self.service_to, self.primary_claim.member_id)
            return
        first = min(_SEQUENCE.get(c.responsibility, 9) for c in self.claims)
        candidates = [c for c in self.claims if _SEQUENCE.get(c.responsibility, 9) == first]
        self.billing_claim = max(candidates, key=lambda c: (c.frequency in ("7", "8"), c.order))
        self.primary_claim = min(self.claims, key=lambda c: (_SEQUENCE.get(c.responsibility, 9), c.order))
        self.id = stable_id("EN", self.npi, self.pcn, self.service_from, self.service_to, self.primary_claim.member_id)

    @property
    def voided(self) -> bool:
        return self.billing_claim.frequency == "8"

    @property
    def total_charge(self) -> Decimal:
        return ZERO if self.voided else self.billing_claim.charge

    @property
    def member_id(self) -> str:
        return self.primary_claim.member_id

    @property
    def patient_name(self) -> str:
        c = self.primary_claim
        return f"{c.patient_last}, {c.patient_first}".strip(", ")

    def billed_line(self, claim: ClaimFact, key: tuple[str, ...]) -> ClaimLine | None:
        """The first line of ``claim`` (one of this encounter's) whose own key -- ("6R", REF*6R),
        else ("SV", procedure, modifiers, date) -- is ``key``; None when it bills no such line."""
        index = _index(self)
        lines = index.billed.get(id(claim))
        if lines is None:
            lines = index.billed[id(claim)] = {}
            for ln in claim.lines:
                own: tuple[str, ...] = (
                    ("6R", ln.line_item_control_number) if ln.line_item_control_number else ("SV", ln.procedure_code, ln.modifiers, str(ln.service_date))
                )
                lines.setdefault(own, ln)
        return lines.get(key)

    def payer_filing(self, payer_id: str) -> str:
        """The claim filing indicator this encounter was billed under for a payer (SBR09)."""
        for c in self.claims:
            if c.payer_id == payer_id and c.filing_indicator:
                return c.filing_indicator
        return ""


def _identity(c: ClaimFact) -> tuple[str, str, date | None]:
    return (c.patient_last.upper(), c.patient_first.upper(), c.dob)


def build_encounters(claims: list[ClaimFact]) -> list[Encounter]:
    """Group claims into encounters: NPI + CLM01 + patient + service dates (rule 1)."""
    groups: dict[tuple[str, str], list[ClaimFact]] = defaultdict(list)
    for c in claims:
        groups[(c.npi, c.pcn)].append(c)
    encounters: list[Encounter] = []
    for (npi, pcn), members in sorted(groups.items()):
        if len(members) == 1:  # the common case: one claim, one encounter
            c = members[0]
            e = Encounter((), npi, (c.tin,) if c.tin else (), pcn, c.service_from, c.service_to, [c], tuple(sorted(c.members)))
            e.settle()
            encounters.append(e)
            continue
        index = _Found(npi, pcn)
        originals = sorted((c for c in members if c.frequency not in ("7", "8")), key=lambda c: (_SEQUENCE.get(c.responsibility, 9), c.order))
        changes = sorted((c for c in members if c.frequency in ("7", "8")), key=lambda c: c.order)
        for c in originals:
            target = next((e for e in index.same_patient(c) if (e.service_from, e.service_to) == (c.service_from, c.service_to)), None)
            index.attach(target, c)
        for c in changes:
            same = index.same_patient(c)
            target = next((e for e in same if (e.service_from, e.service_to) == (c.service_from, c.service_to)), same[0] if same else None)
            index.attach(target, c)
        found = index.encounters
        for e in found:
            e.settle()
        encounters.extend(found)
    return encounters


class _Found:
    """The encounters of one NPI + CLM01 as they are built, indexed by member id and by patient
    identity (name and date of birth), so that finding a claim's patient costs lookups, not a pass
    over every encounter of a CLM01 many patients share (linear, not quadratic).  Rule 1's "same
    patient": a member id in common, or the same name and date of birth."""

    __slots__ = ("by_identity", "by_member", "encounters", "npi", "pcn", "position")

    def __init__(self, npi: str, pcn: str):
        self.npi, self.pcn = npi, pcn
        self.encounters: list[Encounter] = []
        self.position: dict[int, int] = {}  # id(encounter) -> its place in ``encounters``
        self.by_member: dict[str, list[int]] = defaultdict(list)
        self.by_identity: dict[tuple[str, str, date | None], list[int]] = defaultdict(list)

    def same_patient(self, c: ClaimFact) -> list[Encounter]:
        """The encounters of ``c``'s patient, in the order they were made."""
        found = {i for m in c.members for i in self.by_member.get(m, ())}
        if c.dob is not None:
            found.update(self.by_identity.get(_identity(c), ()))
        return [self.encounters[i] for i in sorted(found)]

    def attach(self, e: Encounter | None, c: ClaimFact) -> None:
        """Attach ``c`` to ``e`` (a new encounter of its own when None) and index what it adds."""
        if e is None:
            e = Encounter((), self.npi, (), self.pcn, c.service_from, c.service_to)
            self.position[id(e)] = len(self.encounters)
            self.encounters.append(e)
        i = self.position[id(e)]
        known = set(e.members)
        _attach(e, c)
        for m in e.members:
            if m not in known:
                self.by_member[m].append(i)
        ids = self.by_identity[_identity(c)]
        if not ids or ids[-1] != i:
            ids.append(i)


def _attach(e: Encounter, c: ClaimFact) -> None:
    e.claims.append(c)
    e.members = (*e.members, *(m for m in sorted(c.members) if m not in e.members))
    if c.tin:
        if c.tin not in e.tins:
            e.tins = (*e.tins, c.tin)


def match_payments(encounters: list[Encounter], payments: list[PaymentFact]) -> list[PaymentFact]:
    """Attach each claim payment to its encounter (rule 2); return the unmatched ones."""
    by_pcn: dict[str, list[Encounter]] = defaultdict(list)
    for e in encounters:
        by_pcn[e.pcn].append(e)
    chosen: dict[tuple[str, str, str], _Candidates] = {}
    unmatched: list[PaymentFact] = []
    for p in sorted(payments, key=lambda p: p.order):
        key = (p.pcn, p.payee_npi, p.payee_tin)
        candidates = chosen.get(key)
        if candidates is None:  # once per CLP01 and payee, however many payments name them
            candidates = chosen[key] = _Candidates(
                [e for e in by_pcn.get(p.pcn, []) if (p.payee_npi and p.payee_npi == e.npi) or (p.payee_tin and p.payee_tin in e.tins)]
            )
        best = candidates.best(p)
        if best is None:
            unmatched.append(p)
        else:
            best.payments.append(p)
    return unmatched


def _score(e: Encounter, p: PaymentFact) -> tuple[int, int, int]:
    """How well a payment names an encounter: member id, then patient name, then service dates."""
    member = int(bool(p.member_id) and p.member_id in e.members)
    name = int(any(c.patient_last.upper() == p.patient_last.upper() and c.patient_first.upper() == p.patient_first.upper() for c in e.claims))
    dates = int(p.service_from is not None and e.service_from is not None and e.service_from <= p.service_from <= (e.service_to or e.service_from))
    return (member, name, dates)


class _Candidates:
    """The encounters a payment's CLP01 and payee may mean, and the one it names best (rule 2): the
    single best by member id, then name, then dates; a tie is ambiguous, never a guess.

    With many encounters under one CLP01 (many patients reusing it), the best is found among the
    few its member id or its patient's name pick out (indexes made once, on first need), not by
    scoring every encounter for every payment: linear, not quadratic."""

    __slots__ = ("by_member", "by_name", "dated", "encounters")

    SMALL = 8  # up to this many, scoring them all is cheaper than indexing

    def __init__(self, encounters: list[Encounter]):
        self.encounters = encounters
        self.by_member: dict[str, list[Encounter]] | None = None
        self.by_name: dict[tuple[str, str], list[Encounter]] | None = None
        self.dated: dict[date | None, Encounter | None] = {}  # service date -> the one encounter spanning it

    def best(self, p: PaymentFact) -> Encounter | None:
        if len(self.encounters) <= 1:
            return self.encounters[0] if self.encounters else None
        if len(self.encounters) <= self.SMALL:
            return _unique_best(self.encounters, p)
        if self.by_member is None or self.by_name is None:
            self.by_member, self.by_name = defaultdict(list), defaultdict(list)
            for e in self.encounters:
                for m in e.members:
                    self.by_member[m].append(e)
                for name in dict.fromkeys((c.patient_last.upper(), c.patient_first.upper()) for c in e.claims):
                    self.by_name[name].append(e)
        # the best scores highest on the first criterion any encounter meets: only those compete
        group = self.by_member.get(p.member_id, []) if p.member_id else []
        group = group or self.by_name.get((p.patient_last.upper(), p.patient_first.upper()), [])
        if group:
            return _unique_best(group, p)
        if p.service_from not in self.dated:  # none named: the dates alone decide (once per date)
            dated = [e for e in self.encounters if _score(e, p)[2]]
            self.dated[p.service_from] = dated[0] if len(dated) == 1 else None
        return self.dated[p.service_from]


def _unique_best(candidates: list[Encounter], p: PaymentFact) -> Encounter | None:
    """The candidate scoring highest, or None when two share the highest score (ambiguous)."""
    if len(candidates) == 1:
        return candidates[0]
    ranked = sorted(candidates, key=lambda e: _score(e, p), reverse=True)
    if _score(ranked[0], p) == _score(ranked[1], p):
        return None  # ambiguous: an exception, never a guess
    return ranked[0]


def match_patient_payments(encounters: list[Encounter], payments: list[PatientPaymentFact]) -> list[PatientPaymentFact]:
    """Attach patient payments by CLM01 (and NPI / member id when the CSV gives them)."""
    by_pcn: dict[str, list[Encounter]] = defaultdict(list)
    for e in encounters:
        by_pcn[e.pcn].append(e)
    unmatched = []
    # each encounter's payments gathered in a list, then made its tuple once (not rebuilt per payment)
    attached: dict[int, tuple[Encounter, list[PatientPaymentFact]]] = {}
    for pp in payments:
        candidates = [e for e in by_pcn.get(pp.pcn, []) if (not pp.npi or pp.npi == e.npi) and (not pp.member_id or pp.member_id in e.members)]
        if len(candidates) == 1:
            e = candidates[0]
            entry = attached.get(id(e))
            if entry is None:
                entry = attached[id(e)] = (e, list(e.patient_payments))
            entry[1].append(pp)
        else:
            unmatched.append(pp)
    for e, pps in attached.values():
        e.patient_payments = tuple(pps)
    return unmatched


class Covered(dict[tuple[str, ...], PaymentFact]):
    """Rule 4's lines (or whole claims) already paid on one encounter, and the first payment kept
    under each key's head (a payer id, or "ALL"): a payment without lines looks up its payer's
    first paid line rather than scanning every line paid."""

    __slots__ = ("first",)

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[str, PaymentFact] = {}

    def add(self, key: tuple[str, ...], p: PaymentFact) -> None:
        self[key] = p
        self.first.setdefault(key[0], p)


class _LineIndex:
    """An encounter's claim lines looked up by what matches them, so that matching each payment
    line costs one lookup, not a pass over every billed line (linear, not quadratic, in lines)."""

    __slots__ = ("billed", "controls", "first")

    def __init__(self, e: Encounter):
        claim_lines = e.claims[0].lines if len(e.claims) == 1 else [ln for c in e.claims for ln in c.lines]
        self.controls = {ln.line_item_control_number for ln in claim_lines}
        #: procedure, modifiers, date, units -> the first claim line with them
        self.first: dict[tuple[str, str, date | None, Decimal], ClaimLine] = {}
        for ln in claim_lines:
            self.first.setdefault((ln.procedure_code, ln.modifiers, ln.service_date, ln.units if ln.units is not None else ONE), ln)
        #: id of a claim -> its lines by their own key (``Encounter.billed_line``)
        self.billed: dict[int, dict[tuple[str, ...], ClaimLine]] = {}


def _index(e: Encounter) -> _LineIndex:
    if e.lines_index is None:
        e.lines_index = _LineIndex(e)
    return e.lines_index


def line_key(e: Encounter, line: PaymentLine) -> tuple[str, ...]:
    """Which billed line a payment line pays: REF*6R first, else procedure + modifiers + date + units."""
    index = _index(e)
    if line.control and line.control in index.controls:
        return ("6R", line.control)
    ln = index.first.get((line.procedure, line.modifiers, line.service_date, line.units if line.units is not None else ONE))
    if ln is not None and ln.line_item_control_number:
        return ("6R", ln.line_item_control_number)
    return ("SV", line.procedure, line.modifiers, str(line.service_date))


def service_key(e: Encounter, p: PaymentFact, line: PaymentLine) -> tuple[str, ...]:
    """The same service for one payer, whatever the claim number (rule 4)."""
    return (p.payer_id, e.npi, e.member_id, str(line.service_date or p.service_from), line.procedure, line.modifiers)
