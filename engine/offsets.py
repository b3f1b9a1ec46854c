"""A payer's bookkeeping of a refund check: the offset pairs of README rule 6 and "Refund workflow".

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

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import mappings

from .facts import ZERO, PaymentFact, PlbFact

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
        candidates: list[TakeBack] = [*sorted(recoveries.get(remittance, []), key=lambda p: p.order),
                                      *sorted(reversals.get(remittance, []), key=lambda p: (p.segment, p.ordinal))]
        left = [taken(p) for p in candidates]
        for ack in sorted(acks[remittance], key=lambda p: p.order):
            need = -ack.amount
            ranked = sorted(range(len(candidates)), key=lambda i: (ack.reference.strip() not in references(candidates[i]), left[i] != need, i))
            for i in ranked:
                if need <= 0:
                    break
                take = min(need, left[i])
                if take <= 0:
                    continue
                left[i] -= take
                need -= take
                out.append(Offset(ack, candidates[i], take))
    return sorted(out, key=lambda o: (o.ack.order, identity(o.recovery)[2:]))


def taken(take_back: TakeBack) -> Decimal:
    """The amount a take-back takes back (positive)."""
    return -take_back.paid if isinstance(take_back, PaymentFact) else take_back.amount


def references(take_back: TakeBack) -> set[str]:
    """What a 72's reference may name of a take-back: a PLB's reference, a reversal's CLP07 or CLP01."""
    if isinstance(take_back, PaymentFact):
        return {x for x in (take_back.icn, take_back.pcn) if x}
    return {take_back.reference.strip()}


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
