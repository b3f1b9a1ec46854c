"""A payer's bookkeeping of a refund check: the offset pairs of rule 6 (docs/rules.md) and the refund workflow.

When a payer receives a refund the provider sent, its 835 often books it as a take-back (a
positive PLB WO, FB, … naming the claim) offset in the same remittance by a negative PLB 72
(authorized return, ``mappings/refund_acknowledgment_codes.csv``) naming the check: the two cancel
out and no money moves.  Such a pair acknowledges the check; it is not money taken back.

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

from .facts import ZERO, PlbFact


@dataclass(frozen=True, slots=True)
class Offset:
    """``amount`` of the take-back ``recovery`` offset by the acknowledgment ``ack`` (same remittance)."""

    ack: PlbFact
    recovery: PlbFact
    amount: Decimal


def offsets(plbs: Iterable[PlbFact]) -> list[Offset]:
    """The offset pairs of the PLBs given, in PLB order.

    In each remittance (payer and trace number), each negative 72, in order, offsets take-backs
    (positive PLBs of a ``recovery`` reason other than 72) up to its amount: first those with its
    own reference, then one of its exact amount, then the others in order.  What is not offset is
    still a take-back."""
    codes = mappings.refund_acknowledgment_codes()
    kinds = mappings.plb_kinds()
    acks: dict[tuple[str, str], list[PlbFact]] = defaultdict(list)
    recoveries: dict[tuple[str, str], list[PlbFact]] = defaultdict(list)
    for plb in plbs:
        if plb.reason in codes and plb.amount < 0:
            acks[(plb.payer_id, plb.trace_number)].append(plb)
        elif plb.reason not in codes and plb.amount > 0 and kinds.get(plb.reason) == "recovery":
            recoveries[(plb.payer_id, plb.trace_number)].append(plb)
    out: list[Offset] = []
    for remittance in sorted(acks):
        candidates = sorted(recoveries.get(remittance, []), key=lambda p: p.order)
        left = [p.amount for p in candidates]
        for ack in sorted(acks[remittance], key=lambda p: p.order):
            need = -ack.amount
            ranked = sorted(range(len(candidates)), key=lambda i: (candidates[i].reference.strip() != ack.reference.strip(), left[i] != need, i))
            for i in ranked:
                if need <= 0:
                    break
                take = min(need, left[i])
                if take <= 0:
                    continue
                left[i] -= take
                need -= take
                out.append(Offset(ack, candidates[i], take))
    return sorted(out, key=lambda o: (o.ack.order, o.recovery.order))


def offset_of(pairs: Iterable[Offset]) -> dict[tuple[str, str, int, int], Decimal]:
    """PLB identity (payer, trace, segment, position) -> the amount of it an offset pair covers
    (for a take-back: how much of it is not taken back; for a 72: how much of it offsets take-backs)."""
    out: dict[tuple[str, str, int, int], Decimal] = defaultdict(lambda: ZERO)
    for o in pairs:
        out[identity(o.recovery)] += o.amount
        out[identity(o.ack)] += o.amount
    return dict(out)


def identity(plb: PlbFact) -> tuple[str, str, int, int]:
    """A PLB adjustment's identity: payer, trace number, segment and position."""
    return (plb.payer_id, plb.trace_number, plb.segment, plb.position)
