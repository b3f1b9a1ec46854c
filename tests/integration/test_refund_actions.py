"""`refund acknowledge`, `refund assign` and `refund note` (issue 15, step 6), on SQLite and PostgreSQL:
each action through the CLI, its refusals with their one-line reason and exit code, the audit trail
in `refund show`, several ids with one refused, and a store of revision 0008 upgraded to 0009.

Figures come from the sample READMEs (as in test_refunds.py): the Medicare duplicate of RFM2604001
is 99.96, taken back by `PLB*...*WO` in remit-3 (trace 0000902377, 2026-11-20); the COB refund of
RFM2605001 (Medicaid, 27.00) is auto-approved by the test config, the patient credit of RFM2606001
(15.00) held, the duplicate of RFM2602001 (Blue River, 155.50) pending.  Refund ids are read from
the run's refund_requests.csv.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import structlog
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from conftest import FIXTURES, SAMPLE_EDI
from sqlalchemy import create_engine, select
from structlog.testing import capture_logs
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.config import Config
from edirecon.engine.store import schema as t
from edirecon.engine.store.connection import HEAD, MIGRATIONS, Store
from edirecon.engine.store.connection import open_store as open_any_store
from edirecon.engine.workflow import refunds
from edirecon.engine.workflow import users as u
from edirecon.errors import NotAllowed, UsageError

PLB = SAMPLE_EDI / "plb-recoupment-settles-refund"
CONFIG = FIXTURES / "reports" / "config.toml"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: SQLite in tmp_path, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'edirecon.db'}"
    return str(request.getfixturevalue("pg_url"))


def cli(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def run(db: str, out: Path, as_of: str, *inputs: Path, config: Path | None = CONFIG) -> list[dict[str, str]]:
    extra = ["--config", str(config)] if config else []
    result = cli("run", *inputs, "--db", db, "--out", out, "--as-of", as_of, "--workers", "1", *extra)
    assert result.exit_code == 0, result.output
    with open(out / "refund_requests.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def refund_id(rows: list[dict[str, str]], pcn: str) -> str:
    (row,) = [r for r in rows if r["patient_control_number"] == pcn]
    return row["refund_id"]


def refund(db: str, *args: Any, as_of: str = "2026-11-27") -> Any:
    return cli("refund", *args, "--db", db, "--as-of", as_of, "--config", CONFIG)


def trail(db: str, rid: str) -> list[tuple[str, str, str, str, str]]:
    """(user, action, from, to, note) of each audit event of the refund, oldest first."""
    engine = create_engine(db.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [
                (r.user_name, r.action, r.from_status, r.to_status, r.note)
                for r in conn.execute(select(t.refund_events).where(t.refund_events.c.refund_id == rid).order_by(t.refund_events.c.id))
            ]
    finally:
        engine.dispose()


def three_refunds(db: str, out: Path, config: Path | None = CONFIG) -> tuple[str, str, str]:
    """The COB (Medicaid 27.00, approved), patient (15.00, held) and duplicate (Blue River 155.50,
    pending) refunds, in that order."""
    rows = run(db, out, "2026-11-27", SAMPLE_EDI / "secondary-overpaid", SAMPLE_EDI / "patient-copay-overpaid", SAMPLE_EDI / "duplicate-payment", config=config)
    return refund_id(rows, "RFM2605001"), refund_id(rows, "RFM2606001"), refund_id(rows, "RFM2602001")


def statuses(result: Any) -> dict[str, str]:
    assert result.exit_code == 0, result.output
    return {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:-1]}


def history(shown: str) -> list[str]:
    """The lines of `refund show`'s history, without their time stamp."""
    lines = shown.splitlines()
    return [line.split("Z  ", 1)[1] for line in lines[lines.index("history") + 1 :]]


# -- refund acknowledge ------------------------------------------------------------------------------


def test_acknowledge_records_the_payers_confirmation(db: str, tmp_path: Path) -> None:
    """Check 5001 of 99.96 sent to Medicare on 2026-11-02; Medicare's letter LTR-7 of 2026-11-30
    confirms it: acknowledged, with the amount sent, the day and the reference, audited with the
    note.  A confirmation dated before the check was sent, or a second one, is refused (exit 1);
    a take-back by Medicare afterwards still makes it a double refund, as after a PLB 72."""
    rid = refund_id(run(db, tmp_path / "out", "2026-10-20", PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835"), "RFM2604001")
    not_sent = refund(db, "acknowledge", rid, "--reference", "LTR-7", "--date", "2026-10-20", as_of="2026-10-20")
    assert (not_sent.exit_code, not_sent.stdout, not_sent.stderr) == (1, "", f"edirecon: {rid} is pending: acknowledge is allowed only when it is sent\n")
    assert refund(db, "approve", rid, "--user", "alice", as_of="2026-10-21").exit_code == 0
    sent = refund(db, "mark-sent", rid, "--user", "bob", "--reference", "5001", "--date", "2026-11-02", as_of="2026-11-02")
    assert sent.exit_code == 0, sent.output

    early = refund(db, "acknowledge", rid, "--user", "carol", "--reference", "LTR-7", "--date", "2026-11-01")
    assert (early.exit_code, early.stderr) == (1, f"edirecon: {rid}: confirmed on 2026-11-01, before it was sent on 2026-11-02\n")
    done = refund(db, "acknowledge", rid, "--user", "carol", "--reference", "LTR-7", "--date", "2026-11-30", "--note", "letter scanned", as_of="2026-12-01")
    assert (done.exit_code, done.stdout, done.stderr) == (0, f"{rid}: acknowledge by carol; now acknowledged\n", "")
    shown = refund(db, "show", rid, as_of="2026-12-01")
    assert shown.exit_code == 0, shown.output
    assert "  status            acknowledged\n" in shown.stdout
    assert "  sent              check 5001 of 99.96 on 2026-11-02\n" in shown.stdout
    assert "  acknowledged      99.96 on 2026-11-30 (the payer's confirmation LTR-7)\n" in shown.stdout
    assert history(shown.stdout)[-1] == "carol       acknowledge      sent -> acknowledged  the payer's confirmation LTR-7 of 2026-11-30; letter scanned"
    assert [e[:4] for e in trail(db, rid)] == [
        ("edirecon", "identified", "", "pending"),
        ("alice", "approve", "pending", "approved"),
        ("bob", "mark-sent", "approved", "sent"),
        ("carol", "acknowledge", "sent", "acknowledged"),
    ]
    again = refund(db, "acknowledge", rid, "--user", "carol", "--reference", "LTR-8", "--date", "2026-12-01", as_of="2026-12-01")
    assert (again.exit_code, again.stderr) == (1, f"edirecon: {rid} is acknowledged: acknowledge is allowed only when it is sent\n")
    assert len(trail(db, rid)) == 4  # a refusal changes nothing

    run(db, tmp_path / "out", "2026-12-01", PLB / "remit-3.835")  # Medicare also takes it back
    shown = refund(db, "show", rid, as_of="2026-12-01").stdout
    assert "  status            double_refund\n" in shown
    assert "  double refund     99.96 to recover: PLB_WO trace 0000902377 of 2026-11-20\n" in shown
    assert trail(db, rid)[-1][:4] == ("edirecon", "double_refund", "acknowledged", "double_refund")


def test_acknowledge_needs_its_reference_and_date_and_a_payer_refund(db: str, tmp_path: Path) -> None:
    """Without --reference or --date: exit 2, one line, nothing done.  A patient refund sent is
    closed by mark-cashed, not acknowledged (exit 1).  Several ids, one refused: the two payer
    refunds sent are acknowledged, each with its own event, the last line counts them, exit 1."""
    cob, patient, dup = three_refunds(db, tmp_path / "out")
    assert refund(db, "approve", patient, dup, "--user", "alice").exit_code == 0
    assert refund(db, "mark-sent", cob, patient, dup, "--user", "bob", "--reference", "9001", "--date", "2026-11-27").exit_code == 0
    no_reference = refund(db, "acknowledge", dup, "--date", "2026-11-30")
    assert (no_reference.exit_code, no_reference.stdout, no_reference.stderr) == (
        2,
        "",
        "edirecon: acknowledge needs --reference: the payer's letter or portal confirmation number\n",
    )
    no_date = refund(db, "acknowledge", dup, "--reference", "P-1")
    assert (no_date.exit_code, no_date.stderr) == (2, "edirecon: acknowledge needs --date: the day of the payer's confirmation (YYYY-MM-DD)\n")
    bad_date = refund(db, "acknowledge", dup, "--reference", "P-1", "--date", "2026-11-31")
    assert (bad_date.exit_code, bad_date.stderr) == (2, "edirecon: --date '2026-11-31' is not a date (YYYY-MM-DD)\n")
    long_reference = refund(db, "acknowledge", dup, "--reference", "R" * 51, "--date", "2026-11-30")
    assert long_reference.exit_code == 2
    assert statuses(refund(db, "list")) == {cob: "sent", patient: "sent", dup: "sent"}

    ids = tmp_path / "ids.txt"
    ids.write_text(f"{patient}\n{dup}\n", encoding="utf-8")
    result = refund(db, "acknowledge", cob, "--from", ids, "--user", "carol", "--reference", "PORTAL 2026-3318", "--date", "2026-11-30", as_of="2026-12-01")
    assert result.exit_code == 1
    assert result.stdout == f"{cob}: acknowledge by carol; now acknowledged\n{dup}: acknowledge by carol; now acknowledged\nacknowledge: 2 done, 1 refused\n"
    assert result.stderr == f"edirecon: {patient}: acknowledge is for payer refunds; a patient refund check is closed by mark-cashed\n"
    assert statuses(refund(db, "list", as_of="2026-12-01")) == {cob: "acknowledged", patient: "sent", dup: "acknowledged"}
    for rid, amount in ((cob, "27.00"), (dup, "155.50")):
        assert trail(db, rid)[-1] == ("carol", "acknowledge", "sent", "acknowledged", "the payer's confirmation PORTAL 2026-3318 of 2026-11-30")
        assert f"  acknowledged      {amount} on 2026-11-30 (the payer's confirmation PORTAL 2026-3318)\n" in refund(db, "show", rid, as_of="2026-12-01").stdout
    assert [e[1] for e in trail(db, patient)] == ["identified", "approve", "mark-sent"]
    # the report's follow-ups no longer wait for these two payers' acknowledgment
    reported = cli("report", "--db", db, "--out", tmp_path / "report", "--as-of", "2026-12-01", "--config", CONFIG)
    assert reported.exit_code == 0, reported.output
    with open(tmp_path / "report" / "followups.csv", newline="", encoding="utf-8") as fh:
        assert [(r["refund_id"], r["kind"]) for r in csv.DictReader(fh) if r["kind"] == "AWAITING_ACKNOWLEDGMENT"] == []


# -- refund assign -------------------------------------------------------------------------------------


def test_assign_reassign_and_unassign(db: str, tmp_path: Path) -> None:
    """Assigning changes no status; `refund show` names the assignee (no line when nobody);
    every change is audited with whom it was assigned to before.  Assigning to the same user, or
    unassigning a refund assigned to nobody, is refused (exit 1); several ids, one refused."""
    cob, patient, dup = three_refunds(db, tmp_path / "out")
    before = refund(db, "show", dup).stdout
    assert "assigned to" not in before
    result = refund(db, "assign", cob, dup, "--to", "alice", "--user", "carol", "--note", "Monday batch")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"{cob}: assign by carol; now approved, assigned to alice\n{dup}: assign by carol; now pending, assigned to alice\nassign: 2 done, 0 refused\n"
    )
    assert statuses(refund(db, "list")) == {cob: "approved", patient: "held", dup: "pending"}
    shown = refund(db, "show", dup).stdout
    assert shown.splitlines()[1:3] == ["  status            pending", "  assigned to       alice"]
    assert shown.replace("  assigned to       alice\n", "").split("history")[0] == before.split("history")[0]
    assert history(shown)[-1] == "carol       assign           pending -> pending  assigned to alice; Monday batch"

    moved = refund(db, "assign", dup, "--to", "bob.smith@clinic", "--user", "carol")
    assert (moved.exit_code, moved.stdout) == (0, f"{dup}: assign by carol; now pending, assigned to bob.smith@clinic\n")
    assert trail(db, dup)[-1] == ("carol", "assign", "pending", "pending", "assigned to bob.smith@clinic (was alice)")

    bulk = refund(db, "assign", patient, dup, cob, "--to", "bob.smith@clinic", "--user", "carol")
    assert bulk.exit_code == 1
    assert bulk.stdout == (
        f"{patient}: assign by carol; now held, assigned to bob.smith@clinic\n{cob}: assign by carol; now approved, assigned to bob.smith@clinic\n"
        "assign: 2 done, 1 refused\n"
    )
    assert bulk.stderr == f"edirecon: {dup} is already assigned to bob.smith@clinic\n"

    unassigned = refund(db, "assign", dup, "--to", "", "--user", "carol")
    assert (unassigned.exit_code, unassigned.stdout) == (0, f"{dup}: assign by carol; now pending, assigned to nobody\n")
    assert trail(db, dup)[-1] == ("carol", "assign", "pending", "pending", "unassigned (was bob.smith@clinic)")
    assert "  assigned to " not in refund(db, "show", dup).stdout.split("history")[0]
    nobody = refund(db, "assign", dup, "--to", "", "--user", "carol")
    assert (nobody.exit_code, nobody.stderr) == (1, f"edirecon: {dup} is not assigned to anyone\n")
    assert [e[1] for e in trail(db, dup)] == ["identified", "assign", "assign", "assign"]

    # any status: a voided refund can still be assigned, and stays voided
    assert refund(db, "void", dup, "--user", "carol", "--note", "split payment").exit_code == 0
    assert refund(db, "assign", dup, "--to", "alice", "--user", "carol").stdout == f"{dup}: assign by carol; now voided, assigned to alice\n"


def test_assign_usage_errors(tmp_path: Path) -> None:
    """No --to, or a name that cannot be a user's: exit 2, one line, nothing done."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cob, _patient, dup = three_refunds(db, tmp_path / "out")
    entered = trail(db, dup)
    assert [e[1] for e in entered] == ["identified"]  # run syncs the workflow
    missing = refund(db, "assign", dup, "--user", "carol")
    assert (missing.exit_code, missing.stdout, missing.stderr) == (2, "", 'edirecon: assign needs --to USER (--to "" unassigns)\n')
    for bad in ("x" * 65, " alice", "ali\nce"):
        result = refund(db, "assign", dup, cob, "--to", bad)
        assert result.exit_code == 2 and result.stderr.startswith("edirecon: --to ") and result.stderr.count("\n") == 1, result.output
    unknown = refund(db, "assign", dup, "RF-0000000000000000", "--to", "alice")
    assert unknown.exit_code == 2 and "none of the 2 refunds was acted on" in unknown.stderr
    assert trail(db, dup) == entered  # nothing written
    assert "assigned to" not in refund(db, "show", dup).stdout


def test_assigning_decides_nothing_so_the_entry_rules_still_apply(db: str, tmp_path: Path) -> None:
    """A first sync without --config enters every refund pending; the COB refund assigned (and
    noted) meanwhile is still re-judged by the config's auto-approval rule, and keeps its assignee."""
    cob, _patient, _dup = three_refunds(db, tmp_path / "out", config=None)
    first = cli("refund", "assign", cob, "--to", "alice", "--user", "carol", "--db", db, "--as-of", "2026-11-27")
    assert (first.exit_code, first.stdout) == (0, f"{cob}: assign by carol; now pending, assigned to alice\n")
    assert cli("refund", "note", cob, "--note", "asked Medicaid", "--user", "carol", "--db", db, "--as-of", "2026-11-27").exit_code == 0
    assert statuses(refund(db, "list"))[cob] == "approved"
    assert [e[1:4] for e in trail(db, cob)] == [
        ("identified", "", "pending"),
        ("assign", "pending", "pending"),
        ("note", "pending", "pending"),
        ("rejudged", "pending", "approved"),
    ]
    assert "  assigned to       alice\n" in refund(db, "show", cob).stdout


# -- refund note -----------------------------------------------------------------------------------------


def test_note_is_an_audit_event_only(db: str, tmp_path: Path) -> None:
    """A note in any status (a pending and a voided refund): one event each, the status unchanged,
    shown in `refund show`'s history; --note is required (exit 2)."""
    cob, _patient, dup = three_refunds(db, tmp_path / "out")
    assert refund(db, "void", cob, "--user", "carol", "--note", "paid by the primary after all").exit_code == 0
    noted = refund(db, "note", dup, cob, "--user", "dave", "--note", "called Blue River; callback promised")
    assert (noted.exit_code, noted.stderr) == (0, "")
    assert noted.stdout == f"{dup}: note by dave; now pending\n{cob}: note by dave; now voided\nnote: 2 done, 0 refused\n"
    assert trail(db, dup)[-1] == ("dave", "note", "pending", "pending", "called Blue River; callback promised")
    assert trail(db, cob)[-1] == ("dave", "note", "voided", "voided", "called Blue River; callback promised")
    shown = refund(db, "show", dup).stdout
    assert "  status            pending\n" in shown
    assert history(shown)[-1] == "dave        note             pending -> pending  called Blue River; callback promised"
    for empty in ([], ["--note", "  "]):
        result = refund(db, "note", dup, "--user", "dave", *empty)
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", "edirecon: note needs --note with the text to record\n")
    assert [e[1] for e in trail(db, dup)] == ["identified", "note"]


# -- the library, the roles, the store -------------------------------------------------------------------


def test_library_actions_and_their_log_events(tmp_path: Path) -> None:
    """`refunds.act` takes the three actions as the CLI does (what the app calls): a refusal is a
    NotAllowed, a usage error a UsageError; each action is logged as refund_action, naming no patient."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cob, patient, dup = three_refunds(db, tmp_path / "out")
    config, day = Config.load(CONFIG), date(2026, 11, 27)
    store = refunds.open_store(db)
    structlog.reset_defaults()  # the CLI configured a WARNING filter in this process
    try:
        with capture_logs() as logs:
            assert refunds.act(store, dup, "assign", "carol", day, config, assignee="alice").state["assigned_to"] == "alice"
            assert refunds.act(store, dup, "note", "carol", day, config, "asked for the EOB").status == "pending"
            with pytest.raises(NotAllowed, match="is held: acknowledge is allowed only when it is sent"):
                refunds.act(store, patient, "acknowledge", "carol", day, config, reference="L-1", day=day)
            with pytest.raises(UsageError, match="note needs --note"):
                refunds.act(store, cob, "note", "carol", day, config)
            with pytest.raises(UsageError, match="unknown action 'escalate'"):
                refunds.act(store, cob, "escalate", "carol", day, config)
    finally:
        store.dispose()
    assert [(e["event"], e["action"], e["refund_id"]) for e in logs if e["event"].startswith("refund_action")] == [
        ("refund_action", "assign", dup),
        ("refund_action", "note", dup),
        ("refund_action_refused", "acknowledge", patient),
    ]
    text = repr(logs)
    for secret in ("asked for the EOB", "JOHNSON", "MILLER"):
        assert secret not in text


def test_the_workflow_actions_are_the_roles_actions() -> None:
    """The actions the library takes are exactly those the roles name (engine/workflow/users.py),
    each registered as an audit action; acknowledge decides a status, assign and note do not."""
    roles = set().union(*u.ROLE_ACTIONS.values()) - {u.MANAGE_USERS}
    assert set(refunds.ACTIONS) == roles
    assert refunds.MANUAL["acknowledge"] == (frozenset({"sent"}), "acknowledged")
    assert set(refunds.ANNOTATIONS) == {"assign", "note"} and not set(refunds.ANNOTATIONS) & set(refunds.MANUAL)
    assert u.ROLE_ACTIONS["analyst"] >= set(refunds.ANNOTATIONS) and "acknowledge" not in u.ROLE_ACTIONS["analyst"]
    from edirecon import mappings

    assert set(refunds.ACTIONS) <= set(mappings.registry("audit_action"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_upgrade_of_a_store_made_at_revision_0008(store_url: str) -> None:
    """A store at revision 0008 with a refund upgrades on the next command: refund_workflow gains
    assigned_to as the model declares it, the refund is assigned to nobody and can be assigned."""
    store = Store(store_url)
    store.upgrade("0008")
    with store.write() as conn:
        conn.execute(  # the 0008 table has no assigned_to: the INSERT names only the columns given
            t.refund_workflow.insert().values(
                refund_id="RF-1",
                status="pending",
                reason="DUPLICATE_PAYMENT",
                payee_type="payer",
                payer_id="P1",
                amount="10.00",
                method="",
                reference="",
                acknowledged_by="",
                double_refund_traces="",
                updated_at=refunds.now(),
            )
        )
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == "0008"
        columns = {c["name"] for c in store.engine.dialect.get_columns(conn, "refund_workflow")}
        assert "assigned_to" not in columns and "updated_at" in columns
    store.dispose()
    upgraded = open_any_store(store_url)  # what every command does
    try:
        with upgraded.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == HEAD
            assert [tuple(r) for r in conn.execute(select(t.refund_workflow.c.refund_id, t.refund_workflow.c.assigned_to))] == [("RF-1", "")]
            diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
        assert [d for d in diff if "refund_workflow" in repr(d)] == []
        with upgraded.write() as conn:
            refunds.stored.change_state(conn, "RF-1", {"assigned_to": "alice"})
        with upgraded.engine.connect() as conn:
            assert conn.execute(select(t.refund_workflow.c.assigned_to)).scalar_one() == "alice"
        cfg = AlembicConfig()  # and back: the column goes, the refund stays
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with upgraded.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008")
        with upgraded.engine.connect() as conn:
            assert "assigned_to" not in {c["name"] for c in upgraded.engine.dialect.get_columns(conn, "refund_workflow")}
            assert conn.exec_driver_sql("SELECT refund_id FROM refund_workflow").scalars().all() == ["RF-1"]
    finally:
        upgraded.dispose()
