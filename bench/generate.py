#!/usr/bin/env python3
"""Deterministic generator of realistic X12 005010 837P claims and 835 remittances.

Standard library only.  Files are written segment by segment, so memory does not
grow with the number of claims (a planted-case set of a few indices aside).

    python bench/generate.py --kind 837p --claims 20000 --out bench/data/837p.x12
    python bench/generate.py --kind 835  --claims 20000 --out bench/data/835.x12 \
        --duplicates 5 --overpayments 5
    python bench/generate.py --kind payments --claims 20000 --out bench/data/desk-1.csv --part 1 --parts 3

As a module::

    from generate import generate
    planted = generate("835", "out.x12", claims=100, seed=0, duplicates=2)

Claim *i* (1-based) is a pure function of (seed, i): the 837P bills it and the 835
for the same seed and N pays it under the same patient control number
(``PCN`` + 7-digit index), with the same charges and line procedures, so
benchmarks and tests can match the two files claim for claim.

Delimiters: ``*`` element, ``^`` repetition (ISA11), ``:`` component (ISA16),
``~`` segment terminator followed by ``\\n``.

835 balancing (for every claim payment)::

    SVC02 - sum(line CAS)            = SVC03
    CLP03 - sum(claim CAS + line CAS) = CLP04
    sum(SVC03) - sum(claim CAS)       = CLP04
    BPR02 = sum(CLP04) - sum(PLB amounts)      (per transaction set)

By default adjustments are reported on the service lines only, so
sum(SVC03) = CLP04 exactly; ``claim_cas_rate`` moves the deductible of that share
of claims to a claim-level ``CAS*PR*1`` (the X12 rule above still balances).

Planted cases (835 only), returned as ``{"duplicates": [...], "overpayments": [...]}``
lists of patient control numbers:

* duplicate  - the same claim paid a second time in the same transaction set,
  under a new payer claim control number (CLP07), after the set's other claims;
* overpayment - the first service line is paid past its allowed amount (charge minus CO-45)
  by more than the claim's whole patient responsibility, so the encounter ends in credit; the
  excess is balanced by a negative ``CAS*CO*94``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import random
import sys
from collections.abc import Iterator
from typing import IO

# ---------------------------------------------------------------- reference data
# (code, usual charge in cents, max units, modifiers sometimes billed)
PROCEDURES = [
    ("99213", 15000, 1, ["25"]),
    ("99214", 22000, 1, ["25"]),
    ("99203", 18000, 1, []),
    ("99204", 27500, 1, []),
    ("99396", 25000, 1, []),
    ("36415", 2500, 1, []),
    ("85025", 4000, 1, []),
    ("80053", 6000, 1, []),
    ("93000", 8000, 1, []),
    ("71046", 12000, 1, ["26"]),
    ("97110", 9000, 4, ["GP"]),
    ("20610", 20000, 1, ["RT", "LT"]),
    ("90471", 3000, 1, []),
    ("90686", 4500, 1, []),
    ("81002", 1500, 1, []),
    ("87880", 3500, 1, ["QW"]),
]
DIAGNOSES = ["J069", "R05", "E119", "I10", "M545", "Z0000", "K219", "E785", "F419", "J019", "N390", "R51", "M25561", "Z23", "E039", "G4700"]
LAST = [
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "RODRIGUEZ",
    "MARTINEZ",
    "HERNANDEZ",
    "LOPEZ",
    "GONZALEZ",
    "WILSON",
    "ANDERSON",
    "THOMAS",
    "TAYLOR",
    "MOORE",
    "JACKSON",
    "MARTIN",
    "LEE",
    "PEREZ",
    "THOMPSON",
]
FIRST = [
    "JAMES",
    "MARY",
    "ROBERT",
    "PATRICIA",
    "JOHN",
    "JENNIFER",
    "MICHAEL",
    "LINDA",
    "DAVID",
    "ELIZABETH",
    "WILLIAM",
    "BARBARA",
    "RICHARD",
    "SUSAN",
    "JOSEPH",
    "JESSICA",
    "THOMAS",
    "SARAH",
    "CHARLES",
    "KAREN",
    "MARIA",
    "DANIEL",
    "NANCY",
]
STREETS = ["MAIN ST", "OAK AVE", "PINE RD", "MAPLE DR", "CEDAR LN", "ELM ST", "LAKE BLVD", "HILL RD", "PARK AVE", "RIVER RD"]
CITIES = [
    ("SPRINGFIELD", "IL", "62701"),
    ("COLUMBUS", "OH", "43215"),
    ("AUSTIN", "TX", "78701"),
    ("DENVER", "CO", "80202"),
    ("RALEIGH", "NC", "27601"),
    ("MADISON", "WI", "53703"),
    ("PORTLAND", "OR", "97201"),
    ("ALBANY", "NY", "12207"),
]
MBI_ALPHA = "ACDEFGHJKMNPQRTUVWXY"  # letters allowed in a Medicare Beneficiary Identifier

SENDER, RECEIVER = "EDIRECONSUB", "EDIRECONRCV"
PAYER = ("ACME HEALTH PLAN", "60054", "1060054000")  # name, payer id, TRN03/BPR10 id
#: the payers of a mix of 835s (``write_835(payer=k)``); the first is ``PAYER``
PAYERS = (
    PAYER,
    ("GREAT LAKES MUTUAL", "31114", "1311140000"),
    ("PRAIRIE CARE HMO", "47098", "1470980000"),
    ("SUMMIT BLUE PPO", "82020", "1820200000"),
)
PROVIDER = ("EDIRECON FAMILY PRACTICE", "123456789")  # name, EIN
PROVIDER_ADDRESS = ("100 CLINIC WAY", "SPRINGFIELD", "IL", "627011234")


# ---------------------------------------------------------------- small helpers
def amt(cents: int) -> str:
    """X12 decimal (R) with non-significant zeros suppressed: 15000 -> '150', -1250 -> '-12.5'."""
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    whole, frac = divmod(cents, 100)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:02d}".rstrip("0")


def npi(base9: str) -> str:
    """Append the Luhn check digit (with the 80840 prefix) to a 9-digit NPI base."""
    total = 24  # contribution of the '80840' prefix
    for i, ch in enumerate(reversed(base9)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return base9 + str((10 - total % 10) % 10)


def pcn(i: int) -> str:
    """Patient control number (CLM01 / CLP01) of claim *i*."""
    return f"PCN{i:07d}"


def d8(day: _dt.date) -> str:
    return day.strftime("%Y%m%d")


def file_date(seed: int) -> _dt.date:
    """Creation date of the 837 for *seed*; the 835 is dated 21 days later."""
    return _dt.date(2024, 1, 2) + _dt.timedelta(days=random.Random(f"{seed}/date").randrange(300))


BILLING_NPI = npi("123456789")


class SegmentWriter:
    """Writes segments to a text stream, counting them for SE01."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.count = 0

    def __call__(self, *elements: str) -> None:
        self.out.write("*".join(elements).rstrip("*") + "~\n")
        self.count += 1


def envelope_open(w: SegmentWriter, seed: int, when: _dt.date, functional_id: str, version: str, file_no: int = 0) -> str:
    """Write ISA and GS; return the interchange control number (another one for each ``file_no``
    of a mix of files)."""
    icn = f"{random.Random(f'{seed}/icn/{functional_id}' + (f'/{file_no}' if file_no else '')).randrange(1, 10**9):09d}"
    w(
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        "ZZ",
        SENDER.ljust(15),
        "ZZ",
        RECEIVER.ljust(15),
        when.strftime("%y%m%d"),
        "1200",
        "^",
        "00501",
        icn,
        "0",
        "P",
        ":",
    )
    w("GS", functional_id, SENDER, RECEIVER, d8(when), "1200", str(int(icn)), "X", version)
    return icn


def envelope_close(w: SegmentWriter, icn: str, transactions: int) -> None:
    w("GE", str(transactions), str(int(icn)))
    w("IEA", "1", icn)


def chunks(n: int, per: int | None, first: int = 1) -> Iterator[range]:
    """Claim indices first..first+n-1 split into transaction sets of *per* claims (all in one when None)."""
    per = per or max(n, 1)
    for start in range(first, first + n, per):
        yield range(start, min(start + per, first + n))


# ---------------------------------------------------------------- the claim model
def claim(seed: int, i: int, when: _dt.date) -> dict:
    """Claim *i*: patient, payer type, diagnoses and 1-3 service lines (amounts in cents)."""
    r = random.Random(f"{seed}/claim/{i}")
    medicare = r.random() < 0.2
    if medicare:
        member = (
            str(r.randrange(1, 10))
            + r.choice(MBI_ALPHA)
            + r.choice(MBI_ALPHA + "0123456789")
            + str(r.randrange(10))
            + r.choice(MBI_ALPHA)
            + r.choice(MBI_ALPHA + "0123456789")
            + str(r.randrange(10))
            + r.choice(MBI_ALPHA)
            + r.choice(MBI_ALPHA)
            + str(r.randrange(10))
            + str(r.randrange(10))
        )
    else:
        member = f"W{r.randrange(10**8, 10**9)}"
    city = r.choice(CITIES)
    service = when - _dt.timedelta(days=r.randrange(3, 60))
    lines = []
    for _ in range(r.choice((1, 1, 2, 2, 2, 3))):
        code, base, max_units, mods = r.choice(PROCEDURES)
        units = r.randint(1, max_units)
        charge = round(base * r.uniform(0.9, 1.2) / 100) * 100 * units  # whole dollars
        mod = r.choice(mods) if mods and r.random() < 0.3 else ""
        lines.append({"code": code, "mod": mod, "units": units, "charge": charge})
    return {
        "pcn": pcn(i),
        "medicare": medicare,
        "member": member,
        "last": r.choice(LAST),
        "first": r.choice(FIRST),
        "sex": r.choice("FM"),
        "dob": d8(_dt.date(1940, 1, 1) + _dt.timedelta(days=r.randrange(365 * 60))),
        "street": f"{r.randrange(1, 9999)} {r.choice(STREETS)}",
        "city": city,
        "service": d8(service),
        "onset": d8(service - _dt.timedelta(days=r.randrange(1, 30))) if r.random() < 0.5 else None,
        "dx": r.sample(DIAGNOSES, r.randint(1, 3)),
        "lines": lines,
        "mrn": f"MR{r.randrange(10**6, 10**7)}",
        "received": d8(service + _dt.timedelta(days=r.randint(1, 2))),
    }


def adjudicate(seed: int, i: int, c: dict, *, overpaid: bool, claim_cas_rate: float) -> dict:
    """Payer's decision for claim *c*: per-line CAS groups and paid amounts, all balanced."""
    r = random.Random(f"{seed}/pay/{i}")
    deductible = r.randrange(20, 150) * 100 if r.random() < 0.15 else 0
    lines = []
    for line in c["lines"]:
        charge = line["charge"]
        co, pr = [], []  # (reason, cents) pairs for CAS*CO / CAS*PR
        if line["code"] == "36415" and r.random() < 0.5:  # venipuncture bundled
            co.append(("97", charge))
            allowed = 0
        else:
            allowed = round(charge * r.uniform(0.45, 0.6) if c["medicare"] else charge * r.uniform(0.6, 0.85))
            if charge - allowed:
                co.append(("45", charge - allowed))
            ded = min(deductible, allowed)
            deductible -= ded
            if ded:
                pr.append(("1", ded))
            rest = allowed - ded
            if c["medicare"]:
                share = round(rest * 0.2)
                if share:
                    pr.append(("2", share))
            elif line["code"].startswith("992") and rest:
                pr.append(("3", min(rest, r.choice((2000, 3000, 4000)))))
            elif rest and r.random() < 0.3:
                pr.append(("2", round(rest * 0.1)))
        remark = "M15" if allowed == 0 else ("N130" if r.random() < 0.3 else "")
        paid = charge - sum(a for _, a in co) - sum(a for _, a in pr)
        lines.append({"co": co, "pr": pr, "paid": paid, "allowed": allowed, "remark": remark})
    if overpaid:
        # the payer pays line 1 past its allowed amount by more than the whole patient
        # responsibility of the claim, so the encounter ends in credit (docs/rules.md, rule 5);
        # the excess is balanced by a negative CO-94
        first = lines[0]
        excess = sum(a for ln in lines for _, a in ln["pr"]) + max(1000, round(first["allowed"] * r.uniform(0.1, 0.4)))
        first["co"].append(("94", -excess))
        first["paid"] += excess
    claim_pr: list[tuple[str, int]] = []
    if claim_cas_rate and r.random() < claim_cas_rate:  # report deductible at claim level instead
        for ln in lines:
            for reason, a in [p for p in ln["pr"] if p[0] == "1"]:
                ln["pr"].remove((reason, a))
                ln["paid"] += a
                claim_pr.append((reason, a))
    line_paid = sum(ln["paid"] for ln in lines)
    paid = line_paid - sum(a for _, a in claim_pr)
    patient = sum(a for ln in lines for _, a in ln["pr"]) + sum(a for _, a in claim_pr)
    return {"lines": lines, "claim_pr": claim_pr, "paid": paid, "patient": patient, "status": "1" if paid or patient else "4"}


def cas(w: SegmentWriter, group: str, pairs: list[tuple[str, int]]) -> None:
    """One CAS segment per group, up to six (reason, amount, quantity) triplets."""
    for k in range(0, len(pairs), 6):
        elements = []
        for reason, cents in pairs[k : k + 6]:
            elements += [reason, amt(cents), ""]
        w("CAS", group, *elements)


# ---------------------------------------------------------------- 837P
def write_837p(out: IO[str], claims: int, seed: int = 0, claims_per_transaction: int | None = None, first: int = 1, file_no: int = 0) -> None:
    """Claims first..first+claims-1; ``file_no`` (one of a mix of files) makes the envelope's
    control numbers and the BHT reference the file's own."""
    w = SegmentWriter(out)
    when = file_date(seed)
    icn = envelope_open(w, seed, when, "HC", "005010X222A1", file_no)
    sets = 0
    for sets, block in enumerate(chunks(claims, claims_per_transaction, first), 1):
        start = w.count
        st = f"{sets:04d}"
        w("ST", "837", st, "005010X222A1")
        w("BHT", "0019", "00", f"B{seed}{file_no:04d}{sets:05d}" if file_no else f"B{seed}{sets:05d}", d8(when), "1200", "CH")
        w("NM1", "41", "2", "EDIRECON BILLING SERVICE", "", "", "", "", "46", SENDER)
        w("PER", "IC", "BILLING DESK", "TE", "2175550100")
        w("NM1", "40", "2", "EDIRECON CLEARINGHOUSE", "", "", "", "", "46", RECEIVER)
        w("HL", "1", "", "20", "1")
        w("NM1", "85", "2", PROVIDER[0], "", "", "", "", "XX", BILLING_NPI)
        w("N3", PROVIDER_ADDRESS[0])
        w("N4", *PROVIDER_ADDRESS[1:])
        w("REF", "EI", PROVIDER[1])
        for hl, i in enumerate(block, 2):
            c = claim(seed, i, when)
            w("HL", str(hl), "1", "22", "0")
            w("SBR", "P", "18", "", "", "", "", "", "", "MB" if c["medicare"] else "CI")
            w("NM1", "IL", "1", c["last"], c["first"], "", "", "", "MI", c["member"])
            w("N3", c["street"])
            w("N4", *c["city"])
            w("DMG", "D8", c["dob"], c["sex"])
            if c["medicare"]:
                w("NM1", "PR", "2", "MEDICARE PART B", "", "", "", "", "PI", "00952")
            else:
                w("NM1", "PR", "2", PAYER[0], "", "", "", "", "PI", PAYER[1])
            w("CLM", c["pcn"], amt(sum(ln["charge"] for ln in c["lines"])), "", "", "11:B:1", "Y", "A", "Y", "Y")
            if c["onset"]:
                w("DTP", "431", "D8", c["onset"])
            w("REF", "EA", c["mrn"])
            w("HI", *[("ABK:" if k == 0 else "ABF:") + dx for k, dx in enumerate(c["dx"])])
            for n, ln in enumerate(c["lines"], 1):
                proc = f"HC:{ln['code']}" + (f":{ln['mod']}" if ln["mod"] else "")
                w("LX", str(n))
                w("SV1", proc, amt(ln["charge"]), "UN", str(ln["units"]), "", "", "1")
                w("DTP", "472", "D8", c["service"])
                w("REF", "6R", f"{c['pcn']}-{n}")
        w("SE", str(w.count - start + 1), st)
    envelope_close(w, icn, sets)


# ---------------------------------------------------------------- 835
def _remit_claim(w: SegmentWriter | None, seed: int, i: int, when: _dt.date, ccn: str, overpaid: bool, claim_cas_rate: float) -> int:
    """Write one claim payment loop (when *w* is given); return CLP04 in cents."""
    c = claim(seed, i, when)
    p = adjudicate(seed, i, c, overpaid=overpaid, claim_cas_rate=claim_cas_rate)
    if w is None:
        return p["paid"]
    w(
        "CLP",
        c["pcn"],
        p["status"],
        amt(sum(ln["charge"] for ln in c["lines"])),
        amt(p["paid"]),
        amt(p["patient"]),
        "MB" if c["medicare"] else "12",
        ccn,
        "11",
        "1",
    )
    if p["claim_pr"]:
        cas(w, "PR", p["claim_pr"])
    w("NM1", "QC", "1", c["last"], c["first"], "", "", "", "MI", c["member"])
    w("NM1", "IL", "1", c["last"], c["first"], "", "", "", "MI", c["member"])
    if c["medicare"]:
        w("MOA", "", "", "MA01")
    w("REF", "EA", c["mrn"])
    w("DTM", "232", c["service"])
    w("DTM", "233", c["service"])
    w("DTM", "050", c["received"])
    w("AMT", "AU", amt(sum(pl["allowed"] for pl in p["lines"])))
    for n, (ln, pl) in enumerate(zip(c["lines"], p["lines"]), 1):
        proc = f"HC:{ln['code']}" + (f":{ln['mod']}" if ln["mod"] else "")
        w("SVC", proc, amt(ln["charge"]), amt(pl["paid"]), "", str(ln["units"]))
        w("DTM", "472", c["service"])
        if pl["co"]:
            cas(w, "CO", pl["co"])
        if pl["pr"]:
            cas(w, "PR", pl["pr"])
        w("REF", "6R", f"{c['pcn']}-{n}")
        w("AMT", "B6", amt(pl["allowed"]))
        if pl["remark"]:
            w("LQ", "HE", pl["remark"])
    return p["paid"]


def _plb(seed: int, sets: int, paid: int, ccn: str) -> list[tuple[str, str, int]]:
    """Provider adjustments for a transaction set: a WO recoupment and L6 interest (negative)."""
    r = random.Random(f"{seed}/plb/{sets}")
    recoup = min(r.randrange(50, 500) * 100, paid // 2)
    interest = r.randrange(100, 2000)
    return [(f"WO:{ccn}", "WO", recoup), ("L6", "L6", -interest)] if recoup > 0 else [("L6", "L6", -interest)]


def write_835(
    out: IO[str],
    claims: int,
    seed: int = 0,
    claims_per_transaction: int | None = None,
    duplicates: int = 0,
    overpayments: int = 0,
    plb: bool = True,
    claim_cas_rate: float = 0.0,
    first: int = 1,
    file_no: int = 0,
    payer: int = 0,
) -> dict:
    """Pays claims first..first+claims-1 (``PAYERS[payer]`` pays them); ``file_no`` (one of a mix
    of files) makes the envelope's control numbers, the trace numbers and the duplicates' payer
    claim control numbers the file's own."""
    planted_r = random.Random(f"{seed}/planted" + (f"/{file_no}" if file_no else ""))
    when = file_date(seed) + _dt.timedelta(days=21)
    picks = planted_r.sample(range(first, first + claims), min(claims, 4 * (duplicates + overpayments) + 10))
    # a duplicate is a claim paid twice: only claims the payer pays money on qualify
    paying = [i for i in picks if _remit_claim(None, seed, i, when, "", False, claim_cas_rate) > 0]
    dup = sorted(paying[:duplicates])
    over = set([i for i in picks if i not in dup][:overpayments])
    if len(dup) < duplicates or len(over) < overpayments:
        raise ValueError(f"cannot plant {duplicates} duplicates and {overpayments} overpayments in {claims} claims")
    w = SegmentWriter(out)
    icn = envelope_open(w, seed, when, "HP", "005010X221A1", file_no)
    ccn = lambda i: f"24{seed % 1000:03d}{i:09d}"  # noqa: E731  payer claim control number
    name, payer_id, trn_id = PAYERS[payer]
    sets = 0
    for sets, block in enumerate(chunks(claims, claims_per_transaction, first), 1):
        redo = [i for i in dup if i in block]
        # first pass: the payment total for BPR02 (claims are pure functions of (seed, i))
        paid = sum(_remit_claim(None, seed, i, when, "", i in over, claim_cas_rate) for i in block)
        paid += sum(_remit_claim(None, seed, i, when, "", i in over, claim_cas_rate) for i in redo)
        adjustments = _plb(seed, sets, paid, ccn(block[len(block) // 2])) if plb and len(block) else []
        total = paid - sum(a for _, _, a in adjustments)
        start = w.count
        st = f"{sets:04d}"
        w("ST", "835", st)
        w("BPR", "I", amt(total), "C", "ACH", "CCP", "01", "071000013", "DA", "1234567890", trn_id, "", "01", "071000039", "DA", "9876543210", d8(when))
        w("TRN", "1", f"{seed % 10000:04d}{when:%y%m%d}{file_no:04d}{sets:05d}" if file_no else f"{seed % 10000:04d}{when:%y%m%d}{sets:05d}", trn_id)
        w("DTM", "405", d8(when))
        w("N1", "PR", name)
        w("N3", "1 INSURANCE PLAZA")
        w("N4", "HARTFORD", "CT", "061030001")
        w("REF", "2U", payer_id)
        w("PER", "BL", "PROVIDER SERVICES", "TE", "8005550199")
        w("N1", "PE", PROVIDER[0], "XX", BILLING_NPI)
        w("N3", PROVIDER_ADDRESS[0])
        w("N4", *PROVIDER_ADDRESS[1:])
        w("REF", "TJ", PROVIDER[1])
        if len(block) or redo:
            w("LX", "1")
        for i in block:
            _remit_claim(w, seed, i, when, ccn(i), i in over, claim_cas_rate)
        for i in redo:  # the same claim again, under a new CLP07
            _remit_claim(w, seed, i, when, ccn(first + claims + dup.index(i) + (10**8 + file_no * 10**5 if file_no else 0)), i in over, claim_cas_rate)
        for k in range(0, len(adjustments), 6):
            elements = []
            for ref, _, a in adjustments[k : k + 6]:
                elements += [ref, amt(a)]
            w("PLB", BILLING_NPI, f"{when.year}1231", *elements)
        w("SE", str(w.count - start + 1), st)
    envelope_close(w, icn, sets)
    return {"duplicates": [pcn(i) for i in dup], "overpayments": [pcn(i) for i in sorted(over)]}


# ---------------------------------------------------------------- patient payments
def write_patient_payments(out: IO[str], claims: int, seed: int = 0, share: float = 0.25, part: int = 1, parts: int = 1, first: int = 1) -> int:
    """A patient-payments CSV: what the front desk collected at the visit on *share* of the claims
    the 835 leaves a patient responsibility on (a copay guessed before adjudication: 20.00 to
    50.00, more than the responsibility about half the time, which is a patient credit).  The
    claims are split into *parts* files by index (claim i in part ``1 + i % parts``); returns the
    number of payments written (claims first..first+claims-1)."""
    when = file_date(seed) + _dt.timedelta(days=21)
    out.write("patient_control_number,amount,paid_on,payment_id\n")
    n = 0
    for i in range(first, first + claims):
        if 1 + i % parts != part:
            continue
        r = random.Random(f"{seed}/desk/{i}")
        if r.random() >= share:
            continue
        c = claim(seed, i, when)
        if adjudicate(seed, i, c, overpaid=False, claim_cas_rate=0.0)["patient"] <= 0:
            continue
        out.write(f"{c['pcn']},{r.choice((20, 25, 30, 40, 50))}.00,{_dt.datetime.strptime(c['service'], '%Y%m%d').date()},DESK{seed}-{i:07d}\n")
        n += 1
    return n


# ---------------------------------------------------------------- entry points
def generate(
    kind: str,
    path: str,
    claims: int,
    seed: int = 0,
    claims_per_transaction: int | None = None,
    duplicates: int = 0,
    overpayments: int = 0,
    plb: bool = True,
    claim_cas_rate: float = 0.0,
) -> dict:
    """Write an ``835`` or ``837p`` file to *path*; return the planted cases (835) or empty lists."""
    with open(path, "w", encoding="ascii", newline="\n", buffering=1 << 20) as out:
        if kind.lower() == "835":
            return write_835(out, claims, seed, claims_per_transaction, duplicates, overpayments, plb, claim_cas_rate)
        if kind.lower() in ("837p", "837"):
            if duplicates or overpayments:
                raise ValueError("duplicates/overpayments are planted in the 835 only")
            write_837p(out, claims, seed, claims_per_transaction)
            return {"duplicates": [], "overpayments": []}
    raise ValueError(f"unknown kind {kind!r} (expected 835 or 837p)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", required=True, choices=["835", "837p", "payments"])
    ap.add_argument("--claims", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--claims-per-transaction", type=int, default=None, help="split into transaction sets of K claims (default: one ST for all)")
    ap.add_argument("--duplicates", type=int, default=0, help="835: claims paid twice")
    ap.add_argument("--overpayments", type=int, default=0, help="835: claims paid past allowed")
    ap.add_argument("--no-plb", action="store_true", help="835: no provider-level adjustments")
    ap.add_argument("--claim-cas-rate", type=float, default=0.0, help="835: share of claims whose deductible is a claim-level CAS")
    ap.add_argument("--share", type=float, default=0.25, help="payments: share of the claims with a patient responsibility paid at the desk")
    ap.add_argument("--part", type=int, default=1, help="payments: which part of the claims (1..--parts)")
    ap.add_argument("--parts", type=int, default=1, help="payments: the claims split into this many files")
    a = ap.parse_args(argv)
    if a.kind == "payments":
        with open(a.out, "w", encoding="ascii", newline="") as out:
            n = write_patient_payments(out, a.claims, a.seed, a.share, a.part, a.parts)
        json.dump({"path": a.out, "kind": a.kind, "claims": a.claims, "seed": a.seed, "payments": n}, sys.stdout)
        print()
        return 0
    planted = generate(a.kind, a.out, a.claims, a.seed, a.claims_per_transaction, a.duplicates, a.overpayments, not a.no_plb, a.claim_cas_rate)
    if planted["duplicates"] or planted["overpayments"]:
        with open(a.out + ".planted.json", "w") as fh:
            json.dump(planted, fh, indent=1)
    json.dump({"path": a.out, "kind": a.kind, "claims": a.claims, "seed": a.seed, "planted": planted}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
