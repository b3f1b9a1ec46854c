"""The JSON API under ``/api/v1`` for downstream billing systems (docs/api.md).

Every call is authenticated with ``Authorization: Bearer <token>`` (``users.resolve_token``: 401
without a valid token, for a revoked one or a disabled user) and reads and writes the store through
the workflow's own functions, as the CLI does: ``views.refund_list`` (the work queue and its
filters), ``refunds.book`` (the engine's decisions and the workflow's state), ``refunds.act_many``
(the actions: same rules, same audit trail under the token's user, same log events).  An action
the token's role does not allow is a 403 (``users.ROLE_ACTIONS``); one the refund's state does not
allow a 409 with the workflow's reason.

Amounts are strings with two decimals, days ISO.  Lists are paged with an opaque cursor over a
stable order (``_page``); ``/changes`` is the id-ordered feed of ``refund_events``.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from edirecon.engine.record import decided
from edirecon.engine.record.decided import jsonable
from edirecon.engine.record.writers import refund_request
from edirecon.engine.workflow import lists, refunds, views
from edirecon.engine.workflow import users as accounts
from edirecon.engine.workflow.refunds import Book, View
from edirecon.errors import Forbidden, NotAllowed, StoreUnavailable, Unauthorized, UsageError


class SafeJSON(JSONResponse):
    """JSON whose text from 837/835 files and people can never be taken for markup: ``<``, ``>``
    and ``&`` are written as ``\\u003c``, ``\\u003e``, ``\\u0026`` (the same text once parsed),
    and the browser is told not to guess another type (``nosniff``)."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("utf-8")

    def init_headers(self, headers: Any = None) -> None:
        super().init_headers(headers)
        self.raw_headers.append((b"x-content-type-options", b"nosniff"))


router = APIRouter(
    prefix="/api/v1", default_response_class=SafeJSON, responses={401: {"description": "No valid API token (missing, unknown, revoked, or of a disabled user)"}}
)

#: the page size of every list when ``limit`` is not given, and the largest one allowed
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_bearer = HTTPBearer(auto_error=False, description="An API token of `edirecon token create NAME` (docs/users.md).")


# -- who calls, and on what day ---------------------------------------------------------------------


def today() -> date:
    """The as-of day of every call: today, UTC (a dependency, so tests can fix it)."""
    return datetime.now(UTC).date()


def served(request: Request) -> Any:
    """The app's ``Served`` (store, URL, configuration)."""
    return request.app.state.served


def caller(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> accounts.User:
    """The user the bearer token acts for; 401 without one, for an unknown or revoked token, or
    a disabled user.  The token itself is never logged nor echoed."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(401, "an API token is needed: Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    try:
        return accounts.resolve_token(served(request).store, credentials.credentials)
    except Unauthorized as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


User = Annotated[accounts.User, Depends(caller)]
AsOf = Annotated[date, Depends(today)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT}).")]


def _book(request: Request, as_of: date, refund_ids: Sequence[str] = ()) -> Book:
    """The refunds ``refund_ids`` synced and read (none: only what a person or the engine changed
    since the last sync is synced): the claim-number closure of those refunds is decided when the
    recorded decisions are current, the whole store once when not (``refunds.refunds_book``)."""
    s = served(request)
    try:
        return refunds.refunds_book(s.store, list(refund_ids), as_of, s.config)
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc


# -- JSON values ------------------------------------------------------------------------------------


# -- paging -----------------------------------------------------------------------------------------

Key = decided.Key


def _encode(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(422, "not a cursor of this API (give back the one a response gave)") from exc
    if not isinstance(payload, dict):
        raise HTTPException(422, "not a cursor of this API (give back the one a response gave)")
    return payload


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    cursor: str | None  # where the next page starts; None when this one is the last


def _page(keyed: Iterable[tuple[Key, dict[str, Any]]], cursor: str | None, limit: int) -> Page:
    """One page of items in the order of their keys, after ``cursor``.  The cursor names the last
    key given and how many items of that key were given, so a page starts where the last ended
    even when items come and go between calls (none given twice, none after it skipped)."""
    ordered = sorted(keyed, key=lambda pair: pair[0])
    keys = [k for k, _ in ordered]
    start = 0
    if cursor:
        payload = _decode(cursor)
        last, seen = payload.get("k"), payload.get("n")
        if not isinstance(last, list) or not all(isinstance(p, str) for p in last) or not isinstance(seen, int) or seen < 1:
            raise HTTPException(422, "not a cursor of this list (give back the one a response gave)")
        key = tuple(last)
        start = min(bisect_left(keys, key) + seen, bisect_right(keys, key))
    chosen = ordered[start : start + limit]
    if start + limit >= len(ordered) or not chosen:
        return Page([item for _, item in chosen], None)
    last_key = chosen[-1][0]
    given = start + len(chosen) - bisect_left(keys, last_key)
    return Page([item for _, item in chosen], _encode({"k": list(last_key), "n": given}))


def _listing(request: Request, page: Page) -> dict[str, Any]:
    """``{"items": [...], "next": <the URL of the next page, or null>}``."""
    following = str(request.url.include_query_params(cursor=page.cursor)) if page.cursor else None
    return {"items": page.items, "next": following}


Cursor = Annotated[str | None, Query(description="The cursor of the page to give: from the `next` URL of the previous page.")]


# -- refunds ----------------------------------------------------------------------------------------


@router.get("/refunds", summary="The refunds of the work queue, by due day then refund id")
def list_refunds(
    request: Request,
    user: User,
    as_of: AsOf,
    status: Annotated[list[str] | None, Query(description="Workflow status (repeatable).")] = None,
    reason: Annotated[list[str] | None, Query(description="Reason, e.g. DUPLICATE_PAYMENT (repeatable).")] = None,
    payer: Annotated[str | None, Query(description="Payer id.")] = None,
    payee_type: Annotated[str | None, Query(description="payer or patient.")] = None,
    overdue: Annotated[bool, Query(description="Only those still to be worked after their due day.")] = False,
    due_before: Annotated[date | None, Query(description="Only those due before this day (YYYY-MM-DD).")] = None,
    assigned_to: Annotated[str | None, Query(description='Only those assigned to this user ("" for nobody).')] = None,
    escheatment: Annotated[bool, Query(description="Only unclaimed-property candidates.")] = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The rows of `refund list --format json`, filtered as it filters; cursor-paged.  The store
    filters, and only the page's rows are read whole (``views.refund_page``)."""
    after: tuple[date | None, str] | None = None
    if cursor:
        payload = _decode(cursor)
        last = payload.get("k")
        if not isinstance(last, list) or len(last) != 2 or not all(isinstance(p, str) for p in last) or payload.get("n") != 1:
            raise HTTPException(422, "not a cursor of this list (give back the one a response gave)")
        try:
            due = date.fromisoformat(last[0])
        except ValueError as exc:
            raise HTTPException(422, "not a cursor of this list (give back the one a response gave)") from exc
        after = (None if due == date.max else due, last[1])
    s = served(request)
    try:
        found = views.refund_page(
            s.db_url,
            as_of,
            s.config,
            status or (),
            payer,
            escheatment,
            overdue=overdue,
            due_before=due_before,
            reasons=reason or (),
            payee_type=payee_type,
            assigned_to=assigned_to,
            limit=limit,
            after=after,
        )
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from exc
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    more = found.more and found.rows
    # the cursor names the last row given (its due day, date.max for none, and refund id: unique)
    following = _encode({"k": [(found.rows[-1].due_by or date.max).isoformat(), found.rows[-1].refund_id], "n": 1}) if more else None
    return _listing(request, Page([r.record() for r in found.rows], following))


RefundId = Annotated[str, Path(description="A refund id (RF-…).", max_length=32)]


@router.get("/refunds/{refund_id}", summary="One refund: its request, workflow state, evidence, recoupments and audit trail")
def get_refund(request: Request, refund_id: RefundId, user: User, as_of: AsOf) -> dict[str, Any]:
    s = served(request)
    try:
        b = lists.refund_book(s.store, refund_id, as_of, s.config)
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    v = b.views.get(refund_id)
    if v is None:
        raise HTTPException(404, f"no refund {refund_id[:40]!r} in the store")
    return refund_document(b, v, refunds.events(served(request).store, refund_id))


def refund_document(b: Book, v: View, trail: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One refund as JSON: its work-queue row's facts, the refund request as refund_requests.csv
    has it (``null`` when the engine no longer identifies the refund), the workflow's state, the
    evidence with its ``file:segment``, the payer's take-backs tied to it, and its audit trail."""
    r, s = v.refund, v.state
    due = r.due_by if r is not None else None
    request_fields: dict[str, Any] | None = None
    evidence: list[dict[str, Any]] = []
    tied: list[dict[str, Any]] = []
    if r is not None:
        request_fields = refund_request(r)
        for ev in r.evidence:
            item = dict(ev)
            if "file" in item:
                item["at"] = f"{item['file']}:{item['segment']}"
            evidence.append(item)
        tied = [
            {
                "recoupment_id": rc.recoupment_id,
                "kind": rc.kind,
                "payer_id": rc.payer_id,
                "trace_number": rc.trace_number,
                "effective_date": rc.effective_date,
                "amount": rc.amount,
                "payer_claim_control_number": rc.icn,
                "refund_id": rc.refund_id,
                "status": rc.status,
            }
            for rc in b.decisions.recoupments
            if rc.encounter is r.encounter and rc.payer_id == r.payer_id and (rc.refund_id == r.refund_id or (r.icn and rc.icn == r.icn))
        ]
    workflow = {k: s[k] for k in _STATE_FIELDS if k in s}
    doc = {
        "refund_id": v.refund_id,
        "workflow_status": v.status,
        "assigned_to": s["assigned_to"] or "",
        "reason": s["reason"],
        "payee_type": v.payee_type,
        "amount": v.amount,
        "recouped": v.recouped,
        "outstanding": v.outstanding,
        "due_by": due,
        "credit_since": v.arose_on,
        "escheatment_candidate": b.escheatment_candidate(v),
        "identified_by_engine": r is not None,
        "refund_request": request_fields,
        "workflow": workflow,
        "evidence": evidence,
        "recoupments": tied,
        "history": [_event(ev) for ev in trail],
    }
    return jsonable(doc)  # type: ignore[no-any-return]


def _event(ev: dict[str, Any]) -> dict[str, Any]:
    """A ``refund_events`` row as the API shows it: in a refund's history and in the changes feed."""
    return {
        "at": ev["at"],
        "user": ev["user_name"],
        "action": ev["action"],
        "from_status": ev["from_status"] or None,
        "to_status": ev["to_status"],
        "note": ev["note"] or "",
    }


#: the columns of ``refund_workflow`` the API shows under ``workflow`` (what people and payers did)
_STATE_FIELDS = (
    "status",
    "assigned_to",
    "method",
    "reference",
    "sent_on",
    "sent_amount",
    "acknowledged_by",
    "acknowledged_on",
    "acknowledged_amount",
    "double_refund_amount",
    "double_refund_traces",
    "recovered_on",
    "recovered_amount",
    "cashed_on",
    "updated_at",
)


class ActionBody(BaseModel):
    """What an action takes besides the refund: the options of its `refund` command."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=2000, description="Recorded in the audit trail; void and note need one.")
    method: Literal["", "check", "eft", "adjustment"] = Field("", description="mark-sent: how it was sent.")
    reference: str = Field("", max_length=50, description="mark-sent: the check or EFT number; acknowledge: the payer's confirmation number.")
    day: date | None = Field(None, alias="date", description="mark-sent, mark-cashed, mark-recovered, acknowledge: the day (YYYY-MM-DD); today when not given.")
    amount: str | None = Field(
        None,
        pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$",
        description='mark-sent, mark-recovered: the amount as a string ("123.45"); the outstanding amount when not given.',
    )
    to: str | None = Field(None, max_length=64, description='assign: the user to assign it to ("" unassigns).')


Action = Literal["approve", "hold", "void", "mark-sent", "mark-cashed", "mark-recovered", "acknowledge", "assign", "note"]


@router.post(
    "/refunds/{refund_id}/{action}",
    summary="Take a workflow action on a refund",
    responses={
        403: {"description": "The token's role does not allow it"},
        404: {"description": "No such refund"},
        409: {"description": "The refund's state does not allow it (the reason)"},
    },
)
def act_on_refund(request: Request, refund_id: RefundId, action: Action, user: User, as_of: AsOf, body: ActionBody | None = None) -> dict[str, Any]:
    """The action as `edirecon refund ACTION` takes it, recorded under the token's user; the
    refund after it."""
    try:
        user.require(action)
    except Forbidden as exc:
        raise HTTPException(403, str(exc)) from exc
    body = body or ActionBody.model_validate({})
    s = served(request)
    try:
        refunds.act(
            s.store,
            refund_id,
            action,
            user.name,
            as_of,
            s.config,
            body.note,
            method=body.method,
            reference=body.reference,
            day=body.day,
            amount=Decimal(body.amount) if body.amount is not None else None,
            assignee=body.to,
        )
    except NotAllowed as exc:
        raise HTTPException(409, str(exc)) from exc
    except UsageError as exc:
        b = _book(request, as_of, [refund_id])
        raise HTTPException(422 if refund_id in b.views else 404, str(exc) if refund_id in b.views else f"no refund {refund_id[:40]!r} in the store") from exc
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    return get_refund(request, refund_id, user, as_of)


# -- what the engine decided ------------------------------------------------------------------------


def _decided_list(request: Request, as_of: date, name: str, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of the rows ``run`` recorded of the output ``name`` (``workflow.lists``: one indexed
    query while they are current), in the order of their keys, with the cursor ``_page`` gives."""
    last: Key | None = None
    seen = 0
    if cursor:
        payload = _decode(cursor)
        k, n = payload.get("k"), payload.get("n")
        if not isinstance(k, list) or not all(isinstance(p, str) for p in k) or not isinstance(n, int) or n < 1:
            raise HTTPException(422, "not a cursor of this list (give back the one a response gave)")
        last, seen = tuple(k), n
    s = served(request)
    try:
        found = lists.page(s.store, name, as_of, s.config, last, seen, limit)
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    following = None if found.last is None else _encode({"k": list(found.last), "n": found.given})
    return _listing(request, Page(found.items, following))


@router.get("/recoupments", summary="The payers' take-backs (the rows of recoupments.csv)")
def list_recoupments(request: Request, user: User, as_of: AsOf, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> dict[str, Any]:
    return _decided_list(request, as_of, "recoupments", cursor, limit)


@router.get("/credit-balances", summary="The encounters with a balance (the rows of credit_balances.csv)")
def list_credit_balances(request: Request, user: User, as_of: AsOf, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> dict[str, Any]:
    return _decided_list(request, as_of, "credit_balances", cursor, limit)


@router.get("/exceptions", summary="What the engine could not judge (the rows of exceptions.csv)")
def list_exceptions(request: Request, user: User, as_of: AsOf, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> dict[str, Any]:
    return _decided_list(request, as_of, "exceptions", cursor, limit)


# -- the changes feed -------------------------------------------------------------------------------


def _event_cursor(event_id: int) -> str:
    return _encode({"e": event_id})


@router.get("/changes", summary="The ordered feed of workflow and engine changes (refund_events)")
def list_changes(
    request: Request,
    user: User,
    as_of: AsOf,
    since: Annotated[str | None, Query(description="The cursor of the last change seen (none: from the first).")] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Every change after ``since``, oldest first: a refund entered (``identified``,
    ``auto-approved``), changed by the engine (``amount_changed``, ``rejudged``, ``settled``,
    ``withdrawn``, ``acknowledged``, ``double_refund`` …) or by a person (``approve``, ``mark-sent``
    …).  The workflow is synced with the engine first, so the engine's changes are in the feed.
    ``next`` is the URL to poll from (always given: it names the last change seen)."""
    after = 0
    if since:
        payload = _decode(since)
        if not isinstance(payload.get("e"), int) or payload["e"] < 0:
            raise HTTPException(422, "not a cursor of the changes feed (give back the one a response gave)")
        after = payload["e"]
    s = served(request)
    try:
        lists.sync_changes(s.store, as_of, s.config)  # record the engine's changes first
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    found = refunds.changes(served(request).store, after, limit)
    items = [{"cursor": _event_cursor(ev["id"]), "refund_id": ev["refund_id"], **_event(ev)} for ev in found]
    last = items[-1]["cursor"] if items else since
    following = str(request.url.include_query_params(since=last)) if last else str(request.url.remove_query_params("since"))
    return {"items": jsonable(items), "next": following, "cursor": last}
