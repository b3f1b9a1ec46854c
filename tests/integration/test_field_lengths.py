"""Column lengths defined once (issue 14): a value longer than its column is a FIELD_TOO_LONG
exception with its position and field, its first characters stored alike on SQLite and
PostgreSQL, never a silent cut."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy
from conftest import FIXTURES, SAMPLE_EDI

from edirecon.engine.config import Config
from edirecon.engine.ingest import ingestor as ingest
from edirecon.engine.run import run
from edirecon.engine.store import schema as t
from edirecon.engine.store.lengths import TooLong, length, widths
from edirecon.parsers.model import Address, Adjustment, Claim, ClaimPayment, Contact, Party, ProviderAdjustment, Remittance, ServiceLine, ServicePayment
from edirecon.parsers.source import Source

AS_OF = date(2026, 11, 27)
TOO_LONG = FIXTURES / "too-long"
NAME = "MONTGOMERY-FITZWILLIAMS-VANDERHOEVEN-OKONKWO-ABERNATHY-STONEBRIDGE-III"  # 2010BA NM103, 70 characters
ICN = "BRH2603030041-RIVERBEND-FAMILY-MEDICINE-ADJ-0000000000000001"  # CLP07, 60 characters


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


def _segment_at(path: Path, start: bytes) -> tuple[int, int]:
    """(segment number, byte offset) of the segment of ``path`` that starts with ``start``."""
    data = path.read_bytes()
    offset = data.index(start)
    return data[:offset].count(b"~") + 1, offset


def test_an_over_long_name_and_payer_claim_number_are_findings_with_position_and_field(store_url: str, tmp_path: Path) -> None:
    """The realistic case: a 70-character subscriber last name (2010BA NM103) in an 837 and a
    60-character CLP07 in its 835.  Each is a FIELD_TOO_LONG warning naming the file, segment,
    byte offset and field; the first 60 / 50 characters are stored, on SQLite and PostgreSQL
    alike; the claim and its payment are ingested and matched as if the values had fitted."""
    claims, remit = TOO_LONG / "claims.837", TOO_LONG / "remit.835"
    assert len(NAME) == 70 and len(ICN) == 60
    assert NAME.encode() in claims.read_bytes() and ICN.encode() in remit.read_bytes()
    name_segment, name_offset = _segment_at(claims, b"NM1*IL*1*" + NAME.encode())
    clp_segment, clp_offset = _segment_at(remit, b"CLP*RFM2601001*")

    result = run([TOO_LONG], store_url, tmp_path / "out", AS_OF, Config())

    too_long = sorted((x for x in result.outputs["exceptions"] if x["kind"] == "FIELD_TOO_LONG"), key=lambda x: x["source_file"])
    assert [(x["severity"], x["source_file"], x["segment"], x["patient_control_number"], x["payer_id"], x["detail"]) for x in too_long] == [
        (
            "warning",
            str(claims),
            name_segment,
            "RFM2601001",
            "87726",
            "claims.patient_last (2010CA NM103, or 2010BA when the patient is the subscriber) has 70 characters and its column holds 60: "
            f"its first 60 are stored (segment {name_segment}, byte {name_offset})",
        ),
        (
            "warning",
            str(remit),
            clp_segment,
            "RFM2601001",
            "87726",
            f"claim_payments.payer_claim_control_number (CLP07) has 60 characters and its column holds 50: its first 50 are stored (segment {clp_segment}, byte {clp_offset})",
        ),
    ]
    assert NAME not in str(too_long) and ICN not in str(too_long)  # the value is never repeated (names are patient data)
    # the exceptions.csv the analyst reads says the same
    csv_text = (tmp_path / "out" / "exceptions.csv").read_text(encoding="utf-8")
    assert f"FIELD_TOO_LONG,warning,{claims},{name_segment},RFM2601001,87726,," in csv_text
    assert f"(segment {clp_segment}, byte {clp_offset})" in csv_text

    engine = sqlalchemy.create_engine(store_url)
    with engine.connect() as conn:
        names = conn.execute(sqlalchemy.select(t.claims.c.patient_last).order_by(t.claims.c.patient_control_number)).scalars().all()
        icns = (
            conn.execute(sqlalchemy.select(t.claim_payments.c.payer_claim_control_number).order_by(t.claim_payments.c.patient_control_number)).scalars().all()
        )
    engine.dispose()
    assert names == [NAME[:60], "DOE"]
    assert icns == [ICN[:50], "BRH2603030042"]

    # nothing good is lost: the money is decided exactly as for the same files with values that fit
    clean = run([SAMPLE_EDI / "clean-payment"], f"sqlite:///{tmp_path / 'clean.db'}", tmp_path / "clean", AS_OF, Config())
    for table in ("credit_balances", "refund_requests", "recoupments"):
        assert list(result.outputs[table]) == list(clean.outputs[table]), table


def test_a_patient_payment_id_longer_than_its_column_is_a_finding_at_its_row(tmp_path: Path) -> None:
    payment_id = "FRONT-DESK-2026-06-02-" + "0" * 70  # 92 characters; payment_id holds 80
    (tmp_path / "payments.csv").write_text(f"patient_control_number,amount,paid_on,payment_id\nRFM2606001,40.00,2026-06-02,{payment_id}\n")
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = run([tmp_path / "payments.csv"], url, tmp_path / "out", AS_OF, Config())
    (x,) = [x for x in result.outputs["exceptions"] if x["kind"] == "FIELD_TOO_LONG"]
    assert (x["segment"], x["patient_control_number"], x["detail"]) == (
        2,
        "RFM2606001",
        "patient_payments.payment_id (payment_id) has 92 characters and its column holds 80: its first 80 are stored (row 2)",
    )
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.select(t.patient_payments.c.payment_id, t.patient_payments.c.amount)).one() == (payment_id[:80], Decimal("40.00"))
    engine.dispose()


def _long(n: int = 200) -> str:
    return "X" * n


def _party(entity: str, segment: int) -> Party:
    """A party at ``segment``, its N3/N4 at ``segment + 50`` and its PER at ``segment + 60``."""
    address = Address([_long(), _long()], _long(), _long(), _long(), _long(), Source("f", segment + 50, (segment + 50) * 100))
    contact = Contact("IC", _long(), [("TE", _long()), ("EX", _long())], Source("f", segment + 60, (segment + 60) * 100))
    return Party(
        entity, _long(), _long(), id_qualifier="XX", id=_long(), tin=_long(), source=Source("f", segment, segment * 100), address=address, contacts=[contact]
    )


def _bounded(table: sqlalchemy.Table) -> set[str]:
    return {c.name for c in table.columns if length(c) is not None}


def test_every_bounded_column_ingest_fills_is_checked_none_cut_silently() -> None:
    """Records whose every text is 200 characters: every String(n) column ingest fills is
    reported, so no row function still cuts a value on its own."""
    src = Source("f", 10, 1000)
    line = ServiceLine(_long(), "SV1", "HC", _long(), (_long(), _long()), charge=Decimal("1"), line_item_control_number=_long(), source=Source("f", 30, 3000))
    claim = Claim(
        _long(), "005010X222A1", _long(), Decimal("1"), "11", "B", _long(), None, None,
        _party("85", 11), None, _party("IL", 12), _party("IL", 12), "18", _party("PR", 13),
        _long(), _long(), "", original_reference=_long(), type_of_bill=_long(), lines=[line], source=src,
    )  # fmt: skip
    prepared = ingest._prepare_claims([claim], "f", ingest._StorageForm(True))
    cut = {(c.too_long.table, c.too_long.column) for c in prepared.cuts}
    assert cut == {("claims", c) for c in _bounded(t.claims)} | {("claim_lines", c) for c in _bounded(t.claim_lines)}
    assert all(
        len(v) <= (length(t.claims.c[name]) or 10**9)
        for name, v in zip(ingest.CLAIM_COLUMNS[2:], prepared.claims[0])
        if isinstance(v, str) and name != "source_file"
    )
    where = {c.too_long.column: c.where for c in prepared.cuts if c.too_long.table == "claims"}
    assert (
        where["patient_last"] == "segment 12, byte 1200" and where["billing_tin"] == "segment 11, byte 1100" and where["payer_name"] == "segment 13, byte 1300"
    )
    assert where["original_reference"] == "segment 10, byte 1000"
    # an address is found at its N3, a contact at its PER
    assert where["patient_city"] == "segment 62, byte 6200" and where["billing_address1"] == "segment 61, byte 6100"
    assert where["billing_contact"] == where["billing_phone"] == "segment 71, byte 7100"

    rem = Remittance(
        "005010X221A1",
        "I",
        Decimal("1"),
        _long(),
        "ACH",
        "CCP",
        None,
        "1",
        _long(),
        "1",
        payer=_party("PR", 3),
        payer_id=_long(),
        payee=_party("PE", 4),
        payee_npi=_long(),
        payee_tin=_long(),
        source=Source("f", 2, 200),
    )
    cas = Adjustment(_long(), _long(), Decimal("1"), None, Source("f", 21, 2100))
    svc = ServicePayment(
        "HC", _long(), (_long(),), Decimal("1"), Decimal("1"), "", None, line_item_control_number=_long(), adjustments=[cas], source=Source("f", 22, 2200)
    )
    payment = ClaimPayment(
        rem,
        _long(),
        _long(),
        Decimal("1"),
        Decimal("1"),
        Decimal("0"),
        _long(),
        _long(),
        "11",
        "1",
        adjustments=[cas],
        patient=_party("QC", 23),
        crossover_carrier=_party("TT", 24),
        services=[svc],
        source=Source("f", 20, 2000),
    )
    plb = ProviderAdjustment(rem, _long(), None, 1, _long(), _long(), Decimal("1"), source=Source("f", 40, 4000))
    prepared_rem = ingest._prepare_remittance([payment, plb], "f", ingest._StorageForm(False))
    cut = {(c.too_long.table, c.too_long.column) for c in prepared_rem.cuts}
    expected = {("remittances", c) for c in _bounded(t.remittances)}
    expected |= {("claim_payments", c) for c in _bounded(t.claim_payments)} | {("payment_lines", c) for c in _bounded(t.payment_lines)}
    expected |= {("adjustments", c) for c in _bounded(t.adjustments)} | {("provider_adjustments", c) for c in _bounded(t.provider_adjustments)}
    assert cut == expected
    where = {(c.too_long.table, c.too_long.column): c.where for c in prepared_rem.cuts}
    assert where["remittances", "payer_name"] == "segment 3, byte 300" and where["remittances", "trace_number"] == "segment 2, byte 200"
    assert where["claim_payments", "patient_first"] == "segment 23, byte 2300" and where["claim_payments", "crossover_carrier_id"] == "segment 24, byte 2400"
    assert where["claim_payments", "payer_claim_control_number"] == "segment 20, byte 2000" and where["adjustments", "reason"] == "segment 21, byte 2100"
    assert where["provider_adjustments", "reference"] == "segment 40, byte 4000"
    assert prepared_rem.header_row["payer_id"] == _long(length(t.remittances.c.payer_id) or 0)


def test_lengths_come_from_the_schema_and_a_row_that_fits_is_kept_as_it_is() -> None:
    fit = widths(t.claim_payments, [None, "patient_control_number", "status", "charge"])
    assert fit.checks == [(1, "patient_control_number", 38), (2, "status", 2)]
    row = (7, "RFM2601001", "1", Decimal("10.00"))
    over: list[TooLong] = []
    assert fit.fit(row, over) is row and over == []
    assert fit.fit((7, "P" * 39, "1", None), over) == (7, "P" * 38, "1", None)
    assert over == [TooLong("claim_payments", "patient_control_number", 38, 39)]
    assert length(t.claims.c.other_member_ids) is None and length(t.claims.c.total_charge) is None  # Text and Money: unbounded here


def test_ingest_repeats_no_column_length() -> None:
    """The row functions take no length of their own: they slice nothing but the other payers' ids
    (compared with stored payer ids), and that by the schema's length."""
    source = Path(ingest.__file__).read_text(encoding="utf-8")
    rows = source[source.index("# -- rows ---") :]
    assert "[:" not in rows.replace("[:_PAYER_ID]", "")
