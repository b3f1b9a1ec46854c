"""The JSON API of `edirecon serve` under /api/v1 (engine/web/api.py; docs/api.md), driven with
FastAPI's TestClient over a store made by `run` on sample_edi (from the repository root, so that
file names are those of the run's outputs):

- every endpoint: the refunds of the work queue (filters, cursor paging over several pages), one
  refund (its request as refund_requests.jsonl has it, evidence with file:segment, recoupments,
  audit trail), each action (200 with the refund, 409 with the workflow's reason, 422 for bad
  input, 404 for an unknown refund), recoupments, credit balances and exceptions (the rows of the
  run's .jsonl, paged), the changes feed resumed from a cursor, the OpenAPI document;
- authentication: 401 without a token, with an unknown or revoked one, for a disabled user; 403
  for a role that may not act (a viewer acts on nothing); the audit trail names the token's user;
  no token or patient name in a log event;
- hostile text from 837/835 files (markup, spreadsheet formulas) comes back as data: the same
  text once parsed, never markup in the response;
- one PostgreSQL run of the same app.

Figures from the sample READMEs (as test_refund_actions.py): with tests/fixtures/reports/config.toml
the COB refund of RFM2605001 (27.00) enters approved, the patient credit of RFM2606001 (15.00) held,
the Blue River duplicate of RFM2602001 (155.50) pending; the Medicare duplicate of RFM2604001
(99.96) is settled by the PLB WO of remit-3.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import FIXTURES, REPO, SAMPLE_EDI
from fastapi import HTTPException
from fastapi.testclient import TestClient
from structlog.testing import capture_logs
from typer.testing import CliRunner

from edirecon.cli import app as cli_app
from edirecon.engine.config import Config
from edirecon.engine.store.connection import Store
from edirecon.engine.web import api
from edirecon.engine.web.app import create_app
from edirecon.engine.workflow import users as u

CONFIG = FIXTURES / "reports" / "config.toml"
AS_OF = "2026-11-27"
PLB = SAMPLE_EDI / "plb-recoupment-settles-refund"
PASSWORD = "correct horse battery staple"
SCENARIOS = (
    "secondary-overpaid",
    "patient-copay-overpaid",
    "duplicate-payment",
    "plb-recoupment-settles-refund",
    "broken-file",
    "unmatched-payment",
    "reversal-with-correction",
)


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(cli_app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def run(db: str, out: Path, as_of: str, *inputs: Path | str) -> dict[str, list[dict[str, Any]]]:
    """`run` the inputs into the store; the rows of its .jsonl outputs."""
    cli("run", *inputs, "--db", db, "--out", out, "--as-of", as_of, "--workers", "1", "--config", CONFIG)
    structlog.reset_defaults()  # the CLI bound the log to its runner's stream, closed now
    return {
        name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        for name in ("refund_requests", "recoupments", "credit_balances", "exceptions")
    }


class Api:
    """The app over a store, its as-of day fixed, with a user and a token per role."""

    def __init__(self, db: str, as_of: str = AS_OF):
        self.app = create_app(db, Config.load(CONFIG), "s" * 43)
        self.day = date.fromisoformat(as_of)
        self.app.dependency_overrides[api.today] = lambda: self.day
        self.client = TestClient(self.app)
        self.tokens: dict[str, str] = {}
        for name, role in (("vera", "viewer"), ("ann", "analyst"), ("paul", "approver")):
            u.add_user(self.store, name, role, PASSWORD)
            self.tokens[name] = u.create_token(self.store, name).text

    @property
    def store(self) -> Store:
        return self.app.state.served.store  # type: ignore[no-any-return]

    def get(self, path: str, who: str = "vera", **params: Any) -> Any:
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def post(self, path: str, who: str = "paul", body: Any = None) -> Any:
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def every(self, path: str, who: str = "vera", **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, following ``next`` page by page (each page full but the last);
        of the changes feed, whose ``next`` is always given, until a page is empty."""
        items: list[dict[str, Any]] = []
        got = self.get(path, who, **params).json()
        while True:
            items += got["items"]
            if got["next"] is None or not got["items"]:
                return items
            if "cursor" not in got:
                assert len(got["items"]) == params.get("limit", api.DEFAULT_LIMIT)
            got = self.client.get(got["next"], headers={"Authorization": f"Bearer {self.tokens[who]}"}).json()


@pytest.fixture
def built(in_repo: Path, tmp_path: Path) -> Iterator[tuple[Api, dict[str, list[dict[str, Any]]]]]:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    outputs = run(db, tmp_path / "out", AS_OF, *(Path("sample_edi") / s for s in SCENARIOS))
    a = Api(db)
    yield a, outputs
    a.store.dispose()


def by_pcn(rows: list[dict[str, Any]], pcn: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["patient_control_number"] == pcn]
    return row


# -- refunds -------------------------------------------------------------------------------------------


def test_refunds_are_the_work_queue_paged_by_cursor(built: tuple[Api, Any]) -> None:
    """The refunds are `refund list --format json`'s rows in its order (due day, refund id); with
    limit=2 they come in pages of 2 linked by ``next``, each once; the filters are the list's."""
    a, outputs = built
    listed = json.loads(cli("refund", "list", "--db", a.app.state.served.db_url, "--as-of", AS_OF, "--config", CONFIG, "--format", "json").stdout)
    assert len(listed) == len(outputs["refund_requests"]) == 4
    first = a.get("/api/v1/refunds", limit=2)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    page = first.json()
    assert [r["refund_id"] for r in page["items"]] == [r["refund_id"] for r in listed[:2]]
    assert page["next"].startswith("http://testserver/api/v1/refunds?") and "limit=2" in page["next"]
    assert a.every("/api/v1/refunds", limit=2) == listed
    assert a.every("/api/v1/refunds", limit=3) == listed
    assert a.get("/api/v1/refunds").json() == {"items": listed, "next": None}
    assert {r["amount"] for r in listed} == {"15.00", "27.00", "155.50", "99.96"}  # strings, never numbers

    rows = {r["patient_control_number"]: r for r in listed}
    assert [r["refund_id"] for r in a.get("/api/v1/refunds", status="held").json()["items"]] == [rows["RFM2606001"]["refund_id"]]
    assert [r["patient_control_number"] for r in a.get("/api/v1/refunds", status=["held", "pending"]).json()["items"]] == sorted(
        ["RFM2606001", "RFM2602001"], key=lambda p: (rows[p]["due_by"], rows[p]["refund_id"])
    )
    assert {r["patient_control_number"] for r in a.get("/api/v1/refunds", reason="DUPLICATE_PAYMENT").json()["items"]} == {"RFM2602001", "RFM2604001"}
    assert [r["patient_control_number"] for r in a.get("/api/v1/refunds", payee_type="patient").json()["items"]] == ["RFM2606001"]
    assert [r["patient_control_number"] for r in a.get("/api/v1/refunds", payer="77099").json()["items"]] == ["RFM2605001"]
    assert a.get("/api/v1/refunds", due_before="2026-01-01").json() == {"items": [], "next": None}
    assert a.get("/api/v1/refunds", overdue="true").json()["items"] == []
    assert len(a.get("/api/v1/refunds", assigned_to="").json()["items"]) == 4
    for bad in ({"status": "lost"}, {"payee_type": "aunt"}, {"limit": 0}, {"limit": 1001}, {"due_before": "2026-02-30"}, {"cursor": "%%%"}, {"cursor": "e30"}):
        got = a.get("/api/v1/refunds", **bad)
        assert got.status_code == 422, (bad, got.text)


def test_a_cursor_page_neither_repeats_nor_skips_when_items_change() -> None:
    """A cursor names the last key given and how many of that key: items added or removed before
    it between two calls shift nothing; ties on a key are given each once."""
    items = [((k, ""), {"k": k, "i": i}) for i, k in enumerate("abbbc")]
    one = api._page(items, None, 2)
    assert [x["i"] for x in one.items] == [0, 1]
    two = api._page(items[1:] + [(("a", ""), {"k": "a", "i": 9})], one.cursor, 2)  # "a" gone, another "a" added
    assert [x["i"] for x in two.items] == [2, 3]
    three = api._page(items, two.cursor, 2)
    assert ([x["i"] for x in three.items], three.cursor) == ([4], None)
    with pytest.raises(HTTPException) as bad:
        api._page(items, api._encode({"k": [1], "n": 1}), 2)
    assert bad.value.status_code == 422


def test_one_refund_its_request_evidence_recoupments_and_trail(built: tuple[Api, Any]) -> None:
    """A refund is its row of refund_requests.jsonl (evidence apart), the workflow's state, its
    evidence with file:segment, the payer's take-backs tied to it and its audit trail; 404 unknown."""
    a, outputs = built
    for request in outputs["refund_requests"]:
        got = a.get(f"/api/v1/refunds/{request['refund_id']}")
        assert got.status_code == 200
        doc = got.json()
        evidence = request.pop("evidence")
        assert doc["refund_request"] == request
        assert [{k: v for k, v in e.items() if k != "at"} for e in doc["evidence"]] == evidence
        assert all(e["at"] == f"{e['file']}:{e['segment']}" for e in doc["evidence"] if "file" in e)
        assert doc["history"][0]["user"] == "edirecon" and doc["history"][0]["from_status"] is None
    medicare = a.get(f"/api/v1/refunds/{by_pcn(outputs['refund_requests'], 'RFM2604001')['refund_id']}").json()
    assert (medicare["workflow_status"], medicare["amount"], medicare["recouped"], medicare["outstanding"]) == ("settled", "99.96", "99.96", "0.00")
    assert [(r["kind"], r["trace_number"], r["amount"], r["effective_date"]) for r in medicare["recoupments"]] == [
        ("PLB_WO", "0000902377", "99.96", "2026-11-20")
    ]
    assert {e["at"].rsplit(":", 1)[0] for e in medicare["evidence"]} <= {str(p.relative_to(REPO)) for p in PLB.iterdir()}
    assert [(h["user"], h["action"], h["to_status"]) for h in medicare["history"]] == [("edirecon", "identified", "settled")]
    assert medicare["history"][0]["at"].endswith("Z")
    patient = a.get(f"/api/v1/refunds/{by_pcn(outputs['refund_requests'], 'RFM2606001')['refund_id']}").json()
    assert patient["evidence"] == [{"patient_payment_id": "PP-2026-000731", "paid_on": "2026-07-21", "amount": "40.00"}]
    missing = a.get("/api/v1/refunds/RF-0000000000000000")
    assert (missing.status_code, missing.json()) == (404, {"detail": "no refund 'RF-0000000000000000' in the store"})


# -- actions ------------------------------------------------------------------------------------------------


def test_actions_as_the_cli_takes_them_audited_under_the_tokens_user(built: tuple[Api, Any]) -> None:
    """approve, mark-sent (method, reference, date, amount), assign, note, hold, void: 200 with the
    refund after it; the audit trail (and `refund show`) names the token's user; what the workflow
    refuses is a 409 with its reason and changes nothing; bad input a 422."""
    a, outputs = built
    dup = by_pcn(outputs["refund_requests"], "RFM2602001")["refund_id"]
    cob = by_pcn(outputs["refund_requests"], "RFM2605001")["refund_id"]
    patient = by_pcn(outputs["refund_requests"], "RFM2606001")["refund_id"]
    done = a.post(f"/api/v1/refunds/{dup}/approve", body={"note": "checked the EOB"})
    assert done.status_code == 200, done.text
    assert done.json()["workflow_status"] == "approved"
    assert done.json()["history"][-1] | {"at": ""} == {
        "at": "",
        "user": "paul",
        "action": "approve",
        "from_status": "pending",
        "to_status": "approved",
        "note": "checked the EOB",
    }
    again = a.post(f"/api/v1/refunds/{dup}/approve")
    assert (again.status_code, again.json()) == (409, {"detail": f"{dup} is approved: approve is allowed only when it is held or pending"})
    too_much = a.post(f"/api/v1/refunds/{dup}/mark-sent", body={"method": "check", "reference": "5001", "amount": "155.51"})
    assert (too_much.status_code, too_much.json()["detail"]) == (409, f"{dup}: cannot send 155.51: 155.50 is outstanding")
    for bad in (
        {"method": "check"},  # a check needs its number
        {"method": "cash", "reference": "1"},
        {"method": "check", "reference": "5001", "amount": 155.5},  # money is a string, never a float
        {"method": "check", "reference": "5001", "amount": "-1.00"},
        {"method": "check", "reference": "5001", "date": "2026-11-31"},
        {"method": "check", "reference": "5001", "colour": "red"},
    ):
        got = a.post(f"/api/v1/refunds/{dup}/mark-sent", body=bad)
        assert got.status_code == 422, (bad, got.text)
    sent = a.post(f"/api/v1/refunds/{dup}/mark-sent", body={"method": "check", "reference": "5001", "date": "2026-11-28", "amount": "155.50"})
    assert sent.status_code == 200, sent.text
    doc = sent.json()
    assert (doc["workflow_status"], doc["workflow"]["method"], doc["workflow"]["reference"], doc["workflow"]["sent_on"], doc["workflow"]["sent_amount"]) == (
        "sent",
        "check",
        "5001",
        "2026-11-28",
        "155.50",
    )
    assert doc["history"][-1]["note"] == "check 5001 of 155.50 on 2026-11-28"
    assert a.post(f"/api/v1/refunds/{cob}/assign", who="ann", body={"to": "ann"}).json()["assigned_to"] == "ann"
    assert a.post(f"/api/v1/refunds/{cob}/note", who="ann", body={"note": "called Medicaid"}).json()["history"][-1]["note"] == "called Medicaid"
    assert a.post(f"/api/v1/refunds/{cob}/note", who="ann", body={"note": " "}).status_code == 422
    assert a.post(f"/api/v1/refunds/{patient}/void", body={}).status_code == 422  # void needs a note saying why
    assert a.post(f"/api/v1/refunds/{patient}/void", body={"note": "patient asked to keep it as credit"}).json()["workflow_status"] == "voided"
    assert a.post(f"/api/v1/refunds/{dup}/acknowledge", body={"reference": "LTR-7", "date": "2026-11-30"}).json()["workflow_status"] == "acknowledged"
    assert a.post(f"/api/v1/refunds/{dup}/frobnicate").status_code == 422
    assert a.post("/api/v1/refunds/RF-0000000000000000/approve").status_code == 404
    shown = cli("refund", "show", dup, "--db", a.app.state.served.db_url, "--as-of", AS_OF, "--config", CONFIG).stdout
    assert "paul" in shown and "checked the EOB" in shown and "check 5001 of 155.50 on 2026-11-28" in shown
    assert [(h["user"], h["action"]) for h in a.get(f"/api/v1/refunds/{cob}").json()["history"]] == [
        ("edirecon", "auto-approved"),
        ("ann", "assign"),
        ("ann", "note"),
    ]


# -- authentication and roles ---------------------------------------------------------------------------------


def test_tokens_and_roles(built: tuple[Api, Any]) -> None:
    """401 without a token, with a malformed or unknown one, a revoked one, or one of a disabled
    user (WWW-Authenticate: Bearer); a viewer reads but acts on nothing (403), an analyst holds but
    does not approve; a refusal changes nothing.  No log event holds a token or a patient's name."""
    a, outputs = built
    dup = by_pcn(outputs["refund_requests"], "RFM2602001")["refund_id"]
    with capture_logs() as logs:
        none = a.client.get("/api/v1/refunds")
        assert (none.status_code, none.headers["www-authenticate"]) == (401, "Bearer")
        assert a.client.get("/api/v1/refunds", headers={"Authorization": "Basic dmVyYTp4"}).status_code == 401
        assert a.client.get("/api/v1/refunds", headers={"Authorization": "Bearer edr_00000000_" + "x" * 43}).status_code == 401
        for path in ("/api/v1/refunds", f"/api/v1/refunds/{dup}", "/api/v1/recoupments", "/api/v1/credit-balances", "/api/v1/exceptions", "/api/v1/changes"):
            assert a.client.get(path).status_code == 401, path
            assert a.get(path).status_code == 200, path
        assert a.client.post(f"/api/v1/refunds/{dup}/approve").status_code == 401
        for action, body in (("approve", {}), ("hold", {}), ("note", {"note": "x"}), ("assign", {"to": "vera"}), ("void", {"note": "x"})):
            refused = a.post(f"/api/v1/refunds/{dup}/{action}", who="vera", body=body)
            assert (refused.status_code, refused.json()) == (403, {"detail": f"user vera (viewer) may not {action}"})
        assert a.post(f"/api/v1/refunds/{dup}/approve", who="ann").status_code == 403
        assert a.post(f"/api/v1/refunds/{dup}/hold", who="ann").json()["workflow_status"] == "held"
        assert [h["user"] for h in a.get(f"/api/v1/refunds/{dup}").json()["history"]] == ["edirecon", "ann"]

        u.revoke_token(a.store, a.tokens["ann"])
        revoked = a.get("/api/v1/refunds", who="ann")
        assert (revoked.status_code, revoked.json()["detail"]) == (401, f"API token {u.token_id_of(a.tokens['ann'])} is revoked")
        u.disable_user(a.store, "paul")
        disabled = a.post(f"/api/v1/refunds/{dup}/approve", who="paul")
        assert (disabled.status_code, disabled.json()["detail"]) == (401, "user paul is disabled")
        assert a.get(f"/api/v1/refunds/{dup}").json()["workflow_status"] == "held"
    text = json.dumps([{k: str(v) for k, v in event.items()} for event in logs])
    assert all(token not in text for token in a.tokens.values())
    assert "GARCIA" not in text and "LEE, KAREN" not in text
    assert any(e["event"] == "refund_action" and e["user"] == "ann" for e in logs)


# -- what the engine decided ----------------------------------------------------------------------------------


def test_recoupments_credit_balances_and_exceptions_are_the_runs_rows(built: tuple[Api, Any]) -> None:
    """Each list is the rows of the run's .jsonl in its order (amounts strings, days ISO), paged:
    2 recoupments (a claim reversal, a PLB WO), 12 balances, 11 exceptions."""
    a, outputs = built
    for path, name in (("recoupments", "recoupments"), ("credit-balances", "credit_balances"), ("exceptions", "exceptions")):
        assert len(outputs[name]) > 1, name
        assert a.every(f"/api/v1/{path}", limit=1) == outputs[name], name
        assert a.every(f"/api/v1/{path}", limit=2) == outputs[name], name
        assert a.get(f"/api/v1/{path}").json() == {"items": outputs[name], "next": None}
    assert {r["balance"] for r in outputs["credit_balances"]} <= {r["balance"] for r in a.get("/api/v1/credit-balances").json()["items"]}
    assert a.get("/api/v1/exceptions", cursor="bm90IGpzb24").status_code == 422


# -- the changes feed --------------------------------------------------------------------------------------


def test_changes_feed_resumes_from_its_cursor(in_repo: Path, tmp_path: Path) -> None:
    """The feed gives every audit event once, oldest first, page by page; polled from its last
    cursor it gives only what happened since: the people's actions, and the engine's (a refund
    sent, then taken back by Medicare's remit-3: a double refund), none twice, none missed."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    rid = by_pcn(run(db, tmp_path / "out", "2026-10-20", PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835")["refund_requests"], "RFM2604001")[
        "refund_id"
    ]
    a = Api(db, "2026-10-20")
    try:
        first = a.get("/api/v1/changes").json()
        assert [(c["refund_id"], c["user"], c["action"], c["from_status"], c["to_status"]) for c in first["items"]] == [
            (rid, "edirecon", "identified", None, "pending")
        ]
        cursor = first["cursor"]
        assert first["next"] == f"http://testserver/api/v1/changes?since={cursor}"
        quiet = a.get("/api/v1/changes", since=cursor).json()
        assert (quiet["items"], quiet["cursor"], quiet["next"]) == ([], cursor, first["next"])

        assert a.post(f"/api/v1/refunds/{rid}/approve", body={"note": "ok"}).status_code == 200
        new = a.get("/api/v1/changes", since=cursor).json()
        assert [(c["user"], c["action"], c["to_status"]) for c in new["items"]] == [("paul", "approve", "approved")]
        cursor = new["cursor"]

        a.day = date(2026, 11, 2)
        assert a.post(f"/api/v1/refunds/{rid}/mark-sent", body={"method": "check", "reference": "5001"}).status_code == 200
        assert a.post(f"/api/v1/refunds/{rid}/note", who="ann", body={"note": "mailed"}).status_code == 200
        run(db, tmp_path / "out2", "2026-12-01", PLB / "remit-3.835")  # Medicare also takes it back
        a.day = date(2026, 12, 1)
        paged = a.every("/api/v1/changes", since=cursor, limit=1)
        assert [(c["user"], c["action"], c["from_status"], c["to_status"]) for c in paged] == [
            ("paul", "mark-sent", "approved", "sent"),
            ("ann", "note", "sent", "sent"),
            ("edirecon", "double_refund", "sent", "double_refund"),
        ]
        assert "99.96 to recover" in paged[-1]["note"]
        whole = a.every("/api/v1/changes", limit=2)
        assert [c["action"] for c in whole] == ["identified", "approve", "mark-sent", "note", "double_refund"]
        assert len({c["cursor"] for c in whole}) == 5
        assert a.get("/api/v1/changes", since="nonsense").status_code == 422
    finally:
        a.store.dispose()


# -- hostile text --------------------------------------------------------------------------------------------


MARKUP = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("//x.example/a","y")'


def test_hostile_text_comes_back_as_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The formula-payloads scenario with a patient named in markup: the API gives each name as
    the files have it once parsed (no apostrophe, no entity), and its bytes hold no markup: < > &
    are JSON escapes, the type is JSON and not to be sniffed.  A note in markup likewise."""
    scenario = tmp_path / "scenario"
    shutil.copytree(FIXTURES / "engine" / "formula-payloads-in-names-and-ids", scenario)
    for path in scenario.iterdir():
        if path.suffix in (".835", ".837", ".csv"):
            path.write_bytes(path.read_bytes().replace(b"+SUM(1+1)", MARKUP.encode()))
    monkeypatch.chdir(scenario)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    run(db, tmp_path / "out", AS_OF, ".")
    a = Api(db)
    try:
        got = a.get("/api/v1/refunds")
        names = {r["reason"]: r["patient_name"] for r in got.json()["items"]}
        assert names == {"DUPLICATE_PAYMENT": f"{FORMULA}, ANNA", "PATIENT_OVERPAYMENT": f"{MARKUP}, OSCAR"}
        assert (got.headers["content-type"], got.headers["x-content-type-options"]) == ("application/json", "nosniff")
        assert b"<" not in got.content and b"\\u003cscript\\u003e" in got.content
        rid = next(r["refund_id"] for r in got.json()["items"] if r["reason"] == "PATIENT_OVERPAYMENT")
        noted = a.post(f"/api/v1/refunds/{rid}/note", who="ann", body={"note": f'<img src=x onerror="alert(2)"> & {FORMULA}'})
        assert noted.json()["history"][-1]["note"] == f'<img src=x onerror="alert(2)"> & {FORMULA}'
        assert b"<" not in noted.content and b"&" not in noted.content
        shown = a.get(f"/api/v1/refunds/{rid}")
        assert shown.json()["refund_request"]["patient_name"] == f"{MARKUP}, OSCAR"
        assert b"<" not in shown.content
        files = {x["source_file"] for x in a.get("/api/v1/exceptions").json()["items"]}
        assert "=remit-3.835" in files  # a file name that begins like a formula, as it is
    finally:
        a.store.dispose()


def test_openapi_document(built: tuple[Api, Any]) -> None:
    """/api/v1/openapi.json documents every endpoint, the bearer scheme and the action body."""
    a, _ = built
    doc = a.client.get("/api/v1/openapi.json").json()
    assert {p for p in doc["paths"] if p.startswith("/api/v1/")} >= {
        "/api/v1/refunds",
        "/api/v1/refunds/{refund_id}",
        "/api/v1/refunds/{refund_id}/{action}",
        "/api/v1/recoupments",
        "/api/v1/credit-balances",
        "/api/v1/exceptions",
        "/api/v1/changes",
    }
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token of `edirecon token create NAME` (docs/users.md).",
    }
    body = doc["components"]["schemas"]["ActionBody"]["properties"]
    assert set(body) == {"note", "method", "reference", "date", "amount", "to"}
    assert body["amount"]["anyOf"][0]["type"] == "string"


# -- PostgreSQL ---------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_same_app_on_postgresql(in_repo: Path, tmp_path: Path, pg_url: str) -> None:
    """On PostgreSQL: paging, one refund, an action audited under the token's user, a 409, the feed."""
    outputs = run(pg_url, tmp_path / "out", AS_OF, *(Path("sample_edi") / s for s in SCENARIOS))
    a = Api(pg_url)
    try:
        listed = a.every("/api/v1/refunds", limit=2)
        assert sorted(r["refund_id"] for r in listed) == sorted(r["refund_id"] for r in outputs["refund_requests"])
        assert a.every("/api/v1/credit-balances", limit=5) == outputs["credit_balances"]
        dup = by_pcn(outputs["refund_requests"], "RFM2602001")["refund_id"]
        cursor = a.get("/api/v1/changes").json()["cursor"]
        assert a.post(f"/api/v1/refunds/{dup}/approve").json()["history"][-1]["user"] == "paul"
        assert a.post(f"/api/v1/refunds/{dup}/approve").status_code == 409
        assert a.post(f"/api/v1/refunds/{dup}/approve", who="vera").status_code == 403
        assert [(c["refund_id"], c["user"], c["action"]) for c in a.get("/api/v1/changes", since=cursor).json()["items"]] == [(dup, "paul", "approve")]
    finally:
        a.store.dispose()
