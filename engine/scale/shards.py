"""Deciding a large store in parallel, shard by shard.

Every rule of ``decide`` looks at the encounters of one claim number (CLM01: encounters, payment
matching, reversals, balances, patient payments), at the claim numbers of one billing provider
and member (rule 4's same service under another claim number), or at the claim numbers a PLB
reference names as payer claim number or claim number (rule 6, its netting included; and the
claim numbers named by the PLBs or reversed by the claim reversals of one remittance with a
negative 72, which may offset any of them).  Those keys join claim numbers into components that no rule looks across; the components
are dealt out into shards of about ``SHARD_CLAIMS`` claim numbers (at least one per worker, so that a
smaller store of ``PARALLEL_CLAIMS`` or more keeps every core deciding).  Each shard is loaded (``facts.load_shard``),
decided and rendered into output lines in a process of its own, a fresh one per shard, so the
memory of a run follows the size of a shard, not of the store.  The parent merges the rows
(each shard's already in output order), decides the one rule about whole remittances (rule 7's
BPR02 balance), keeps the refunds and writes the outputs: the same bytes as deciding everything
in one process (``tests/integration/test_shards.py`` holds them to it).

A PLB whose reference names nothing known goes to the first shard, where it is untied, as it
would be anywhere.
"""

from __future__ import annotations

import gc
import heapq
import math
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.connection import wait
from operator import itemgetter
from pathlib import Path
from typing import Any

from edirecon.engine.config import Config
from edirecon.engine.decide.facts import Facts
from edirecon.engine.decide.rules import Decisions, decide, unbalanced_remittances
from edirecon.engine.logging import get_logger
from edirecon.engine.record.writers import (
    ORDER,
    Rendered,
    Renderer,
    balance_order,
    exception_rows,
    rows,
    tallies,
    trace_sums,
)
from edirecon.engine.scale import processes
from edirecon.engine.scale.detect import detection_rows
from edirecon.engine.store import shard_keys
from edirecon.engine.store.connection import Connection, Store, error_text
from edirecon.engine.store.detections import keep_rows
from edirecon.engine.store.facts import load_shard, remittance_facts
from edirecon.engine.store.tables import all_rows
from edirecon.errors import ShardError

log = get_logger("edirecon.shards")

#: claim numbers per shard: a shard's facts take about 100 MiB in its process
SHARD_CLAIMS = 25_000
#: with more than one worker, a store of at least this many claims (but not more than
#: ``SHARD_CLAIMS``) is decided in shards too, one per worker at least, so that every core
#: decides.  Measured with two workers on a generated 837P and its 835 (`run`, four alternating
#: runs each, 2026-12-05): 20,000 claims 3.66-3.76 -> 2.86-3.07 s, 2,000 claims 0.88-0.93 ->
#: 0.79-0.82 s, 500 claims the same either way (0.66-0.70 s)
PARALLEL_CLAIMS = 2_000


def in_shards(claims: int, workers: int) -> bool:
    """Whether a store of ``claims`` claims is decided in shards by ``workers`` processes: above
    ``SHARD_CLAIMS`` always (memory follows the shard), from ``PARALLEL_CLAIMS`` with more than one
    worker (time) where processes fork (Linux: a spawned process imports the package again,
    about 0.3 s each, which the measurement above did not pay)."""
    return claims > SHARD_CLAIMS or (workers > 1 and claims >= PARALLEL_CLAIMS and processes.FORKS)


@dataclass
class Shard:
    pcns: list[str] = field(default_factory=list)
    plbs: list[int] = field(default_factory=list)


@dataclass
class ShardResult:
    """What a shard's process sends back: its output rows (credit balances already rendered, with
    their sort keys), the refunds for detection to keep, and its counts."""

    refunds: list[dict[str, Any]]
    recoupments: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]
    balances: Path  # the credit balances, rendered, with their sort keys: a file of pickled chunks
    balance_count: int
    detections: list[dict[str, Any]]
    tally: dict[str, int]
    counts: dict[str, int]


def plan(conn: Connection, shards: int, per_shard: int = 0) -> list[Shard]:
    """The claim numbers of the store (and its PLBs) in at least ``shards`` shards of about
    ``per_shard`` claim numbers (``SHARD_CLAIMS``) at most, whole components each.  Which shard a
    claim number lands in may differ from run to run; what is decided of it does not."""
    per_shard = max(1, per_shard or SHARD_CLAIMS)
    parent: dict[str, str] = {}  # only the claim numbers joined to another: most stand alone

    def find(x: str) -> str:
        root = x
        while (up := parent.get(root, root)) != root:
            root = up
        while x != root:
            parent[x], x = root, parent[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra

    # every claim number; then only the rows that join claim numbers (most stand alone), found in
    # SQL, so that the plan holds the claim numbers once and the joins, not every key of the store
    pcns: set[str] = set(shard_keys.claim_numbers(conn))
    first_of: dict[Any, str] = {}  # a billing provider and member, or a payer claim number -> its first claim number
    for npi, member, pcn in shard_keys.same_provider_and_member(conn):
        if (other := first_of.setdefault((npi, member), pcn)) != pcn:
            union(pcn, other)
    for icn, pcn in shard_keys.same_payer_claim_number(conn):
        if (other := first_of.setdefault(icn, pcn)) != pcn:
            union(pcn, other)
    del first_of
    plbs: dict[int, str] = {}  # a PLB -> a claim number it names ("" for none)
    # rule 6's offset pairs: a remittance with a negative 72 joins the claim numbers its PLBs name
    # and those of its claim reversals (CLP02 = 22), and a PLB of it that names none (the 72
    # naming a check) goes with them
    first_named: dict[int, str] = {}  # such a remittance -> the first claim number its PLBs name
    remittance_of: dict[int, int] = {}  # a PLB of such a remittance -> the remittance
    for plb_id, reference, paid_as, acked_remittance in shard_keys.plb_names(conn):
        named = [n for n in (paid_as, reference if reference in pcns else None, plbs.get(plb_id)) if n]
        if acked_remittance is not None:
            remittance_of[plb_id] = acked_remittance
            if named:
                named.append(first_named.setdefault(acked_remittance, named[0]))
        for other in named[1:]:
            union(named[0], other)
        plbs[plb_id] = named[0] if named else ""
    for remittance_id, pcn in shard_keys.acknowledged_reversals(conn):
        if (other := first_named.setdefault(remittance_id, pcn)) != pcn:
            union(pcn, other)
    for plb_id, remittance_id in remittance_of.items():
        if not plbs[plb_id] and remittance_id in first_named:
            plbs[plb_id] = first_named[remittance_id]
    del first_named, remittance_of
    joined: dict[str, list[str]] = {}  # the components of more than one claim number, by root
    for pcn in parent:
        joined.setdefault(find(pcn), []).append(pcn)
    for root, members in joined.items():
        members.append(root)
    # in claim-number order, so that each shard reads one stretch of the claim-number indexes
    # rather than a page here and there (a shard of 25,000 of 100,000: its load 0.85-0.99 s -> 0.80-0.84 s)
    alone = sorted(pcn for pcn in pcns if pcn not in parent and pcn not in joined)
    count = max(1, shards, math.ceil(len(pcns) / per_shard))
    out = [Shard() for _ in range(count)]
    shard_of: dict[str, int] = {}
    lightest = [(0, k) for k in range(count)]
    for root, members in sorted(joined.items(), key=lambda kv: (-len(kv[1]), kv[0])):  # the largest first, each to the lightest shard
        size, k = heapq.heappop(lightest)
        out[k].pcns += members
        shard_of[root] = k
        heapq.heappush(lightest, (size + len(members), k))
    target = math.ceil(len(pcns) / count)
    taken = 0
    for shard in out:  # then the claim numbers that stand alone, filling each shard to an even share
        need = max(0, target - len(shard.pcns))
        shard.pcns += alone[taken : taken + need]
        taken += need
    out[-1].pcns += alone[taken:]
    named = {find(node) for node in plbs.values() if node}
    if named:
        for k, shard in enumerate(out):
            shard_of.update((pcn, k) for pcn in shard.pcns if pcn in named)
    for plb_id, node in plbs.items():
        out[shard_of[find(node)] if node else 0].plbs.append(plb_id)
    return [s for s in out if s.pcns or s.plbs]


def decide_sharded(store: Store, as_of: date, config: Config, workers: int, spool: Path) -> tuple[dict[str, Any], dict[str, int], dict[str, int]]:
    """Decide the whole store shard by shard in ``workers`` processes, keep the refunds, and return
    the outputs (``writers.rows`` form; the credit balances merged from the shards' files in
    ``spool`` as they are written), the summary's tally and the store's counts."""
    store.dispose()  # no open database handle may cross a fork
    whole: list[dict[str, Any]] = []

    def meanwhile() -> None:  # what is decided of the store as a whole, while the plan is made
        whole.extend(_whole_store_exceptions(store))

    # the plan too is made in a process of its own: this one stays small, and so do the shards'
    # processes, which start as copies of it; the store as a whole is decided here meanwhile, on
    # the core the plan leaves idle, not beside the shards, which take every core
    (plans,) = _in_processes(_plan_job, [(store.url, workers, spool)], 1, meanwhile)  # a file of each shard's keys
    jobs = [(store.url, path, as_of, config, spool / f"shard-{k}.balances") for k, path in enumerate(plans)]
    at_once = min(workers, len(jobs))
    keys: list[tuple[str, str]] = []  # the order of each credit balance row, as it is written (the API's list: run.py)
    results: list[ShardResult] = _in_processes(_decide_shard, jobs, at_once)
    log.info("decided_in_shards", shards=len(plans), processes=at_once)
    outputs: dict[str, Any] = {
        "refund_requests": sorted((r for res in results for r in res.refunds), key=ORDER["refund_requests"]),
        "recoupments": sorted((r for res in results for r in res.recoupments), key=ORDER["recoupments"]),
        "credit_balances": Rendered(
            _keeping(heapq.merge(*(_read(res.balances) for res in results), key=itemgetter(0)), keys), sum(res.balance_count for res in results), keys
        ),
        "exceptions": sorted([*whole, *(x for res in results for x in res.exceptions)], key=ORDER["exceptions"]),
    }
    tally = {k: sum(res.tally[k] for res in results) for k in results[0].tally}
    counts = {k: sum(res.counts[k] for res in results) for k in results[0].counts}
    with store.write() as conn:
        keep_rows(conn, None, [d for res in results for d in res.detections])
    return outputs, tally, counts


def _whole_store_exceptions(store: Store) -> list[dict[str, Any]]:
    """The exception rows no shard can decide: the ingest exceptions, and the remittances whose
    BPR02 does not balance (rule 7 asks it of a remittance as a whole)."""
    with store.engine.connect() as conn:
        found = exception_rows(all_rows(conn, "ingest_exceptions"), unbalanced_remittances(remittance_facts(conn)))
    store.dispose()
    return found


def beside(target: Callable[..., Any], job: tuple[Any, ...], meanwhile: Callable[[], None], failure: str) -> Any:
    """``target(*job)`` in a fresh process while ``meanwhile()`` runs in this one: its result.  A
    failure of either fails both (``ShardError`` with ``failure`` and what went wrong)."""
    (result,) = _in_processes(target, [job], 1, meanwhile, failure=failure)
    return result


def _in_processes(
    target: Callable[..., Any],
    jobs: list[tuple[Any, ...]],
    at_once: int,
    meanwhile: Callable[[], None] | None = None,
    failure: str = "deciding in shards failed",
) -> list[Any]:
    """``target(*job)`` for every job, each in a fresh process (fork on Linux), ``at_once`` at a
    time; ``meanwhile`` runs here once the first are started.  The results in no set order; the
    first failure fails all (the others are killed): ``ShardError`` with ``failure``."""
    context = processes.fork_context()
    waiting = list(jobs)
    running: dict[Any, Any] = {}  # the read end of each running process's pipe -> the process
    results: list[Any] = []

    def start() -> None:  # always from this thread: a fork beside a busy thread could inherit a held lock
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_process_body, args=(target, waiting.pop(0), writer), daemon=True)
        process.start()
        writer.close()
        running[reader] = process

    try:
        while waiting and len(running) < at_once:
            start()
        if meanwhile is not None:
            meanwhile()
        while running:
            for reader in wait(list(running)):
                process = running.pop(reader)
                try:
                    got = reader.recv()
                except EOFError:
                    got = _Failure(f"it ended with exit code {process.exitcode} and no result")
                reader.close()
                process.join()
                if isinstance(got, _Failure):
                    raise ShardError(f"{failure}: {got.message}")
                results.append(got)
                if waiting:
                    start()
    finally:
        for process in running.values():
            process.kill()
            process.join()
    return results


@dataclass
class _Failure:
    message: str


def _process_body(target: Callable[..., Any], job: tuple[Any, ...], writer: Any) -> None:
    """A shard process: the result, or what went wrong, sent through the pipe."""

    processes.die_with_parent()
    try:
        result: Any = target(*job)
    except Exception as exc:  # reported by the parent, which fails the run
        result = _Failure(error_text(exc))  # a database error by its kind: never SQL parameters
    writer.send(result)
    writer.close()


def _plan_job(url: str, workers: int, spool: Path) -> list[Path]:
    """The plan, each shard's keys in a file of ``spool``: neither this run's process nor the
    shards' processes, which start as copies of it, hold the keys of the whole store."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            shards = plan(conn, workers)
    finally:
        store.dispose()
    paths = []
    for k, shard in enumerate(shards):
        paths.append(spool / f"shard-{k}.keys")
        with open(paths[-1], "wb") as fh:
            pickle.dump(shard, fh, pickle.HIGHEST_PROTOCOL)
    return paths


#: credit-balance rows per pickled chunk of a shard's file
_CHUNK = 2000


@contextmanager
def _shard_decided(url: str, keys: Path, as_of: date, config: Config) -> Iterator[tuple[Facts, Decisions]]:
    """The facts of one shard (its keys in the file ``keys``) and the engine's decisions on them,
    the store open while the caller uses them."""
    with open(keys, "rb") as fh:
        shard: Shard = pickle.load(fh)  # written by _plan_job in this run's own temporary folder
    store = Store(url)
    gc.disable()  # long-lived facts without cycles: see run.decide_and_record
    try:
        with store.engine.connect() as conn:
            facts = load_shard(conn, shard.pcns, shard.plbs)
            conn.rollback()
        yield facts, decide(facts, as_of, config)
    finally:
        store.dispose()


def _decide_shard(url: str, keys: Path, as_of: date, config: Config, balances_path: Path) -> ShardResult:
    """One shard (its keys in the file ``keys``): load, decide, render; the credit balances,
    rendered in order, go to a file."""
    with _shard_decided(url, keys, as_of, config) as (facts, decisions):
        out = rows(decisions, as_of, [])
        render = Renderer("credit_balances")
        count = 0
        with open(balances_path, "wb") as fh:
            chunk = []
            for b, row in out["credit_balances"].pairs():
                chunk.append((balance_order(b), *render(row)))
                if len(chunk) == _CHUNK:
                    pickle.dump(chunk, fh, pickle.HIGHEST_PROTOCOL)
                    count, chunk = count + len(chunk), []
            pickle.dump(chunk, fh, pickle.HIGHEST_PROTOCOL)
            count += len(chunk)
        return ShardResult(
            list(out["refund_requests"]),
            list(out["recoupments"]),
            list(out["exceptions"]),
            balances_path,
            count,
            detection_rows(decisions),
            tallies(decisions),
            {"claims": len(facts.claims), "claim_payments": len(facts.payments), "patient_payments": len(facts.patient_payments)},
        )


@dataclass
class ReportPart:
    """What a shard's process sends back to ``report`` (``decide_for_report``): the refunds, the
    recoupments and the credit balances of the refunds' encounters as decided (pickled together, so
    that they share their encounters as in one process), the claim payments and PLBs the reports
    look up, each payer and trace's claim payments (all, and those matched to an encounter), the
    days the refunds were first identified, its output rows of recoupments and exceptions, and its
    count of encounters."""

    decided: tuple[list[Any], list[Any], list[Any]]
    payments: list[Any]
    plbs: list[Any]
    paid: dict[tuple[str, str], Any]
    matched: dict[tuple[str, str], Any]
    identified: dict[str, date]
    recoupments: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]
    encounters: int


@dataclass
class ReportWhole:
    """The parts of every shard merged (``decide_for_report``)."""

    refunds: list[Any]
    recoupments: list[Any]
    balances: list[Any]
    payments: list[Any]
    plbs: list[Any]
    paid: dict[tuple[str, str], Any]
    matched: dict[tuple[str, str], Any]
    identified: dict[str, date]
    outputs: dict[str, list[dict[str, Any]]]
    encounters: int


def decide_for_report(store: Store, as_of: date, config: Config, workers: int, spool: Path) -> ReportWhole:
    """Decide the whole store shard by shard in ``workers`` processes, as ``decide_sharded`` does,
    and bring back what ``report`` reads of the decisions: the refunds with their encounters and
    what the reports sum over every claim payment (``ReportPart``), so that this process never
    holds the facts of the whole store."""
    store.dispose()  # no open database handle may cross a fork
    whole: list[dict[str, Any]] = []

    def meanwhile() -> None:  # while the plan is made, as in decide_sharded
        whole.extend(_whole_store_exceptions(store))

    (keys,) = _in_processes(_plan_job, [(store.url, workers, spool)], 1, meanwhile)
    jobs = [(store.url, path, as_of, config) for path in keys]
    parts: list[ReportPart] = _in_processes(_report_shard, jobs, min(workers, len(jobs)))
    log.info("decided_in_shards", shards=len(keys), processes=min(workers, len(jobs)), purpose="report")
    paid: dict[tuple[str, str], Any] = {}
    matched: dict[tuple[str, str], Any] = {}
    for part in parts:
        for mine, theirs in ((paid, part.paid), (matched, part.matched)):
            for key, amount in theirs.items():
                mine[key] = mine[key] + amount if key in mine else amount
    payments = {p.id: p for part in parts for p in part.payments}
    return ReportWhole(
        refunds=[r for part in parts for r in part.decided[0]],
        recoupments=[rc for part in parts for rc in part.decided[1]],
        balances=[b for part in parts for b in part.decided[2]],
        payments=[payments[k] for k in sorted(payments)],  # in the order the store gives them (by id)
        plbs=sorted((plb for part in parts for plb in part.plbs), key=lambda plb: plb.order),
        paid=paid,
        matched=matched,
        identified={k: v for part in parts for k, v in part.identified.items()},
        outputs={
            "recoupments": sorted((r for part in parts for r in part.recoupments), key=ORDER["recoupments"]),
            "exceptions": sorted([*whole, *(x for part in parts for x in part.exceptions)], key=ORDER["exceptions"]),
        },
        encounters=sum(part.encounters for part in parts),
    )


def _report_shard(url: str, keys: Path, as_of: date, config: Config) -> ReportPart:
    """One shard (its keys in the file ``keys``) for ``report``: load, decide, keep what the
    reports read (``ReportPart``)."""
    with _shard_decided(url, keys, as_of, config) as (facts, decisions):
        out = rows(decisions, as_of, [])
        mine = {id(r.encounter) for r in decisions.refunds}
        paid, matched = trace_sums(facts.payments, decisions.encounters)
        # the claim payments the reports look up: the claim reversals (where a take-back came
        # from) and those with the key of a duplicate's earlier payment (its root cause)
        earlier = {
            (ev["payer_id"], ev["trace_number"], ev["payer_claim_control_number"])
            for r in decisions.refunds
            for ev in r.evidence
            if ev.get("role") == "earlier payment"
        }
        looked_up = [p for p in facts.payments if p.status == "22" or (p.payer_id, p.trace_number, p.icn) in earlier]
        return ReportPart(
            (list(decisions.refunds), list(decisions.recoupments), [b for b in decisions.balances if id(b.encounter) in mine]),
            looked_up,
            list(facts.plbs),
            paid,
            matched,
            {r.refund_id: facts.identified[r.refund_id] for r in decisions.refunds if r.refund_id in facts.identified},
            list(out["recoupments"]),
            list(out["exceptions"]),
            len(decisions.encounters),
        )


def _keeping(merged: Iterator[tuple[tuple[str, str], str, str]], keys: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """The (CSV line, JSON line) of each merged row, its key appended to ``keys`` as it goes."""
    for key, c, j in merged:
        keys.append(key)
        yield c, j


def _read(path: Path) -> Iterator[tuple[tuple[str, str], str, str]]:
    """The rows of a shard's credit-balances file (written by ``_decide_shard`` in this run's own
    temporary folder), chunk by chunk."""
    with open(path, "rb") as fh:
        while True:
            try:
                chunk = pickle.load(fh)
            except EOFError:
                return
            yield from chunk
