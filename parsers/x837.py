"""837 Health Care Claim: Professional (005010X222A1), Institutional (005010X223A2/A3) and
Dental (005010X224A2); the 004010 guides best-effort.

Builds one :class:`Claim` per CLM with the hierarchy above it (billing provider 2000A,
subscriber 2000B, patient 2000C) and the loops below it (2310 providers, 2320/2330 other payers,
2400 lines, 2430 line adjudications).  Claims are handed out as soon as they are complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from .findings import Finding
from .model import Adjustment, Claim, LineAdjudication, OtherPayer, Party, ServiceLine
from .source import Source
from .values import Values, element, n3_address, n4_place, nm1_party, per_contact, procedure
from .x12 import LONG_SEGMENT, TransactionSet, segment_length

#: HI qualifiers that carry diagnosis codes (ICD-10 ABK/ABF/ABJ/ABN/APR, ICD-9 BK/BF/BJ/BN/PR, DR)
DIAGNOSIS_QUALIFIERS = frozenset({"ABK", "ABF", "ABJ", "ABN", "APR", "BK", "BF", "BJ", "BN", "PR", "DR"})
#: NM1 entity code -> loop, before the first claim of a hierarchy
_HEADER_LOOPS = {"41": "1000A", "40": "1000B", "85": "2010AA", "87": "2010AB", "PE": "2010AC", "IL": "2010BA", "PR": "2010BB", "QC": "2010CA"}
#: what a service-line segment says about the claim type when the version does not
_LINE_TYPES = {"SV1": "837P", "SV2": "837I", "SV3": "837D"}


class _State:
    """The hierarchy in hand while claims are read."""

    __slots__ = (
        "billing",
        "created_on",
        "entity",
        "loop",
        "pat",
        "patient",
        "pay_to",
        "payer",
        "receiver",
        "relationship",
        "sbr",
        "submitter",
        "subscriber",
    )

    def __init__(self) -> None:
        self.submitter: Party | None = None
        self.receiver: Party | None = None
        self.billing: Party | None = None
        self.pay_to: Party | None = None
        self.subscriber: Party | None = None
        self.payer: Party | None = None
        self.patient: Party | None = None
        self.relationship = ""
        self.sbr: list[str] = []
        self.pat = ""
        self.entity: Party | None = None
        self.loop = "HEADER"
        self.created_on: date | None = None


def read_837(ts: TransactionSet, v: Values, transaction_type: str) -> Iterator[Claim]:
    """Yield the claims of one 837 transaction set.

    ``transaction_type`` is 837P/837I/837D from the version, or "837" when the version is unknown
    (then each claim's type is taken from its service lines).
    """
    comp = ts.delimiters.component
    rep = ts.delimiters.repetition
    st = _State()
    claim: Claim | None = None
    line: ServiceLine | None = None
    other: OtherPayer | None = None
    svd: LineAdjudication | None = None
    at = v.at
    dates_get = v._dates.get
    # sources built with tuple.__new__ (the same value as ``Envelope.at``), as in the 835 reader
    new = tuple.__new__
    fname, isa13, gs06, st02 = ts.envelope
    # the segments by how often they come (REF, DTP, NM1, SV1, LX ...): the chain is a dispatch
    for seg, off, els in ts.segments():
        sid = els[0]
        if sid == "REF":
            n = len(els)
            q = els[1] if n > 1 else ""
            val = els[2] if n > 2 else ""
            if line is not None:
                if q == "6R" and st.loop == "2400":
                    line.line_item_control_number = val
            elif claim is not None:
                if st.loop == "2300":
                    if q == "F8":
                        claim.original_reference = val
                    claim.references.append((q, val))
            elif st.entity is not None:
                if q in ("EI", "SY", "TJ") and not st.entity.tin:
                    st.entity.tin = val
                else:
                    st.entity.secondary_ids.append((q, val))
        elif sid == "DTP":
            if len(els) > 3:
                q, fmt, text = els[1], els[2], els[3]
            else:
                q, fmt, text = element(els, 1), element(els, 2), ""
            if fmt == "D8" and len(text) == 8:
                start = end = dates_get(text) or v.day(text, f"DTP*{q}", seg, off)
            else:
                start, end = v.period(fmt, text, f"DTP*{q}", seg, off)
            if svd is not None and q == "573":
                svd.adjudicated_on = start
            elif line is not None:
                if q == "472":
                    line.service_date, line.service_end_date = start, end
            elif claim is not None and other is None:
                if q == "472":
                    claim.service_date, claim.service_end_date = start, end
                elif q == "434":
                    claim.statement_from, claim.statement_to = start, end
                    claim.statement_source = new(Source, (fname, seg, off, isa13, gs06, st02, "2300"))
                elif q == "435":
                    claim.admission_date = start
                    claim.admission_source = new(Source, (fname, seg, off, isa13, gs06, st02, "2300"))
                elif q == "096":
                    claim.discharge_date = start
        elif sid == "NM1":
            _nm1(st, claim, line, other, els, v, seg, off)
        elif sid in _LINE_TYPES:
            if claim is None:
                v.find("ORPHAN_SEGMENT", f"{sid} before any CLM claim; skipped", seg, off)
                continue
            if line is None or line.kind:
                # no LX of its own (none since the CLM, or its LX's line already has its SV): its
                # loop (DTP, REF, SVD, CAS ...) goes to a line that never joins the claim, so none
                # of it lands on the line before it, the claim or the claim's 2320 other payer
                why = "no LX since the claim's CLM" if line is None else "the LX before it already has its service segment"
                v.find(
                    "MISSING_SEGMENT", f"{sid} has no LX of its own ({why}): a service line (loop 2400) starts with LX; it is not read as one", seg, off, "2400"
                )
                line = ServiceLine("", sid, source=at(seg, off, "2400"))
                other = svd = None
                st.loop = "2400"
                continue
            claim.lines.append(line)
            _service(line, sid, els, v, seg, off, comp)
            content_type = _LINE_TYPES[sid]
            if claim is not None and claim.transaction_type != content_type:
                if claim.transaction_type != "837":
                    v.find(
                        "TYPE_MISMATCH",
                        f"{sid} service line in a claim of an {claim.transaction_type} guide ({claim.version}); the claim is read as {content_type}",
                        seg,
                        off,
                    )
                claim.transaction_type = content_type
        elif sid == "LX":
            if claim is None:
                v.find("ORPHAN_SEGMENT", "LX service line before any CLM claim; skipped", seg, off)
                continue
            _unserviced(line, v)
            # the line joins the claim at its SV1/SV2/SV3 (an LX without one is no service line)
            line = ServiceLine(els[1] if len(els) > 1 else "", "", source=new(Source, (fname, seg, off, isa13, gs06, st02, "2400")))
            other = svd = None
            st.loop = "2400"
        elif sid == "N3" or sid == "N4" or sid == "PER":
            # the address and contact of a party above the claims (1000A, 2010AA, 2010BA, 2010CA ...);
            # those of the claim's own loops (2310, 2330, 2420) are not read
            if claim is None and st.entity is not None:
                (n3_address if sid == "N3" else n4_place if sid == "N4" else per_contact)(st.entity, els, v, seg, off, st.loop)
        elif sid == "CAS":
            target = svd if svd is not None else other
            if target is None:
                v.find("ORPHAN_SEGMENT", "CAS outside an other-payer loop (2320 or 2430); skipped", seg, off)
                continue
            _cas(target.adjustments, els, v, seg, off, "2430" if svd is not None else "2320")
        elif sid == "AMT":
            q = element(els, 1)
            if other is not None and line is None:
                amt = v.dec(element(els, 2), f"AMT*{q}", seg, off)
                if q == "D":
                    other.paid = amt
                elif q == "EAF":
                    other.remaining_patient_liability = amt
                elif q == "A8":
                    other.non_covered = amt
        elif sid == "CLM":
            _unserviced(line, v)
            if claim is not None:
                yield claim
            claim = _claim(st, els, v, seg, off, comp, transaction_type, ts)
            line = other = svd = None
            st.loop = "2300"
        elif sid == "HI":
            if claim is not None:
                for i in range(1, len(els)):
                    for value in els[i].split(rep) if rep else (els[i],):
                        q, _, code = value.partition(comp)
                        if q in DIAGNOSIS_QUALIFIERS and code:
                            claim.diagnosis_codes.append((q, code.partition(comp)[0]))
        elif sid == "SBR":
            if claim is None:
                st.sbr = els
                st.loop = "2000B"
            else:
                other = OtherPayer(
                    element(els, 1), element(els, 2), element(els, 3), v.code("filing indicator", element(els, 9), seg, off), source=at(seg, off, "2320")
                )
                claim.other_payers.append(other)
                st.loop = "2320"
        elif sid == "SVD":
            if line is None:
                v.find("ORPHAN_SEGMENT", "SVD outside a service line; skipped", seg, off)
                continue
            q, proc, mods = procedure(element(els, 3), comp)
            svd = LineAdjudication(
                element(els, 1),
                v.dec(element(els, 2), "SVD02", seg, off),
                q,
                proc,
                mods,
                v.number(element(els, 5), "SVD05", seg, off),
                element(els, 6),
                source=at(seg, off, "2430"),
            )
            line.other_payer_adjudications.append(svd)
            st.loop = "2430"
        elif sid == "TOO":
            if line is not None and len(els) > 2 and els[2]:
                line.tooth_numbers.append(els[2])
        elif sid == "DMG":
            if st.entity is not None and claim is None:
                st.entity.date_of_birth = v.period(element(els, 1), element(els, 2), "DMG02", seg, off)[0]
                st.entity.gender = element(els, 3)
        elif sid == "PAT":
            if claim is None:
                st.pat = element(els, 1)
        elif sid == "HL":
            _unserviced(line, v)
            if claim is not None:
                yield claim
                claim = line = other = svd = None
            _hl(st, els)
        elif sid == "BHT":
            st.created_on = v.day(element(els, 4), "BHT04", seg, off) if element(els, 4) else None
        elif sid == "CL1":
            if claim is not None and claim.transaction_type == "837":
                claim.transaction_type = "837I"
    _unserviced(line, v)
    if claim is not None:
        yield claim


def _unserviced(line: ServiceLine | None, v: Values) -> None:
    """A MISSING_SEGMENT finding, at its LX, for a 2400 loop that ended without SV1/SV2/SV3 (its
    line was never added to the claim)."""
    if line is not None and not line.kind and line.source is not None:
        v.findings.append(
            Finding.make("MISSING_SEGMENT", "LX service line (loop 2400) has no SV1, SV2 or SV3 segment; it is not read as a service line", line.source)
        )


def _hl(st: _State, els: list[str]) -> None:
    level = element(els, 3)
    st.entity = None
    if level == "20":
        st.loop = "2000A"
        st.billing = st.pay_to = st.subscriber = st.payer = st.patient = None
        st.sbr, st.pat = [], ""
    elif level == "22":
        st.loop = "2000B"
        st.subscriber = st.payer = st.patient = None
        st.sbr, st.pat = [], ""
    elif level == "23":
        st.loop = "2000C"
        st.patient = None
        st.pat = ""
    else:
        st.loop = "2000" + level


def _nm1(st: _State, claim: Claim | None, line: ServiceLine | None, other: OtherPayer | None, els: list[str], v: Values, seg: int, off: int) -> None:
    code = element(els, 1)
    if claim is None:
        loop = _HEADER_LOOPS.get(code, st.loop)
        party = nm1_party(els, v, seg, off, loop)
        st.entity = party
        st.loop = loop
        if code == "41":
            st.submitter = party
        elif code == "40":
            st.receiver = party
        elif code == "85":
            st.billing = party
        elif code == "87":
            st.pay_to = party
        elif code == "IL":
            st.subscriber = party
        elif code == "PR":
            st.payer = party
        elif code == "QC":
            st.patient = party
        return
    st.entity = None
    if line is not None:
        st.loop = "2420"
    elif other is not None:
        st.loop = "2330"
        if code == "IL":
            other.subscriber = nm1_party(els, v, seg, off, "2330A")
        elif code == "PR":
            other.payer = nm1_party(els, v, seg, off, "2330B")
    else:
        st.loop = "2310"


def _claim(st: _State, els: list[str], v: Values, seg: int, off: int, comp: str, kind: str, ts: TransactionSet) -> Claim:
    pcn = element(els, 1)
    if not pcn:
        v.required(pcn, "CLM01 patient control number", seg, off)
    elif len(pcn) > 38 and segment_length(els) <= LONG_SEGMENT:  # longer ones: checked by the reader
        v.find("ELEMENT_TOO_LONG", f"CLM01 is {len(pcn)} characters long; the X12 maximum is 38", seg, off)
    facility, qualifier, frequency = (element(els, 5).split(comp) + ["", "", ""])[:3]
    v.code("frequency", frequency, seg, off)
    charge = element(els, 2)
    if not charge:
        v.required(charge, "CLM02 total claim charge", seg, off)
    sbr = st.sbr
    patient = st.patient if st.patient is not None else st.subscriber
    relationship = st.pat if st.patient is not None else (element(sbr, 2) or "18")
    claim = Claim(
        kind,
        ts.version,
        pcn,
        v.dec(charge, "CLM02", seg, off),
        facility,
        qualifier,
        frequency,
        st.submitter,
        st.receiver,
        st.billing,
        st.pay_to,
        st.subscriber,
        patient,
        relationship,
        st.payer,
        element(sbr, 1),
        v.code("filing indicator", element(sbr, 9), seg, off),
        element(sbr, 3),
        created_on=st.created_on,
        source=v.at(seg, off, "2300"),
        trusted=ts.trusted,
    )
    if qualifier == "A" or kind == "837I":
        claim.type_of_bill = facility + frequency
    return claim


def _service(line: ServiceLine, sid: str, els: list[str], v: Values, seg: int, off: int, comp: str) -> None:
    line.kind = sid
    n = len(els)
    if sid == "SV1":
        line.procedure_qualifier, line.procedure_code, line.modifiers = procedure(els[1] if n > 1 else "", comp)
        line.charge = v.dec(els[2] if n > 2 else "", "SV102", seg, off)
        line.unit_basis = els[3] if n > 3 else ""
        line.units = v.number(els[4] if n > 4 else "", "SV104", seg, off)
        line.place_of_service = els[5] if n > 5 else ""
    elif sid == "SV2":
        line.revenue_code = els[1] if n > 1 else ""
        line.procedure_qualifier, line.procedure_code, line.modifiers = procedure(els[2] if n > 2 else "", comp)
        line.charge = v.dec(els[3] if n > 3 else "", "SV203", seg, off)
        line.unit_basis = els[4] if n > 4 else ""
        line.units = v.number(els[5] if n > 5 else "", "SV205", seg, off)
    else:  # SV3 dental
        line.procedure_qualifier, line.procedure_code, line.modifiers = procedure(els[1] if n > 1 else "", comp)
        line.charge = v.dec(els[2] if n > 2 else "", "SV302", seg, off)
        line.place_of_service = els[3] if n > 3 else ""
        line.units = v.number(els[6] if n > 6 else "", "SV306", seg, off)


def _cas(target: list[Adjustment], els: list[str], v: Values, seg: int, off: int, loop: str) -> None:
    group = v.code("CAS01", element(els, 1), seg, off)
    src = v.at(seg, off, loop)
    for i in range(2, min(len(els), 20), 3):
        reason, amount = els[i], element(els, i + 1)
        if not reason and not amount:
            continue
        v.code("CARC", reason, seg, off)
        qty = element(els, i + 2)
        target.append(Adjustment(group, reason, v.dec(amount, f"CAS{i + 1:02d}", seg, off), v.number(qty, f"CAS{i + 2:02d}", seg, off) if qty else None, src))
