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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from edirecon.engine.config import Party
from edirecon.engine.decide.encounters import Encounter
from edirecon.engine.decide.rules import Refund, payer_member_id
from edirecon.engine.logging import get_logger
from edirecon.engine.reports.cms838 import Quarter
from edirecon.engine.reports.fonts import find_fonts
from edirecon.engine.store.mailing import ADDRESS_PARTS
from edirecon.engine.workflow.refunds import Book, View
from edirecon.money import ZERO, dollars

log = get_logger("edirecon.letters")
#: the padding fpdf2 gives a table cell on each side (mm): what a heading word may not use
CELL_PADDING = 1.0
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

    def letterhead(self, head: Letterhead) -> None:
        """The provider's name, address, numbers and contact at the top of the page (the return
        address of a double-window envelope)."""
        self.set_y(12)
        self.line_of(head.name, 13, "B", 6)
        for line in head.address:
            self.line_of(line, 9, height=4.4)
        self.line_of(f"NPI {head.npi}    TIN {head.tin}", 9, height=4.4)
        if head.contact or head.phone:
            self.line_of("    ".join(x for x in (head.contact, head.phone) if x), 9, height=4.4)

    def window(self, recipient: Recipient) -> None:
        """The recipient's name and address where the window of a #10 envelope shows it (a US
        Letter page folded in three: 22 mm from the left, 50 mm from the top, 95 mm by 26 mm); the
        writing goes on below it."""
        top = max(self.get_y() + 3, WINDOW_TOP)
        self.set_draw_color(120, 120, 120)
        self.line(self.l_margin, top - 3, self.w - self.r_margin, top - 3)
        self.set_y(top)
        for i, line in enumerate((recipient.name, *recipient.address)):
            family, (text,) = self._printable([line])
            self.set_font(family, "B" if i == 0 else "", 10)
            self.set_x(WINDOW_LEFT)
            self.cell(WINDOW_WIDTH, 4.6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_y(max(self.get_y(), top + WINDOW_HEIGHT) + 4)

    def table_of(
        self,
        headings: list[str],
        rows: list[list[str]],
        widths: tuple[float, ...],
        size: float = 8.5,
        align: str = "LEFT",
        numeric: tuple[int, ...] = (),
        wrap_headings: bool = False,
    ) -> None:
        """A table with a heading row; ``wrap_headings`` breaks each head between words to its
        column's width (never inside a word: a word wider than its column is an error of the
        caller's heads, raised as ValueError)."""
        family, texts = self._printable([*headings, *(value for values in rows for value in values)])
        self.set_font(family, "", size)
        if wrap_headings:
            scale = (self.epw if self.epw else sum(widths)) / sum(widths)
            texts[: len(headings)] = [self._wrapped(text, width * scale - 2 * CELL_PADDING) for text, width in zip(texts, widths, strict=False)]
        cells = iter(texts)
        with self.table(col_widths=widths, text_align=align, line_height=size * 0.55, first_row_as_headings=True) as table:
            row = table.row()
            for _ in headings:
                row.cell(next(cells))
            for values in rows:
                row = table.row()
                for i, _ in enumerate(values):
                    row.cell(next(cells), align="RIGHT" if i in numeric else None)

    def _wrapped(self, text: str, room: float) -> str:
        """``text`` with line breaks between words so that no line is wider than ``room`` mm."""
        lines: list[str] = []
        for word in text.split():
            if self.get_string_width(word) > room:
                raise ValueError(f"the heading word {word!r} is wider than its column ({room:.1f} mm)")
            if lines and self.get_string_width(f"{lines[-1]} {word}") <= room:
                lines[-1] += f" {word}"
            else:
                lines.append(word)
        return "\n".join(lines)

    def save(self, path: Path, missing: dict[str, int]) -> None:
        """Write the PDF; count (and log, by file name only) the characters printed as '?'."""
        self.output(str(path))
        if self.unprintable:
            log.warning("pdf_glyphs_missing", file=path.name, characters=self.unprintable)
            missing[str(path)] = self.unprintable


#: the column heads of the CMS-838 detail page, worded and abbreviated as the form does, and their
#: widths (mm, landscape Letter less the margins): each word of a head fits its column at 6.5 pt,
#: and heads wrap between words only (``Document.table_of``, a test reads them back)
CMS838_HEADINGS = [
    "(1) Beneficiary name",
    "(2) MBI",
    "(3) ICN",
    "(4) Type of bill",
    "(5) Admission / from date",
    "(6) Discharge / through date",
    "(7) Paid date",
    "(8) Cost report O/C",
    "(9) Credit balance",
    "(10) Amount repaid",
    "(11) Method (C/A/O)",
    "(12) Amount outstanding",
    "(13) Reason (1/2/3)",
    "(14) Comments",
]
CMS838_WIDTHS = (24.0, 20.0, 24.0, 12.0, 16.0, 16.0, 14.0, 12.0, 15.0, 15.0, 14.0, 17.0, 13.0, 27.0)
#: the window of a #10 envelope, on a US Letter page folded in three (mm from the page's top left)
WINDOW_LEFT, WINDOW_TOP, WINDOW_WIDTH, WINDOW_HEIGHT = 22.0, 50.0, 95.0, 26.0
#: the columns of ``packets/mail_merge.csv``: one row per letter
MAIL_MERGE_COLUMNS = [
    "letter",
    "kind",
    "recipient",
    "address_line1",
    "address_line2",
    "address_line3",
    "address_line4",
    "mailable",
    "amount",
    "refund_ids",
    "billing_provider_npi",
]


@dataclass(frozen=True)
class Letterhead:
    """Who writes: ``[providers."NPI"]`` field by field when configured, else the 837's billing
    provider (2010AA NM1*85, N3/N4, PER); ``origin`` says where the name came from
    (``configured``, ``837``, or ``npi`` when neither names the provider)."""

    npi: str
    tin: str
    name: str
    address: tuple[str, ...] = ()
    contact: str = ""
    phone: str = ""
    origin: str = "npi"


@dataclass(frozen=True)
class Recipient:
    """Who a letter goes to: a name and the address lines under it (none: not mailable)."""

    name: str
    address: tuple[str, ...] = ()


@dataclass
class Letter:
    """One letter of the packets, for the print batch, the mail merge and report.json."""

    kind: str  # payer, patient
    path: Path
    recipient: Recipient
    amount: Decimal
    refund_ids: list[str]
    npi: str
    order: tuple[date, str]  # worklist order: the earliest due date, then refund id


@dataclass
class Packets:
    """What ``packets`` wrote: the files, the letters, and what the office should fix."""

    written: list[Path] = field(default_factory=list)
    letters: list[Letter] = field(default_factory=list)
    #: billing NPIs whose documents are signed with the number only (no letterhead configured, none in the 837s)
    unnamed: list[str] = field(default_factory=list)


def address_lines(row: Mapping[str, Any], prefix: str) -> tuple[str, ...]:
    """The lines of a stored address (columns ``{prefix}_address1`` ... ``{prefix}_country``) as
    they go on an envelope: street lines, then "CITY, ST 62704-1234", then the country outside the
    US; () when none was stored."""
    a1, a2, city, state, postal, country = ((row.get(f"{prefix}_{part}") or "").strip() for part in ADDRESS_PARTS)
    if len(postal) == 9 and postal.isdigit():
        postal = f"{postal[:5]}-{postal[5:]}"
    place = " ".join(x for x in (f"{city}," if city and (state or postal) else city, state, postal) if x)
    lines = tuple(x for x in (a1, a2, place, country if country not in ("", "US", "USA") else "") if x)
    return lines if a1 or city else ()


def phone_text(phone: str) -> str:
    """A 10-digit US telephone number as people write it, "(217) 555-0100"; other text as it is."""
    digits = phone.split(" ext. ")[0]
    if len(digits) == 10 and digits.isdigit():
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}" + phone[len(digits) :]
    return phone


class Mailing:
    """Who signs and who receives the documents of one report: the configuration, then what the
    store kept from the 837s (``claims``: per claim id, ``store.mailing.claim_mailing``) and the
    835s (``remittances``: rows with the payer's N3/N4).  Names and addresses are patient data:
    nothing here is logged."""

    def __init__(self, b: Book, claims: Mapping[int, Mapping[str, Any]], remittances: Iterable[Mapping[str, Any]]):
        self.b = b
        self.claims = claims
        self.payer_addresses: dict[str, tuple[str, ...]] = {}  # the newest 835 address of each payer
        for r in sorted(remittances, key=lambda r: (r.get("payment_date") or date.min, r.get("trace_number") or "")):
            lines = address_lines(r, "payer")
            if lines:
                self.payer_addresses[r["payer_id"]] = lines
        self.billing: dict[str, Mapping[str, Any]] = {}  # per billing NPI, its newest claim that names it
        newest: dict[str, tuple[Any, ...]] = {}
        for e in _encounters(b):
            for c in e.claims:
                row = claims.get(c.id)
                if row and row.get("billing_name") and (c.npi not in newest or c.order > newest[c.npi]):
                    newest[c.npi], self.billing[c.npi] = c.order, row
        self.unnamed: set[str] = set()

    def letterhead(self, npi: str, tin: str) -> Letterhead:
        """The letterhead of a letter (a letter signed with the number only is counted in ``unnamed``)."""
        head = self.resolve(npi, tin)
        if head.origin == "npi":
            self.unnamed.add(npi)
        return head

    def resolve(self, npi: str, tin: str) -> Letterhead:
        cfg = self.b.config.providers.get(npi) or Party()
        row = self.billing.get(npi, {})
        named = row.get("billing_name") or ""
        return Letterhead(
            npi,
            tin,
            cfg.name or named or f"Billing provider NPI {npi}",
            cfg.address or address_lines(row, "billing"),
            cfg.contact or row.get("billing_contact") or "",
            cfg.phone or phone_text(row.get("billing_phone") or ""),
            "configured" if cfg.name else "837" if named else "npi",
        )

    def payer(self, payer_id: str, payer_name: str) -> Recipient:
        """``[payers."ID"]`` (where refunds are mailed), else the payer's address on its newest 835."""
        cfg = self.b.config.payers.get(payer_id) or Party()
        return Recipient(cfg.name or payer_name or f"Payer ID {payer_id}", cfg.address or self.payer_addresses.get(payer_id, ()))

    def patient(self, e: Encounter, name: str) -> Recipient:
        """The patient's address on the newest claim of the encounter that has one (2010CA, else
        the subscriber's 2010BA)."""
        for c in sorted(e.claims, key=lambda c: c.order, reverse=True):
            lines = address_lines(self.claims.get(c.id, {}), "patient")
            if lines:
                return Recipient(name, lines)
        return Recipient(name)


def _encounters(b: Book) -> list[Encounter]:
    """The encounters of the refunds whose documents a report writes (letters, notices, CMS-838)."""
    seen: dict[int, Encounter] = {}
    for r in b.decisions.refunds:
        seen.setdefault(id(r.encounter), r.encounter)
    return list(seen.values())


def mailing_claim_ids(b: Book) -> set[int]:
    """The claims whose mailing columns the documents need (``store.mailing.claim_mailing``)."""
    return {c.id for e in _encounters(b) for c in e.claims}


def _tin(r: Refund) -> str:
    return r.encounter.billing_claim.tin or next(iter(r.encounter.tins), "")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _worklist_order(views: list[View]) -> tuple[date, str]:
    return min((v.refund.due_by or date.max, v.refund_id) for v in views if v.refund is not None)


def packets(folder: Path, b: Book, mail: Mailing, missing: dict[str, int]) -> Packets:
    """Per payer and billing NPI, the refund letter and remittance form of its approved refunds;
    per patient, the notice of each approved or held patient refund; and the print batches
    ``payers.pdf`` and ``patients.pdf`` (every letter of its kind, each on a new page, in worklist
    order; none without a letter).  ``missing`` collects, per PDF, the number of characters printed as '?' (no installed
    font has them)."""

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
    out = Packets()
    batches = {"payer": Document(), "patient": Document()}
    work: list[tuple[tuple[date, str], str, Path, list[View]]] = []
    for (payer_id, npi), views in sorted(to_payer.items()):
        work.append((_worklist_order(views), "payer", folder / f"payer-{_safe(payer_id)}-{_safe(npi)}.pdf", views))
    for _key, views in sorted(to_patient.items()):
        work.append((_worklist_order(views), "patient", folder / f"patient-{views[0].refund_id}.pdf", views))
    draw = {"payer": _payer_packet, "patient": _patient_notice}
    for order, kind, path, views in sorted(work, key=lambda w: (w[0], w[1], w[2].name)):
        doc = Document()
        letter = draw[kind](doc, b, mail, views)
        doc.save(path, missing)
        draw[kind](batches[kind], b, mail, views)
        letter.path, letter.order = path, order
        out.letters.append(letter)
        out.written.append(path)
    for kind, name in (("payer", "payers.pdf"), ("patient", "patients.pdf")):
        if batches[kind].page:  # no letter of its kind, no batch (nothing to print)
            batches[kind].save(folder / name, missing)
            out.written.append(folder / name)
    out.written.sort()
    out.unnamed = sorted(mail.unnamed)
    return out


def mail_merge_rows(letters: list[Letter], folder: Path) -> list[dict[str, Any]]:
    """One row per letter (``MAIL_MERGE_COLUMNS``), in worklist order: for offices that print and
    mail through their own system.  An address of more than four lines has the rest joined to the
    fourth."""
    rows = []
    for letter in letters:
        lines = list(letter.recipient.address)
        if len(lines) > 4:
            lines = [*lines[:3], ", ".join(lines[3:])]
        lines += [""] * (4 - len(lines))
        rows.append(
            {
                "letter": str(letter.path.relative_to(folder)),
                "kind": letter.kind,
                "recipient": letter.recipient.name,
                **{f"address_line{i}": line for i, line in enumerate(lines, start=1)},
                "mailable": "yes" if letter.recipient.address else "no",
                "amount": letter.amount,
                "refund_ids": "|".join(letter.refund_ids),
                "billing_provider_npi": letter.npi,
            }
        )
    return rows


def _payer_packet(doc: Document, b: Book, mail: Mailing, views: list[View]) -> Letter:
    first = views[0].refund
    assert first is not None
    npi, tin = first.encounter.npi, _tin(first)
    me = mail.letterhead(npi, tin)
    payer = mail.payer(first.payer_id, first.payer_name)
    total = sum((v.outstanding for v in views), ZERO)
    claims = "1 claim" if len(views) == 1 else f"{len(views)} claims"
    doc.add_page()
    doc.letterhead(me)
    doc.window(Recipient(payer.name, payer.address or (f"Payer ID {first.payer_id}",)))
    doc.line_of(_long_date(b.as_of))
    doc.gap()
    doc.line_of(f"Re: Refund of overpayments - {claims}, total {dollars(total)}", style="B")
    doc.gap()
    doc.line_of("Dear Refund Department,")
    doc.gap(2)
    doc.line_of(
        f"{me.name} has identified the overpayments listed on the enclosed refund remittance form and returns them with this letter. "
        f"The enclosed check for {dollars(total)} covers {claims}. Please apply it to the claims listed and do not also recoup these "
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
    doc.line_of(f"Payer: {payer.name} (payer ID {first.payer_id})    Date: {b.as_of.isoformat()}", 9)
    doc.line_of(f"Check amount: {dollars(total)}    Check number: ____________________", 10, "B", 6)
    doc.gap(2)
    rows = []
    for v in sorted(views, key=lambda v: (v.refund.encounter.patient_name, v.refund.icn)):  # type: ignore[union-attr]
        r = v.refund
        assert r is not None
        e = r.encounter
        dates = e.service_from.isoformat() if e.service_from else ""
        if e.service_to and e.service_to != e.service_from:
            dates += f" to {e.service_to.isoformat()}"
        rows.append([e.patient_name, payer_member_id(r), r.icn, e.pcn, dates, REASON_TEXT.get(r.reason, r.reason), dollars(v.outstanding)])
    rows.append(["Total", "", "", "", "", f"{claims}", dollars(total)])
    doc.table_of(
        ["Patient", "Member ID", "Payer claim no.", "Patient account", "Service dates", "Reason", "Amount"], rows, (30, 24, 28, 22, 22, 30, 18), numeric=(6,)
    )
    doc.gap()
    doc.line_of("Signature: ______________________________    Date: ______________", 9)
    return Letter("payer", Path(), payer, total, sorted(v.refund_id for v in views), npi, (date.max, ""))


def _patient_notice(doc: Document, b: Book, mail: Mailing, views: list[View]) -> Letter:
    first = views[0].refund
    assert first is not None
    e = first.encounter
    me = mail.letterhead(e.npi, _tin(first))
    balance = {id(x.encounter): x for x in b.decisions.balances}
    last, _, given = e.patient_name.partition(", ")
    to = mail.patient(e, f"{given} {last}".strip())
    doc.add_page()
    doc.letterhead(me)
    doc.window(to)
    doc.line_of(_long_date(b.as_of))
    doc.gap()
    total = sum((v.outstanding for v in views), ZERO)
    doc.line_of(f"About the credit of {dollars(total)} on your account", 12, "B", 6)
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
        doc.line_of(f"Our records show that you have a credit of {dollars(v.outstanding)} for your visit on {visit} (account {enc.pcn}).", style="")
        doc.gap(2)
        if bal is not None:
            doc.line_of(
                f"How it happened: you paid {dollars(bal.patient_paid)} for this visit. After "
                f"{' and '.join(payers) or 'your insurance'} processed the claim, your share of the cost was "
                f"{dollars(bal.patient_responsibility)}. You paid {dollars(r.amount)} more than you owed."
            )
            doc.gap(2)
        if v.status == "held":
            threshold = b.config.refunds.patient_hold_below
            doc.line_of(
                f"What we will do: because this credit is less than {dollars(threshold)}, we are keeping it on your account and will use it "
                f"toward your next bill. If you would rather have the money back, call us"
                + (f" at {me.phone}" if me.phone else "")
                + " and we will mail you a check."
            )
        else:
            by = f" by {_long_date(r.due_by)}" if r.due_by else ""
            doc.line_of(
                f"What we will do: we will mail you a refund check for {dollars(v.outstanding)}{by} to the address we have on file. "
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
    return Letter("patient", Path(), to, total, sorted(v.refund_id for v in views), e.npi, (date.max, ""))


def cms838_form(path: Path, b: Book, mail: Mailing, quarter: Quarter, rows: list[dict[str, Any]], missing: dict[str, int]) -> Path:
    """The printable Medicare Credit Balance Report: the certification page, then one detail page
    set per Medicare part, with totals.  The provider's name, contact and telephone are those of
    ``[cms838]``, else of the letterhead of the billing NPI of its credits."""
    s = b.config.cms838
    credits = [v.refund for r in rows if (v := b.views.get(r["refund_id"])) is not None and v.refund is not None]
    npis = sorted({r.encounter.npi for r in credits}) or sorted({r.encounter.npi for r in b.decisions.refunds if r.payee_type == "payer"})
    head = mail.resolve(npis[0], "") if npis else Letterhead("", "", "")
    if npis and not s.provider_name and head.origin == "npi":
        mail.unnamed.add(npis[0])
    name = s.provider_name or head.name
    contact, phone = s.contact or head.contact, s.phone or head.phone
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
    doc.line_of(f"Contact person: {contact or '____________________'}    Telephone: {phone or '______________'}", 9)
    for part in sorted({r["medicare_part"] for r in rows}):
        part_rows = [r for r in rows if r["medicare_part"] == part]
        doc.add_page()
        doc.line_of(f"MEDICARE CREDIT BALANCE REPORT - DETAIL PAGE - PART {part}", 12, "B", 6)
        doc.line_of(
            f"Provider: {name}    Provider number: {s.provider_number or '______'}    Quarter ended: {quarter.end.isoformat()}    "
            f"Contact: {contact or '-'} {phone}".rstrip(),
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
                dollars(r["credit_balance"]),
                dollars(r["amount_repaid"]),
                r["method_of_payment"],
                dollars(r["amount_outstanding"]),
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
                dollars(sum((r["credit_balance"] for r in part_rows), ZERO)),
                dollars(sum((r["amount_repaid"] for r in part_rows), ZERO)),
                "",
                dollars(sum((r["amount_outstanding"] for r in part_rows), ZERO)),
                "",
                "",
            ]
        )
        doc.table_of(CMS838_HEADINGS, table, CMS838_WIDTHS, size=6.5, numeric=(8, 9, 11), wrap_headings=True)
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
