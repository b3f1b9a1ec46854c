"""The documents of ``edirecon report`` as PDF (fpdf2): per payer a refund letter and remittance
form, per patient a plain-language notice, and the printable CMS-838.

These documents carry patient names, member ids and claim numbers: that is their purpose.  None
of it is ever logged: the log events name files and counts only.

Text in Latin-1 is written with the PDF core font Helvetica.  Any other text (``Thị Nguyễn``,
``O’BRIEN``, ``王``) is written with a Unicode TrueType font found on the system
(:mod:`engine.fonts`), helped by fallback fonts for the scripts it lacks; a character no installed
font has prints as ``?`` and is counted (``pdf_glyphs_missing``), never a failure.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from edirecon.engine.config import Party
from edirecon.engine.decide.rules import Refund, payer_member_id
from edirecon.engine.reports.cms838 import Quarter
from edirecon.engine.reports.fonts import find_fonts
from edirecon.engine.workflow.refunds import Book, View
from edirecon.money import ZERO
from edirecon.money import text as money

log = structlog.get_logger("edirecon.letters")
#: the family of the Unicode text font, once registered with a document
UNICODE = "edirecon-text"
REASON_TEXT = {
    "DUPLICATE_PAYMENT": "Duplicate payment",
    "PAYER_OVERPAYMENT": "Paid more than the balance due",
    "COB_OVERPAYMENT": "Paid more than the patient responsibility left by the primary payer",
    "PATIENT_OVERPAYMENT": "Patient paid more than the patient responsibility",
}


def _plain(text: str) -> str:
    return text.replace("\u2013", "-").replace("\u2014", "-").replace("\u2192", "->")


def _latin(plain: str) -> str:
    """The PDF core fonts are Latin-1: anything else becomes '?' rather than failing."""
    return plain.encode("latin-1", "replace").decode("latin-1")


def _long_date(d: date | None) -> str:
    return f"{d:%B} {d.day}, {d.year}" if d else ""


def _dollars(value: Decimal) -> str:
    return f"${money(value)}"


class Document(FPDF):
    """A page with the provider's letterhead; text is written line by line."""

    def __init__(self, orientation: str = "P"):
        super().__init__(orientation=orientation, unit="mm", format="Letter")
        self.set_auto_page_break(True, margin=18)
        self.set_margins(20, 18, 20)
        self.set_creator("edirecon")
        #: characters printed as '?' because no installed font has them
        self.unprintable = 0
        self._cmaps: list[dict[int, int]] | None = None  # of the Unicode fonts, once loaded ([] when none)
        self._fallbacks_loaded = False

    def _unicode_fonts(self) -> bool:
        """Register the Unicode text font on first need; False when none is installed."""
        if self._cmaps is None:
            self._cmaps = []
            fonts = find_fonts()
            if fonts.regular is not None:
                try:
                    self.add_font(UNICODE, "", fonts.regular)
                    self.add_font(UNICODE, "B", fonts.bold or fonts.regular)
                    self._cmaps.append(self.fonts[UNICODE].cmap)
                except Exception:
                    log.warning("pdf_font_unreadable", font=str(fonts.regular))
        return bool(self._cmaps)

    def _load_fallbacks(self) -> None:
        """Register the fallback fonts (CJK ...) the first time a character is not in the text font."""
        assert self._cmaps is not None
        self._fallbacks_loaded = True
        families = []
        for i, path in enumerate(find_fonts().fallbacks):
            family = f"{UNICODE}-fallback{i}"
            try:
                self.add_font(family, "", path)
            except Exception:
                log.warning("pdf_font_unreadable", font=str(path))
                continue
            families.append(family)
            self._cmaps.append(self.fonts[family.lower()].cmap)
        if families:
            self.set_fallback_fonts(families, exact_match=False)

    def _printable(self, texts: list[str]) -> tuple[str, list[str]]:
        """The font family for ``texts`` and the texts to write with it: Helvetica when all are
        Latin-1, else the Unicode font, a character that no installed font has becoming '?'."""
        plain = [_plain(t) for t in texts]
        beyond = sum(1 for t in plain for c in t if ord(c) > 0xFF)  # characters outside Latin-1
        if not beyond:
            return "Helvetica", [_latin(t) for t in plain]
        if not self._unicode_fonts():
            self.unprintable += beyond
            return "Helvetica", [_latin(t) for t in plain]
        return UNICODE, ["".join(self._glyph(c) for c in t) for t in texts]

    def _glyph(self, c: str) -> str:
        assert self._cmaps is not None
        code = ord(c)
        if code < 0x80 or any(code in cmap for cmap in self._cmaps):
            return c
        if not self._fallbacks_loaded:
            self._load_fallbacks()
            if any(code in cmap for cmap in self._cmaps):
                return c
        self.unprintable += 1
        return "?"

    def line_of(self, text: str, size: float = 10, style: str = "", height: float = 5.2) -> None:
        family, (text,) = self._printable([text])
        self.set_font(family, style, size)
        self.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def gap(self, mm: float = 4) -> None:
        self.ln(mm)

    def letterhead(self, party: Party, npi: str, tin: str) -> None:
        self.line_of(party.name, 13, "B", 6)
        for line in party.address:
            self.line_of(line, 9)
        self.line_of(f"NPI {npi}    TIN {tin}", 9)
        if party.contact or party.phone:
            self.line_of("    ".join(x for x in (party.contact, party.phone) if x), 9)
        self.set_draw_color(120, 120, 120)
        self.line(self.l_margin, self.get_y() + 2, self.w - self.r_margin, self.get_y() + 2)
        self.gap(7)

    def table_of(
        self, headings: list[str], rows: list[list[str]], widths: tuple[float, ...], size: float = 8.5, align: str = "LEFT", numeric: tuple[int, ...] = ()
    ) -> None:
        family, texts = self._printable([*headings, *(value for values in rows for value in values)])
        self.set_font(family, "", size)
        cells = iter(texts)
        with self.table(col_widths=widths, text_align=align, line_height=size * 0.55, first_row_as_headings=True) as table:
            row = table.row()
            for _ in headings:
                row.cell(next(cells))
            for values in rows:
                row = table.row()
                for i, _ in enumerate(values):
                    row.cell(next(cells), align="RIGHT" if i in numeric else None)

    def save(self, path: Path, missing: dict[str, int]) -> None:
        """Write the PDF; count (and log, by file name only) the characters printed as '?'."""
        self.output(str(path))
        if self.unprintable:
            log.warning("pdf_glyphs_missing", file=path.name, characters=self.unprintable)
            missing[str(path)] = self.unprintable


def provider_of(b: Book, npi: str) -> Party:
    """The letterhead of a billing NPI: ``[providers."NPI"]``, else a plain one."""
    party = b.config.providers.get(npi)
    return (
        party
        if party is not None and party.name
        else Party(
            name=f"Billing provider NPI {npi}",
            address=party.address if party else (),
            contact=party.contact if party else "",
            phone=party.phone if party else "",
        )
    )


def _tin(r: Refund) -> str:
    return r.encounter.billing_claim.tin or next(iter(r.encounter.tins), "")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def packets(folder: Path, b: Book, missing: dict[str, int]) -> list[Path]:
    """Per payer and billing NPI, the refund letter and remittance form of its approved refunds;
    per patient, the notice of each approved or held patient refund.  ``missing`` collects, per
    PDF, the number of characters printed as '?' (no installed font has them)."""

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.pdf"):
        old.unlink()  # a packet of the last report whose refunds have moved on must not linger
    to_payer: dict[tuple[str, str], list[View]] = defaultdict(list)
    to_patient: dict[tuple[str, str, str], list[View]] = defaultdict(list)
    for v in b.views.values():
        r = v.refund
        if r is None or r.status == "settled_by_recoupment":
            continue
        if r.payee_type == "payer" and v.status == "approved":
            to_payer[(r.payer_id, r.encounter.npi)].append(v)
        elif r.payee_type == "patient" and v.status in ("approved", "held"):
            to_patient[(r.encounter.npi, r.encounter.member_id, r.encounter.patient_name)].append(v)
    written = []
    for (payer_id, npi), views in sorted(to_payer.items()):
        path = folder / f"payer-{_safe(payer_id)}-{_safe(npi)}.pdf"
        _payer_packet(path, b, views, payer_member_id, missing)
        written.append(path)
    for _key, views in sorted(to_patient.items()):
        path = folder / f"patient-{views[0].refund_id}.pdf"
        _patient_notice(path, b, views, missing)
        written.append(path)
    return written


def _payer_packet(path: Path, b: Book, views: list[View], member_of: Any, missing: dict[str, int]) -> None:
    first = views[0].refund
    assert first is not None
    npi, tin = first.encounter.npi, _tin(first)
    me = provider_of(b, npi)
    payer = b.config.payers.get(first.payer_id, Party())
    total = sum((v.outstanding for v in views), ZERO)
    claims = "1 claim" if len(views) == 1 else f"{len(views)} claims"
    doc = Document()
    doc.add_page()
    doc.letterhead(me, npi, tin)
    doc.line_of(_long_date(b.as_of))
    doc.gap()
    doc.line_of(payer.name or first.payer_name, style="B")
    for line in payer.address or (f"Payer ID {first.payer_id}",):
        doc.line_of(line)
    doc.gap()
    doc.line_of(f"Re: Refund of overpayments - {claims}, total {_dollars(total)}", style="B")
    doc.gap()
    doc.line_of("Dear Refund Department,")
    doc.gap(2)
    doc.line_of(
        f"{me.name} has identified the overpayments listed on the enclosed refund remittance form and returns them with this letter. "
        f"The enclosed check for {_dollars(total)} covers {claims}. Please apply it to the claims listed and do not also recoup these "
        f"amounts from future payments. When you acknowledge this refund on an 835, please report it as a PLB adjustment with code 72 "
        f"(authorized return) and the check number as the reference."
    )
    doc.gap(2)
    doc.line_of(f"Questions about this refund: {me.contact or me.name}" + (f", {me.phone}" if me.phone else "") + ".")
    doc.gap()
    doc.line_of("Sincerely,")
    doc.gap(10)
    doc.line_of(me.contact or me.name)
    doc.line_of(me.name)
    doc.add_page()
    doc.line_of("REFUND REMITTANCE FORM", 13, "B", 7)
    doc.line_of(f"Provider: {me.name}    NPI {npi}    TIN {tin}", 9)
    doc.line_of(f"Contact: {me.contact or '-'}    Phone: {me.phone or '-'}", 9)
    doc.line_of(f"Payer: {payer.name or first.payer_name} (payer ID {first.payer_id})    Date: {b.as_of.isoformat()}", 9)
    doc.line_of(f"Check amount: {_dollars(total)}    Check number: ____________________", 10, "B", 6)
    doc.gap(2)
    rows = []
    for v in sorted(views, key=lambda v: (v.refund.encounter.patient_name, v.refund.icn)):  # type: ignore[union-attr]
        r = v.refund
        assert r is not None
        e = r.encounter
        dates = e.service_from.isoformat() if e.service_from else ""
        if e.service_to and e.service_to != e.service_from:
            dates += f" to {e.service_to.isoformat()}"
        rows.append([e.patient_name, member_of(r), r.icn, e.pcn, dates, REASON_TEXT.get(r.reason, r.reason), money(v.outstanding)])
    rows.append(["Total", "", "", "", "", f"{claims}", money(total)])
    doc.table_of(
        ["Patient", "Member ID", "Payer claim no.", "Patient account", "Service dates", "Reason", "Amount"], rows, (30, 24, 28, 22, 22, 30, 18), numeric=(6,)
    )
    doc.gap()
    doc.line_of("Signature: ______________________________    Date: ______________", 9)
    doc.save(path, missing)


def _patient_notice(path: Path, b: Book, views: list[View], missing: dict[str, int]) -> None:
    first = views[0].refund
    assert first is not None
    e = first.encounter
    me = provider_of(b, e.npi)
    balance = {id(x.encounter): x for x in b.decisions.balances}
    last, _, given = e.patient_name.partition(", ")
    doc = Document()
    doc.add_page()
    doc.letterhead(me, e.npi, _tin(first))
    doc.line_of(_long_date(b.as_of))
    doc.gap()
    doc.line_of(f"{given} {last}".strip(), style="B")
    doc.gap()
    total = sum((v.outstanding for v in views), ZERO)
    doc.line_of(f"About the credit of {_dollars(total)} on your account", 12, "B", 6)
    doc.gap(2)
    doc.line_of(f"Dear {given.title()} {last.title()},".replace("  ", " "))
    doc.gap(2)
    for v in views:
        r = v.refund
        assert r is not None
        enc = r.encounter
        bal = balance.get(id(enc))
        payers = sorted({p.payer_name for p in enc.payments if p.payer_name})
        visit = _long_date(enc.service_from)
        doc.line_of(f"Our records show that you have a credit of {_dollars(v.outstanding)} for your visit on {visit} (account {enc.pcn}).", style="")
        doc.gap(2)
        if bal is not None:
            doc.line_of(
                f"How it happened: you paid {_dollars(bal.patient_paid)} for this visit. After "
                f"{' and '.join(payers) or 'your insurance'} processed the claim, your share of the cost was "
                f"{_dollars(bal.patient_responsibility)}. You paid {_dollars(r.amount)} more than you owed."
            )
            doc.gap(2)
        if v.status == "held":
            threshold = b.config.refunds.patient_hold_below
            doc.line_of(
                f"What we will do: because this credit is less than {_dollars(threshold)}, we are keeping it on your account and will use it "
                f"toward your next bill. If you would rather have the money back, call us"
                + (f" at {me.phone}" if me.phone else "")
                + " and we will mail you a check."
            )
        else:
            by = f" by {_long_date(r.due_by)}" if r.due_by else ""
            doc.line_of(
                f"What we will do: we will mail you a refund check for {_dollars(v.outstanding)}{by} to the address we have on file. "
                "Please cash it promptly; if your address has changed, call us so the check reaches you."
            )
        doc.gap(3)
    doc.line_of(
        "You do not need to do anything else. If you have questions, please contact " + (me.contact or me.name) + (f" at {me.phone}" if me.phone else "") + "."
    )
    doc.gap()
    doc.line_of("Sincerely,")
    doc.gap(8)
    doc.line_of(me.name)
    doc.save(path, missing)


def cms838_form(path: Path, b: Book, quarter: Quarter, rows: list[dict[str, Any]], missing: dict[str, int]) -> Path:
    """The printable Medicare Credit Balance Report: the certification page, then one detail page
    set per Medicare part, with totals."""
    s = b.config.cms838
    npis = sorted({r.encounter.npi for r in b.decisions.refunds if r.payee_type == "payer"})
    name = s.provider_name or (provider_of(b, npis[0]).name if npis else "")
    doc = Document("L")
    doc.add_page()
    doc.line_of("MEDICARE CREDIT BALANCE REPORT - CERTIFICATION PAGE (Form CMS-838)", 13, "B", 7)
    doc.gap()
    doc.line_of(f"Provider name: {name}")
    doc.line_of(f"Provider number: {s.provider_number or '______'}")
    doc.line_of(f"For the calendar quarter ended {quarter.end.strftime('%m/%d/%Y')} ({quarter})")
    doc.gap()
    doc.line_of(f"[{' ' if rows else 'X'}] There are no Medicare credit balances to report for this quarter (no detail page attached).")
    doc.line_of(f"[{'X' if rows else ' '}] The Credit Balance Report Detail Page(s) is attached ({len(rows)} credit balance(s)).")
    doc.gap(8)
    doc.line_of(
        "I hereby certify that I have examined the accompanying credit balance report and that it is a true, correct and complete "
        "statement prepared from the books and records of the provider.",
        9,
    )
    doc.gap(10)
    doc.line_of("(Sign) ____________________________________  Officer or Administrator of Provider", 9)
    doc.gap(4)
    doc.line_of("(Print) ___________________________________  Name and Title          Date: ______________", 9)
    doc.gap(6)
    doc.line_of(f"Contact person: {s.contact or '____________________'}    Telephone: {s.phone or '______________'}", 9)
    for part in sorted({r["medicare_part"] for r in rows}):
        part_rows = [r for r in rows if r["medicare_part"] == part]
        doc.add_page()
        doc.line_of(f"MEDICARE CREDIT BALANCE REPORT - DETAIL PAGE - PART {part}", 12, "B", 6)
        doc.line_of(
            f"Provider: {name}    Provider number: {s.provider_number or '______'}    Quarter ended: {quarter.end.isoformat()}    "
            f"Contact: {s.contact or '-'} {s.phone}",
            8.5,
        )
        doc.gap(2)
        table = [
            [
                r["beneficiary_name"],
                r["mbi"],
                r["icn"],
                r["type_of_bill"],
                _iso(r["admission_or_from_date"]),
                _iso(r["discharge_or_through_date"]),
                _iso(r["paid_date"]),
                r["cost_report"],
                money(r["credit_balance"]),
                money(r["amount_repaid"]),
                r["method_of_payment"],
                money(r["amount_outstanding"]),
                r["reason"],
                r["comments"],
            ]
            for r in part_rows
        ]
        table.append(
            [
                "Totals",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                money(sum((r["credit_balance"] for r in part_rows), ZERO)),
                money(sum((r["amount_repaid"] for r in part_rows), ZERO)),
                "",
                money(sum((r["amount_outstanding"] for r in part_rows), ZERO)),
                "",
                "",
            ]
        )
        headings = [
            "(1) Beneficiary name",
            "(2) MBI",
            "(3) ICN",
            "(4) Type of bill",
            "(5) Admission / from",
            "(6) Discharge / through",
            "(7) Paid date",
            "(8) Cost report O/C",
            "(9) Credit balance",
            "(10) Amount repaid",
            "(11) Method (C/A/O)",
            "(12) Amount outstanding",
            "(13) Reason (1/2/3)",
            "(14) Comments",
        ]
        doc.table_of(headings, table, (24, 20, 24, 10, 15, 15, 15, 9, 14, 14, 10, 14, 9, 46), size=6.5, numeric=(8, 9, 11))
        doc.gap(2)
        doc.line_of(
            "Reason: 1 duplicate Medicare payment; 2 primary payment by another insurer; 3 other (see comments). "
            "Method: C check; A adjustment bill; O other (EFT, or recovered by the contractor's offset).",
            7,
        )
    doc.save(path, missing)
    return path


def _iso(d: date | None) -> str:
    return d.isoformat() if d else ""
