"""Every code list and structure table in mappings/ loads and holds what the parsers rely on."""

from __future__ import annotations

import csv

import pytest

from edirecon import mappings


@pytest.mark.parametrize("table", sorted(mappings.TABLES))
def test_table_loads_with_unique_keys(table: str) -> None:
    """A table has rows, a full header on every row, and no duplicated key."""
    rows = mappings.rows(table)
    assert rows, f"{table}.csv is empty"
    with open(mappings.HERE / f"{table}.csv", newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert all(set(row) == set(header) for row in rows)
    key = "version" if "version" in header else None
    if table == "element_lengths":
        keys = [(row["segment"], row["position"]) for row in rows]
    elif table == "codes":  # one code may be in several families (acknowledged: a refund and a workflow status)
        keys = [(row["family"], row["code"]) for row in rows]
    else:
        keys = [row[key or "code"] for row in rows]
    assert len(keys) == len(set(keys)), f"duplicate keys in {table}.csv"


def test_every_csv_in_the_folder_is_registered() -> None:
    """A CSV dropped into mappings/ is named in TABLES (and so loaded by the test above)."""
    on_disk = {p.stem for p in mappings.HERE.glob("*.csv")}
    assert on_disk == set(mappings.TABLES)


def test_claim_adjustment_reason_codes_a_credit_balance_workflow_meets() -> None:
    """The CARCs of duplicates, overpayments and coordination of benefits are described."""
    carc = mappings.codes("claim_adjustment_reason_codes")
    for code in ["1", "2", "3", "18", "22", "23", "24", "45", "94", "96", "97", "129", "144", "197", "B13"]:
        assert carc.get(code), code
    assert carc["18"].lower().startswith("exact duplicate")


def test_plb_reason_codes_of_5010_with_their_kind() -> None:
    """All PLB03-1 codes of 005010X221A1 are listed; take-backs are 'recovery', L6 is 'interest'."""
    kinds = mappings.plb_kinds()
    for code in ["WO", "FB", "72", "L6", "J1", "CS", "IR", "LE", "50", "CT", "AM"]:
        assert code in kinds, code
    assert kinds["WO"] == "recovery" and kinds["FB"] == "recovery" and kinds["L6"] == "interest"
    assert set(kinds.values()) <= {"recovery", "interest", "withholding", "payment", "other"}


def test_medicare_and_medicaid_are_the_federal_filing_indicators() -> None:
    """MA, MB and MC (and nothing else) carry the 60-day federal refund deadline."""
    assert mappings.federal_filing_indicators() == {"MA", "MB", "MC"}


def test_claim_status_and_group_codes() -> None:
    """CLP02 reversal (22) and denial (4), CAS groups CO/PR/OA/PI are known."""
    assert {"1", "2", "3", "4", "22"} <= set(mappings.codes("claim_status_codes"))
    assert {"CO", "PR", "OA", "PI"} <= set(mappings.codes("cas_group_codes"))
    assert {"1", "7", "8"} <= set(mappings.codes("claim_frequency_codes"))


def test_implementation_guides_map_to_transaction_types() -> None:
    """Each supported guide version names its transaction type."""
    guides = mappings.implementation_guides()
    assert guides["005010X222A1"] == "837P"
    assert guides["005010X223A2"] == "837I"
    assert guides["005010X224A2"] == "837D"
    assert guides["005010X221A1"] == "835"
    assert guides["004010X098A1"] == "837P"
    assert set(guides.values()) == {"837P", "837I", "837D", "835"}


def test_only_835_and_837_are_modelled() -> None:
    """Other recognised transaction sets are reported as unsupported, not parsed."""
    assert mappings.supported_transaction_sets() == {"835", "837"}
    assert {"277", "999", "834"} <= set(mappings.codes("transaction_sets"))


def test_element_lengths_give_a_maximum_per_position() -> None:
    """CLP01 is at most 38 characters and NM103 at most 60 (composites have no maximum)."""
    lengths = mappings.element_max_lengths()
    assert lengths["CLP"][1] == 38
    assert lengths["NM1"][3] == 60
