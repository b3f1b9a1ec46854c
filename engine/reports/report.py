"""``edirecon report``: the credit-balance team's reports, read from the store and the engine's
decisions (``facts.load`` → ``decide``) and the refund workflow (``refunds.book``).

Writes to ``--out`` (docs/workflow-and-reports.md): the worklist with aging and totals per payer, follow-ups
(double refunds, escheatment candidates, refunds awaiting the payer), the reconciliation audit,
root-cause analytics (``analytics.py``), the CMS-838 (``cms838.py``), refund packets
(``letters.py``), the dashboard (``dashboard.py``) and the team's work on each refund
(``workflow.csv``/``.jsonl``: ``record.workflow``).  CSV files are UTF-8 with a header row,
amounts as two-decimal strings and ISO dates, each written under a temporary name and renamed.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from edirecon import mappings
from edirecon.engine.config import Config
from edirecon.engine.decide.rules import payer_member_id
from edirecon.engine.logging import get_logger
from edirecon.engine.record.csvout import AMOUNT, Lines
from edirecon.engine.record.workflow import workflow_rows, write_workflow
from edirecon.engine.record.writers import Sums, _Atomic, _scalar, rows, trace_sums
from edirecon.engine.reports.analytics import REASONS, root_causes
from edirecon.engine.reports.cms838 import COLUMNS, Quarter, cms838_rows
from edirecon.engine.reports.dashboard import dashboard
from edirecon.engine.reports.letters import MAIL_MERGE_COLUMNS, Mailing, cms838_form, mail_merge_rows, mailing_claim_ids, packets
from edirecon.engine.reports.model import Report
from edirecon.engine.reports.recorded import from_records
from edirecon.engine.scale import shards
from edirecon.engine.scale.processes import worker_count
from edirecon.engine.store.mailing import claim_mailing
from edirecon.engine.store.tables import all_rows, count_rows
from edirecon.engine.store.workflow import with_last_event
from edirecon.engine.workflow.refunds import TO_WORK, Book, View, book, book_in_shards, open_store
from edirecon.money import ZERO
from edirecon.money import text as money

log = get_logger("edirecon.reports")

WORKLIST_COLUMNS = [
    "refund_id",
    "due_by",
    "overdue",
    "days_overdue",
    "aging_bucket",
    "days_in_credit",
    "credit_since",
    "workflow_status",
    "engine_status",
    "reason",
    "payee_type",
    "payer_id",
    "payer_name",
    "patient_control_number",
    "payer_claim_control_number",
    "billing_provider_npi",
    "patient_name",
    "member_id",
    "service_date",
    "amount",
    "recouped",
    "outstanding",
    "identified_on",
]
FOLLOWUP_COLUMNS = ["kind", "refund_id", "workflow_status", "payee_type", "payer_id", "amount", "method", "reference", "sent_on", "days_since_sent", "detail"]
REMITTANCE_COLUMNS = [
    "payer_id",
    "payer_name",
    "trace_number",
    "payment_date",
    "source_file",
    "segment",
    "bpr_amount",
    "claim_payments",
    "provider_adjustments",
    "expected",
    "difference",
    "balanced",
]
PAYER_MONTH_COLUMNS = [
    "payer_id",
    "payer_name",
    "month",
    "remittances",
    "received",
    "claim_payments",
    "matched",
    "unmatched",
    "provider_adjustments",
    "recouped",
    "difference",
]
DISCREPANCY_COLUMNS = ["kind", "severity", "source_file", "segment", "patient_control_number", "payer_id", "amount", "detail"]


#: the steps of ``report``, in order: ``progress`` is called with each as it begins
STEPS = ("reading the store and deciding", "worklist and audit", "root causes", "CMS-838", "writing the tables", "CMS-838 form", "packets", "dashboard")


def report(
    db_url: str,
    out_dir: Path,
    as_of: date,
    config: Config,
    quarter: Quarter,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> Report:
    """Sync the workflow, compute every report and write it to ``out_dir``; ``progress`` (when
    given) is called with the name of each step of :data:`STEPS` as it begins.  A store of more
    than ``shards.SHARD_CLAIMS`` claims, or of ``shards.PARALLEL_CLAIMS`` or more where processes
    fork (``shards.in_shards``), is decided in shards, ``workers`` processes at a time (default: the
    number of cores; 1: in this process): the same bytes."""
    step = progress or (lambda _name: None)
    step(STEPS[0])
    store = open_store(db_url)
    try:
        workers = worker_count(workers)
        with store.engine.connect() as conn:
            sharded = workers > 1 and shards.in_shards(count_rows(conn, "claims"), workers)
        recorded = from_records(store, as_of, config)
        if recorded is not None:
            # what ``run`` recorded is current: the refunds' encounters alone are decided again
            b = recorded.book
            outputs: dict[str, Any] = dict(recorded.outputs)
            sums, encounters = (recorded.paid, recorded.matched), recorded.encounters
            how = "records"
        elif sharded:
            # decided shard by shard in processes of their own (as ``run`` does): this process
            # holds the refunds and what the reports sum, never the whole store, and every core
            # decides
            with tempfile.TemporaryDirectory(prefix="edirecon-report-") as spool:
                b, whole = book_in_shards(store, as_of, config, workers, Path(spool))
            outputs = whole.outputs
            sums, encounters = (whole.paid, whole.matched), whole.encounters
            how = "shards"
        else:
            b = book(store, as_of, config)
            outputs = rows(b.decisions, as_of, b.facts.ingest_exceptions)
            sums, encounters = payment_sums(b), len(b.decisions.encounters)
            how = "one process"
        log.info("report_book", source=how, refunds=len(b.views))
        with store.engine.connect() as conn:
            remittance_rows = all_rows(conn, "remittances")
            team = with_last_event(conn)
            mailing = claim_mailing(conn, mailing_claim_ids(b))
    finally:
        store.dispose()
    step(STEPS[1])
    rep = Report(as_of, quarter, encounters=encounters)
    rep.worklist = worklist(b)
    rep.totals = totals(rep.worklist)
    rep.followups = followups(b)
    rep.recoupments = list(outputs["recoupments"])
    rep.remittances, rep.payer_months = audit(b, remittance_rows, *sums, rep.recoupments)
    rep.discrepancies = discrepancies(outputs["exceptions"], b)
    step(STEPS[2])
    rep.causes = root_causes(b)
    step(STEPS[3])
    rep.cms838 = cms838_rows(b, quarter)
    step(STEPS[4])
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "worklist": (WORKLIST_COLUMNS, rep.worklist),
        "worklist_totals": (list(rep.totals[0]) if rep.totals else ["payee"], rep.totals),
        "followups": (FOLLOWUP_COLUMNS, rep.followups),
        "audit_remittances": (REMITTANCE_COLUMNS, rep.remittances),
        "audit_payer_months": (PAYER_MONTH_COLUMNS, rep.payer_months),
        "audit_discrepancies": (DISCREPANCY_COLUMNS, rep.discrepancies),
        **{f"root_cause_{name}": (list(table[0]) if table else ["none"], table) for name, table in rep.causes.items()},
        f"cms838-{quarter}": (list(rep.cms838[0]) if rep.cms838 else _cms838_columns(), rep.cms838),
    }
    # the columns named by data: the outstanding amount per aging bucket, the amount per refund reason
    amounts = dict.fromkeys([*(code for code, *_ in mappings.aging_buckets()), *REASONS], AMOUNT)
    for name, (columns, table) in tables.items():
        rep.written.append(write_csv(out_dir / f"{name}.csv", columns, table, amounts))
    step(STEPS[5])
    mail = Mailing(b, mailing, remittance_rows)
    rep.written.append(cms838_form(out_dir / f"cms838-{quarter}.pdf", b, mail, quarter, rep.cms838, rep.unprintable))
    step(STEPS[6])
    folder = out_dir / "packets"
    made = packets(folder, b, mail, rep.unprintable)
    rep.written += made.written
    rep.written.append(write_csv(folder / "mail_merge.csv", MAIL_MERGE_COLUMNS, mail_merge_rows(made.letters, folder)))
    rep.not_mailable = [
        {"letter": str(letter.path.relative_to(out_dir)), "kind": letter.kind, "refund_ids": letter.refund_ids, "missing": f"the {letter.kind}'s address"}
        for letter in made.letters
        if not letter.recipient.address
    ]
    rep.warnings = letterhead_warnings(sorted(mail.unnamed), bool(rep.cms838) and not config.cms838.provider_number)
    step(STEPS[7])
    rep.written.append(dashboard(out_dir / "dashboard.html", b, rep))
    rep.workflow = workflow_rows(team)
    rep.written += write_workflow(out_dir, rep.workflow)
    summary = {
        "as_of": as_of.isoformat(),
        "quarter": str(quarter),
        "worklist": {
            "count": len(rep.worklist),
            "outstanding": money(sum((r["outstanding"] for r in rep.worklist), ZERO)),
            "overdue": sum(1 for r in rep.worklist if r["overdue"] == "yes"),
        },
        "followups": {kind: sum(1 for f in rep.followups if f["kind"] == kind) for kind in sorted({f["kind"] for f in rep.followups})},
        "discrepancies": len(rep.discrepancies),
        "cms838_rows": len(rep.cms838),
        "letters": {
            "payer": sum(1 for r in made.letters if r.kind == "payer"),
            "patient": sum(1 for r in made.letters if r.kind == "patient"),
            "not_mailable": rep.not_mailable,
        },
        "warnings": rep.warnings,
        "files": sorted(str(p.relative_to(out_dir)) for p in rep.written),
    }
    with _Atomic(out_dir / "report.json") as fh:
        fh.write(json.dumps(summary, indent=1) + "\n")
    rep.written.append(out_dir / "report.json")
    log.info(
        "report_written",
        out=str(out_dir),
        as_of=as_of.isoformat(),
        quarter=str(quarter),
        worklist=len(rep.worklist),
        followups=len(rep.followups),
        discrepancies=len(rep.discrepancies),
        cms838_rows=len(rep.cms838),
        files=len(rep.written),
    )
    return rep


def letterhead_warnings(unnamed: list[str], no_provider_number: bool) -> list[str]:
    """What the office should configure so that its documents are signed and complete: the
    billing NPIs whose letters fell back to the number (neither ``[providers."NPI"]`` nor an
    837 names them), and the CMS-838's provider number.  No patient data: NPIs are the provider's."""
    out = []
    if unnamed:
        tables = ", ".join(f'[providers."{npi}"]' for npi in unnamed)
        out.append(
            f"letters of billing NPI {', '.join(unnamed)} are signed with the number only (no name in the configuration or the 837s): "
            f"configure {tables} with name, address, contact and phone in --config"
        )
    if no_provider_number:
        out.append("the CMS-838 has no provider number: configure [cms838] provider_number in --config")
    return out


def _cms838_columns() -> list[str]:
    return COLUMNS


def write_csv(path: Path, columns: list[str], table: list[dict[str, Any]], types: dict[str, str] | None = None) -> Path:
    """One report CSV; its text cells made safe for spreadsheets (``csvout``: ``types`` declares the
    columns named by data, such as the aging buckets)."""
    lines = Lines(columns, types)
    with _Atomic(path) as fh:
        fh.write(lines.header())
        for row in table:
            fh.write(lines.row([_scalar(row.get(c)) for c in columns]))
    return path


# -- the worklist ---------------------------------------------------------------------------------


def worklist(b: Book) -> list[dict[str, Any]]:
    """The refunds still to be worked (pending, held, approved; not taken back by the payer), by due date."""
    out = []
    for v in b.views.values():
        r = v.refund
        if v.status not in TO_WORK or r is None or r.status == "settled_by_recoupment":
            continue
        e = r.encounter
        days = (b.as_of - v.arose_on).days if v.arose_on else 0
        overdue = r.due_by is not None and b.as_of > r.due_by
        out.append(
            {
                "refund_id": r.refund_id,
                "due_by": r.due_by,
                "overdue": "yes" if overdue else "no",
                "days_overdue": (b.as_of - r.due_by).days if overdue and r.due_by else 0,
                "aging_bucket": mappings.aging_bucket(days),
                "days_in_credit": days,
                "credit_since": v.arose_on,
                "workflow_status": v.status,
                "engine_status": r.status,
                "reason": r.reason,
                "payee_type": r.payee_type,
                "payer_id": r.payer_id,
                "payer_name": r.payer_name,
                "patient_control_number": e.pcn,
                "payer_claim_control_number": r.icn,
                "billing_provider_npi": e.npi,
                "patient_name": e.patient_name,
                "member_id": payer_member_id(r),
                "service_date": e.service_from,
                "amount": r.amount,
                "recouped": r.recouped,
                "outstanding": v.outstanding,
                "identified_on": r.identified_on,
            }
        )
    out.sort(key=lambda row: (row["due_by"] or date.max, row["refund_id"]))
    return out


def totals(work: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per payee (payer id, or ``patient``): count, outstanding, overdue, and the outstanding
    amount in each aging bucket; the last row (``ALL``) adds them up."""
    buckets = [code for code, *_ in mappings.aging_buckets()]
    slots: dict[tuple[str, str], dict[str, Any]] = {}

    def blank(payee: str, name: str) -> dict[str, Any]:
        return {"payee": payee, "payee_name": name, "count": 0, "outstanding": ZERO, "overdue_count": 0, "overdue_amount": ZERO, **dict.fromkeys(buckets, ZERO)}

    for row in work:
        key = (row["payer_id"], row["payer_name"]) if row["payee_type"] == "payer" else ("patient", "patients")
        slot = slots.setdefault(key, blank(*key))
        for s in (slot,):
            s["count"] += 1
            s["outstanding"] += row["outstanding"]
            s[row["aging_bucket"]] += row["outstanding"]
            if row["overdue"] == "yes":
                s["overdue_count"] += 1
                s["overdue_amount"] += row["outstanding"]
    out = [slots[k] for k in sorted(slots, key=lambda k: (k[0] == "patient", k[0]))]
    total = blank("ALL", "all payees")
    for s in out:
        for k, value in s.items():
            if k not in ("payee", "payee_name"):
                total[k] += value
    return [*out, total]


def followups(b: Book) -> list[dict[str, Any]]:
    """Sent refunds that need a look: double refunds to recover, patient refunds not cashed for the
    escheatment period, and payer refunds sent and not yet acknowledged."""
    out = []
    for v in b.views.values():
        s = v.state
        kind = ""
        if v.status == "double_refund":
            kind, detail = "DOUBLE_REFUND", f"{money(s['double_refund_amount'])} to recover: {s['double_refund_traces']}"
        elif b.escheatment_candidate(v):
            kind, detail = "ESCHEATMENT_CANDIDATE", f"not cashed {b.config.refunds.escheatment_days} days after it was sent: unclaimed property"
        elif v.status == "sent" and v.payee_type == "payer":
            kind, detail = "AWAITING_ACKNOWLEDGMENT", "no PLB 72 from the payer yet"
        if kind:
            mappings.registered("followup_kind", kind)
            out.append(
                {
                    "kind": kind,
                    "refund_id": v.refund_id,
                    "workflow_status": v.status,
                    "payee_type": v.payee_type,
                    "payer_id": s["payer_id"],
                    "amount": s["double_refund_amount"] if kind == "DOUBLE_REFUND" else s["sent_amount"],
                    "method": s["method"],
                    "reference": s["reference"],
                    "sent_on": s["sent_on"],
                    "days_since_sent": (b.as_of - s["sent_on"]).days if s["sent_on"] else None,
                    "detail": detail,
                }
            )
    out.sort(key=lambda f: (f["kind"], f["refund_id"]))
    return out


# -- the reconciliation audit ------------------------------------------------------------------


def payment_sums(b: Book) -> tuple[Sums, Sums]:
    """Per payer and trace number, the claim payments (CLP04) of ``b``, and those matched to an encounter."""
    return trace_sums(b.facts.payments, b.decisions.encounters)


def audit(
    b: Book, remittance_rows: list[dict[str, Any]], paid_sums: Sums, matched_sums: Sums, recoupments: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per remittance, BPR02 against Σ CLP04 − Σ PLB (``paid_sums``: ``payment_sums``); per payer
    and month (of BPR16), money received vs. matched to encounters vs. unmatched vs. recouped
    (the rows of ``recoupments``, every one of the store)."""
    paid: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO, paid_sums)
    matched: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO, matched_sums)
    plb: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for adj in b.facts.plbs:
        plb[(adj.payer_id, adj.trace_number)] += adj.amount
    remittances = []
    months: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(remittance_rows, key=lambda r: (r["payer_id"], r["payment_date"] or date.min, r["trace_number"])):
        key = (r["payer_id"], r["trace_number"])
        bpr = r["payment_amount"] or ZERO
        expected = paid[key] - plb[key]
        remittances.append(
            {
                "payer_id": r["payer_id"],
                "payer_name": r["payer_name"],
                "trace_number": r["trace_number"],
                "payment_date": r["payment_date"],
                "source_file": r["source_file"],
                "segment": r["segment"],
                "bpr_amount": bpr,
                "claim_payments": paid[key],
                "provider_adjustments": plb[key],
                "expected": expected,
                "difference": bpr - expected,
                "balanced": "yes" if bpr == expected else "no",
            }
        )
        month = r["payment_date"].strftime("%Y-%m") if r["payment_date"] else ""
        slot = months.setdefault(
            (r["payer_id"], month),
            {
                "payer_id": r["payer_id"],
                "payer_name": r["payer_name"],
                "month": month,
                "remittances": 0,
                "received": ZERO,
                "claim_payments": ZERO,
                "matched": ZERO,
                "unmatched": ZERO,
                "provider_adjustments": ZERO,
                "recouped": ZERO,
                "difference": ZERO,
            },
        )
        slot["remittances"] += 1
        slot["received"] += bpr
        slot["claim_payments"] += paid[key]
        slot["matched"] += matched[key]
        slot["unmatched"] += paid[key] - matched[key]
        slot["provider_adjustments"] += plb[key]
        slot["difference"] += bpr - expected
    for rc in recoupments:
        month = rc["effective_date"].strftime("%Y-%m") if rc["effective_date"] else ""
        slot = months.get((rc["payer_id"], month))
        if slot is not None:
            slot["recouped"] += rc["amount"]
    return remittances, [months[k] for k in sorted(months)]


def discrepancies(exceptions: Any, b: Book) -> list[dict[str, Any]]:
    """Every exception of the engine that is not information, with its source position, and every
    double refund of the workflow, at the take-back that made it one."""
    out = [{c: x[c] for c in DISCREPANCY_COLUMNS} for x in exceptions if x["severity"] != "info"]
    for v in b.views.values():
        if v.status != "double_refund" or v.refund is None:
            continue
        s, r = v.state, v.refund
        tied = [
            rc
            for rc in b.decisions.recoupments
            if rc.encounter is r.encounter
            and rc.payer_id == r.payer_id
            and (rc.refund_id == r.refund_id or rc.icn == r.icn)
            and rc.trace_number in s["double_refund_traces"]
        ]
        source_file, segment = recoupment_source(b, tied[0]) if tied else ("", "")
        out.append(
            {
                "kind": "DOUBLE_REFUND",
                "severity": "error",
                "source_file": source_file,
                "segment": segment,
                "patient_control_number": r.encounter.pcn,
                "payer_id": r.payer_id,
                "amount": s["double_refund_amount"],
                "detail": f"refund {v.refund_id} sent ({s['method']} {s['reference']} of {money(s['sent_amount'])} on {_scalar(s['sent_on'])}) "
                f"and also taken back by the payer ({s['double_refund_traces']}): {money(s['double_refund_amount'])} to recover",
            }
        )
    return out


def recoupment_source(b: Book, rc: Any) -> tuple[str, int | str]:
    """(file, segment) of a recoupment: its PLB, or its claim reversal (CLP02 = 22)."""
    if rc.kind.startswith("PLB_"):
        for plb in b.facts.plbs:
            if plb.payer_id == rc.payer_id and plb.trace_number == rc.trace_number and plb.reason == rc.kind[4:] and plb.amount > 0:
                return plb.source_file, plb.segment
    for p in b.facts.payments:
        if p.payer_id == rc.payer_id and p.trace_number == rc.trace_number and p.status == "22":
            return p.source_file, p.segment
    return "", ""


def views_by_status(b: Book, *statuses: str) -> list[View]:
    return [v for v in b.views.values() if v.status in statuses]
