"""835 Health Care Claim Payment/Advice (005010X221A1; 004010X091A1 best-effort).

Builds :class:`Remittance`, :class:`ClaimPayment` and :class:`ProviderAdjustment` records from the
segments of one transaction set.  Claim payments are handed out as soon as they are complete, so
memory does not grow with the number of claims.  Nothing here judges money: an 835 that does not
balance is read exactly as it is (balancing is the engine's business).
"""

from __future__ import annotations

from collections.abc import Iterator

from .model import (
    Adjustment,
    ClaimPayment,
    Party,
    ProviderAdjustment,
    Remittance,
    ServicePayment,
)
from .source import Source
from .values import Values, element, n3_address, n4_place, nm1_party, per_contact, procedure
from .x12 import LONG_SEGMENT, TransactionSet, segment_length

_NM1_ROLES = {"QC": "patient", "IL": "insured", "74": "corrected_insured", "82": "rendering_provider", "TT": "crossover_carrier", "PR": "corrected_payer"}


def read_835(ts: TransactionSet, v: Values) -> Iterator[ClaimPayment | ProviderAdjustment]:
    """Yield the claim payments and provider adjustments of one 835 transaction set.

    This is the hot path of the benchmarks: well-formed values come from the caches of ``v``
    (one dict lookup), sources are built with ``tuple.__new__`` (the same value as
    ``Envelope.at``), and a malformed value falls back to the checked conversions of ``v``.
    """
    comp = ts.delimiters.component
    trusted = ts.trusted
    at = v.at
    code = v.code
    dec = v.dec
    day = v.day
    number = v.number
    amounts_get = v._amounts.get
    dates_get = v._dates.get
    numbers_get = v._numbers.get
    composites: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    new = tuple.__new__
    fname, isa13, gs06, st02 = ts.envelope
    known_groups = v._known["CAS01"]
    known_reasons = v._known["CARC"]
    rem = Remittance(ts.version, "", None, "", "", "", None, "", "", "", source=ts.source)
    claim: ClaimPayment | None = None
    svc: ServicePayment | None = None
    n1 = ""  # the N1 loop in hand: PR payer, PE payee
    for seg, off, els in ts.segments():
        sid = els[0]
        n = len(els)
        if sid == "DTM":
            text = els[2] if n > 2 else ""
            d = dates_get(text)
            if d is None:
                d = day(text, "DTM02", seg, off)
            q = els[1] if n > 1 else ""
            if svc is not None:
                if q == "472":
                    svc.service_date = svc.service_end_date = d
                elif q == "150":
                    svc.service_date = d
                elif q == "151":
                    svc.service_end_date = d
            elif claim is not None:
                if q == "232":
                    claim.statement_from = d
                elif q == "233":
                    claim.statement_to = d
                elif q == "050":
                    claim.received_date = d
            elif q == "405":
                rem.production_date = d
        elif sid == "CAS":
            target = svc if svc is not None else claim
            if target is None:
                v.find("ORPHAN_SEGMENT", "CAS before any CLP claim payment; skipped", seg, off)
                continue
            group = els[1] if n > 1 else ""
            if group not in known_groups:
                code("CAS01", group, seg, off)
            src = new(Source, (fname, seg, off, isa13, gs06, st02, "2110" if svc is not None else "2100"))
            adjs = target.adjustments
            for i in range(2, min(n, 20), 3):
                reason = els[i]
                text = els[i + 1] if n > i + 1 else ""
                if not reason and not text:
                    continue
                if reason not in known_reasons:
                    code("CARC", reason, seg, off)
                amount = amounts_get(text)
                if amount is None:
                    amount = dec(text, f"CAS{i + 1:02d}", seg, off)
                qty = els[i + 2] if n > i + 2 else ""
                adjs.append(Adjustment(group, reason, amount, number(qty, f"CAS{i + 2:02d}", seg, off) if qty else None, src))
        elif sid == "REF":
            q = els[1] if n > 1 else ""
            val = els[2] if n > 2 else ""
            if svc is not None:
                if q == "6R":
                    svc.line_item_control_number = val
                else:
                    svc.references.append((q, val))
            elif claim is not None:
                claim.references.append((q, val))
            elif n1 == "PR" and q == "2U":
                if not rem.payer_id:
                    rem.payer_id = val
            elif n1 == "PE" and rem.payee is not None:
                if q == "TJ":
                    rem.payee.tin = val
                    rem.payee_tin = rem.payee_tin or val
                else:
                    rem.payee.secondary_ids.append((q, val))
        elif sid == "AMT":
            q = els[1] if n > 1 else ""
            text = els[2] if n > 2 else ""
            value = amounts_get(text)
            if value is None:
                value = dec(text, "AMT02", seg, off)
            if svc is not None:
                if q == "B6":
                    svc.allowed = value
            elif claim is not None:
                claim.amounts.append((q, value))
        elif sid == "SVC":
            if claim is None:
                v.find("ORPHAN_SEGMENT", "SVC before any CLP claim payment; skipped", seg, off)
                continue
            text = els[1] if n > 1 else ""
            parsed = composites.get(text)
            if parsed is None:
                parsed = composites[text] = procedure(text, comp)
            charge = els[2] if n > 2 else ""
            paid = els[3] if n > 3 else ""
            units = els[5] if n > 5 else ""
            # a cached amount of zero is falsy: tested against None, not with ``or``
            charge_value = amounts_get(charge)
            if charge_value is None:
                charge_value = dec(charge, "SVC02", seg, off)
            paid_value = amounts_get(paid)
            if paid_value is None:
                paid_value = dec(paid, "SVC03", seg, off)
            svc = ServicePayment(
                parsed[0],
                parsed[1],
                parsed[2],
                charge_value,
                paid_value,
                els[4] if n > 4 else "",
                (numbers_get(units) or number(units, "SVC05", seg, off)) if units else None,
                source=new(Source, (fname, seg, off, isa13, gs06, st02, "2110")),
            )
            if n > 6 and els[6]:
                svc.original_procedure_qualifier, svc.original_procedure_code, svc.original_modifiers = procedure(els[6], comp)
            if n > 7 and els[7]:
                svc.original_units = number(els[7], "SVC07", seg, off)
            claim.services.append(svc)
        elif sid == "CLP":
            if claim is not None:
                yield claim
            svc = None
            pcn = els[1] if n > 1 else ""
            if not pcn:
                v.required(pcn, "CLP01 patient control number", seg, off)
            elif len(pcn) > 38 and segment_length(els) <= LONG_SEGMENT:  # longer ones: checked by the reader
                v.find("ELEMENT_TOO_LONG", f"CLP01 is {len(pcn)} characters long; the X12 maximum is 38", seg, off)
            charge = els[3] if n > 3 else ""
            paid = els[4] if n > 4 else ""
            resp = els[5] if n > 5 else ""
            charge_value = amounts_get(charge)
            if charge_value is None:
                charge_value = dec(charge, "CLP03", seg, off)
            paid_value = amounts_get(paid)
            if paid_value is None:
                paid_value = dec(paid, "CLP04", seg, off)
            resp_value = amounts_get(resp)
            if resp_value is None:
                resp_value = dec(resp, "CLP05", seg, off)
            claim = ClaimPayment(
                rem,
                pcn,
                code("CLP02", els[2] if n > 2 else "", seg, off),
                charge_value,
                paid_value,
                resp_value,
                code("filing indicator", els[6], seg, off) if n > 6 else "",
                els[7] if n > 7 else "",
                els[8] if n > 8 else "",
                els[9] if n > 9 else "",
                els[11] if n > 11 else "",
                source=new(Source, (fname, seg, off, isa13, gs06, st02, "2100")),
                trusted=trusted,
            )
        elif sid == "NM1":
            if claim is None:
                v.find("ORPHAN_SEGMENT", "NM1 before any CLP claim payment; skipped", seg, off)
                continue
            role = _NM1_ROLES.get(els[1] if n > 1 else "")
            if role is not None:
                src = new(Source, (fname, seg, off, isa13, gs06, st02, "2100"))
                if n == 10:  # the usual shape: NM1*QC*1*LAST*FIRST*MIDDLE**SUFFIX*MI*ID
                    party = Party(els[1], els[3], els[4], els[5], els[7], els[8], els[9], None, "", "", [], src)
                else:
                    party = nm1_party(els, v, seg, off, "2100")
                setattr(claim, role, party)
        elif sid == "LQ":
            if svc is not None:
                svc.remark_codes.append(element(els, 2))
        elif sid == "MIA" or sid == "MOA":
            if claim is not None:
                if sid == "MIA":
                    claim.inpatient = els[1:]
                    remarks = [els[i] for i in (5, 20, 21, 22, 23) if n > i and els[i]]
                else:
                    claim.outpatient = els[1:]
                    remarks = [els[i] for i in range(3, 8) if n > i and els[i]]
                claim.remark_codes.extend(remarks)
        elif sid == "PLB":
            if claim is not None:
                yield claim
                claim = svc = None
            yield from _plb(els, rem, v, seg, off, comp, trusted)
        elif sid == "BPR":
            rem.handling_code = els[1] if n > 1 else ""
            rem.payment_amount = dec(els[2] if n > 2 else "", "BPR02", seg, off)
            rem.credit_debit = els[3] if n > 3 else ""
            rem.payment_method = els[4] if n > 4 else ""
            rem.payment_format = els[5] if n > 5 else ""
            rem.payment_date = v.day(els[16], "BPR16", seg, off) if n > 16 else None
            rem.source = at(seg, off, "HEADER")
        elif sid == "TRN":
            rem.trace_type = element(els, 1)
            rem.trace_number = element(els, 2)
            rem.originator_id = element(els, 3)
        elif sid == "N1":
            n1 = element(els, 1)
            party = Party(n1, element(els, 2), id_qualifier=element(els, 3), id=element(els, 4), source=at(seg, off, "1000A" if n1 == "PR" else "1000B"))
            if n1 == "PR":
                rem.payer = party
                if party.id and party.id_qualifier != "XX":
                    rem.payer_id = party.id
            elif n1 == "PE":
                rem.payee = party
                if party.id_qualifier == "XX":
                    rem.payee_npi = party.id
                elif party.id_qualifier == "FI":
                    rem.payee_tin = party.tin = party.id
        elif sid == "LX" or sid == "TS3" or sid == "TS2":
            if claim is not None:
                yield claim
                claim = svc = None
        elif sid == "N3" or sid == "N4" or sid == "PER":
            # the payer's (1000A) and the payee's (1000B) address, and the payer's contacts (PER*CX, BL, IC)
            named = rem.payer if n1 == "PR" else rem.payee if n1 == "PE" else None
            if named is not None and claim is None:
                (n3_address if sid == "N3" else n4_place if sid == "N4" else per_contact)(named, els, v, seg, off, "1000A" if n1 == "PR" else "1000B")
    if claim is not None:
        yield claim


def _plb(els: list[str], rem: Remittance, v: Values, seg: int, off: int, comp: str, trusted: bool) -> Iterator[ProviderAdjustment]:
    provider = element(els, 1)
    fiscal = v.day(element(els, 2), "PLB02", seg, off)
    src = v.at(seg, off, "PLB")
    for position, i in enumerate(range(3, min(len(els), 15), 2), start=1):
        ident = els[i]
        amount_text = els[i + 1] if len(els) > i + 1 else ""
        if not ident and not amount_text:
            continue
        reason, _, reference = ident.partition(comp)
        v.code("PLB03-1", reason, seg, off)
        if not amount_text:
            v.required(amount_text, f"PLB{i + 1:02d} adjustment amount", seg, off)
        yield ProviderAdjustment(
            rem,
            provider,
            fiscal,
            position,
            reason,
            reference,
            v.dec(amount_text, f"PLB{i + 1:02d}", seg, off),
            source=src,
            trusted=trusted,
        )
