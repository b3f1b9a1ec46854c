"""Deciding in shards (``engine.shards``) gives exactly what deciding in one process gives.

The shards are forced small here (a few claim numbers each, so a run has many of them and every
rule's keys cross shard boundaries somewhere), on every scenario folder together in one store and
on each alone, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SAMPLE_EDI
from sqlalchemy import text
from structlog.testing import capture_logs

from edirecon.engine.config import Config
from edirecon.engine.run import decide_and_record, run
from edirecon.engine.scale import processes, shards
from edirecon.engine.store.connection import Store
from edirecon.errors import ShardError

AS_OF = date(2026, 11, 27)
FOLDERS = [SAMPLE_EDI, *sorted(p for p in (FIXTURES / "engine").iterdir() if p.is_dir())]


#: what `run` writes after the decisions' outputs (the team's work as the store holds it, the
#: manifest), which deciding in shards (``decide_and_record``) does not write
AFTER_DECIDING = ("workflow.csv", "workflow.jsonl", "manifest.json")


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith(".") and p.name not in AFTER_DECIDING}


def _one_process_and_shards(
    folders: list[Path], url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: Config = Config(), as_of: date = AS_OF, per_shard: int = 3
) -> tuple[dict[str, bytes], dict[str, bytes], Any]:
    """Ingest ``folders`` and decide in one process (``run``), then decide the same store again in
    shards of ``per_shard`` claim numbers (0: one each, and in shards however small the store);
    the outputs of both."""
    one = run(folders, url, tmp_path / "one", as_of, config, workers=1)
    monkeypatch.setattr(shards, "SHARD_CLAIMS", per_shard)
    store = Store(url)
    try:
        decisions, outputs, doc, _ = decide_and_record(store, tmp_path / "sharded", as_of, config, workers=2)
    finally:
        store.dispose()
    assert one.decisions is not None and decisions is None, "the second decision was not made in shards"
    assert doc == one.summary
    return _outputs(tmp_path / "one"), _outputs(tmp_path / "sharded"), outputs


def _kept(url: str) -> list[tuple[Any, ...]]:
    store = Store(url)
    with store.engine.connect() as conn:
        kept = [tuple(r) for r in conn.execute(text("SELECT * FROM detections ORDER BY refund_id"))]
    store.dispose()
    return kept


def test_every_scenario_together_in_shards_equals_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All scenario folders in one store (their claim numbers meet across folders), decided in
    shards of three claim numbers: byte-identical outputs and summary, the same refunds kept."""
    url = f"sqlite:///{tmp_path}/store.db"
    run(FOLDERS, url, tmp_path / "first", AS_OF, Config(), workers=1)
    kept = _kept(url)
    one, sharded, outputs = _one_process_and_shards(FOLDERS, url, tmp_path, monkeypatch)
    assert one == sharded
    assert len(outputs["credit_balances"]) > 20 and outputs["refund_requests"]
    assert _kept(url) == kept and kept


@pytest.mark.slow
@pytest.mark.parametrize(
    "folder",
    [p for p in sorted(SAMPLE_EDI.iterdir()) if (p / "expected-run.json").exists()] + [p for p in FOLDERS[1:] if (p / "expected-run.json").exists()],
    ids=lambda p: p.name,
)
def test_each_scenario_in_shards_equals_one_process(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scenario alone, with its own configuration and day, decided in shards."""
    import json

    doc = json.loads((folder / "expected-run.json").read_text(encoding="utf-8"))
    config = Config.load(folder / "config.toml") if (folder / "config.toml").exists() else Config()
    one, sharded, _ = _one_process_and_shards(
        [folder], f"sqlite:///{tmp_path}/store.db", tmp_path, monkeypatch, config, date.fromisoformat(doc["as_of"]), per_shard=0
    )
    assert one == sharded


@pytest.mark.slow
@pytest.mark.postgres
def test_shards_on_postgresql_equal_one_process(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same code path on PostgreSQL: shards there give the bytes one process gives there, and
    one process on SQLite."""
    run(FOLDERS, f"sqlite:///{tmp_path}/store.db", tmp_path / "sqlite", AS_OF, Config(), workers=1)
    one, sharded, _ = _one_process_and_shards(FOLDERS, pg_url, tmp_path, monkeypatch)
    assert one == sharded == _outputs(tmp_path / "sqlite")


def test_no_rule_looks_across_shards(tmp_path: Path) -> None:
    """The plan keeps together what the rules compare: claim numbers of one billing provider and
    member, claim numbers paid under one payer claim number, a PLB with what it names, and the PLBs
    and claim reversals of a remittance with a negative 72 (offset pairs) together; every claim
    number and PLB is in exactly one shard; an untied PLB elsewhere is in the first."""
    url = f"sqlite:///{tmp_path}/store.db"
    run(FOLDERS, url, tmp_path / "out", AS_OF, Config(), workers=1)
    store = Store(url)
    with store.engine.connect() as conn:
        plan = shards.plan(conn, 2, per_shard=2)
        claims = conn.execute(text("SELECT patient_control_number, billing_npi, member_id FROM claims")).all()
        payments = conn.execute(text("SELECT patient_control_number, payer_claim_control_number FROM claim_payments")).all()
        plbs = conn.execute(text("SELECT id, reference, remittance_id, reason, amount FROM provider_adjustments")).all()
        reversals = conn.execute(text("SELECT remittance_id, patient_control_number FROM claim_payments WHERE status = '22' AND paid < 0")).all()
    store.dispose()
    assert len(plan) > 5
    shard_of: dict[str, int] = {}
    plb_shard: dict[int, int] = {}
    for k, shard in enumerate(plan):
        for pcn in shard.pcns:
            assert pcn not in shard_of, f"{pcn} is in two shards"
            shard_of[pcn] = k
        for plb in shard.plbs:
            assert plb not in plb_shard
            plb_shard[plb] = k
    assert set(shard_of) == {c[0] for c in claims} | {p[0] for p in payments}
    assert set(plb_shard) == {p[0] for p in plbs}
    groups: dict[Any, set[int]] = defaultdict(set)
    for pcn, npi, member in claims:
        if member:
            groups[("member", npi, member)].add(shard_of[pcn])
    for pcn, icn in payments:
        if icn:
            groups[("icn", icn)].add(shard_of[pcn])
    assert all(len(found) == 1 for found in groups.values()), {k: v for k, v in groups.items() if len(v) > 1}
    by_icn = {icn: pcn for pcn, icn in payments if icn}
    acked = {remittance for _, _, remittance, reason, amount in plbs if reason == "72" and Decimal(str(amount)) < 0}
    with_72: dict[int, set[int]] = defaultdict(set)  # such a remittance -> the shards of its PLBs
    untied = 0
    for plb_id, reference, remittance, _, _ in plbs:
        named = [shard_of[p] for p in (by_icn.get(reference), reference if reference in shard_of else None) if p is not None]
        if named:
            assert {plb_shard[plb_id], *named} == {named[0]}
        if remittance in acked:
            with_72[remittance].add(plb_shard[plb_id])
        elif not named:
            untied += 1
            assert plb_shard[plb_id] == 0
    assert untied and len(plbs) > untied  # both kinds are met in the scenarios
    reversed_with_72 = [(remittance, pcn) for remittance, pcn in reversals if remittance in acked]
    for remittance, pcn in reversed_with_72:
        with_72[remittance].add(shard_of[pcn])
    assert reversed_with_72  # the claim reversal a 72 offsets (refund-check-booked-as-claim-reversal)
    assert with_72 and all(len(found) == 1 for found in with_72.values()), with_72


def test_the_claim_numbers_standing_alone_are_dealt_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim numbers no key joins are dealt to the shards in claim-number order, each shard's
    take one stretch of them, so that a shard reads one stretch of the claim-number indexes (a
    shard of 25,000 of 100,000: its load 0.85-0.99 s -> 0.80-0.84 s): here 1,000 of them, read in
    a shuffled order, in three shards."""
    numbers = [f"PCN{k:05d}" for k in range(1000)]
    shuffled = list(numbers)
    random.Random(7).shuffle(shuffled)
    monkeypatch.setattr(shards.shard_keys, "claim_numbers", lambda _conn: iter(shuffled))
    for nothing in ("same_provider_and_member", "same_payer_claim_number", "plb_names", "acknowledged_reversals"):
        monkeypatch.setattr(shards.shard_keys, nothing, lambda _conn: iter(()))
    plan = shards.plan(None, 2, per_shard=400)  # type: ignore[arg-type]  # no query reaches the connection
    assert [len(shard.pcns) for shard in plan] == [334, 334, 332]
    assert [pcn for shard in plan for pcn in shard.pcns] == numbers


def test_a_failing_shard_fails_the_run_without_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shard's process that fails makes the run fail with a message; no output is written."""

    def broken(*_: Any) -> Any:
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(shards, "SHARD_CLAIMS", 3)
    monkeypatch.setattr(shards, "_decide_shard", broken)
    with pytest.raises(ShardError, match="the disk went away"):
        run([SAMPLE_EDI], f"sqlite:///{tmp_path}/store.db", tmp_path / "out", AS_OF, Config(), workers=2)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _watch_processes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(target's name, whether something ran meanwhile) of each ``shards._in_processes`` call from now on."""
    calls: list[tuple[str, bool]] = []
    in_processes = shards._in_processes

    def watching(target: Any, jobs: list[Any], processes: int, meanwhile: Any = None, **kw: Any) -> list[Any]:
        calls.append((target.__name__, meanwhile is not None))
        return in_processes(target, jobs, processes, meanwhile, **kw)

    monkeypatch.setattr(shards, "_in_processes", watching)
    return calls


def test_the_workflow_is_synced_in_a_process_of_its_own_while_the_outputs_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the shards, the workflow's sync runs in a process of its own, the outputs being
    written here meanwhile (on the core it leaves idle), then the API's lists are recorded in
    another while the workflow's files are written here; a sync that fails fails the run with a
    message."""
    from edirecon.engine import run as run_module
    from edirecon.engine.workflow import refunds

    monkeypatch.setattr(shards, "SHARD_CLAIMS", 3)
    calls = _watch_processes(monkeypatch)
    url = f"sqlite:///{tmp_path}/store.db"
    run(FOLDERS, url, tmp_path / "first", AS_OF, Config(), workers=2)
    assert calls[-2:] == [(run_module._sync_workflow.__name__, True), (run_module._record_lists.__name__, True)]
    assert (tmp_path / "first" / "refund_requests.csv").exists() and (tmp_path / "first" / "workflow.csv").exists()

    def broken(*_: Any) -> Any:
        raise RuntimeError("the workflow's table went away")

    monkeypatch.setattr(refunds, "sync_changed", broken)
    with pytest.raises(ShardError, match=r"syncing the workflow failed: .*the workflow.s table went away"):
        run(FOLDERS, url, tmp_path / "second", AS_OF + timedelta(days=1), Config(), workers=2)


def test_detection_by_key_loads_the_72_that_offsets_a_take_back(tmp_path: Path) -> None:
    """Deciding again only the refund's claim number (``facts.load`` by key, as a detection job
    does) loads the 72 naming check 5001 with the WO it offsets: the refund kept is acknowledged, as in the run."""
    from edirecon.engine.scale.detect import detect

    url = f"sqlite:///{tmp_path}/store.db"
    one = run([FIXTURES / "engine" / "refund-check-acknowledged-by-plb-72"], url, tmp_path / "out", AS_OF, Config(), workers=1)
    (refund,) = one.outputs["refund_requests"]
    assert refund["status"] == "acknowledged"
    store = Store(url)
    try:
        decisions = detect(store, ["RFM2727001"], AS_OF, Config())
    finally:
        store.dispose()
    assert [(r.refund_id, r.status, r.acknowledged) for r in decisions.refunds] == [(refund["refund_id"], "acknowledged", Decimal("155.50"))]
    assert decisions.recoupments == []
    assert _kept(url)[0][:1] == (refund["refund_id"],) and "acknowledged" in _kept(url)[0]


def test_detection_by_key_loads_the_72_that_offsets_a_claim_reversal(tmp_path: Path) -> None:
    """Deciding again only the refund's claim number loads the 72 naming check 5011 of the
    remittance that reverses its duplicate: the refund kept is acknowledged and no reversal is a
    recoupment, as in the run."""
    from edirecon.engine.scale.detect import detect

    url = f"sqlite:///{tmp_path}/store.db"
    one = run([FIXTURES / "engine" / "refund-check-booked-as-claim-reversal"], url, tmp_path / "out", AS_OF, Config(), workers=1)
    (refund,) = one.outputs["refund_requests"]
    assert (refund["status"], one.outputs["recoupments"]) == ("acknowledged", [])
    store = Store(url)
    try:
        decisions = detect(store, ["RFM2728001"], AS_OF, Config())
    finally:
        store.dispose()
    assert [(r.refund_id, r.status, r.recouped, r.acknowledged) for r in decisions.refunds] == [
        (refund["refund_id"], "acknowledged", Decimal("0.00"), Decimal("155.50"))
    ]
    assert decisions.recoupments == []


def _workflow(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The refunds' workflow states and their audit trails, without the times of the clock (and
    without the events' ids: each refund's steps in their order)."""
    store = Store(url)
    with store.engine.connect() as conn:
        states = [
            tuple(v for k, v in r.items() if k != "updated_at") for r in conn.execute(text("SELECT * FROM refund_workflow ORDER BY refund_id")).mappings()
        ]
        events = [
            tuple(r) for r in conn.execute(text("SELECT refund_id, user_name, action, from_status, to_status, note FROM refund_events ORDER BY refund_id, id"))
        ]
    store.dispose()
    return states, events


def test_refunds_enter_the_workflow_alike_in_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run decided in shards enters its new refunds by their kept decisions (the
    acknowledged ones from their decided closure): the same states and audit steps as a run in
    one process, which enters them from the decisions in hand."""
    one = f"sqlite:///{tmp_path}/one.db"
    run(FOLDERS, one, tmp_path / "one", AS_OF, Config(), workers=1)
    monkeypatch.setattr(shards, "SHARD_CLAIMS", 3)
    sharded = f"sqlite:///{tmp_path}/sharded.db"
    result = run(FOLDERS, sharded, tmp_path / "sharded", AS_OF, Config(), workers=2)
    assert result.decisions is None, "the run was not decided in shards"
    states, events = _workflow(one)
    assert any(s[1] == "acknowledged" for s in states) and any(s[1] == "pending" for s in states)
    assert _workflow(sharded) == (states, events)


def test_one_worker_decides_a_large_store_in_shards_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With one worker a store above ``SHARD_CLAIMS`` is decided in shards, one process at a time
    (memory follows a shard, not the store: 100,000 encounters 564 -> 203 MiB at the same speed),
    writing what one process writes."""
    one = f"sqlite:///{tmp_path}/one.db"
    result = run(FOLDERS, one, tmp_path / "one", AS_OF, Config(), workers=1)
    assert result.decisions is not None, "a store of a few claims is decided in this process"
    monkeypatch.setattr(shards, "SHARD_CLAIMS", 3)
    started: list[int] = []
    in_processes = shards._in_processes

    def counting(target: Any, jobs: list[Any], processes: int, meanwhile: Any = None, **kw: Any) -> list[Any]:
        started.append(processes)
        return in_processes(target, jobs, processes, meanwhile, **kw)

    monkeypatch.setattr(shards, "_in_processes", counting)
    sharded = f"sqlite:///{tmp_path}/sharded.db"
    result = run(FOLDERS, sharded, tmp_path / "sharded", AS_OF, Config(), workers=1)
    assert result.decisions is None, "the run was not decided in shards"
    assert started == [1, 1, 1, 1], "the plan, the shards one at a time, the workflow's sync beside the outputs, the API's lists beside the workflow's files"
    assert _outputs(tmp_path / "sharded") == _outputs(tmp_path / "one")
    assert _workflow(sharded) == _workflow(one)


def test_the_log_counts_the_shards_decided(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``decided_in_shards`` tells how many shards were decided (it said 0: the name of the plan's
    files was reused for the credit balances' order)."""
    url = f"sqlite:///{tmp_path}/store.db"
    run(FOLDERS, url, tmp_path / "first", AS_OF, Config(), workers=1)
    monkeypatch.setattr(shards, "SHARD_CLAIMS", 3)
    plan_job = shards._plan_job

    def counting(url: str, workers: int, spool: Path) -> list[Path]:
        paths = plan_job(url, workers, spool)
        (spool / "count").write_text(str(len(paths)))  # the plan runs in a process of its own
        return paths

    monkeypatch.setattr(shards, "_plan_job", counting)
    store = Store(url)
    try:
        with capture_logs() as logs:
            spool = tmp_path / "spool"
            spool.mkdir()
            shards.decide_sharded(store, AS_OF, Config(), 2, spool)
        planned = int((spool / "count").read_text())
    finally:
        store.dispose()
    decided = [e for e in logs if e["event"] == "decided_in_shards"]
    assert planned > 2
    assert [e["shards"] for e in decided] == [planned]


def test_the_store_as_a_whole_is_decided_while_the_plan_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exceptions of the store as a whole (rule 7, the ingest exceptions) are found in this
    process while the plan's process runs, on the core it leaves idle, not beside the shards'
    processes, which take every core."""
    url = f"sqlite:///{tmp_path}/store.db"
    run(FOLDERS, url, tmp_path / "first", AS_OF, Config(), workers=1)
    monkeypatch.setattr(shards, "SHARD_CLAIMS", 3)
    calls = _watch_processes(monkeypatch)
    store = Store(url)
    try:
        for decide in (shards.decide_sharded, shards.decide_for_report):
            spool = tmp_path / decide.__name__
            spool.mkdir()
            decide(store, AS_OF, Config(), 2, spool)
    finally:
        store.dispose()
    assert calls == [("_plan_job", True), ("_decide_shard", False), ("_plan_job", True), ("_report_shard", False)]


def note_the_plans(monkeypatch: pytest.MonkeyPatch, marker: Path) -> None:
    """Each plan made writes "<workers> <shards>" to ``marker`` (it is made in a process of its
    own, so a file is what reaches the test)."""
    plan_job = shards._plan_job

    def noting(url: str, workers: int, spool: Path) -> list[Path]:
        paths = plan_job(url, workers, spool)
        marker.write_text(f"{workers} {len(paths)}")
        return paths

    monkeypatch.setattr(shards, "_plan_job", noting)


def test_two_workers_decide_a_store_below_the_shard_size_in_shards_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With more than one worker, a store of ``PARALLEL_CLAIMS`` claims or more (here all of the
    scenarios, the threshold lowered to their size) is decided in shards, at least one per worker,
    so that every core decides (a 20,000-claim pair: 3.7 -> 2.9 s); one claim fewer, or one worker,
    and it is decided in this process.  The outputs are those of one process on the same store."""
    url = f"sqlite:///{tmp_path}/store.db"
    first = run(FOLDERS, url, tmp_path / "first", AS_OF, Config(), workers=1)
    assert first.decisions is not None, "one worker: this process"
    claims = first.summary["claims"]
    assert 0 < claims <= shards.SHARD_CLAIMS
    monkeypatch.setattr(processes, "FORKS", True)  # as on Linux, on any platform
    note_the_plans(monkeypatch, tmp_path / "planned")
    store = Store(url)
    try:
        monkeypatch.setattr(shards, "PARALLEL_CLAIMS", claims + 1)
        below, *_ = decide_and_record(store, tmp_path / "below", AS_OF, Config(), workers=2)
        assert below is not None and not (tmp_path / "planned").exists(), "a claim short of PARALLEL_CLAIMS: this process"
        monkeypatch.setattr(shards, "PARALLEL_CLAIMS", claims)
        sharded, *_ = decide_and_record(store, tmp_path / "sharded", AS_OF, Config(), workers=2)
        assert sharded is None, "not decided in shards"
        assert (tmp_path / "planned").read_text() == "2 2", "one shard per worker"
        one, *_ = decide_and_record(store, tmp_path / "one", AS_OF, Config(), workers=1)
        assert one is not None, "one worker: this process"
    finally:
        store.dispose()
    assert _outputs(tmp_path / "sharded") == _outputs(tmp_path / "one") == _outputs(tmp_path / "below")
