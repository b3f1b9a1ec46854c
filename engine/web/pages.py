"""The HTML work queue of ``edirecon serve`` (docs/serve.md): server-rendered pages, session login.

- ``/login`` (a form of ``username`` and ``password``, checked by ``users.login``: its rate limit,
  lockout and disabled users) and ``/logout``; every other page redirects to ``/login`` without a
  session, and a session ends after ``users.SESSION_HOURS`` without a request (the signed cookie's
  ``max_age``, and the idle time kept in the session) or as soon as its user is disabled;
- ``/worklist``: ``views.refund_list`` with its filters, sorted and paged, and one form acting on
  many refunds (approve, hold, assign) with one note;
- ``/refunds/{refund_id}``: ``views.refund_detail`` and a form per action the user's role and the
  refund's status allow, posting to ``/refunds/{refund_id}/{action}`` (``views.take_action``);
- ``/reports``: ``edirecon report`` run for the logged-in user into a folder of this server, and
  its files (the dashboard, the CSVs, the PDF packets) served from there.

Every form carries the session's CSRF token (a random value kept in the signed session cookie);
a POST without it, or with another, is refused with 403.  Templates are autoescaped: text from
837/835 files is never marked safe.  The workflow functions are the CLI's: same rules, the same
audit trail (with the logged-in user's name) and log events.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from edirecon import mappings
from edirecon.engine.config import Config
from edirecon.engine.logging import get_logger
from edirecon.engine.reports.cms838 import Quarter
from edirecon.engine.reports.report import recoupment_source
from edirecon.engine.reports.report import report as write_report
from edirecon.engine.store.connection import Store
from edirecon.engine.workflow import users as us
from edirecon.engine.workflow import views
from edirecon.engine.workflow.refunds import ACTIONS, MANUAL, METHODS, STATUSES, Book
from edirecon.errors import Forbidden, Unauthorized, UsageError
from edirecon.money import dollars
from edirecon.money import parse as parse_money
from edirecon.money import text as money

log = get_logger("edirecon.web")

HERE = Path(__file__).resolve().parent
#: refunds per page of the work queue
PAGE_SIZE = 100
#: how long a session lasts without a request (the signed cookie's max_age, and checked in it)
IDLE_SECONDS = us.SESSION_HOURS * 3600
#: the most refunds one bulk form may act on
BULK_MAX = 1000
#: the actions of the work queue's bulk form
BULK_ACTIONS = ("approve", "hold", "assign")
#: the sorts of the work queue: name -> label
SORTS = {"due": "due date", "amount": "amount", "days_in_credit": "days in credit"}
COOKIE = "edirecon_session"
CSRF_FIELD = "csrf"
#: the assigned-to filter's value for "assigned to nobody"
NOBODY = "(nobody)"
#: the headers of every page: no framing, no script or style from elsewhere (the pages have no script)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Served(Protocol):
    """``app.Served`` as the pages read it (not imported: app.py imports this module)."""

    store: Store
    db_url: str
    config: Config
    secret: str


def clock() -> float:
    """Seconds since the epoch (tests move it to see a session expire)."""
    return time.time()


def today() -> date:
    """The as-of day of the pages: today, UTC."""
    return datetime.now(UTC).date()


def install(app: FastAPI) -> None:
    """Add the pages, their session middleware and their static files to ``app``."""
    served: Served = app.state.served
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    # amounts for people ($1,234.50); the rows carry the plain text of the CSV and JSON
    env.filters["dollars"] = lambda amount: dollars(Decimal(amount)) if amount not in (None, "") else ""
    templates = Jinja2Templates(env=env)
    # the reports' folder: made at the first POST /reports, removed when the server stops
    app.state.report_dir = None
    writing = asyncio.Lock()  # one report at a time: each rewrites the folder in full

    def _remove_reports() -> None:
        if app.state.report_dir is not None:
            shutil.rmtree(app.state.report_dir, ignore_errors=True)

    app.router.on_shutdown.append(_remove_reports)
    app.add_middleware(
        SessionMiddleware,
        secret_key=served.secret,
        session_cookie=COOKIE,
        max_age=IDLE_SECONDS,
        same_site="lax",
        https_only=False,  # plain HTTP on localhost; docs/serve.md: behind a TLS proxy
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        user = context.pop("user", None)
        body = {"user": user, "csrf": csrf_token(request), **context}
        return templates.TemplateResponse(request, name, body, status_code=status, headers=_HEADERS)

    def guarded(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        """The page's answer to what its handler raises (caught here, not by app-wide handlers,
        which are the API's): Unauthorized (no session, an idle one, its user disabled) -> the
        login page; Forbidden (the role, a CSRF token) -> 403; UsageError (a form, a filter) -> 400."""

        @functools.wraps(handler)
        async def answer(request: Request, **kwargs: Any) -> Response:
            try:
                return await handler(request, **kwargs)
            except Unauthorized:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?" + urlencode({"next": target}) if request.method == "GET" else "/login", status_code=303)
            except Forbidden as exc:
                return page(request, "error.html", 403, user=getattr(request.state, "user", None), title="Not allowed", message=str(exc))
            except UsageError as exc:
                return page(request, "error.html", 400, user=getattr(request.state, "user", None), title="Cannot do that", message=str(exc))

        return answer

    @app.get("/", include_in_schema=False)
    @guarded
    async def home(request: Request) -> Response:
        return RedirectResponse("/worklist", status_code=303)

    @app.get("/login", include_in_schema=False)
    @guarded
    async def login_form(request: Request, next: str = "/worklist") -> Response:
        return page(request, "login.html", next=_safe_next(next), error=None, username="")

    @app.post("/login", include_in_schema=False)
    @guarded
    async def login(request: Request) -> Response:
        form = await _checked_form(request)
        name, password, target = str(form.get("username", "")), str(form.get("password", "")), _safe_next(str(form.get("next", "")))
        try:
            if not name or not password or len(password) > us.MAX_PASSWORD_LENGTH:
                raise Unauthorized("wrong user name or password")
            user = await run_in_threadpool(us.login, served.store, name, password)
        except Unauthorized as exc:
            return page(request, "login.html", 401, next=target, error=str(exc), username=name[:64])
        request.session.clear()  # a new session at login (no fixation): a new CSRF token too
        request.session.update({"user": user.name, "seen": clock(), CSRF_FIELD: secrets.token_urlsafe(32)})
        return RedirectResponse(target, status_code=303)

    @app.post("/logout", include_in_schema=False)
    @guarded
    async def logout(request: Request) -> Response:
        await _checked_form(request)
        name = request.session.get("user")
        request.session.clear()
        if name:
            log.info("logout", user=name)
        return RedirectResponse("/login", status_code=303)

    @app.get("/worklist", include_in_schema=False)
    @guarded
    async def worklist(request: Request) -> Response:
        user = await _current_user(request, served)
        q = request.query_params
        filters = _filters(q)
        sort = q.get("sort", "due") if q.get("sort") in SORTS else "due"
        descending = q.get("order") == "desc"
        number = max(_int(q.get("page"), 1), 1)
        # an unknown status or reason: UsageError, 400
        found = await run_in_threadpool(_list, served, filters, sort, descending, number)
        pages = max(1, -(-found.total // PAGE_SIZE))
        if number > pages:  # past the last page: the last one
            number = pages
            found = await run_in_threadpool(_list, served, filters, sort, descending, number)
        shown = found.rows
        since = found.credit_since if sort == "days_in_credit" else None
        kept = [(k, v) for k, v in q.multi_items() if k != "page"]
        names = [u.name for u in await run_in_threadpool(us.users, served.store) if u.disabled_at is None]
        return page(
            request,
            "worklist.html",
            user=user,
            rows=shown,
            total=found.total,
            page=number,
            pages=pages,
            page_url=lambda n: "/worklist?" + urlencode([*kept, ("page", str(n))]),
            sort_url=lambda s: (
                "/worklist?"
                + urlencode(
                    [*[(k, v) for k, v in kept if k not in ("sort", "order")], ("sort", s), ("order", "desc" if s == sort and not descending else "asc")]
                )
            ),
            sort=sort,
            descending=descending,
            since=since,
            as_of=today(),
            f=filters,
            statuses=STATUSES,
            reasons=tuple(mappings.registry("refund_reason")),
            payee_types=views.PAYEE_TYPES,
            user_names=names,
            nobody=NOBODY,
            bulk_actions=[a for a in BULK_ACTIONS if user.may(a)],
            back="/worklist" + (f"?{request.url.query}" if request.url.query else ""),
        )

    @app.post("/worklist/act", include_in_schema=False)
    @guarded
    async def worklist_act(request: Request) -> Response:
        user = await _current_user(request, served)
        form = await _checked_form(request)
        action = str(form.get("action", ""))
        if action not in BULK_ACTIONS:
            raise UsageError(f"the work queue's form approves, holds or assigns ({action[:30]!r} is none of them)")
        _require(user, action)
        ids = [str(i) for i in form.getlist("refund_id")]
        if not ids:
            raise UsageError("no refund selected: tick the refunds to act on")
        if len(ids) > BULK_MAX:
            raise UsageError(f"{len(ids)} refunds selected: at most {BULK_MAX} at a time")
        details: dict[str, Any] = {}
        if action == "assign":
            details["assignee"] = str(form.get("assignee", ""))
        who, acted = await _act(served, ids, action, user, str(form.get("note", "")), details)
        back = str(form.get("back", ""))
        return page(request, "acted.html", user=user, action=action, who=who, acted=acted, back=back if back.startswith("/worklist") else "/worklist")

    @app.get("/refunds/{refund_id}", include_in_schema=False)
    @guarded
    async def refund_page(request: Request, refund_id: str) -> Response:
        user = await _current_user(request, served)
        return await _refund(request, served, user, refund_id, page)

    @app.post("/refunds/{refund_id}/{action}", include_in_schema=False)
    @guarded
    async def refund_action(request: Request, refund_id: str, action: str) -> Response:
        user = await _current_user(request, served)
        form = await _checked_form(request)
        if action not in ACTIONS:
            raise UsageError(f"no action {action[:30]!r}: one of {', '.join(ACTIONS)}")
        _require(user, action)
        details = _details(action, form)
        _, (acted,) = await _act(served, [refund_id], action, user, str(form.get("note", "")), details)
        if acted.refused is not None:
            return await _refund(request, served, user, refund_id, page, refused=acted.refused, status=409)
        return RedirectResponse(f"/refunds/{refund_id}?" + urlencode({"done": action}), status_code=303)

    @app.get("/reports", include_in_schema=False)
    @guarded
    async def reports(request: Request) -> Response:
        user = await _current_user(request, served)
        folder: Path | None = app.state.report_dir
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder else []
        written = (folder / "report.json").stat().st_mtime if folder and (folder / "report.json").exists() else None
        return page(
            request,
            "reports.html",
            user=user,
            files=files,
            written=datetime.fromtimestamp(written, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if written else None,
        )

    @app.post("/reports", include_in_schema=False)
    @guarded
    async def reports_run(request: Request) -> Response:
        user = await _current_user(request, served)
        await _checked_form(request)
        day = today()
        async with writing:
            if app.state.report_dir is None:
                app.state.report_dir = Path(tempfile.mkdtemp(prefix="edirecon-reports-"))
            await run_in_threadpool(write_report, served.db_url, app.state.report_dir, day, served.config, Quarter.last_ended(day), None, 1)
        log.info("report_written", user=user.name, as_of=day.isoformat())
        return RedirectResponse("/reports", status_code=303)

    @app.get("/reports/files/{name:path}", include_in_schema=False)
    @guarded
    async def report_file(request: Request, name: str) -> Response:
        await _current_user(request, served)
        folder = app.state.report_dir.resolve() if app.state.report_dir is not None else None
        path = (folder / name).resolve() if folder is not None else None
        if folder is None or path is None or not path.is_relative_to(folder) or not path.is_file():
            return page(request, "error.html", 404, user=request.state.user, title="Not found", message="no such report file: write the reports first")
        return FileResponse(path, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


# -- sessions, users, CSRF -------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the session cookie is signed: it is bound to it)."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def _checked_form(request: Request) -> Any:
    """The posted form, once its CSRF token is the session's (403 otherwise)."""
    form = await request.form()
    sent, kept = form.get(CSRF_FIELD), request.session.get(CSRF_FIELD)
    if not isinstance(sent, str) or not isinstance(kept, str) or not kept or not secrets.compare_digest(sent, kept):
        log.info("csrf_refused", path=request.url.path)
        raise Forbidden("the form's security token is missing or out of date: reload the page and try again")  # 403
    return form


async def _current_user(request: Request, served: Served) -> us.User:
    """The logged-in user; :class:`Unauthorized` when there is none, the session has been idle too
    long, or the user is disabled since."""
    name, seen = request.session.get("user"), request.session.get("seen")
    now = clock()
    if not isinstance(name, str) or not isinstance(seen, int | float) or now - seen > IDLE_SECONDS:
        if name:
            log.info("session_expired", user=name)
        request.session.pop("user", None)
        raise Unauthorized("no session")
    try:
        user = await run_in_threadpool(us.get_user, served.store, name)
    except UsageError:
        user = None
    if user is None or user.disabled_at is not None:
        request.session.clear()
        raise Unauthorized("no session")
    request.session["seen"] = now
    request.state.user = user
    return user


def _require(user: us.User, action: str) -> None:
    """:class:`Forbidden` (403) unless the user's role allows the action."""
    if not user.may(action):
        log.info("page_action_refused", user=user.name, role=user.role, action=action)
    user.require(action)


def _safe_next(target: str) -> str:
    """Where to go after logging in: a path of this site only (never another host)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and target != "/login":
        return target
    return "/worklist"


# -- the work queue --------------------------------------------------------------------------------


def _filters(q: Any) -> dict[str, Any]:
    """The work queue's filters from the query string (as ``views.refund_list`` takes them)."""
    due_before = q.get("due_before") or None
    if due_before:
        try:
            due_before = date.fromisoformat(due_before)
        except ValueError as exc:
            raise UsageError(f"due before {due_before[:20]!r} is not a day (YYYY-MM-DD)") from exc
    assigned = q.get("assigned_to") or None
    return {
        "statuses": [s for s in q.getlist("status") if s],
        "reasons": [r for r in q.getlist("reason") if r],
        "payer": (q.get("payer") or "").strip() or None,
        "payee_type": q.get("payee_type") or None,
        "overdue": q.get("overdue") in ("1", "on", "yes"),
        "due_before": due_before,
        "assigned_to": "" if assigned == NOBODY else assigned,
    }


def _list(served: Served, f: dict[str, Any], sort: str, descending: bool, number: int) -> views.Page:
    """Page ``number`` of the work queue with the filters ``f``: the store filters, and only the
    page's rows are read whole (``views.refund_page``)."""
    return views.refund_page(
        served.store,
        today(),
        served.config,
        f["statuses"],
        f["payer"],
        overdue=f["overdue"],
        due_before=f["due_before"],
        reasons=f["reasons"],
        payee_type=f["payee_type"],
        assigned_to=f["assigned_to"],
        sort=sort,
        descending=descending,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )


def _int(text: str | None, default: int) -> int:
    try:
        return int(text or default)
    except ValueError:
        return default


# -- actions ---------------------------------------------------------------------------------------


def _details(action: str, form: Any) -> dict[str, Any]:
    """The details of one action from its form (``views.take_action``'s keywords)."""
    out: dict[str, Any] = {}
    if action == "assign":
        out["assignee"] = str(form.get("assignee", ""))
    if action in ("mark-sent", "acknowledge", "mark-recovered"):
        out["reference"] = str(form.get("reference", "")).strip()
    if action == "mark-sent":
        out["method"] = str(form.get("method", ""))
    if action in ("mark-sent", "mark-cashed", "acknowledge", "mark-recovered"):
        text = str(form.get("date", "")).strip()
        if text:
            try:
                out["day"] = date.fromisoformat(text)
            except ValueError as exc:
                raise UsageError(f"{text[:20]!r} is not a day (YYYY-MM-DD)") from exc
    if action in ("mark-sent", "mark-recovered"):
        text = str(form.get("amount", "")).strip()
        if text:
            amount = parse_money(text)
            if amount is None:
                raise UsageError(f"{text[:20]!r} is not an amount (e.g. 155.50)")
            out["amount"] = amount
    return out


async def _act(served: Served, ids: Sequence[str], action: str, user: us.User, note: str, details: dict[str, Any]) -> tuple[str, list[views.Acted]]:
    """``views.take_action`` by the logged-in user (a usage error, e.g. void without a note: 400)."""
    return await run_in_threadpool(views.take_action, served.store, list(ids), action, user.name, today(), served.config, note.strip(), **details)


def _recoupments(b: Book, refund_id: str) -> list[dict[str, str]]:
    """The payer's take-backs tied to a refund (PLB or claim reversal), each with its file:segment,
    from the book its page was read from (its encounters decided: ``views.refund_detail_book``)."""
    out = []
    for rc in b.decisions.recoupments:
        if rc.refund_id == refund_id:
            source, segment = recoupment_source(b, rc)
            out.append(
                {
                    "kind": rc.kind,
                    "payer": f"{rc.payer_id} {rc.payer_name}".strip(),
                    "trace": rc.trace_number,
                    "date": rc.effective_date.isoformat() if rc.effective_date else "",
                    "amount": money(rc.amount),
                    "source": f"{source}:{segment}" if source else "",
                }
            )
    return out


#: the sections of a refund's page: label of ``refund show`` -> section
_SECTION = {
    "claim": "encounter",
    "patient": "encounter",
    "payee": "encounter",
    "reason": "encounter",
    "amount": "encounter",
    "identified on": "encounter",
    "evidence": "payments",
    "engine status": "recoupments",
    "double refund": "recoupments",
    "recovered": "recoupments",
    "acknowledged": "recoupments",
}


async def _refund(
    request: Request, served: Served, user: us.User, refund_id: str, page: Callable[..., Response], refused: str | None = None, status: int = 200
) -> Response:
    try:
        detail, b = await run_in_threadpool(views.refund_detail_book, served.store, refund_id, today(), served.config)
        labels = dict(detail.fields)
        # only a refund the payer took back (some or all of it) has take-backs to list
        taken = "recouped" in labels.get("engine status", "") or "double refund" in labels
        recoupments = _recoupments(b, refund_id) if taken else []
    except UsageError as exc:
        return page(request, "error.html", 404, user=user, title="No such refund", message=str(exc))
    sections: dict[str, list[tuple[str, str]]] = {"workflow": [], "encounter": [], "payments": [], "recoupments": []}
    for label, value in detail.fields:
        sections[_SECTION.get(label, "workflow")].append((label, value))
    current = dict(detail.fields)["status"]
    actions = [a for a in ACTIONS if user.may(a) and (a not in MANUAL or current in MANUAL[a][0])]
    names = [u.name for u in await run_in_threadpool(us.users, served.store) if u.disabled_at is None]
    done = request.query_params.get("done")
    return page(
        request,
        "refund.html",
        status,
        user=user,
        detail=detail,
        sections=sections,
        recoupments=recoupments,
        current=current,
        actions=actions,
        methods=METHODS,
        user_names=names,
        refused=refused,
        done=done if done in ACTIONS else None,
    )
