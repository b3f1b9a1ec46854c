"""Hostile transaction sets (issue 13, items 9-10): time linear in their size, and a claim or claim
payment past the documented limit refused with a finding while the rest of the file is read.

The files come from ``bench/hostile.py`` (well-formed envelopes, SE01/GE01/IEA01 right, balanced
claim payments); ``bench/bench_hostile.py`` runs the full-size ones.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
import time
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import REPO
from typer.testing import CliRunner

import edirecon.parsers.limits as limits
from edirecon import parsers
from edirecon.cli import app
from edirecon.engine.config import Config
from edirecon.engine.ingest.ingestor import Ingestor
from edirecon.engine.run import decide_and_record, run
from edirecon.engine.store.connection import Store
from edirecon.engine.store.facts import load
from edirecon.parsers.findings import MAX_LISTED

AS_OF = date(2026, 11, 27)
LIMIT = limits.MAX_STRETCH_SEGMENTS
#: claim-level (and as many line-level) CAS of the smaller input of the ratio test; the larger has
#: twice as many, under LIMIT
N = 12_000


def _hostile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_hostile_files", REPO / "bench" / "hostile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_hostile_files"] = module
    spec.loader.exec_module(module)
    return module


def _timed(work: Any) -> float:
    """The CPU time of ``work()``, the cyclic collector run before and paused during it."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        work()
        return time.process_time() - start
    finally:
        gc.enable()


class _Input:
    """One claim and its payment of ``n`` claim-level CAS and ``n`` more on its service line, with
    three empty stores to ingest them into."""

    def __init__(self, folder: Path, n: int):
        gen = _hostile()
        folder.mkdir()
        self.n = n
        self.remit, self.claims = folder / f"one-payment-{n}-claim-and-{n}-line-cas.835", folder / "the-claim.837"
        gen.many_cas_835(self.remit, n, line_cas=n)
        gen.one_claim_837(self.claims, 2 * n)
        self.folder = folder
        self.stores = [Store(f"sqlite:///{folder}/store-{i}.db") for i in range(3)]
        for store in self.stores:
            store.upgrade()

    def parse(self) -> None:
        (payment,) = parsers.iter_records(self.remit)
        assert isinstance(payment, parsers.ClaimPayment) and len(payment.adjustments) == len(payment.services[0].adjustments) == self.n

    def ingest(self, i: int) -> None:
        ingestor = Ingestor(self.stores[i])
        ingestor.ingest(self.claims)
        ingestor.ingest(self.remit)
        assert (ingestor.report.claims, ingestor.report.claim_payments) == (1, 1)

    def decide(self, i: int) -> None:
        _, outputs, doc, _ = decide_and_record(self.stores[i], self.folder / f"out-{i}", AS_OF, Config(), workers=1)
        # balanced and paid as billed: matched, nothing owed either way
        assert doc["matched_payments"] == 1 and doc["credit_balances"] == 0 and not outputs["refund_requests"] and not outputs["exceptions"]


@pytest.mark.slow
def test_every_stage_is_linear_in_the_adjustments_of_one_claim_payment(tmp_path: Path) -> None:
    """Twice the CAS segments in one claim payment (claim and line level) take less than three times as long in every stage."""
    sizes = [_Input(tmp_path / "small", N), _Input(tmp_path / "large", 2 * N)]
    try:
        with sizes[0].stores[0].engine.connect() as conn:
            assert load(conn).payments == []
        seconds: dict[str, list[list[float]]] = {stage: [[], []] for stage in ("parse", "ingest", "load, decide and write")}
        # the two sizes in turn, each stage three times: both meet the same load on the machine
        for i in range(3):
            for k, size in enumerate(sizes):
                seconds["parse"][k].append(_timed(size.parse))
            for k, size in enumerate(sizes):
                seconds["ingest"][k].append(_timed(lambda: size.ingest(i)))
            for k, size in enumerate(sizes):
                seconds["load, decide and write"][k].append(_timed(lambda: size.decide(i)))
        with sizes[1].stores[0].engine.connect() as conn:
            (fact,) = load(conn).payments
        assert len(fact.claim_adjustments) == len(fact.lines[0].adjustments) == 2 * N
    finally:
        for size in sizes:
            for store in size.stores:
                store.dispose()
    # quadratic work (the facts once rebuilt a tuple per adjustment) takes four times as long
    ratios = {stage: min(large) / min(small) for stage, (small, large) in seconds.items()}
    assert all(r < 3 for r in ratios.values()), (seconds, ratios)


@pytest.mark.slow
def test_deciding_is_linear_in_the_service_lines_of_one_claim(tmp_path: Path) -> None:
    """A claim of twice the service lines, paid line by line, takes less than three times as long to load, decide and write."""
    gen = _hostile()
    stores = []
    try:
        for n in (8_000, 16_000):
            folder = tmp_path / f"lines-{n}"
            folder.mkdir()
            gen.many_lines(folder / f"claim-of-{n}-lines.837", folder / f"payment-of-{n}-lines.835", n)
            store = Store(f"sqlite:///{folder}/store.db")
            stores.append((store, folder))
            store.upgrade()
            ingestor = Ingestor(store)
            for path in sorted(folder.glob("*.83?")):
                ingestor.ingest(path)
        seconds: list[list[float]] = [[], []]
        for i in range(3):  # the two sizes in turn: both meet the same load on the machine
            for k, (store, folder) in enumerate(stores):
                done: list[Any] = []
                seconds[k].append(_timed(lambda: done.append(decide_and_record(store, folder / f"out-{i}", AS_OF, Config(), workers=1))))
                _, outputs, doc, _ = done[0]
                # each line paid 60.00 of its 100.00 with 40.00 written off: matched, nothing owed
                assert doc["matched_payments"] == 1 and doc["credit_balances"] == 0 and not outputs["refund_requests"] and not outputs["exceptions"]
    finally:
        for store, _ in stores:
            store.dispose()
    # a pass over the billed lines for each paid line (as before) takes four times as long
    assert min(seconds[1]) / min(seconds[0]) < 3, seconds


def test_many_orphan_segments_are_reported_in_linear_time(tmp_path: Path) -> None:
    """Twice the LX segments outside any claim of an 837 (each an ORPHAN_SEGMENT) take less than three times as long to run."""
    gen = _hostile()

    def seconds(n: int) -> tuple[float, Any]:
        folder = tmp_path / f"lx-{n}"
        (folder / "in").mkdir(parents=True)
        gen.many_lx_837(folder / "in" / f"{n}-lines-without-claims.837", n)
        store = Store(f"sqlite:///{folder}/store.db")
        store.upgrade()
        store.dispose()
        start = time.process_time()
        result = run([folder / "in"], f"sqlite:///{folder}/store.db", folder / "out", AS_OF, Config(), workers=1)
        return time.process_time() - start, result

    small, small_run = seconds(8_000)
    large, large_run = seconds(16_000)
    for n, result in ((8_000, small_run), (16_000, large_run)):
        # every LX is read; the first MAX_LISTED are listed, then one row counts the rest
        orphans = [r["detail"] for r in result.outputs["exceptions"] if "ORPHAN_SEGMENT" in r["detail"]]
        assert len(orphans) == MAX_LISTED + 1 and result.report.claims == 0
        assert sum(f"{n - MAX_LISTED} more ORPHAN_SEGMENT findings in this file are not listed" in d for d in orphans) == 1
    assert large / small < 3, (small, large)


def test_past_a_thousand_findings_of_a_code_the_rest_are_counted(tmp_path: Path) -> None:
    """An 837 of 2,500 LX and no claim lists the first 1,000 ORPHAN_SEGMENT findings and one counting the other 1,500 (at the first of them); the severity counts stay exact."""
    path = tmp_path / "2500-lines-without-claims.837"
    _hostile().many_lx_837(path, 2_500)
    data = path.read_bytes()
    records, summary = parsers.parse_file(path)
    listed = summary.findings
    assert records == [] and len(listed) == MAX_LISTED + 1 and {f.code for f in listed} == {"ORPHAN_SEGMENT"}
    lx = [i for i in range(len(data)) if data.startswith(b"\nLX*", i)]
    assert [f.source.offset for f in listed[:MAX_LISTED]] == [i + 1 for i in lx[:MAX_LISTED]]
    last = listed[-1]
    assert last.source.offset == lx[MAX_LISTED] + 1 and last.severity.value == "error"
    assert last.message.startswith("1500 more ORPHAN_SEGMENT findings in this file are not listed (the first 1000 are); the first of them: LX")
    assert summary.severities() == {"error": 2_500, "warning": 0, "info": 0}


def _three_sets(tmp_path: Path, middle: int) -> tuple[Path, bytes]:
    """An 835 of three transaction sets, their claim payments of 2, ``middle`` and 3 CAS, and the 837 billing them."""
    gen = _hostile()
    folder = tmp_path / "in"
    folder.mkdir()
    remit = folder / f"three-sets-middle-{middle}-cas.835"
    gen.many_cas_835(remit, [2, middle, 3])
    gen.one_claim_837(folder / "three-claims.837", [2, middle, 3])
    return remit, remit.read_bytes()


def test_a_claim_payment_past_the_limit_refuses_its_transaction_set_only(tmp_path: Path) -> None:
    """A claim payment of more segments than the limit: its transaction set gives TRANSACTION_TOO_LARGE and nothing else; the sets around it are read and posted."""
    remit, data = _three_sets(tmp_path, LIMIT + 1)
    records, summary = parsers.parse_file(remit)
    assert [(r.patient_control_number, len(r.adjustments), r.trusted) for r in records] == [("HOSTILE0001", 2, True), ("HOSTILE0003", 3, True)]
    (finding,) = summary.findings
    st, clp = data.index(b"ST*835*0002~"), data.index(b"CLP*HOSTILE0002*")
    assert (finding.code, finding.severity.value, finding.source.offset, finding.source.st02, finding.source.loop) == (
        "TRANSACTION_TOO_LARGE",
        "error",
        st,
        "0002",
        "ST",
    )
    assert finding.source.segment == data[:st].count(b"~") + 1
    # CLP, NM1, DTM, the LIMIT + 1 CAS and SE
    assert f"the claim payment CLP at byte {clp} runs {LIMIT + 5} segments" in finding.message
    assert f"(limit {LIMIT})" in finding.message

    result = run([remit.parent], f"sqlite:///{tmp_path}/store.db", tmp_path / "out", AS_OF, Config(), workers=1)
    assert (result.report.claims, result.report.claim_payments) == (3, 2)
    assert result.summary["matched_payments"] == 2 and not result.outputs["refund_requests"]
    (row,) = result.outputs["exceptions"]
    assert row["kind"] == "PARSE_ERROR" and row["detail"].startswith(f"TRANSACTION_TOO_LARGE at byte {st}: transaction set 835 ST02=0002")


def test_a_parse_past_the_limit_exits_1_with_the_finding_and_no_traceback(tmp_path: Path) -> None:
    """`edirecon parse` on a set past the limit prints the finding with its position, exits 1, and still writes the other sets' records."""
    remit, data = _three_sets(tmp_path, LIMIT + 1)
    result = CliRunner().invoke(app, ["parse", str(remit)])
    assert result.exit_code == 1 and (result.exception is None or isinstance(result.exception, SystemExit))
    st = data.index(b"ST*835*0002~")
    assert f"{remit}:{data[:st].count(b'~') + 1}:{st}: TRANSACTION_TOO_LARGE transaction set 835 ST02=0002" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert result.stdout.count('"record":"claim_payment"') == 2


@pytest.mark.parametrize(("cas", "refused"), [(6, False), (7, True)], ids=["at-the-limit", "one-past"])
def test_the_limit_counts_the_segments_of_one_claim_payment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cas: int, refused: bool) -> None:
    """With a limit of 10, a claim payment of CLP, NM1, DTM, CAS x6 and SE is read and one with a 7th CAS is refused."""
    monkeypatch.setattr(limits, "MAX_STRETCH_SEGMENTS", 10)
    remit, _ = _three_sets(tmp_path, cas)
    records, summary = parsers.parse_file(remit)
    assert [f.code for f in summary.findings] == (["TRANSACTION_TOO_LARGE"] if refused else [])
    assert [r.patient_control_number for r in records] == ["HOSTILE0001", "HOSTILE0003"] if refused else ["HOSTILE0001", "HOSTILE0002", "HOSTILE0003"]


def test_lines_without_claims_past_the_limit_refuse_the_837(tmp_path: Path) -> None:
    """An 837 whose subscriber loop holds more LX than the limit, and no claim, is refused with one finding rather than one per LX."""
    path = tmp_path / "lines-without-claims.837"
    _hostile().many_lx_837(path, LIMIT + 1)
    data = path.read_bytes()
    records, summary = parsers.parse_file(path)
    (finding,) = summary.findings
    hl = data.index(b"HL*2*1*22")
    assert records == [] and finding.code == "TRANSACTION_TOO_LARGE"
    # HL, SBR, NM1*IL, NM1*PR, the LIMIT + 1 LX and SE
    assert f"the hierarchical level HL at byte {hl} runs {LIMIT + 6} segments to the next CLM/HL or to SE" in finding.message
