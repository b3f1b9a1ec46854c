"""The documents of `edirecon report` a billing office can mail (issue 16, items 1-4): the
letterhead from the 837 when none is configured, the envelope window, the print batches, the
mail-merge file, money for people, the CMS-838 heads, and the warning when a letter is signed with
a number only.

tests/fixtures/reports/letters-from-the-837 (figures worked by hand, as of 2026-12-01): LAKESIDE
PEDIATRICS (NPI 1386492015, not configured; 2010AA N3/N4 2250 LAKESHORE DRIVE, SUITE 140,
MADISON WI 537031832; PER MARIA SANTOS TE 6085550142 EX 204) billed GREAT LAKES HEALTH PLAN (61234;
its 835s' N1*PR: CLAIMS DEPARTMENT, PO BOX 7700, GREEN BAY WI 543077700):

| claim      | patient (address)                                   | charge | paid   | patient resp. | patient paid | refund           |
|------------|-----------------------------------------------------|--------|--------|---------------|--------------|------------------|
| LPD2611001 | EMMA ORTIZ, child (2010CA 77 BEACON STREET, APT 3, MIDDLETON WI 535621104; her father's 2010BA is 818 WILLOW CREEK LANE) | 180.00 | 110.00 | 30.00 | 75.00 | patient 45.00 |
| LPD2611002 | NOAH BECKER, self (2010BA 1402 JENIFER STREET, MADISON WI 537032918) | 150.00 | 95.00 | 20.00 | 50.00 | patient 30.00 |
| LPD2611003 | AVA CHEN, self (no N3/N4)                           | 120.00 | 80.00  | 10.00         | 35.00        | patient 25.00    |
| LPD2611004 | NOAH BECKER (as above)                              | 125.00 | 95.00 twice (remit-2: check 40021977) | 0.00 | - | payer 95.00 (duplicate) |

All four refunds arise 2026-12-01 (due 2027-01-30) and are approved: the worklist order is
refund-id order, RF-30B1... (BECKER 30.00), RF-34BA... (CHEN), RF-3D4E... (ORTIZ), RF-7EB2... (payer).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SAMPLE_EDI
from pypdf import PdfReader
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.ingest import ingestor as ingest
from edirecon.engine.reports.letters import CMS838_HEADINGS, WINDOW_HEIGHT, WINDOW_LEFT, WINDOW_TOP, WINDOW_WIDTH
from edirecon.engine.store.connection import Store

LETTERS = FIXTURES / "reports" / "letters-from-the-837"
AS_OF = "2026-12-01"
MM = 72 / 25.4  # PDF points per millimetre


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def text_of(pages: Any) -> str:
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def pdf_text(path: Path) -> str:
    return text_of(PdfReader(path).pages)


def approve_all(db: str, run_out: Path) -> dict[str, str]:
    ids = {r["patient_control_number"]: r["refund_id"] for r in table(run_out / "refund_requests.csv")}
    cli("refund", "approve", *sorted(ids.values()), "--db", db, "--as-of", AS_OF, "--user", "alice")
    return ids


@pytest.fixture(scope="module")
def letters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The fixture run, its refunds approved, and reported without any configuration."""
    root = tmp_path_factory.mktemp("letters")
    db = f"sqlite:///{root / 'e.db'}"
    cli("run", LETTERS, "--db", db, "--out", root / "out", "--as-of", AS_OF, "--workers", "1")
    ids = approve_all(db, root / "out")
    result = cli("report", "--db", db, "--out", root / "rep", "--as-of", AS_OF)
    yield {"rep": root / "rep", "packets": root / "rep" / "packets", "ids": ids, "stderr": result.stderr}


def test_notice_has_the_patients_address_and_the_837s_provider(letters: dict[str, Any]) -> None:
    """No letterhead configured: the 837's billing provider signs (name, address, contact); the
    child's notice goes to her own 2010CA address, not her father's."""
    emma = pdf_text(letters["packets"] / f"patient-{letters['ids']['LPD2611001']}.pdf")
    assert emma.startswith(
        "LAKESIDE PEDIATRICS 2250 LAKESHORE DRIVE SUITE 140 MADISON, WI 53703-1832 NPI 1386492015 TIN 391234567 MARIA SANTOS (608) 555-0142 ext. 204 "
        "EMMA ORTIZ 77 BEACON STREET APT 3 MIDDLETON, WI 53562-1104 December 1, 2026 About the credit of $45.00 on your account"
    )
    assert "818 WILLOW" not in emma and "Billing provider NPI" not in emma
    assert "please contact MARIA SANTOS at (608) 555-0142 ext. 204." in emma and emma.endswith("Sincerely, LAKESIDE PEDIATRICS")
    # the subscriber is the patient: his 2010BA address
    noah = pdf_text(letters["packets"] / f"patient-{letters['ids']['LPD2611002']}.pdf")
    assert "NOAH BECKER 1402 JENIFER STREET MADISON, WI 53703-2918 December 1, 2026" in noah
    # the payer, not configured: the address of its 835s (N1*PR N3/N4)
    payer = pdf_text(letters["packets"] / "payer-61234-1386492015.pdf")
    assert "GREAT LAKES HEALTH PLAN CLAIMS DEPARTMENT PO BOX 7700 GREEN BAY, WI 54307-7700 December 1, 2026" in payer
    assert "Questions about this refund: MARIA SANTOS, (608) 555-0142 ext. 204." in payer


def _lines_at(page: Any) -> list[tuple[float, float, str]]:
    """(x mm from the left, y mm from the top, text) of each text run of a page."""
    height = float(page.mediabox.height)
    out: list[tuple[float, float, str]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip():
            out.append((tm[4] / MM, (height - tm[5]) / MM, text.strip()))

    page.extract_text(visitor_text=visit)
    return out


def test_the_address_is_where_the_envelope_window_shows_it(letters: dict[str, Any]) -> None:
    """The recipient's name and address lines lie inside the window of a #10 envelope (22 mm from
    the left, 50 mm from the top, 95 x 26 mm); the letterhead above it, the letter's text below."""
    page = PdfReader(letters["packets"] / f"patient-{letters['ids']['LPD2611001']}.pdf").pages[0]
    runs = _lines_at(page)
    window = [(x, y, t) for x, y, t in runs if t in ("EMMA ORTIZ", "77 BEACON STREET", "APT 3", "MIDDLETON, WI 53562-1104")]
    assert len(window) == 4
    for x, y, _ in window:
        assert WINDOW_LEFT - 0.5 <= x <= WINDOW_LEFT + WINDOW_WIDTH and WINDOW_TOP <= y <= WINDOW_TOP + WINDOW_HEIGHT
    head = min(y for _, y, t in runs if t == "LAKESIDE PEDIATRICS")  # the letterhead (the signature repeats it)
    (dated,) = [y for _, y, t in runs if t == "December 1, 2026"]
    assert head < WINDOW_TOP and dated > WINDOW_TOP + WINDOW_HEIGHT


def test_the_print_batches_hold_every_letter_in_worklist_order(letters: dict[str, Any]) -> None:
    """patients.pdf is the three notices, each from a new page, in worklist order; payers.pdf the
    payer letter and its remittance form; each batch reads exactly as its single files."""
    folder, ids = letters["packets"], letters["ids"]
    order = [ids["LPD2611002"], ids["LPD2611003"], ids["LPD2611001"]]
    assert order == sorted(order)  # due the same day: refund-id order
    batch = PdfReader(folder / "patients.pdf")
    singles = [PdfReader(folder / f"patient-{rid}.pdf") for rid in order]
    assert [len(s.pages) for s in singles] == [1, 1, 1] and len(batch.pages) == 3
    for page, single in zip(batch.pages, singles, strict=True):
        assert text_of([page]) == text_of(single.pages)
    assert text_of(PdfReader(folder / "payers.pdf").pages) == pdf_text(folder / "payer-61234-1386492015.pdf")
    assert len(PdfReader(folder / "payers.pdf").pages) == 2


def test_mail_merge_matches_the_letters(letters: dict[str, Any]) -> None:
    """One row per letter in worklist order: recipient, the address lines printed in the window,
    the amount as a plain number, the refund ids; AVA CHEN's notice has no address: not mailable,
    and report.json lists it (and stderr says so)."""
    folder, ids = letters["packets"], letters["ids"]
    rows = table(folder / "mail_merge.csv")
    got = [(r["letter"], r["kind"], r["recipient"], r["address_line1"], r["address_line2"], r["address_line3"], r["mailable"], r["amount"]) for r in rows]
    assert got == [
        (f"patient-{ids['LPD2611002']}.pdf", "patient", "NOAH BECKER", "1402 JENIFER STREET", "MADISON, WI 53703-2918", "", "yes", "30.00"),
        (f"patient-{ids['LPD2611003']}.pdf", "patient", "AVA CHEN", "", "", "", "no", "25.00"),
        (f"patient-{ids['LPD2611001']}.pdf", "patient", "EMMA ORTIZ", "77 BEACON STREET", "APT 3", "MIDDLETON, WI 53562-1104", "yes", "45.00"),
        ("payer-61234-1386492015.pdf", "payer", "GREAT LAKES HEALTH PLAN", "CLAIMS DEPARTMENT", "PO BOX 7700", "GREEN BAY, WI 54307-7700", "yes", "95.00"),
    ]
    assert [r["refund_ids"] for r in rows] == [ids["LPD2611002"], ids["LPD2611003"], ids["LPD2611001"], ids["LPD2611004"]]
    for r in rows:  # what the merge says is what the letter prints, in the window's order
        printed = pdf_text(folder / r["letter"])
        window = " ".join(x for x in (r["recipient"], r["address_line1"], r["address_line2"], r["address_line3"], r["address_line4"]) if x)
        assert f"{window} December 1, 2026" in printed
        assert f"${r['amount']}" in printed
    summary = json.loads((letters["rep"] / "report.json").read_text())
    assert summary["letters"] == {
        "payer": 1,
        "patient": 3,
        "not_mailable": [
            {"letter": f"packets/patient-{ids['LPD2611003']}.pdf", "kind": "patient", "refund_ids": [ids["LPD2611003"]], "missing": "the patient's address"}
        ],
    }
    assert summary["warnings"] == []  # the 837 names the provider: nothing to configure
    assert "1 letter(s) have no address and cannot be mailed" in letters["stderr"]
    assert "CHEN" not in letters["stderr"]  # patient data never on stderr


def test_mail_merge_neutralises_formulas(tmp_path: Path) -> None:
    """tests/fixtures/engine/formula-payloads-in-names-and-ids, its refunds approved: the payer's
    name (a formula) gets its leading ' in mail_merge.csv, the amounts stay plain."""
    scenario = FIXTURES / "engine" / "formula-payloads-in-names-and-ids"
    db = f"sqlite:///{tmp_path / 'e.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(scenario)
        cli("run", ".", "--db", db, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--workers", "1")
        ids = {r["patient_control_number"]: r["refund_id"] for r in table(tmp_path / "out" / "refund_requests.csv")}
        cli("refund", "approve", *sorted(ids.values()), "--db", db, "--as-of", "2026-11-27", "--user", "alice")
        cli("report", "--db", db, "--out", tmp_path / "rep", "--as-of", "2026-11-27")
    rows = {r["kind"]: r for r in table(tmp_path / "rep" / "packets" / "mail_merge.csv")}
    assert rows["payer"]["recipient"] == "'" + '=HYPERLINK("//x.example/p","MEDICARE PART B")'
    assert re.fullmatch(r"\d+\.\d\d", rows["payer"]["amount"]) and re.fullmatch(r"\d+\.\d\d", rows["patient"]["amount"])
    with open(tmp_path / "rep" / "packets" / "mail_merge.csv", newline="", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not re.fullmatch(r"-\d+\.\d\d", c))] == []


def test_cms838_heads_are_whole_words(tmp_path: Path) -> None:
    """The detail page's column heads wrap between words only: each head reads back whole, no word
    broken across lines ("Metho d", "outstandin g")."""
    folder = FIXTURES / "engine" / "medicare-paid-claim-billed-to-another-payer"
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cli("run", folder, "--db", db, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--workers", "1")
    cli("report", "--db", db, "--out", tmp_path / "rep", "--as-of", "2026-11-27")
    detail = PdfReader(tmp_path / "rep" / "cms838-2026Q3.pdf").pages[1].extract_text()
    heads = detail[detail.index("(1)") : detail.index("HALVORSEN")]
    assert heads.split() == " ".join(CMS838_HEADINGS).split()
    for word in ("Beneficiary", "Admission", "Discharge", "through", "Method", "outstanding", "Reason", "Comments"):
        assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", heads), word
    # and the amounts are for people
    assert "$96.00" in detail


def test_a_letter_signed_with_the_number_warns_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Claims stored before revision 0010 have no billing provider's name, and no letterhead is
    configured: the notice is signed "Billing provider NPI ...", and `report` says once, on stderr
    and in report.json, what to configure."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    store = Store(db)
    store.upgrade("0009")
    row, remittance_row = ingest.claim_row, ingest.remittance_row
    mailing = len(ingest.CLAIM_COLUMNS) - ingest.CLAIM_COLUMNS.index("billing_name")  # 0010's columns, last
    with monkeypatch.context() as m:  # the rows as revision 0009 had them
        m.setattr(ingest, "CLAIM_COLUMNS", ingest.CLAIM_COLUMNS[:-mailing])
        m.setattr(ingest, "claim_row", lambda *a: row(*a)[:-mailing])
        m.setattr(ingest, "remittance_row", lambda *a: {k: v for k, v in remittance_row(*a).items() if k not in ingest.PAYER_ADDRESS_COLUMNS})
        for path in sorted((SAMPLE_EDI / "patient-copay-overpaid").iterdir()):
            if path.suffix in (".837", ".835", ".csv"):
                ingest.Ingestor(store).ingest(path)
    store.dispose()
    cli("run", SAMPLE_EDI / "patient-copay-overpaid", "--db", db, "--out", tmp_path / "out", "--as-of", "2026-09-15", "--workers", "1")  # upgrades to 0010
    approve_all(db, tmp_path / "out")
    result = cli("report", "--db", db, "--out", tmp_path / "rep", "--as-of", "2026-09-15")
    warning = (
        "letters of billing NPI 1467523894 are signed with the number only (no name in the configuration or the 837s): "
        'configure [providers."1467523894"] with name, address, contact and phone in --config'
    )
    assert result.stderr.count("edirecon: warning: ") == 1 and f"edirecon: warning: {warning}\n" in result.stderr
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["warnings"] == [warning]
    (notice,) = (tmp_path / "rep" / "packets").glob("patient-*.pdf")
    text = pdf_text(notice)
    assert text.startswith("Billing provider NPI 1467523894") and "KAREN LEE" in text
    # stored before 0010, the patient's address is not known either: not mailable
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["letters"]["not_mailable"][0]["missing"] == "the patient's address"
