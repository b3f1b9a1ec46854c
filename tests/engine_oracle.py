"""Comparing a run's outputs with a scenario's hand-computed ``expected-run.json``."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from edirecon.engine.config import Config
from edirecon.engine.run import run


def _s(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01")))
    if isinstance(value, date):
        return value.isoformat()
    if value == "":
        return None
    return value


def semantic(outputs: dict[str, list[dict[str, Any]]], settles: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The fields an oracle states, in its sort order (ids, names and evidence left out)."""
    refunds = sorted(
        (
            {
                k: _s(r[k])
                for k in (
                    "reason",
                    "payee_type",
                    "payer_id",
                    "patient_control_number",
                    "payer_claim_control_number",
                    "amount",
                    "identified_on",
                    "due_by",
                    "status",
                )
            }
            for r in outputs["refund_requests"]
        ),
        key=lambda r: (r["patient_control_number"] or "", r["reason"], r["payer_claim_control_number"] or ""),
    )
    recoupments = sorted(
        (
            {
                **{
                    k: _s(r[k])
                    for k in ("kind", "payer_id", "trace_number", "effective_date", "amount", "patient_control_number", "payer_claim_control_number", "status")
                },
                "settles_refund_reason": settles.get(r["refund_id"]),
            }
            for r in outputs["recoupments"]
        ),
        key=lambda r: (r["kind"], r["trace_number"] or "", r["payer_claim_control_number"] or ""),
    )
    balances = sorted(
        (
            {
                k: _s(b[k])
                for k in (
                    "patient_control_number",
                    "billing_provider_npi",
                    "member_id",
                    "service_date",
                    "primary_payer_id",
                    "total_charge",
                    "payer_paid",
                    "patient_paid",
                    "write_offs",
                    "patient_responsibility",
                    "balance",
                )
            }
            for b in outputs["credit_balances"]
        ),
        key=lambda b: b["patient_control_number"],
    )
    exceptions = sorted(
        ({k: _s(x[k]) for k in ("kind", "patient_control_number", "payer_id", "amount")} for x in outputs["exceptions"]),
        key=lambda x: (x["kind"], x["patient_control_number"] or "", x["payer_id"] or "", x["amount"] or ""),
    )
    return {"refunds": refunds, "recoupments": recoupments, "credit_balances": balances, "exceptions": exceptions}


def expected(folder: Path) -> dict[str, Any]:
    doc = json.loads((folder / "expected-run.json").read_text(encoding="utf-8"))
    doc["exceptions"] = sorted(
        ({k: (x.get(k) if x.get(k) != "" else None) for k in ("kind", "patient_control_number", "payer_id", "amount")} for x in doc["exceptions"]),
        key=lambda x: (x["kind"], x["patient_control_number"] or "", x["payer_id"] or "", x["amount"] or ""),
    )
    for key in ("refunds", "recoupments", "credit_balances"):
        doc[key] = [{k: (v if v != "" else None) for k, v in row.items()} for row in doc[key]]
    return doc


def run_folder(folder: Path, db_url: str, out: Path) -> dict[str, list[dict[str, Any]]]:
    doc = json.loads((folder / "expected-run.json").read_text(encoding="utf-8"))
    config = Config.load(folder / "config.toml") if (folder / "config.toml").exists() else Config()
    result = run([folder], db_url, out, date.fromisoformat(doc["as_of"]), config)
    reasons = {r["refund_id"]: r["reason"] for r in result.outputs["refund_requests"]}
    return semantic(result.outputs, reasons)
