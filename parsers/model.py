"""The typed, position-aware records the parsers build.

Names follow the implementation guides; each field's docstring-comment names the element it
comes from.  Money is ``Decimal`` and dates are ``date``; ``None`` means absent or malformed
(a malformed value also produced a finding).  Every record and sub-record has a ``source``.

Records handed out by :func:`parsers.iter_records`:

* :class:`Claim` (``record = "claim"``), one per CLM of an 837P/837I/837D;
* :class:`ClaimPayment` (``record = "claim_payment"``), one per CLP of an 835;
* :class:`ProviderAdjustment` (``record = "provider_adjustment"``), one per reason/amount pair of a PLB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from .source import Source


@dataclass(slots=True)
class Address:
    """A mailing address: an N3 segment and the N4 after it (837 2010AA/2010BA/2010CA, 835 1000A/1000B)."""

    lines: list[str]  # N301, N302 (the second only when sent)
    city: str = ""  # N401
    state: str = ""  # N402 (US and Canada)
    postal_code: str = ""  # N403
    country: str = ""  # N404 (outside the US only)
    source: Source | None = None  # the N3 segment (the N4's position when there is no N3)


@dataclass(slots=True)
class Contact:
    """A PER segment: who to call (837 1000A/2010AA, 835 1000A)."""

    function: str  # PER01 (IC information contact, BL technical, CX claims ...)
    name: str  # PER02
    numbers: list[tuple[str, str]] = field(default_factory=list)  # PER03/04, 05/06, 07/08: (TE phone, EX extension, FX fax, EM e-mail ..., number)
    source: Source | None = None

    @property
    def phone(self) -> str:
        """The first telephone number (TE), with its extension (EX) when one follows it."""
        phone = next((n for q, n in self.numbers if q == "TE"), "")
        ext = next((n for q, n in self.numbers if q == "EX"), "")
        return f"{phone} ext. {ext}" if phone and ext else phone


@dataclass(slots=True)
class Party:
    """A person or organisation named by an NM1 (or N1) segment."""

    entity: str  # NM101 / N101 entity identifier code (IL, QC, PR, 85, PE ...)
    name: str  # NM103 last or organisation name / N102
    first_name: str = ""  # NM104
    middle_name: str = ""  # NM105
    suffix: str = ""  # NM107
    id_qualifier: str = ""  # NM108 / N103 (MI member id, XX NPI, PI payer id, FI TIN ...)
    id: str = ""  # NM109 / N104
    date_of_birth: date | None = None  # DMG02 (837 2010BA/2010CA)
    gender: str = ""  # DMG03
    tin: str = ""  # REF*EI / REF*TJ / NM108=FI|24|34
    secondary_ids: list[tuple[str, str]] = field(default_factory=list)  # other REF qualifier/value pairs
    source: Source | None = None
    address: Address | None = None  # N3/N4 of the party's loop
    contacts: list[Contact] = field(default_factory=list)  # PER of the party's loop


@dataclass(slots=True)
class Adjustment:
    """One group/reason/amount/quantity triplet of a CAS segment (up to six per segment)."""

    group: str  # CAS01: CO, PR, OA, PI (CR in 4010)
    reason: str  # CAS02/05/08/11/14/17: claim adjustment reason code
    amount: Decimal | None  # CAS03/06/09/12/15/18
    quantity: Decimal | None  # CAS04/07/10/13/16/19
    source: Source


# ---------------------------------------------------------------------------------------- 837


@dataclass(slots=True)
class LineAdjudication:
    """837 loop 2430: how another payer adjudicated one service line (SVD, CAS, DTP*573)."""

    payer_id: str  # SVD01
    paid: Decimal | None  # SVD02
    procedure_qualifier: str  # SVD03-1
    procedure_code: str  # SVD03-2
    modifiers: tuple[str, ...]  # SVD03-3..6
    paid_units: Decimal | None  # SVD05
    bundled_line_number: str  # SVD06
    adjudicated_on: date | None = None  # DTP*573
    adjustments: list[Adjustment] = field(default_factory=list)
    source: Source | None = None


@dataclass(slots=True)
class ServiceLine:
    """837 loop 2400: one service line (SV1 professional, SV2 institutional, SV3 dental)."""

    number: str  # LX01
    kind: str  # SV1, SV2 or SV3
    procedure_qualifier: str = ""  # SV101-1 / SV202-1 / SV301-1 (HC, AD, ...)
    procedure_code: str = ""  # SV101-2 / SV202-2 / SV301-2
    modifiers: tuple[str, ...] = ()  # SV101-3..6 / SV202-3..6 / SV301-3..6
    revenue_code: str = ""  # SV201
    charge: Decimal | None = None  # SV102 / SV203 / SV302
    unit_basis: str = ""  # SV103 / SV204 (UN units, MJ minutes, DA days)
    units: Decimal | None = None  # SV104 / SV205 / SV306 (procedure count)
    place_of_service: str = ""  # SV105 / SV303
    tooth_numbers: list[str] = field(default_factory=list)  # TOO02 (837D)
    service_date: date | None = None  # DTP*472 (start of a period)
    service_end_date: date | None = None  # DTP*472 RD8 end
    line_item_control_number: str = ""  # REF*6R
    other_payer_adjudications: list[LineAdjudication] = field(default_factory=list)  # loop 2430
    source: Source | None = None


@dataclass(slots=True)
class OtherPayer:
    """837 loops 2320/2330: another payer on the claim (coordination of benefits)."""

    payer_responsibility: str  # SBR01 of 2320 (P, S, T ...)
    relationship: str  # SBR02
    group_number: str  # SBR03
    claim_filing_indicator: str  # SBR09
    payer: Party | None = None  # 2330B NM1*PR
    subscriber: Party | None = None  # 2330A NM1*IL
    paid: Decimal | None = None  # AMT*D payer paid amount
    remaining_patient_liability: Decimal | None = None  # AMT*EAF
    non_covered: Decimal | None = None  # AMT*A8
    adjustments: list[Adjustment] = field(default_factory=list)  # claim-level CAS of 2320
    source: Source | None = None


@dataclass(slots=True)
class Claim:
    """837 loop 2300: one claim with its providers, subscriber, patient, payer and lines."""

    record = "claim"
    transaction_type: str  # 837P, 837I, 837D
    version: str  # ST03 / GS08
    patient_control_number: str  # CLM01
    total_charge: Decimal | None  # CLM02
    facility_code: str  # CLM05-1: place of service (P, D) or facility type (I)
    facility_code_qualifier: str  # CLM05-2: B place of service, A uniform billing facility type
    frequency: str  # CLM05-3: 1 original, 7 replacement, 8 void
    submitter: Party | None
    receiver: Party | None
    billing_provider: Party | None  # 2010AA
    pay_to_provider: Party | None  # 2010AB
    subscriber: Party | None  # 2010BA
    patient: Party | None  # 2010CA, or the subscriber when the patient is the subscriber
    patient_relationship: str  # PAT01 (2000C) or "18" (self) when there is no patient loop
    payer: Party | None  # 2010BB
    payer_responsibility: str  # SBR01 (P, S, T ...)
    claim_filing_indicator: str  # SBR09 (MA, MB, MC, CI ...)
    group_number: str  # SBR03
    original_reference: str = ""  # REF*F8 payer claim control number of the claim replaced or voided
    type_of_bill: str = ""  # 837I: facility type + frequency (CLM05-1 + CLM05-3)
    service_date: date | None = None  # DTP*472 claim-level (837P/D)
    service_end_date: date | None = None
    statement_from: date | None = None  # DTP*434 (837I) statement covers period: from
    statement_to: date | None = None  # DTP*434 RD8 through (the from date when D8)
    statement_source: Source | None = None  # the DTP*434 segment (837I only)
    admission_date: date | None = None  # DTP*435 (837I), D8 or DT (CCYYMMDDHHMM: the hour is not kept)
    admission_source: Source | None = None  # the DTP*435 segment (837I only)
    discharge_date: date | None = None  # DTP*096 (837I)
    diagnosis_codes: list[tuple[str, str]] = field(default_factory=list)  # HI: (qualifier, code)
    references: list[tuple[str, str]] = field(default_factory=list)  # REF in 2300
    other_payers: list[OtherPayer] = field(default_factory=list)  # 2320/2330
    lines: list[ServiceLine] = field(default_factory=list)  # 2400
    created_on: date | None = None  # BHT04: when the claim file was created (orders replacements)
    source: Source | None = None
    trusted: bool = True  # False when the transaction set had envelope errors


# ---------------------------------------------------------------------------------------- 835


@dataclass(slots=True)
class Remittance:
    """835 header: one payment (check or EFT) from a payer to a payee."""

    version: str
    handling_code: str  # BPR01 (I remittance and payment, H notification only ...)
    payment_amount: Decimal | None  # BPR02
    credit_debit: str  # BPR03 (C credit, D debit)
    payment_method: str  # BPR04 (ACH, CHK, NON, BOP, FWT)
    payment_format: str  # BPR05
    payment_date: date | None  # BPR16
    trace_type: str  # TRN01
    trace_number: str  # TRN02 check or EFT trace number
    originator_id: str  # TRN03 originating company identifier
    production_date: date | None = None  # DTM*405
    payer: Party | None = None  # N1*PR (1000A)
    payer_id: str = ""  # N104 of N1*PR, else REF*2U
    payee: Party | None = None  # N1*PE (1000B)
    payee_npi: str = ""  # N104 when N103 = XX
    payee_tin: str = ""  # N104 when N103 = FI, else REF*TJ
    source: Source | None = None


@dataclass(slots=True)
class ServicePayment:
    """835 loop 2110: the payment of one service line (SVC)."""

    procedure_qualifier: str  # SVC01-1 (HC, AD, NU, ...)
    procedure_code: str  # SVC01-2
    modifiers: tuple[str, ...]  # SVC01-3..6
    charge: Decimal | None  # SVC02
    paid: Decimal | None  # SVC03
    revenue_code: str  # SVC04
    units: Decimal | None  # SVC05 units paid (absent means one)
    original_procedure_qualifier: str = ""  # SVC06-1 (procedure as submitted, when different)
    original_procedure_code: str = ""  # SVC06-2
    original_modifiers: tuple[str, ...] = ()  # SVC06-3..6
    original_units: Decimal | None = None  # SVC07
    service_date: date | None = None  # DTM*472, or DTM*150 start
    service_end_date: date | None = None  # DTM*151 end (or the 472 date)
    line_item_control_number: str = ""  # REF*6R
    allowed: Decimal | None = None  # AMT*B6
    adjustments: list[Adjustment] = field(default_factory=list)  # line CAS
    references: list[tuple[str, str]] = field(default_factory=list)
    remark_codes: list[str] = field(default_factory=list)  # LQ*HE
    source: Source | None = None


@dataclass(slots=True)
class ClaimPayment:
    """835 loop 2100: one payer adjudication of one claim (CLP)."""

    record = "claim_payment"
    transaction_type = "835"
    remittance: Remittance
    patient_control_number: str  # CLP01
    status: str  # CLP02 (1 primary, 2 secondary, 3 tertiary, 4 denied, 22 reversal ...)
    charge: Decimal | None  # CLP03
    paid: Decimal | None  # CLP04
    patient_responsibility: Decimal | None  # CLP05
    claim_filing_indicator: str  # CLP06
    payer_claim_control_number: str  # CLP07
    facility_code: str  # CLP08
    frequency: str  # CLP09
    drg_code: str = ""  # CLP11
    adjustments: list[Adjustment] = field(default_factory=list)  # claim-level CAS
    patient: Party | None = None  # NM1*QC
    insured: Party | None = None  # NM1*IL
    corrected_insured: Party | None = None  # NM1*74
    rendering_provider: Party | None = None  # NM1*82
    crossover_carrier: Party | None = None  # NM1*TT
    corrected_payer: Party | None = None  # NM1*PR
    inpatient: list[str] = field(default_factory=list)  # MIA01..MIA24 as sent
    outpatient: list[str] = field(default_factory=list)  # MOA01..MOA09 as sent
    remark_codes: list[str] = field(default_factory=list)  # MIA/MOA remark codes
    references: list[tuple[str, str]] = field(default_factory=list)  # REF
    statement_from: date | None = None  # DTM*232
    statement_to: date | None = None  # DTM*233
    received_date: date | None = None  # DTM*050
    amounts: list[tuple[str, Decimal | None]] = field(default_factory=list)  # AMT (AU, D8, F5, I ...)
    services: list[ServicePayment] = field(default_factory=list)  # 2110
    source: Source | None = None
    trusted: bool = True


@dataclass(slots=True)
class ProviderAdjustment:
    """835 PLB: one reason/reference/amount of a provider-level adjustment (up to six per PLB)."""

    record = "provider_adjustment"
    transaction_type = "835"
    remittance: Remittance
    provider_id: str  # PLB01
    fiscal_period_date: date | None  # PLB02
    position: int  # 1..6: which pair of the PLB segment
    reason: str  # PLB03-1 / 05-1 / ... adjustment reason code (WO, FB, L6, 72 ...)
    reference: str  # PLB03-2 / 05-2 / ... (often a payer claim control number)
    amount: Decimal | None  # PLB04 / 06 / ... positive reduces the payment, negative increases it
    source: Source | None = None
    trusted: bool = True


Record = Claim | ClaimPayment | ProviderAdjustment

#: claim fields only an 837I has: ``edirecon parse`` writes them for 837I claims only
INSTITUTIONAL_FIELDS = ("statement_source", "admission_source")
