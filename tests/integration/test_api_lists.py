"""The API's lists of what the engine decided (/api/v1/recoupments, /credit-balances,
/exceptions) read from the rows `run` records (engine/workflow/lists.py, store/decided.py;
issue 15 step 0), and `/refunds/{id}`, `/changes` and the actions through the claim-number
closure rather than the whole store:

- after a first run and after a second run with new files (a reversal with its correction, a PLB
  recoupment), each list equals the rows of a full re-decide of the store, page by page;
- while the records are current no list call loads the facts, and `/refunds/{id}`, `/changes` and
  an action load only a closure (never the whole store);
- stale records fall back and are recorded again: a file ingested by a worker's path (facts
  changed, no run), another as-of day (days in credit), a store whose rows were never recorded;
- the cursor's text key orders as the tuples it stands for (escapes, control characters);
- once on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE_EDI
from test_api import AS_OF, CONFIG, Api, run

from edirecon.engine.config import Config
from edirecon.engine.decide.rules import decide
from edirecon.engine.record import decided, writers
from edirecon.engine.record.writers import rows
from edirecon.engine.run import ingest_files, input_files
from edirecon.engine.run import run as run_inputs
from edirecon.engine.scale import shards
from edirecon.engine.store import decided as stored
from edirecon.engine.store.connection import Store
from edirecon.engine.store.facts import load
from edirecon.engine.workflow import lists, refunds

FIRST = ("secondary-overpaid", "patient-copay-overpaid", "duplicate-payment", "broken-file", "unmatched-payment")
LATER = ("reversal-with-correction", "plb-recoupment-settles-refund")
LISTS = (("recoupments", "recoupments"), ("credit-balances", "credit_balances"), ("exceptions", "exceptions"))


def redecided(store: Store, as_of: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of every list as deciding the whole store again gives them (JSON items)."""
    config = Config.load(CONFIG)
    with store.engine.connect() as conn:
        facts = load(conn)
    out = rows(decide(facts, _day(as_of), config), _day(as_of), facts.ingest_exceptions)
    return {name: [json.loads(json.dumps(decided.jsonable(r))) for r in out[name]] for _, name in LISTS}


def _day(text: str) -> date:
    return date.fromisoformat(text)


class Loads:
    """Counts the facts loads of the workflow: whole (no keys) and of a closure."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.whole = 0
        self.closures = 0

        def counting(conn: Any, keys: Any = None) -> Any:
            if keys is None:
                self.whole += 1
            else:
                self.closures += 1
            return load(conn, keys) if keys is not None else load(conn)

        monkeypatch.setattr(refunds, "load", counting)


def test_lists_are_a_full_redecides_rows_after_each_run_without_loading_the_facts(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    first = run(db, tmp_path / "out1", AS_OF, *(Path("sample_edi") / s for s in FIRST))
    a = Api(db)
    try:
        loads = Loads(monkeypatch)
        expected = redecided(a.store, AS_OF)
        for path, name in LISTS:
            assert a.every(f"/api/v1/{path}", limit=1) == expected[name] == first[name], name
            assert a.every(f"/api/v1/{path}", limit=3) == expected[name], name
        assert loads.whole == 0 and loads.closures == 0
        # a second run with new files: a reversal with its correction, a PLB recoupment
        second = run(db, tmp_path / "out2", AS_OF, *(Path("sample_edi") / s for s in FIRST + LATER))
        expected = redecided(a.store, AS_OF)
        assert expected["recoupments"] != first["recoupments"]  # the reversal and the PLB WO
        for path, name in LISTS:
            assert a.every(f"/api/v1/{path}", limit=2) == expected[name] == second[name], name
        assert loads.whole == 0
        # one refund, the changes feed and an action: a closure at most, never the whole store
        refund_id = second["refund_requests"][0]["refund_id"]
        assert a.get(f"/api/v1/refunds/{refund_id}").json()["refund_id"] == refund_id
        assert a.get("/api/v1/changes").status_code == 200
        assert a.post(f"/api/v1/refunds/{refund_id}/note", body={"note": "called the payer"}).status_code == 200
        assert loads.whole == 0 and loads.closures >= 1
    finally:
        a.store.dispose()


def test_stale_records_fall_back_and_are_recorded_again(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    run(db, tmp_path / "out", AS_OF, *(Path("sample_edi") / s for s in FIRST))
    a = Api(db)
    try:
        loads = Loads(monkeypatch)
        # a file ingested by a worker's path: facts changed, nothing decided
        ingest_files(a.store, input_files([SAMPLE_EDI / "reversal-with-correction"]), workers=1)
        config = Config.load(CONFIG)
        with a.store.engine.connect() as conn:
            assert not lists.current(conn, _day(AS_OF), config)
        expected = redecided(a.store, AS_OF)
        assert a.every("/api/v1/recoupments", limit=1) == expected["recoupments"]
        assert loads.whole == 1  # decided once, recorded again: the other lists read the records
        assert a.every("/api/v1/exceptions", limit=4) == expected["exceptions"]
        assert a.every("/api/v1/credit-balances") == expected["credit_balances"]
        assert loads.whole == 1
        with a.store.engine.connect() as conn:
            assert lists.current(conn, _day(AS_OF), config)
        # another day: the days in credit differ
        later = "2027-02-01"
        a.day = _day(later)
        expected_later = redecided(a.store, later)
        assert expected_later["credit_balances"] != expected["credit_balances"]
        assert a.every("/api/v1/credit-balances", limit=5) == expected_later["credit_balances"]
        assert loads.whole == 2
        # a store whose rows were never recorded (made before the lists were): decided once
        with a.store.write() as conn:
            conn.execute(stored.t.decided_lists.delete())
            conn.execute(stored.t.decided_rows.delete())
        assert a.every("/api/v1/recoupments", limit=2) == expected_later["recoupments"]
        assert loads.whole == 3
        assert a.every("/api/v1/recoupments", limit=2) == expected_later["recoupments"]
        assert loads.whole == 3
    finally:
        a.store.dispose()


def test_a_run_in_shards_records_the_same_rows(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decided in shards (the credit balances rendered in the shard processes, merged in key
    order), the recorded rows are a full re-decide's, and current after the run."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setattr(shards, "SHARD_CLAIMS", 0)
    result = run_inputs([Path("sample_edi") / s for s in FIRST + LATER], db, tmp_path / "out", _day(AS_OF), Config.load(CONFIG), workers=2)
    assert result.decisions is None, "decided in shards"
    monkeypatch.undo()
    a = Api(db)
    try:
        loads = Loads(monkeypatch)
        expected = redecided(a.store, AS_OF)
        assert len(expected["credit_balances"]) > 2
        for path, name in LISTS:
            assert a.every(f"/api/v1/{path}", limit=2) == expected[name], name
        assert loads.whole == 0
    finally:
        a.store.dispose()


def test_shards_credit_balances_are_recorded_from_the_lines_written(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In shards the credit balances (about one per encounter) are recorded streamed from the JSON
    lines written, never read back as rows (which held every row of a 100,000-encounter run in
    memory at once: 134 MiB); each item is what decoding the line and encoding it again gives."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setattr(shards, "SHARD_CLAIMS", 0)

    def never(line: str) -> Any:
        raise AssertionError("a credit balance was read back as a row")

    monkeypatch.setattr(writers, "_decode", never)
    result = run_inputs([Path("sample_edi") / s for s in FIRST + LATER], db, tmp_path / "out", _day(AS_OF), Config.load(CONFIG), workers=2)
    assert result.decisions is None, "decided in shards"
    monkeypatch.undo()
    lines = (tmp_path / "out" / "credit_balances.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) > 2
    store = Store(db)
    try:
        with store.engine.connect() as conn:
            items = stored.every(conn, "credit_balances")
    finally:
        store.dispose()
    again = [json.dumps(decided.jsonable(writers.typed(json.loads(line))), separators=(",", ":")) for line in lines]
    assert items == again == lines


def test_credit_balances_out_of_key_order_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "credit_balances.jsonl"
    path.write_text('{"a":1}\n{"a":2}\n', encoding="utf-8")
    table = writers.Rendered([], 2, [("PCN2", "1"), ("PCN1", "2")])
    table.path = path
    with pytest.raises(RuntimeError, match="not in key order"):
        list(decided.records({"recoupments": [], "credit_balances": table, "exceptions": []}))
    table.keys = [("PCN1", "2"), ("PCN2", "1")]
    assert [item for _, _, _, item in decided.records({"recoupments": [], "credit_balances": table, "exceptions": []})] == ['{"a":1}', '{"a":2}']


def test_sort_text_orders_as_the_key_tuples() -> None:
    keys = [("a", "b"), ("a", ""), ("ab", ""), ("a\x01", "z"), ("a\x00", "z"), ("a", "\x01"), ("", "a"), ("a\x02", ""), ("é", "x"), ("z", "é")]
    texts = [decided.sort_text(k) for k in keys]
    assert all("\x00" not in s for s in texts)
    assert sorted(texts) == [decided.sort_text(k) for k in sorted(keys)]
    assert [decided.key_of(s) for s in texts] == keys


def test_lists_on_postgresql(in_repo: Path, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run(pg_url, tmp_path / "out", AS_OF, *(Path("sample_edi") / s for s in FIRST + LATER))
    a = Api(pg_url)
    try:
        loads = Loads(monkeypatch)
        for path, name in LISTS:
            assert a.every(f"/api/v1/{path}", limit=2) == first[name], name
        assert loads.whole == 0
        ingest_files(a.store, input_files([SAMPLE_EDI / "clean-payment"]), workers=1)
        expected = redecided(a.store, AS_OF)
        for path, name in LISTS:
            assert a.every(f"/api/v1/{path}", limit=3) == expected[name], name
        assert loads.whole == 1
    finally:
        a.store.dispose()


def test_the_changes_feed_syncs_only_when_something_changed(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a run nothing is to sync: the feed is read without a sync; after an action of
    the CLI (the refund to sync again: the API's own actions sync it as they answer) or a file a worker ingested, the feed syncs first."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    run(db, tmp_path / "out", AS_OF, *(Path("sample_edi") / s for s in FIRST))
    a = Api(db)
    try:
        synced: list[list[str]] = []
        real = refunds.refunds_book
        monkeypatch.setattr(refunds, "refunds_book", lambda store, ids, *rest: (synced.append(list(ids)), real(store, ids, *rest))[1])
        assert a.get("/api/v1/changes").status_code == 200
        assert synced == []
        refund_id = a.get("/api/v1/refunds", status="pending").json()["items"][0]["refund_id"]
        refunds.act(a.store, refund_id, "approve", "paul", _day(AS_OF), Config.load(CONFIG), "checked")  # as `refund approve` does
        synced.clear()
        feed = a.get("/api/v1/changes").json()["items"]
        assert synced == [[]] and feed[-1]["action"] == "approve"
        synced.clear()
        assert a.get("/api/v1/changes").status_code == 200
        assert synced == []  # synced by the call before
        ingest_files(a.store, input_files([SAMPLE_EDI / "reversal-with-correction"]), workers=1)
        assert a.get("/api/v1/changes").status_code == 200
        assert synced == [[]]
    finally:
        a.store.dispose()


def test_one_refund_read_without_a_sync_is_the_synced_one(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the records current and nothing to sync, `GET /refunds/{id}` decides the refund's
    closure without syncing (nothing written); each refund reads as deciding the whole store
    and syncing gives it."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    run(db, tmp_path / "out", AS_OF, *(Path("sample_edi") / s for s in FIRST + LATER))
    a = Api(db)
    try:
        ids = [r["refund_id"] for r in a.every("/api/v1/refunds", limit=100)]
        assert len(ids) > 3
        synced: list[list[str]] = []
        real = refunds.refunds_book
        monkeypatch.setattr(refunds, "refunds_book", lambda store, ids, *rest: (synced.append(list(ids)), real(store, ids, *rest))[1])
        read = {rid: a.get(f"/api/v1/refunds/{rid}").json() for rid in ids}
        assert synced == []
        monkeypatch.setenv(refunds.FULL_ENV, "1")  # the records taken as stale: everything decided and synced
        assert {rid: a.get(f"/api/v1/refunds/{rid}").json() for rid in ids} == read
        assert len(synced) == len(ids)
    finally:
        a.store.dispose()
