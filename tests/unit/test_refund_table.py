"""The table of `refund list` (``views.list_table``) on rows made here: it keeps to 120 columns,
cuts only names and flags (ids, statuses, days and amounts are whole), counts East Asian wide
characters as two columns, and shows control characters of names as ``?``."""

from __future__ import annotations

import unicodedata
from datetime import date

from edirecon.engine.workflow.views import ListRow, list_table


def row(refund_id: str = "RF-0000000000000001", **changes: object) -> ListRow:
    values: dict[str, object] = {
        "refund_id": refund_id,
        "due_by": date(2027, 1, 26),
        "days_overdue": 0,
        "workflow_status": "pending",
        "reason": "DUPLICATE_PAYMENT",
        "payee_type": "payer",
        "payer_id": "87726",
        "payer_name": "BLUE RIVER HEALTH PLAN",
        "patient_control_number": "RFM2602001",
        "patient_name": "GARCIA, MARIA",
        "amount": "155.50",
        "outstanding": "155.50",
        "flags": "",
    }
    values.update(changes)
    return ListRow(**values)  # type: ignore[arg-type]


def columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in line)


def test_short_names_are_shown_whole() -> None:
    assert list_table([row()]).splitlines() == [
        "refund_id            status   due_by      amount  account     patient        payee                   flags",
        "RF-0000000000000001  pending  2027-01-26  155.50  RFM2602001  GARCIA, MARIA  BLUE RIVER HEALTH PLAN",
        "1 refund(s)",
    ]


def test_long_names_and_flags_are_cut_to_120_columns_and_ids_and_amounts_are_not() -> None:
    long = row(
        workflow_status="double_refund",
        payer_name="P" * 60,
        patient_control_number="A" * 38,
        patient_name="N" * 60,
        amount="1234567.89",
        flags="overdue 3d, recover 1234567.89, escheatment candidate, engine:partially_recouped",
    )
    lines = list_table([long, row("RF-0000000000000002")]).splitlines()
    assert max(map(columns, lines)) <= 120
    first = lines[1]
    assert first.startswith("RF-0000000000000001  double_refund  2027-01-26  1234567.89  ")
    assert "A" * 9 + "…" in first and "N" * 15 + "…" in first and "P" * 15 + "…" in first
    assert first.endswith("overdue 3d,…")
    assert lines[2].startswith("RF-0000000000000002  pending        2027-01-26      155.50  RFM2602001  GARCIA, MARIA   ")


def test_wide_characters_take_two_columns_and_keep_the_columns_aligned() -> None:
    lines = list_table([row(patient_name="王, 小明"), row("RF-0000000000000002", patient_name="LEE, KAREN")]).splitlines()
    payee_at = {columns(line[: line.index("BLUE")]) for line in lines[1:3]}
    assert payee_at == {columns(lines[0][: lines[0].index("payee")])}


def test_control_characters_of_names_are_shown_as_question_marks() -> None:
    (line,) = list_table([row(patient_name="EVIL\x1b[2J\r\nNAME", payer_name="PAYER\u202eX")]).splitlines()[1:2]
    assert "EVIL?[2J??NAME" in line and "PAYER?X" in line
    assert "\x1b" not in line and "\u202e" not in line
