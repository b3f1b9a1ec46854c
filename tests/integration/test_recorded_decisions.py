"""Decisions recorded, not recomputed (issue 15, step 0).

``run`` keeps the engine's refunds (``detections``) and syncs the refund workflow in the same
transaction; ``refund list`` then reads the records, ``refund show`` and the actions decide only
the encounters of their refunds.  These tests check that (1) the audit trail holds the entry
events right after ``run``; (2) ``refund show``, an action and ``refund list`` load only what they
touch; (3) the records and every answer equal those of deciding the whole store on each command
(``EDIRECON_WORKFLOW_FULL``, the behaviour before), through several runs with new files
(acknowledgments, reversals, recoupments) and people's actions in between; (4) a store without
records (an older version's) or with stale ones (facts ingested since, another configuration)
still gets the right answer, and then records it.  On SQLite and PostgreSQL.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, REPO, SAMPLE_EDI
from sqlalchemy import delete, func, select

from edirecon.engine.config import Config
from edirecon.engine.decide.rules import decide
from edirecon.engine.ingest.ingestor import Ingestor
from edirecon.engine.run import run
from edirecon.engine.scale.detect import detection_rows
from edirecon.engine.store import schema as t
from edirecon.engine.store.connection import open_store
from edirecon.engine.store.facts import load
from edirecon.engine.workflow import refunds, views

CONFIG = Config.load(FIXTURES / "reports" / "config.toml")
PLB = SAMPLE_EDI / "plb-recoupment-settles-refund"
CHECK_BOOKED = FIXTURES / "engine" / "refund-check-acknowledged-by-plb-72"
REVERSAL = SAMPLE_EDI / "reversal-with-correction"
TAKEN_BACK_TOO = FIXTURES / "reports" / "taken-back-after-acknowledgment"

#: (as-of day, files) of each run of a story, in order
STORIES: dict[str, list[tuple[date, list[Path]]]] = {
    "plb-settles-then-acknowledged": [
        (date(2026, 10, 20), [PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835"]),
        (date(2026, 11, 27), [FIXTURES / "reports" / "acknowledged" / "remit-3-acknowledged.835"]),
        (date(2026, 12, 10), [PLB / "remit-3.835"]),
    ],
    "check-booked-then-taken-back": [
        (date(2026, 10, 15), [CHECK_BOOKED / n for n in ("claims-1.837", "claims-2.837", "remit-1.835", "remit-2.835")]),
        (date(2026, 11, 30), [CHECK_BOOKED / "remit-3.835"]),
        (date(2026, 12, 15), sorted(TAKEN_BACK_TOO.glob("*.8*"))),
    ],
    # the payer's 72 for check 5001, alone in its remittance (no offset pair), is in the store
    # before the refund is sent: the sync after mark-sent (not a run) acknowledges it
    "acknowledged-when-sent": [
        (
            date(2026, 10, 20),
            [PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835", FIXTURES / "reports" / "acknowledged-by-check-number" / "remit-4-72-alone.835"],
        ),
        (date(2026, 11, 28), []),
        (date(2026, 11, 29), []),
    ],
    "reversal-with-correction": [
        (date(2026, 9, 1), [REVERSAL / "claims.837", REVERSAL / "remit-1.835"]),
        (date(2026, 9, 20), [REVERSAL / "remit-2.835", REVERSAL / "claims-denied-then-paid.837", REVERSAL / "remit-denial.835"]),
        (date(2026, 10, 5), [REVERSAL / "remit-after-denial.835"]),
    ],
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres])])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def new_url(kind: str, tmp_path: Path, name: str, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / (name + '.db')}"
    return str(request.getfixturevalue("pg_url"))


def run_files(url: str, out: Path, as_of: date, files: list[Path], config: Config = CONFIG) -> list[dict[str, Any]]:
    result = run(files, url, out, as_of, config, workers=1)
    return list(result.outputs["refund_requests"])


def entries(url: str) -> dict[str, list[tuple[str, str, str, str]]]:
    """refund id -> its audit trail as (user, action, from, to), oldest first."""
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            e = t.refund_events.c
            out: dict[str, list[tuple[str, str, str, str]]] = {}
            for r in conn.execute(select(e.refund_id, e.user_name, e.action, e.from_status, e.to_status).order_by(e.id)):
                out.setdefault(r[0], []).append(tuple(r[1:]))
            return out
    finally:
        store.dispose()


def kept_rows(url: str) -> list[dict[str, Any]]:
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(t.detections).order_by(t.detections.c.refund_id)).mappings()]
    finally:
        store.dispose()


def full_decision_rows(url: str, as_of: date, config: Config) -> list[dict[str, Any]]:
    """The refunds of a full decide of the store, as ``detections`` keeps them."""
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            facts = load(conn)
        return sorted(detection_rows(decide(facts, as_of, config)), key=lambda r: r["refund_id"])
    finally:
        store.dispose()


def transcript(url: str, as_of: date, config: Config, step: int) -> list[Any]:
    """What the commands answer, acting along the way: the list, each refund shown, and people's
    actions chosen by the refund's place and status (approve, hold, send the approved ones by
    check 5001, 30 days back), then the list again."""
    out: list[Any] = [[asdict(r) for r in views.refund_list(url, as_of, config)]]
    ids = [r["refund_id"] for r in out[0]]
    for i, rid in enumerate(ids):
        detail = views.refund_detail(url, rid, as_of, config)
        out.append((detail.refund_id, detail.fields, [(h.user, h.action, h.from_status, h.to_status, h.note) for h in detail.history]))
        status = dict(detail.fields)["status"]
        if status == "pending" and (i + step) % 3 == 0:
            out.append(views.take_action(url, [rid], "approve", "alice", as_of, config, "looks right")[1])
        elif status == "pending" and (i + step) % 3 == 1:
            out.append(views.take_action(url, [rid], "hold", "bob", as_of, config, "ask the payer")[1])
        elif status == "approved":
            out.append(views.take_action(url, [rid], "mark-sent", "carol", as_of, config, method="check", reference="5001", day=as_of - timedelta(days=30))[1])
    out.append([asdict(r) for r in views.refund_list(url, as_of, config)])
    out.append([asdict(r) for r in views.refund_list(url, as_of, config, overdue=True)])
    return out


def test_run_records_the_decisions_and_enters_every_refund_in_the_audit_trail(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """(1) Right after ``run``, with no ``refund`` command: every refund of refund_requests has its
    workflow row and its entry event (by edirecon), and the records equal a full decide."""
    url = new_url(kind, tmp_path, "s", request)
    (as_of, files), *_ = STORIES["plb-settles-then-acknowledged"]
    refunds_out = run_files(url, tmp_path / "out", as_of, files)
    assert refunds_out
    trails = entries(url)
    assert sorted(trails) == sorted(r["refund_id"] for r in refunds_out)
    for rid, trail in trails.items():
        assert trail[0][:3] == ("edirecon", trail[0][1], ""), rid
        assert trail[0][1] in ("identified", "auto-approved"), rid
    assert kept_rows(url) == full_decision_rows(url, as_of, CONFIG)


@pytest.mark.parametrize("story", sorted(STORIES))
def test_records_and_answers_equal_deciding_everything_on_each_command(
    story: str, kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(3) The same story (runs with new files, people acting between them) on two stores: one
    answered from the records, one deciding the whole store on every command (the peer).  Every
    answer, every audit trail and the records are the same, and after each run the records equal a
    full decide of the store."""
    recorded_url = new_url(kind, tmp_path, "recorded", request)
    full_url = f"sqlite:///{tmp_path / 'full.db'}" if kind == "sqlite" else _second_pg(request)
    answers: dict[str, list[Any]] = {"recorded": [], "full": []}
    for step, (as_of, files) in enumerate(STORIES[story]):
        for name, url in (("recorded", recorded_url), ("full", full_url)):
            if name == "full":
                monkeypatch.setenv(refunds.FULL_ENV, "1")
            else:
                monkeypatch.delenv(refunds.FULL_ENV, raising=False)
            run_files(url, tmp_path / f"out-{name}-{step}", as_of, files)
            if name == "recorded":
                assert kept_rows(url) == full_decision_rows(url, as_of, CONFIG), f"run {step}: the records are a full decide"
            answers[name].append(transcript(url, as_of, CONFIG, step))
    monkeypatch.delenv(refunds.FULL_ENV, raising=False)
    assert answers["recorded"] == answers["full"]
    assert entries(recorded_url) == entries(full_url)
    assert kept_rows(recorded_url) == kept_rows(full_url)


def _second_pg(request: pytest.FixtureRequest) -> str:
    """Another throwaway PostgreSQL database (``pg_url`` gives one per test)."""
    import uuid

    from conftest import PG_ADMIN
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"edirecon_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    request.addfinalizer(drop)
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def generated_store(url: str, tmp_path: Path, claims: int = 3000) -> date:
    """A store of ``claims`` generated claims (bench/generate.py) with planted duplicates and
    overpayments, run once; returns the as-of day."""
    sys.path.insert(0, str(REPO / "bench"))
    from generate import generate

    inputs = tmp_path / "in"
    inputs.mkdir()
    generate("837p", str(inputs / "claims.837"), claims, seed=3, claims_per_transaction=500)
    generate("835", str(inputs / "remit.835"), claims, seed=3, claims_per_transaction=500, duplicates=6, overpayments=6)
    for leftover in inputs.glob("*.planted.json"):
        leftover.unlink()
    as_of = date(2026, 11, 1)
    run_files(url, tmp_path / "out", as_of, [inputs])
    return as_of


def test_show_and_act_load_only_their_encounters_and_list_loads_no_facts(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(2) On a store of 3,000 generated claims: ``refund show`` and ``approve`` load the facts of
    their refund's claim-number closure only (a few claims, never the whole store), ``refund
    list`` loads no facts at all; the peer (deciding everything) loads all 3,000 claims."""
    url = new_url(kind, tmp_path, "g", request)
    as_of = generated_store(url, tmp_path)
    loaded: list[tuple[bool, int]] = []
    real_load = refunds.load

    def counting(conn: Any, pcns: Any = None) -> Any:
        facts = real_load(conn, pcns)
        loaded.append((pcns is None, len(facts.claims)))
        return facts

    monkeypatch.setattr(refunds, "load", counting)
    listed = views.refund_list(url, as_of, CONFIG)
    assert len(listed) >= 10 and loaded == []
    pending = [r.refund_id for r in listed if r.workflow_status == "pending"]
    assert pending
    views.refund_detail(url, pending[0], as_of, CONFIG)
    views.take_action(url, [pending[0]], "approve", "alice", as_of, CONFIG)
    views.refund_detail(url, pending[0], as_of, CONFIG)
    assert loaded and not any(whole for whole, _ in loaded)
    assert max(n for _, n in loaded) <= 10, loaded
    assert [r.workflow_status for r in views.refund_list(url, as_of, CONFIG) if r.refund_id == pending[0]] == ["approved"]
    loaded.clear()
    monkeypatch.setenv(refunds.FULL_ENV, "1")
    views.refund_detail(url, pending[0], as_of, CONFIG)
    assert loaded == [(True, 3000)]


def test_days_in_credit_are_recorded_as_deciding_everything_gives_them(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The work queue sorts by days in credit from the records (``refunds.listing``, no facts
    loaded): the day each refund's credit arose equals the one a full decide gives."""
    url = new_url(kind, tmp_path, "g", request)
    as_of = generated_store(url, tmp_path, claims=1500)
    store = open_store(url)
    try:
        loaded: list[bool] = []
        real_load = refunds.load
        monkeypatch.setattr(refunds, "load", lambda conn, pcns=None: (loaded.append(pcns is None), real_load(conn, pcns))[1])
        recorded = {rid: v.arose_on for rid, v in refunds.listing(store, as_of, CONFIG).views.items()}
        assert loaded == []
        monkeypatch.setenv(refunds.FULL_ENV, "1")
        full = {rid: v.arose_on for rid, v in refunds.book(store, as_of, CONFIG).views.items()}
    finally:
        store.dispose()
    assert len(recorded) >= 10 and any(recorded.values())
    assert recorded == full


@pytest.mark.parametrize("how", ["older-version", "ingested-since", "other-configuration"])
def test_a_store_without_current_records_is_decided_once_and_recorded(
    how: str, kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(4) A store written by an older version (no records, the workflow never synced by run), one
    with facts ingested since the records (without a run), or asked under another configuration:
    the first command decides everything (as the peer does) and records it; the next one reads
    the records, with the same answers."""
    url = new_url(kind, tmp_path, "old", request)
    (as_of, files), (later, more), _ = STORIES["plb-settles-then-acknowledged"]
    run_files(url, tmp_path / "out", as_of, files)
    config = CONFIG
    store = open_store(url)
    try:
        if how == "older-version":  # what revision 0009 left after a run: refunds kept, no names, no records, no workflow
            with store.write() as conn:
                conn.execute(delete(t.decision_records))
                conn.execute(delete(t.refund_events))
                conn.execute(delete(t.refund_workflow))
                conn.execute(t.detections.update().values(payer_name="", patient_name="", acknowledged="0.00"))
        elif how == "ingested-since":
            for path in more:
                Ingestor(store).ingest(path)
            as_of = later
        else:
            config = Config()
    finally:
        store.dispose()
    loaded: list[bool] = []
    real_load = refunds.load
    monkeypatch.setattr(refunds, "load", lambda conn, pcns=None: (loaded.append(pcns is None), real_load(conn, pcns))[1])
    first = [asdict(r) for r in views.refund_list(url, as_of, config)]
    assert loaded == [True]  # decided everything once
    loaded.clear()
    again = [asdict(r) for r in views.refund_list(url, as_of, config)]
    assert loaded == [] and again == first  # then from the records
    assert kept_rows(url) == full_decision_rows(url, as_of, config)
    monkeypatch.setenv(refunds.FULL_ENV, "1")
    assert [asdict(r) for r in views.refund_list(url, as_of, config)] == first
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.decision_records)).scalar_one() == 1
    finally:
        store.dispose()


@pytest.mark.parametrize("story", sorted(STORIES))
def test_a_run_in_shards_syncs_the_workflow_as_one_process_does(story: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` deciding in shards (no decisions in hand) keeps the refunds and then syncs, set by
    set, the refunds whose kept decision the workflow has not followed: the same audit trails,
    answers and records as a run in one process, and the records are current after it."""
    from edirecon.engine.scale import shards

    answers: dict[str, list[Any]] = {"one": [], "shards": []}
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in answers}
    for step, (as_of, files) in enumerate(STORIES[story]):
        for name, url in urls.items():
            if name == "shards":
                monkeypatch.setattr(shards, "SHARD_CLAIMS", 0)
                result = run(files, url, tmp_path / f"out-{name}-{step}", as_of, CONFIG, workers=2)
                assert result.decisions is None, "decided in shards"
                monkeypatch.undo()
            else:
                run_files(url, tmp_path / f"out-{name}-{step}", as_of, files)
            loaded: list[bool] = []
            real_load = refunds.load
            monkeypatch.setattr(refunds, "load", lambda conn, pcns=None: (loaded.append(pcns is None), real_load(conn, pcns))[1])
            answers[name].append([asdict(r) for r in views.refund_list(url, as_of, CONFIG)])
            assert loaded == [], "the records are current after the run"
            monkeypatch.undo()
            answers[name].append(transcript(url, as_of, CONFIG, step))
    assert answers["shards"] == answers["one"]
    assert entries(urls["shards"]) == entries(urls["one"])
    assert kept_rows(urls["shards"]) == kept_rows(urls["one"])


def test_an_action_on_a_store_without_records_decides_everything_once_then_acts(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(4) ``approve`` as the first command on a store without records: one full decide, the
    workflow synced and recorded, the refund approved in the same transaction; the next action
    loads only its closure."""
    url = new_url(kind, tmp_path, "act", request)
    (as_of, files), *_ = STORIES["check-booked-then-taken-back"]
    run_files(url, tmp_path / "out", as_of, files)
    store = open_store(url)
    try:
        with store.write() as conn:
            conn.execute(delete(t.decision_records))
    finally:
        store.dispose()
    loaded: list[bool] = []
    real_load = refunds.load
    monkeypatch.setattr(refunds, "load", lambda conn, pcns=None: (loaded.append(pcns is None), real_load(conn, pcns))[1])
    rid = kept_rows(url)[0]["refund_id"]
    _, acted = views.take_action(url, [rid], "approve", "alice", as_of, CONFIG, "first command")
    assert [(a.refund_id, a.status, a.refused) for a in acted] == [(rid, "approved", None)]
    assert loaded == [True]
    loaded.clear()
    _, acted = views.take_action(url, [rid], "hold", "bob", as_of, CONFIG, "second thoughts")
    assert [a.status for a in acted] == ["held"] and loaded == [False]
    assert [e[1] for e in entries(url)[rid]] == ["identified", "approve", "hold"]


def test_listing_reads_beside_a_writer_when_nothing_waits_to_be_synced(tmp_path: Path) -> None:
    """With the records current and nothing to sync, ``refund list`` (and the app's work queue)
    reads without the workflow's lock: it answers while another connection holds the write lock."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 's.db'}"
    (as_of, files), *_ = STORIES["plb-settles-then-acknowledged"]
    run_files(url, tmp_path / "out", as_of, files)
    expected = [asdict(r) for r in views.refund_list(url, as_of, CONFIG)]
    writer = sqlite3.connect(tmp_path / "s.db", timeout=0.1)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the write lock, as a running action holds it
        store = open_store(url)
        try:
            store.engine.dispose()
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout = 100")
            listed = refunds.listing(store, as_of, CONFIG)
        finally:
            store.dispose()
    finally:
        writer.rollback()
        writer.close()
    assert sorted(listed.views) == sorted(r["refund_id"] for r in expected) and expected


def test_a_page_of_the_work_queue_is_the_same_rows_as_the_list(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """``views.refund_page`` filters in the store and reads only the page's rows whole: page by page
    its rows are ``refund list``'s, filter by filter (statuses, reasons, payer, payee type,
    overdue, due before, assigned to, escheatment), sorted by due day, amount or days in credit
    as the work queue sorts them."""
    sys.path.insert(0, str(REPO / "bench"))
    from generate import generate, write_patient_payments

    inputs = tmp_path / "in"
    inputs.mkdir()
    generate("837p", str(inputs / "claims.837"), 1500, seed=5, claims_per_transaction=500)
    generate("835", str(inputs / "remit.835"), 1500, seed=5, claims_per_transaction=500, duplicates=15, overpayments=15)
    with open(inputs / "patient-payments.csv", "w", encoding="ascii", newline="") as out:
        write_patient_payments(out, 1500, seed=5)
    for leftover in inputs.glob("*.planted.json"):
        leftover.unlink()
    as_of = date(2026, 11, 1)
    url = new_url(kind, tmp_path, "g", request)
    run_files(url, tmp_path / "out", as_of, [inputs])
    listed = views.refund_list(url, as_of, CONFIG)
    patients = [r.refund_id for r in listed if r.payee_type == "patient" and r.workflow_status == "pending"]
    payers = [r.refund_id for r in listed if r.payee_type == "payer" and r.workflow_status == "pending"]
    assert len(patients) >= 6 and len(payers) >= 12
    views.take_action(url, patients[:4] + payers[:4], "approve", "alice", as_of, CONFIG)
    views.take_action(url, payers[4:8], "hold", "bob", as_of, CONFIG)
    views.take_action(url, payers[8:12] + patients[4:6], "assign", "alice", as_of, CONFIG, assignee="ann")
    views.take_action(url, patients[:2], "mark-sent", "carol", as_of, CONFIG, method="check", reference="7", day=as_of - timedelta(days=400))
    later = as_of + timedelta(days=70)  # some are overdue by then
    everything = views.refund_list(url, later, CONFIG)
    payer = next(r.payer_id for r in everything if r.payer_id)
    due = sorted({r.due_by for r in everything if r.due_by})
    filters: list[dict[str, Any]] = [
        {},
        {"statuses": ["pending", "held"]},
        {"reasons": ["DUPLICATE_PAYMENT"]},
        {"payer": payer},
        {"payee_type": "patient"},
        {"overdue": True},
        {"due_before": due[-1]},
        {"due_before": due[-1] + timedelta(days=1)},
        {"assigned_to": "ann"},
        {"assigned_to": ""},
        {"escheatment": True},
    ]
    for f in filters:
        expected = views.refund_list(url, later, CONFIG, **f)
        got: list[Any] = []
        offset = 0
        while True:
            page = views.refund_page(url, later, CONFIG, **f, offset=offset, limit=7)
            assert page.total == len(expected), f
            got += page.rows
            offset += 7
            if offset >= page.total:
                break
        assert got == expected, f
        assert expected or f == {"due_before": due[-1]}, f  # the refunds due on the last day are not before it
    store = open_store(url)
    try:
        since = {rid: v.arose_on for rid, v in refunds.listing(store, later, CONFIG).views.items()}
    finally:
        store.dispose()
    for sort, descending, key in (
        ("amount", True, lambda r: (Decimal(r.amount), r.refund_id)),
        ("amount", False, lambda r: (Decimal(r.amount), r.refund_id)),
        ("due", True, None),
        ("days_in_credit", False, None),
    ):
        page = views.refund_page(url, later, CONFIG, sort=sort, descending=descending, limit=10_000)
        assert sorted(r.refund_id for r in page.rows) == sorted(r.refund_id for r in everything)
        if key is not None:
            assert page.rows == sorted(everything, key=key, reverse=descending)
        elif sort == "due":
            dated = [r for r in page.rows if r.due_by]
            assert [r.due_by for r in dated] == sorted((r.due_by for r in dated), reverse=True)
        else:
            days = [since[r.refund_id] for r in page.rows if since[r.refund_id]]
            assert days == sorted(days, reverse=True) and all(page.credit_since[r.refund_id] == since[r.refund_id] for r in page.rows)
    assert views.refund_page(url, later, CONFIG, statuses=["approved"], limit=2).total == len(views.refund_list(url, later, CONFIG, ["approved"]))
    # after a row (the API's cursor): the same rows, page by page, and a removed row skips nothing
    got: list[Any] = []
    after: tuple[date | None, str] | None = None
    while True:
        page = views.refund_page(url, later, CONFIG, limit=9, after=after)
        got += page.rows
        assert (page.start is None) == (after is not None)  # after a row: the rows before it are not counted
        if not page.more:
            break
        after = (page.rows[-1].due_by, page.rows[-1].refund_id)
    assert got == everything
    fifth = everything[4]
    rest = views.refund_page(
        url, later, CONFIG, statuses=[s for s in refunds.STATUSES if s != fifth.workflow_status] or ["voided"], after=(fifth.due_by, fifth.refund_id)
    )
    assert all((r.due_by or date.max, r.refund_id) > (fifth.due_by or date.max, fifth.refund_id) for r in rest.rows)
    # refunds the workflow follows that the engine no longer keeps (no due day; their amount the
    # workflow's): merged into every order, page by page, as the list has them
    store = open_store(url)
    try:
        with store.write() as conn:
            gone = sorted({everything[1].refund_id, everything[len(everything) // 2].refund_id, patients[0], payers[5]})
            conn.execute(delete(t.detections).where(t.detections.c.refund_id.in_(gone)))
    finally:
        store.dispose()
    everything = views.refund_list(url, later, CONFIG)
    assert [r.refund_id for r in everything[-len(gone) :]] == gone and all(r.due_by is None for r in everything[-len(gone) :])

    def in_order(sort: str, descending: bool) -> list[Any]:
        if sort == "amount":
            return sorted(everything, key=lambda r: (Decimal(r.amount), r.refund_id), reverse=descending)
        dated = sorted((r for r in everything if r.due_by), key=lambda r: (r.due_by, r.refund_id), reverse=descending)
        return dated + sorted((r for r in everything if not r.due_by), key=lambda r: r.refund_id)

    for sort, descending, f in (
        ("due", False, {}),
        ("due", True, {}),
        ("amount", False, {}),
        ("amount", True, {}),
        ("amount", True, {"payee_type": "payer"}),
        ("due", False, {"statuses": ["held", "sent"]}),
    ):
        expected = [r for r in in_order(sort, descending) if r in views.refund_list(url, later, CONFIG, **f)]
        got = []
        for offset in range(0, len(expected) + 7, 7):
            page = views.refund_page(url, later, CONFIG, **f, sort=sort, descending=descending, offset=offset, limit=7)
            assert page.total == len(expected), (sort, descending, f)
            got += page.rows
        assert got == expected, (sort, descending, f)
    got, after = [], None
    while True:
        page = views.refund_page(url, later, CONFIG, limit=9, after=after)
        got += page.rows
        assert (page.start is None) == (after is not None)  # after a row: the rows before it are not counted
        if not page.more:
            break
        after = (page.rows[-1].due_by, page.rows[-1].refund_id)
    assert got == everything


def test_a_refund_page_and_an_action_read_no_table_whole(kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A person's action costs what it touches (issue 15): on a store of 3,000 generated claims,
    a refund's page and a note on it read neither the whole refund history (the days refunds
    were identified are read for the refunds decided) nor every refund of the workflow (whether
    one waits to be followed is looked up only after a detection kept refunds unsynced), and
    show what deciding everything shows: a week later, the day the refund was first identified."""
    from sqlalchemy import event

    url = new_url(kind, tmp_path, "g", request)
    as_of = generated_store(url, tmp_path)
    pending = [r.refund_id for r in views.refund_list(url, as_of, CONFIG) if r.workflow_status == "pending"]
    store = open_store(url)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda conn, cursor, sql, *rest: statements.append(" ".join(sql.split())))
    later = as_of + timedelta(days=7)
    try:
        detail = views.refund_detail(store, pending[0], later, CONFIG)
        views.take_action(store, [pending[1]], "note", "alice", later, CONFIG, "called the payer")
    finally:
        store.dispose()
    history = [s for s in statements if "FROM refund_history" in s]
    assert history and all("WHERE" in s for s in history), history
    assert not [s for s in statements if "LEFT JOIN refund_workflow" in s or "LEFT JOIN detections" in s]
    assert [s for s in statements if "needs_sync" in s]  # the refunds acted on since their sync: looked up by its index
    fields = dict(detail.fields)
    monkeypatch.setenv(refunds.FULL_ENV, "1")
    assert dict(views.refund_detail(url, pending[0], later, CONFIG).fields) == fields
    assert fields["identified on"].startswith(f"{as_of.isoformat()}, due by ")


def test_a_refund_kept_by_a_detection_after_the_records_is_followed_by_the_next_command(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The workflow lost a refund the engine keeps (as a store may hold when a detection kept it
    after the records were made current); once a detection keeps that claim number again, the
    next command follows it (``records.kept_since_sync``): it is listed, with its entry event, and
    the flag is cleared by that sync."""
    from edirecon.engine.scale.detect import detect
    from edirecon.engine.store import records

    url = new_url(kind, tmp_path, "lost", request)
    (as_of, files), *_ = STORIES["plb-settles-then-acknowledged"]
    run_files(url, tmp_path / "out", as_of, files)
    listed = [asdict(r) for r in views.refund_list(url, as_of, CONFIG)]
    lost = listed[0]["refund_id"]
    store = open_store(url)
    try:
        with store.write() as conn:
            pcn = conn.execute(select(t.detections.c.patient_control_number).where(t.detections.c.refund_id == lost)).scalar_one()
            conn.execute(delete(t.refund_events).where(t.refund_events.c.refund_id == lost))
            conn.execute(delete(t.refund_workflow).where(t.refund_workflow.c.refund_id == lost))
            assert not records.kept_since_sync(conn)
        assert lost not in {r.refund_id for r in views.refund_list(store, as_of, CONFIG)}  # nothing says to look for it
        detect(store, [pcn], as_of, CONFIG)
        with store.engine.connect() as conn:
            assert records.kept_since_sync(conn)
        assert [asdict(r) for r in views.refund_list(store, as_of, CONFIG)] == listed
        with store.engine.connect() as conn:
            assert not records.kept_since_sync(conn)
    finally:
        store.dispose()
    (entered,) = entries(url)[lost]
    assert entered[:3] == ("edirecon", entered[1], "") and entered[1] in ("identified", "auto-approved")


def test_an_action_uses_its_closure_decided_before_the_lock_only_while_the_facts_are_those(tmp_path: Path) -> None:
    """An action decides its refund's encounters before taking the workflow's lock
    (``refunds.predecide``) and holds the lock only to check and write: the decisions made
    beforehand are taken only for the same refunds and the same facts; otherwise the action
    decides again under the lock, from the facts then."""
    url = f"sqlite:///{tmp_path / 'pre.db'}"
    (as_of, files), *_ = STORIES["plb-settles-then-acknowledged"]
    run_files(url, tmp_path / "out", as_of, files)
    rid = views.refund_list(url, as_of, CONFIG)[0].refund_id
    store = open_store(url)
    try:
        pre = refunds.predecide(store, [rid], as_of, CONFIG)
        assert pre is not None and pre.refund_ids == [rid] and any(r.refund_id == rid for r in pre.decisions.refunds)
        with refunds._locked(store) as conn:
            assert refunds._some(conn, [rid], as_of, CONFIG, pre).decisions is pre.decisions
        for stale in (
            refunds.Predecided(pre.refund_ids, pre.facts_key + "-other", pre.facts, refunds.Decisions([])),  # facts added since
            refunds.Predecided([*pre.refund_ids, "RF-OTHER"], pre.facts_key, pre.facts, refunds.Decisions([])),  # other refunds
        ):
            with refunds._locked(store) as conn:
                b = refunds._some(conn, [rid], as_of, CONFIG, stale)
            assert b.decisions is not stale.decisions and [r.refund_id for r in b.decisions.refunds] == [r.refund_id for r in pre.decisions.refunds]
    finally:
        store.dispose()
