"""A payer's bookkeeping of a refund check: the offset pairs of rule 6 (docs/rules.md) and the refund workflow.

When a payer receives a refund the provider sent, its 835 often books it as a take-back (a
positive PLB WO, FB, … naming the claim, or a CLP02 = 22 reversal of the payment refunded) offset
in the same remittance by a negative PLB 72 (authorized return,
``mappings/refund_acknowledgment_codes.csv``) naming the check: the two cancel out and no money
moves.  Such a pair acknowledges the check; it is not money taken back.

:func:`offsets` is the one rule: ``decide`` records no recoupment for what a 72 offsets (and
marks the refund tied to it ``acknowledged``), and the refund workflow acknowledges a sent refund
by the same pairs.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from edirecon import mappings
from edirecon.engine.decide.facts import PaymentFact, PlbFact
from edirecon.money import ZERO

#: a take-back: a positive PLB of a ``recovery`` reason, or a claim reversal (CLP02 = 22)
TakeBack = PlbFact | PaymentFact


@dataclass(frozen=True, slots=True)
class Offset:
    """``amount`` of the take-back ``recovery`` offset by the acknowledgment ``ack`` (same remittance)."""

    ack: PlbFact
    recovery: TakeBack
    amount: Decimal

    @property
    def reference(self) -> str:
        """What the take-back names: the PLB's reference, or the reversal's payer claim number."""
        return self.recovery.icn if isinstance(self.recovery, PaymentFact) else self.recovery.reference


def offsets(plbs: Iterable[PlbFact], payments: Iterable[PaymentFact] = ()) -> list[Offset]:
    """The offset pairs of the PLBs and claim payments given, in PLB order.

    In each remittance (payer and trace number), each negative 72, in order, offsets take-backs
    (positive PLBs of a ``recovery`` reason other than 72, then claim reversals: CLP02 = 22 with a
    negative CLP04) up to its amount: first those with its own reference (a reversal's is its
    CLP07 or CLP01), then one of its exact amount, then the others in order.  What is not offset
    is still a take-back."""
    codes = mappings.refund_acknowledgment_codes()
    kinds = mappings.plb_kinds()
    acks: dict[tuple[str, str], list[PlbFact]] = defaultdict(list)
    recoveries: dict[tuple[str, str], list[PlbFact]] = defaultdict(list)
    reversals: dict[tuple[str, str], list[PaymentFact]] = defaultdict(list)
    for plb in plbs:
        if plb.reason in codes and plb.amount < 0:
            acks[(plb.payer_id, plb.trace_number)].append(plb)
        elif plb.reason not in codes and plb.amount > 0 and kinds.get(plb.reason) == "recovery":
            recoveries[(plb.payer_id, plb.trace_number)].append(plb)
    for p in payments:
        if p.status == "22" and p.paid < 0 and (p.payer_id, p.trace_number) in acks:
            reversals[(p.payer_id, p.trace_number)].append(p)
    out: list[Offset] = []
    for remittance in sorted(acks):
        candidates: list[TakeBack] = [
            *sorted(recoveries.get(remittance, []), key=lambda p: p.order),
            *sorted(reversals.get(remittance, []), key=lambda p: (p.segment, p.ordinal)),
        ]
        takebacks = _Takebacks(candidates)
        for ack in sorted(acks[remittance], key=lambda p: p.order):
            out.extend(Offset(ack, take_back, take) for take_back, take in takebacks.offset(ack))
    return sorted(out, key=lambda o: (o.ack.order, identity(o.recovery)[2:]))


def taken(take_back: TakeBack) -> Decimal:
    """The amount a take-back takes back (positive)."""
    return -take_back.paid if isinstance(take_back, PaymentFact) else take_back.amount


def references(take_back: TakeBack) -> set[str]:
    """What a 72's reference may name of a take-back: a PLB's reference, a reversal's CLP07 or CLP01."""
    if isinstance(take_back, PaymentFact):
        return {x for x in (take_back.icn, take_back.pcn) if x}
    return {take_back.reference.strip()}


class _Takebacks:
    """One remittance's take-backs (in order) and what is left of each, indexed so that a 72 finds
    the ones it offsets by lookups, not by ranking them all (linear in the take-backs, not
    quadratic).

    A 72 takes, in this order: the first of its reference with exactly its amount left (which is
    all it needs), else those of its reference in order; then the first of exactly its amount left
    (of another reference: those of its own are used up by then); then the others in order.  What
    is used up is never visited again: those passed over are used up, so a front index per
    reference and one for all only move forward; a lookup by amount drops the entries whose amount
    left has changed since (each is filed again under its new amount).  A claim reversal is filed
    under each of its references (CLP07 and CLP01)."""

    __slots__ = ("by_amount", "candidates", "exact", "front", "left", "of_ref", "ref_front", "refs")

    def __init__(self, candidates: list[TakeBack]):
        self.candidates = candidates
        self.left = [taken(p) for p in candidates]
        self.refs = [references(p) for p in candidates]
        self.of_ref: dict[str, list[int]] = defaultdict(list)
        self.ref_front: dict[str, int] = defaultdict(int)
        self.front = 0
        # heaps of indices (ascending lists are heaps) by reference and amount left, and by amount left
        self.exact: dict[tuple[str, Decimal], list[int]] = defaultdict(list)
        self.by_amount: dict[Decimal, list[int]] = defaultdict(list)
        for i, (refs, left) in enumerate(zip(self.refs, self.left)):
            for ref in sorted(refs):
                self.of_ref[ref].append(i)
                self.exact[(ref, left)].append(i)
            self.by_amount[left].append(i)

    def offset(self, ack: PlbFact) -> list[tuple[TakeBack, Decimal]]:
        """The take-backs the 72 ``ack`` offsets and how much of each, what is left of them reduced."""
        need = first = -ack.amount
        ref = ack.reference.strip()
        takes: list[tuple[int, Decimal]] = []
        i = self._first(self.exact.get((ref, first)), first)
        if i is not None:
            takes.append(self._take(i, need))
            need = ZERO
        mine = self.of_ref.get(ref)
        if mine and need > 0:
            need, self.ref_front[ref] = self._in_order(mine, self.ref_front[ref], need, takes)
        if need > 0:
            i = self._first(self.by_amount.get(first), first)
            if i is not None:
                takes.append(self._take(i, need))
            else:
                _, self.front = self._in_order(range(len(self.candidates)), self.front, need, takes)
        return [(self.candidates[i], take) for i, take in takes]

    def _in_order(self, indices: list[int] | range, pos: int, need: Decimal, takes: list[tuple[int, Decimal]]) -> tuple[Decimal, int]:
        """Take from ``indices`` in order from ``pos`` until ``need`` is met; what is still needed and
        the new front (the first not used up)."""
        while need > 0 and pos < len(indices):
            i = indices[pos]
            if self.left[i] > 0:
                takes.append(self._take(i, need))
                need -= takes[-1][1]
            if self.left[i] <= 0:
                pos += 1
        return need, pos

    def _first(self, heap: list[int] | None, amount: Decimal) -> int | None:
        """The first take-back of ``heap`` with ``amount`` still left."""
        while heap and self.left[heap[0]] != amount:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def _take(self, i: int, need: Decimal) -> tuple[int, Decimal]:
        take = min(need, self.left[i])
        self.left[i] -= take
        if self.left[i] > 0:
            for ref in self.refs[i]:
                heapq.heappush(self.exact[(ref, self.left[i])], i)
            heapq.heappush(self.by_amount[self.left[i]], i)
        return i, take


def offset_of(pairs: Iterable[Offset]) -> dict[tuple[str, str, int, int], Decimal]:
    """Identity (``identity``) -> the amount of it an offset pair covers (for a take-back: how much
    of it is not taken back; for a 72: how much of it offsets take-backs)."""
    out: dict[tuple[str, str, int, int], Decimal] = defaultdict(lambda: ZERO)
    for o in pairs:
        out[identity(o.recovery)] += o.amount
        out[identity(o.ack)] += o.amount
    return dict(out)


def identity(item: TakeBack) -> tuple[str, str, int, int]:
    """A PLB adjustment's identity: payer, trace number, segment and position; a claim reversal's:
    payer, trace number, its CLP segment and 0."""
    if isinstance(item, PaymentFact):
        return (item.payer_id, item.trace_number, item.segment, 0)
    return (item.payer_id, item.trace_number, item.segment, item.position)
