#!/usr/bin/env python3
"""Generators of hostile X12 transaction sets: well-formed envelopes around pathological content.

Standard library only; each file is written segment by segment (memory does not grow with it).
Every file has correct SE01, GE01 and IEA01 counts and matching control numbers, so what it tests
is the size of one transaction set, never a broken envelope.

* :func:`many_cas_835` -- one claim payment (CLP) with ``n`` claim-level ``CAS*CO*45*0.01``
  segments (balanced: CLP03 - sum(CAS) = CLP04), and :func:`one_claim_837` the claim it pays;
* :func:`many_lx_837` -- an 837P whose one transaction set holds ``n`` LX service lines and no CLM;
* :func:`many_lines` -- one claim of ``n`` service lines and its payment, line by line;
* :func:`long_segment_835` -- an 835 with one ``NTE``-like segment of ``size`` bytes between two
  ordinary claim payments;
* :func:`many_payments` -- one claim and an 835 paying its CLP01 ``n`` times without service lines,
  the payments from the ``reversed_from``-th on each reversed by a CLP02 = 22;
* :func:`takebacks_835` -- an 835 of PLB take-backs of each payment after the first of
  :func:`many_payments` (rule 6: each recoupment settles the duplicate refund of its claim);
* :func:`many_patient_payments` -- one claim and a CSV of ``n`` patient payments of it;
* :func:`many_claims_one_member` -- ``n`` claims of one patient for the same service, each its own
  CLM01, and the 835 paying each (rule 4 across claim numbers);
* :func:`many_plbs` -- one claim payment and ``n`` PLB take-backs naming it, each half offset by a
  PLB 72, then ``n`` give-backs of a quarter each (rule 6 offsets and netting).

    python bench/hostile.py cas 1000000 bench/data/hostile/cas-1m.835
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import IO

SENDER, RECEIVER = "EDIRECONSUB", "EDIRECONRCV"
PAYER = ("ACME HEALTH PLAN", "60054")
PAYEE = ("EDIRECON FAMILY PRACTICE", "1234567893")  # a valid NPI (Luhn with 80840)


class _Writer:
    """Writes ``~``-terminated segments (each followed by a line break), counting those of the ST."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.count = 0

    def __call__(self, *elements: str) -> None:
        self.out.write("*".join(elements) + "~\n")
        self.count += 1


def _open(w: _Writer, functional_id: str, version: str, icn: str) -> None:
    w("ISA", "00", " " * 10, "00", " " * 10, "ZZ", SENDER.ljust(15), "ZZ", RECEIVER.ljust(15), "260301", "1200", "^", "00501", icn, "0", "P", ":")
    w("GS", functional_id, SENDER, RECEIVER, "20260301", "1200", str(int(icn)), "X", version)


def _close(w: _Writer, st02: str, icn: str) -> None:
    w("SE", str(w.count + 1), st02)  # ST..SE: the writer counted from ST
    w("GE", "1", str(int(icn)))
    w("IEA", "1", icn)


def _835_header(w: _Writer, paid: Decimal | str, trace: str, payer: tuple[str, str] = PAYER) -> None:
    w(
        "BPR",
        "I",
        str(paid),
        "C",
        "ACH",
        "CCP",
        "01",
        "081900420",
        "DA",
        "5500612347",
        f"10{payer[1]}000",
        "",
        "01",
        "071921891",
        "DA",
        "4410029931",
        "20260305",
    )
    w("TRN", "1", trace, f"10{payer[1]}000")
    w("DTM", "405", "20260301")
    w("N1", "PR", payer[0])
    w("REF", "2U", payer[1])
    w("N1", "PE", PAYEE[0], "XX", PAYEE[1])
    w("LX", "1")


def pcn(k: int) -> str:
    """The patient control number of the ``k``-th claim (from 1) of these files."""
    return f"HOSTILE{k:04d}"


def charge(n_cas: int) -> Decimal:
    """CLP03 (and the 837's CLM02) of a claim payment of ``n_cas`` adjustments of 0.01 paying 100.00."""
    return Decimal("100.00") + n_cas * Decimal("0.01")


def many_cas_835(path: str | Path, n: int | list[int], line_cas: int = 0) -> None:
    """An 835 of one transaction set per count in ``n``, each paying one claim (``pcn(k)``) with
    that many claim-level ``CAS*CO*45*0.01`` segments (loop 2100); with ``line_cas``, the claim
    payment also has one service line (SVC, loop 2110) with that many more."""
    counts = [n] if isinstance(n, int) else n
    paid = Decimal("100.00")
    with open(path, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HP", "005010X221A1", "000000901")
        for k, count in enumerate(counts, start=1):
            st02 = f"{k:04d}"
            w.count = 0
            w("ST", "835", st02)
            _835_header(w, paid, f"00009910{k:02d}")
            w("CLP", pcn(k), "1", str(charge(count + line_cas)), str(paid), "0", "12", f"ACME00000000{k:02d}", "11", "1")
            w("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", member(k))
            w("DTM", "232", "20260210")
            _cas(w, count)
            if line_cas:
                # SVC02 - line CAS = SVC03, and SVC03 - claim CAS = CLP04
                w("SVC", "HC:99213", str(charge(count + line_cas)), str(paid + count * Decimal("0.01")), "", "1")
                w("DTM", "472", "20260210")
                _cas(w, line_cas)
            w("SE", str(w.count + 1), st02)
        w("GE", str(len(counts)), "901")
        w("IEA", "1", "000000901")


def _cas(w: _Writer, n: int) -> None:
    """``n`` adjustments of 0.01 (contractual, CARC 45), written at C speed."""
    w.out.write("CAS*CO*45*0.01~\n" * n)
    w.count += n


def one_claim_837(path: str | Path, n_cas: int | list[int]) -> None:
    """The 837P claims that :func:`many_cas_835` pays, one transaction set: ``n_cas`` gives, per
    claim, the number of CAS of its payment (claim and line), and so its charge (the 835's CLP03)."""
    counts = [n_cas] if isinstance(n_cas, int) else n_cas
    with open(path, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HC", "005010X222A1", "000000902")
        w.count = 0
        w("ST", "837", "0001", "005010X222A1")
        _837_header(w)
        for k, count in enumerate(counts, start=1):
            _subscriber(w, k)
            w("CLM", pcn(k), str(charge(count)), "", "", "11:B:1", "Y", "A", "Y", "Y")
            w("DTP", "472", "D8", "20260210")
            w("HI", "ABK:J069")
            w("LX", "1")
            w("SV1", "HC:99213", str(charge(count)), "UN", "1", "", "", "1")
            w("DTP", "472", "D8", "20260210")
        _close(w, "0001", "000000902")


def _837_header(w: _Writer) -> None:
    w("BHT", "0019", "00", "HOSTILE01", "20260301", "1200", "CH")
    w("NM1", "41", "2", "EDIRECON FAMILY PRACTICE", "", "", "", "", "46", "123456789")
    w("PER", "IC", "BILLING OFFICE", "TE", "2175550100")
    w("NM1", "40", "2", "ACME HEALTH PLAN", "", "", "", "", "46", "60054")
    w("HL", "1", "", "20", "1")
    w("NM1", "85", "2", PAYEE[0], "", "", "", "", "XX", PAYEE[1])
    w("N3", "100 CLINIC WAY")
    w("N4", "SPRINGFIELD", "IL", "627011234")
    w("REF", "EI", "123456789")


def _subscriber(w: _Writer, k: int) -> None:
    """The subscriber loop (2000B) of the ``k``-th patient (each claim its own patient)."""
    w("HL", str(k + 1), "1", "22", "0")
    w("SBR", "P", "18", "", "", "", "", "", "", "CI")
    w("NM1", "IL", "1", "DOE", "JANE", "", "", "", "MI", member(k))
    w("NM1", "PR", "2", PAYER[0], "", "", "", "", "PI", PAYER[1])


def member(k: int) -> str:
    """The member id of the ``k``-th patient."""
    return f"W9{k:08d}"


def many_lx_837(path: str | Path, n: int) -> None:
    """One 837P transaction set whose subscriber loop holds ``n`` LX service lines and no CLM."""
    with open(path, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HC", "005010X222A1", "000000903")
        w.count = 0
        w("ST", "837", "0001", "005010X222A1")
        _837_header(w)
        _subscriber(w, 1)
        write = out.write
        for i in range(1, n + 1):
            write(f"LX*{i}~\n")
        w.count += n
        _close(w, "0001", "000000903")


def many_lines(claims: str | Path, remit: str | Path, n: int) -> None:
    """An 837P claim of ``n`` service lines (each its own procedure, 100.00) and the 835 that pays
    it line by line (60.00 each, CAS*CO*45*40), one transaction set each."""
    with open(claims, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HC", "005010X222A1", "000000905")
        w.count = 0
        w("ST", "837", "0001", "005010X222A1")
        _837_header(w)
        _subscriber(w, 1)
        w("CLM", pcn(1), str(100 * n), "", "", "11:B:1", "Y", "A", "Y", "Y")
        w("HI", "ABK:J069")
        for i in range(1, n + 1):
            w("LX", str(i))
            w("SV1", f"HC:{90000 + i:05d}", "100", "UN", "1", "", "", "1")
            w("DTP", "472", "D8", "20260210")
        _close(w, "0001", "000000905")
    with open(remit, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HP", "005010X221A1", "000000906")
        w.count = 0
        w("ST", "835", "0001")
        _835_header(w, str(60 * n), "0000993001")
        w("CLP", pcn(1), "1", str(100 * n), str(60 * n), "0", "12", "ACME0000000001", "11", "1")
        w("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", member(1))
        for i in range(1, n + 1):
            w("SVC", f"HC:{90000 + i:05d}", "100", "60", "", "1")
            w("DTM", "472", "20260210")
            w("CAS", "CO", "45", "40")
        _close(w, "0001", "000000906")


def long_segment_835(path: str | Path, size: int) -> None:
    """An 835 with two ordinary claim payments around one segment of ``size`` bytes (no terminator
    inside it): the reader must skip that segment, read the two claims and keep its memory small."""
    with open(path, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HP", "005010X221A1", "000000904")
        w.count = 0
        w("ST", "835", "0001")
        _835_header(w, "200.00", "0000992001")
        w("CLP", "HOSTILE0002", "1", "250.00", "100.00", "0", "12", "ACME0000000002", "11", "1")
        w("CAS", "CO", "45", "150.00")
        w("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", member(2))
        body = "NTE*ADD*"
        out.write(body + "X" * (size - len(body)) + "~\n")
        w.count += 1
        w("CLP", "HOSTILE0003", "1", "250.00", "100.00", "0", "12", "ACME0000000003", "11", "1")
        w("CAS", "CO", "45", "150.00")
        w("NM1", "QC", "1", "ROE", "JOHN", "", "", "", "MI", member(3))
        _close(w, "0001", "000000904")


def _one_line_claim_837(w: _Writer, k: int, charge_: str) -> None:
    """The claim ``pcn(k)`` of one 99213 line of ``charge_`` served on 2026-02-10."""
    w("CLM", pcn(k), charge_, "", "", "11:B:1", "Y", "A", "Y", "Y")
    w("DTP", "472", "D8", "20260210")
    w("HI", "ABK:J069")
    w("LX", "1")
    w("SV1", "HC:99213", charge_, "UN", "1", "", "", "1")
    w("DTP", "472", "D8", "20260210")


def _claims_837(path: str | Path, icn: str, n: int, charge_: str, one_patient: bool) -> None:
    """An 837P of ``n`` one-line claims ``pcn(1..n)``, each of its own patient or all of patient 1."""
    with open(path, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HC", "005010X222A1", icn)
        w.count = 0
        w("ST", "837", "0001", "005010X222A1")
        _837_header(w)
        for k in range(1, n + 1):
            if k == 1 or not one_patient:
                _subscriber(w, k)
            _one_line_claim_837(w, k, charge_)
        _close(w, "0001", icn)


def many_payments(claims: str | Path | None, remit: str | Path, n: int, reversed_from: int | None = None, payer: tuple[str, str] = PAYER) -> None:
    """A claim of 100.00 (unless ``claims`` is None) and an 835 of ``payer`` (one transaction set)
    paying its CLP01 ``n`` times, each claim payment its own payer claim number, 60.00 with
    ``CAS*CO*45*40`` and no service line; the ``reversed_from``-th payment (from 1) and those after
    it are each followed by its reversal (CLP02 = 22): with 2, the payer reverses each duplicate."""
    if claims is not None:
        _claims_837(claims, "000000907", 1, "100", one_patient=True)
    kept = n if reversed_from is None else min(n, reversed_from - 1)
    with open(remit, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HP", "005010X221A1", "000000908")
        w.count = 0
        w("ST", "835", "0001")
        _835_header(w, str(60 * kept), "0000994001", payer)
        for k in range(1, n + 1):
            icn = f"{payer[0][:4]}{k:010d}"
            w("CLP", pcn(1), "1", "100", "60", "0", "12", icn, "11", "1")
            w("CAS", "CO", "45", "40")
            w("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", member(1))
            if reversed_from is not None and k >= reversed_from:
                w("CLP", pcn(1), "22", "-100", "-60", "0", "12", icn, "11", "1")
                w("CAS", "CO", "45", "-40")
                w("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", member(1))
        _close(w, "0001", "000000908")


def takebacks_835(remit: str | Path, n: int) -> None:
    """An 835 of no claim payment and one PLB per payment 2..``n`` of :func:`many_payments`, taking
    its 60.00 back (WO, reference its payer claim number); BPR02 = -Σ PLB."""
    with open(remit, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HP", "005010X221A1", "000000914")
        w.count = 0
        w("ST", "835", "0001")
        _835_header(w, str(-60 * (n - 1)), "0000997001")
        for k in range(2, n + 1):
            w("PLB", PAYEE[1], "20261231", f"WO:ACME{k:010d}", "60.00")
        _close(w, "0001", "000000914")


def many_patient_payments(claims: str | Path, payments: str | Path, n: int) -> None:
    """A claim of 100.00 and a CSV of ``n`` patient payments of 0.01 on it."""
    _claims_837(claims, "000000909", 1, "100", one_patient=True)
    with open(payments, "w", encoding="ascii", newline="") as out:
        out.write("patient_control_number,amount,paid_on,payment_id\n")
        for k in range(1, n + 1):
            out.write(f"{pcn(1)},0.01,2026-03-{1 + k % 28:02d},PP{k:08d}\n")


def many_claims_one_member(claims: str | Path, remit: str | Path, n: int) -> None:
    """``n`` claims of one patient (one subscriber loop), each its own CLM01 (``pcn(1..n)``), for
    the same 99213 of 2026-02-10 at 100.00, and one 835 paying each line 60.00 (``CAS*CO*45*40``)."""
    _claims_837(claims, "000000910", n, "100", one_patient=True)
    with open(remit, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HP", "005010X221A1", "000000911")
        w.count = 0
        w("ST", "835", "0001")
        _835_header(w, str(60 * n), "0000995001")
        for k in range(1, n + 1):
            w("CLP", pcn(k), "1", "100", "60", "0", "12", f"ACME{k:010d}", "11", "1")
            w("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", member(1))
            w("SVC", "HC:99213", "100", "60", "", "1")
            w("DTM", "472", "20260210")
            w("CAS", "CO", "45", "40")
        _close(w, "0001", "000000911")


def many_plbs(claims: str | Path, remit: str | Path, n: int) -> None:
    """A claim of 100.00 paid 60.00 + ``n`` (``CAS*CO*45*40``), and in the same 835 ``n`` PLB
    segments each taking back 2.00 of it (WO, reference its payer claim number) with a 72 of
    -1.00 offsetting half, then ``n`` PLB giving back 0.50 each (WO, the same reference)."""
    _claims_837(claims, "000000912", 1, str(100 + n), one_patient=True)
    icn = "ACME0000000001"
    paid = Decimal(60 + n)
    with open(remit, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HP", "005010X221A1", "000000913")
        w.count = 0
        w("ST", "835", "0001")
        # BPR02 = CLP04 - (n x (2.00 - 1.00) - n x 0.50)
        _835_header(w, str(paid - n * Decimal("0.50")), "0000996001")
        w("CLP", pcn(1), "1", str(100 + n), str(paid), "0", "12", icn, "11", "1")
        w("CAS", "CO", "45", "40")
        w("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", member(1))
        for k in range(1, n + 1):
            w("PLB", PAYEE[1], "20261231", f"72:CHK{k:08d}", "-1.00", f"WO:{icn}", "2.00")
        for _ in range(n):
            w("PLB", PAYEE[1], "20261231", f"WO:{icn}", "-0.50")
        _close(w, "0001", "000000913")


GENERATORS = {"cas": many_cas_835, "claim": one_claim_837, "lx": many_lx_837, "long": long_segment_835}

if __name__ == "__main__":
    kind, count, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    GENERATORS[kind](target, count)


def one_claim_number_many_patients(claims: str | Path, remit: str | Path, n: int) -> None:
    """``n`` claims of ``n`` patients (each its own subscriber loop and member id) that all reuse
    the CLM01 ``pcn(1)`` for the same 99213 of 2026-02-10 at 100.00 (rule 1: one encounter each),
    and one 835 paying each 60.00 (``CAS*CO*45*40``), naming its patient by member id (NM1*QC)."""
    with open(claims, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HC", "005010X222A1", "000000916")
        w.count = 0
        w("ST", "837", "0001", "005010X222A1")
        _837_header(w)
        for k in range(1, n + 1):
            _subscriber(w, k)
            w("CLM", pcn(1), "100", "", "", "11:B:1", "Y", "A", "Y", "Y")
            w("DTP", "472", "D8", "20260210")
            w("HI", "ABK:J069")
            w("LX", "1")
            w("SV1", "HC:99213", "100", "UN", "1", "", "", "1")
            w("DTP", "472", "D8", "20260210")
        _close(w, "0001", "000000916")
    with open(remit, "w", encoding="ascii", newline="") as out:
        w = _Writer(out)
        _open(w, "HP", "005010X221A1", "000000917")
        w.count = 0
        w("ST", "835", "0001")
        _835_header(w, str(60 * n), "0000998001")
        for k in range(1, n + 1):
            w("CLP", pcn(1), "1", "100", "60", "0", "12", f"ACME{k:010d}", "11", "1")
            w("CAS", "CO", "45", "40")
            w("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", member(k))
        _close(w, "0001", "000000917")
