"""The refund workflow (``edirecon refund``): what people decide about the engine's refunds, and an
audit trail of every change.

The engine recomputes refunds on every run (``decide``); the workflow keeps its own state per
``refund_id`` in the store (``refund_workflow``) and one ``refund_events`` row per change.  Each
command first *syncs* the workflow with the engine's current decisions (docs/workflow-and-reports.md):

- a refund met for the first time enters as ``pending``, or ``approved`` by an auto-approval rule,
  or ``held`` when it is a patient credit below the hold threshold; until a person acts on it, it
  is re-judged by the current rules at each sync (``rejudged``), and never after;
- a refund still to be worked that the payer took back itself (``settled_by_recoupment``) becomes
  ``settled``; one the engine no longer identifies becomes ``withdrawn``;
- a payer refund that was sent is matched to the payer's acknowledgment (a negative PLB 72, alone
  or offsetting a WO or a claim reversal): ``acknowledged``; sent and also taken back by the payer
  (not offset by a 72) is a ``double_refund`` to recover.  The offset pairs are the engine's own
  (``offsets``, of PLB take-backs and claim reversals alike): a refund the engine reports
  ``acknowledged`` is acknowledged here too, and what a 72 offsets is no recoupment here either.

People then ``approve``, ``hold``, ``mark-sent``, ``void``, ``mark-cashed``, ``mark-recovered`` and
``acknowledge`` (a payer's letter or portal confirmation of a refund sent) (:data:`MANUAL`: each
decides the refund's status), and ``assign`` and ``note`` (:data:`ANNOTATIONS`: the status stays
as it is), one refund or many at a time (:func:`act_many`), each refund on its own.  Log events
carry refund ids, statuses and user names, never patient data.
"""

from __future__ import annotations

import getpass
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import structlog

from edirecon import mappings
from edirecon.engine.config import Config
from edirecon.engine.decide.facts import Facts, PaymentFact, PlbFact
from edirecon.engine.decide.offsets import Offset
from edirecon.engine.decide.rules import Decisions, Refund, decide
from edirecon.engine.store import workflow as stored
from edirecon.engine.store.connection import Connection, Store
from edirecon.engine.store.connection import open_store as _open_store
from edirecon.engine.store.facts import load
from edirecon.errors import NotAllowed, UsageError
from edirecon.money import ZERO
from edirecon.money import text as money

log = structlog.get_logger("edirecon.refunds")

#: every workflow status (the ``workflow_status`` family of mappings/codes.csv); the first three are still to be worked
STATUSES = tuple(mappings.registry("workflow_status"))
TO_WORK = frozenset({"pending", "held", "approved"})
#: action -> (the statuses it may be taken from, the status it leads to)
MANUAL: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({"pending", "held"}), "approved"),
    "hold": (frozenset({"pending", "approved"}), "held"),
    "mark-sent": (frozenset({"approved"}), "sent"),
    "void": (frozenset({"pending", "held", "approved", "sent"}), "voided"),
    "mark-cashed": (frozenset({"sent"}), "cashed"),
    "mark-recovered": (frozenset({"double_refund"}), "recovered"),
    # the payer's letter or portal confirmation, as its PLB 72 would (``_payer_answer``): a payer refund sent
    "acknowledge": (frozenset({"sent"}), "acknowledged"),
}
#: the actions that leave the status as it is, taken from any status: they decide nothing, so a
#: refund only assigned or noted is still re-judged by the entry rules (``_acted_on``)
ANNOTATIONS = ("assign", "note")
#: every action a person takes (the CLI's, and the app's: ``users.ROLE_ACTIONS``)
ACTIONS = (*MANUAL, *ANNOTATIONS)
METHODS = ("check", "eft", "adjustment")
#: the user recorded for the steps the workflow takes by itself
SYSTEM_USER = "edirecon"
#: the longest assignee (a user name, as ``refund_events.user_name``) and acknowledgment reference
ASSIGNEE_MAX = 64
REFERENCE_MAX = 50
#: how ``acknowledged_by`` names a payer's confirmation (a PLB 72 is named by ``plb_key``)
CONFIRMATION = "confirmation "


def default_user() -> str:
    """The OS user, the default of --user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container) and no LOGNAME
        return "unknown"


def now() -> datetime:
    """UTC, without tzinfo (the store's DateTime columns are naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class View:
    """One refund as the workflow sees it: its state row, the engine's refund (None when the engine
    no longer identifies it) and what follows from them on the as-of day."""

    state: dict[str, Any]
    refund: Refund | None
    arose_on: date | None = None  # the day the money that made the credit came in

    @property
    def refund_id(self) -> str:
        return str(self.state["refund_id"])

    @property
    def status(self) -> str:
        return str(self.state["status"])

    @property
    def amount(self) -> Decimal:
        return self.refund.amount if self.refund is not None else self.state["amount"]

    @property
    def recouped(self) -> Decimal:
        return self.refund.recouped if self.refund is not None else ZERO

    @property
    def outstanding(self) -> Decimal:
        """What is still owed: the amount less what the payer already took back, and less a refund
        check the payer booked (``acknowledged`` by an offset pair)."""
        return max(ZERO, self.amount - self.recouped - (self.refund.acknowledged if self.refund is not None else ZERO))

    @property
    def payee_type(self) -> str:
        return str(self.state["payee_type"])


@dataclass
class Book:
    """Facts, decisions and the workflow of one store, as of a day."""

    as_of: date
    config: Config
    facts: Facts
    decisions: Decisions
    views: dict[str, View] = field(default_factory=dict)

    def view(self, refund_id: str) -> View:
        found = self.views.get(refund_id)
        if found is None:
            raise UsageError(f"no refund {refund_id!r} in the store (see `edirecon refund list`)")
        return found

    def escheatment_candidate(self, v: View) -> bool:
        """A patient refund sent and not cashed for the configured period (unclaimed property)."""
        sent_on = v.state["sent_on"]
        return v.status == "sent" and v.payee_type == "patient" and sent_on is not None and (self.as_of - sent_on).days >= self.config.refunds.escheatment_days


def open_store(db_url: str) -> Store:
    """The existing store of the workflow (none there: ``StoreUnavailable``, nothing created)."""
    return _open_store(db_url, create=False)


@contextmanager
def _locked(store: Store) -> Iterator[Connection]:
    """A write transaction holding the workflow's lock (SQLite: the write lock; PostgreSQL: an
    advisory lock), so two commands never sync or change the same refund at once."""
    with store.write() as conn:
        stored.lock(conn)
        yield conn


def _decided(store: Store, as_of: date, config: Config) -> Book:
    """The facts and the engine's decisions, before the workflow is synced with them."""
    with store.engine.connect() as conn:
        facts = load(conn)
    return Book(as_of, config, facts, decide(facts, as_of, config))


def book(store: Store, as_of: date, config: Config) -> Book:
    """Load and decide, sync the workflow with the decisions, and return the picture."""
    b = _decided(store, as_of, config)
    with _locked(store) as conn:
        _sync(conn, b)
        _read(conn, b)
    return b


@dataclass
class Outcome:
    """What came of an action on one refund: the refund after it, or why it was refused."""

    refund_id: str
    view: View  # after the action (unchanged when refused)
    from_status: str
    refused: NotAllowed | None = None


def act(
    store: Store,
    refund_id: str,
    action: str,
    user: str,
    as_of: date,
    config: Config,
    note: str = "",
    *,
    method: str = "",
    reference: str = "",
    day: date | None = None,
    amount: Decimal | None = None,
    assignee: str | None = None,
) -> View:
    """Take a manual action on a refund (after syncing); the audit trail records it.  Raises
    :class:`NotAllowed` when the refund's state does not allow it."""
    (outcome,) = act_many(store, [refund_id], action, user, as_of, config, note, method=method, reference=reference, day=day, amount=amount, assignee=assignee)
    if outcome.refused is not None:
        raise outcome.refused
    return outcome.view


def act_many(
    store: Store,
    refund_ids: list[str],
    action: str,
    user: str,
    as_of: date,
    config: Config,
    note: str = "",
    *,
    method: str = "",
    reference: str = "",
    day: date | None = None,
    amount: Decimal | None = None,
    assignee: str | None = None,
) -> list[Outcome]:
    """Take the same manual action on each of several refunds, each on its own (after one sync),
    in one transaction: one audit event per refund done; a refund whose state does not allow it
    is refused with the reason and changes nothing, and the others go ahead.

    Every id must be in the store: an unknown id is a :class:`UsageError` and nothing is done (the
    list, or the store, is not the one meant).  A repeated id is taken once.  ``amount`` is for one
    refund at a time; ``assignee`` is whom ``assign`` assigns them to ("" unassigns)."""
    ids = list(dict.fromkeys(refund_ids))
    _check_arguments(action, len(ids), note, method, reference, amount, day, assignee)
    b = _decided(store, as_of, config)
    outcomes: list[Outcome] = []
    with _locked(store) as conn:
        _sync(conn, b)
        _read(conn, b)
        unknown = [refund_id for refund_id in ids if refund_id not in b.views]
        if unknown:
            raise UsageError(
                f"no refund {', '.join(repr(u[:40]) for u in unknown)} in the store (see `edirecon refund list`)"
                + (f": none of the {len(ids)} refunds was acted on" if len(ids) > 1 else "")
            )
        for refund_id in ids:
            v = b.views[refund_id]
            before = v.status
            try:
                detail, changes = _allowed(v, action, as_of, method, reference, day, amount, assignee)
            except NotAllowed as exc:
                outcomes.append(Outcome(refund_id, v, before, exc))
                continue
            after = MANUAL[action][1] if action in MANUAL else before
            _change(conn, v.state, after, action, user, "; ".join(p for p in (detail, note) if p), changes)
            outcomes.append(Outcome(refund_id, v, before))
    for o in outcomes:
        if o.refused is None:
            log.info("refund_action", refund_id=o.refund_id, action=action, from_status=o.from_status, to_status=o.view.status, user=user)
        else:
            log.info("refund_action_refused", refund_id=o.refund_id, action=action, status=o.from_status, user=user)
    return outcomes


def _check_arguments(action: str, count: int, note: str, method: str, reference: str, amount: Decimal | None, day: date | None, assignee: str | None) -> None:
    """What is wrong with the action whatever the refunds' states: a usage error, before anything is done."""
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    if count == 0:
        raise UsageError("no refund id given")
    if action == "void" and not note:
        raise UsageError("void needs --note saying why")
    if action == "note" and not note.strip():
        raise UsageError("note needs --note with the text to record")
    if action == "assign":
        if assignee is None:
            raise UsageError('assign needs --to USER (--to "" unassigns)')
        if len(assignee) > ASSIGNEE_MAX or not assignee.isprintable() or assignee != assignee.strip():
            raise UsageError(f"--to {assignee[:ASSIGNEE_MAX]!r} is not a user name (at most {ASSIGNEE_MAX} printable characters, no surrounding spaces)")
    if action == "acknowledge":
        if not reference.strip():
            raise UsageError("acknowledge needs --reference: the payer's letter or portal confirmation number")
        if len(reference) > REFERENCE_MAX or not reference.isprintable():
            raise UsageError(f"--reference is longer than {REFERENCE_MAX} characters, or not printable")
        if day is None:
            raise UsageError("acknowledge needs --date: the day of the payer's confirmation (YYYY-MM-DD)")
    if action == "mark-sent":
        if method not in METHODS:
            raise UsageError(f"--method must be one of {', '.join(METHODS)}")
        if method in ("check", "eft") and not reference:
            raise UsageError(f"--reference (the {method} number) is needed for a {method}")
    if amount is not None:
        if amount <= 0:
            raise UsageError("--amount must be more than zero")
        if count > 1:
            raise UsageError(f"--amount is for one refund at a time ({count} refund ids given)")


def _allowed(
    v: View, action: str, as_of: date, method: str, reference: str, day: date | None, amount: Decimal | None, assignee: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The audit detail and the changes of the action on this refund; :class:`NotAllowed` (saying
    why) when its state does not allow it."""
    refund_id = v.refund_id
    if action == "note":
        return "", {}
    if action == "assign":
        was = v.state["assigned_to"] or ""
        if (assignee or "") == was:
            raise NotAllowed(f"{refund_id} is already assigned to {was}" if was else f"{refund_id} is not assigned to anyone")
        detail = f"assigned to {assignee}" if assignee else "unassigned"
        return detail + (f" (was {was})" if was else ""), {"assigned_to": assignee or ""}
    allowed_from, _target = MANUAL[action]
    if v.status == "settled" and action in ("approve", "mark-sent", "hold"):
        raise NotAllowed(
            f"{refund_id} is settled: the payer took it back itself (settled_by_recoupment), so there is nothing to "
            f"{'send' if action == 'mark-sent' else action}"
        )
    if v.status not in allowed_from:
        raise NotAllowed(f"{refund_id} is {v.status}: {action} is allowed only when it is {' or '.join(sorted(allowed_from))}")
    if action in ("approve", "mark-sent"):
        if v.refund is None:
            raise NotAllowed(f"{refund_id}: the engine no longer identifies this refund")
        if v.refund.status == "settled_by_recoupment":
            raise NotAllowed(f"{refund_id}: the payer already took it back (settled_by_recoupment); nothing to {action.replace('mark-', '')}")
    when = (day or as_of).isoformat()
    if action == "mark-sent":
        sent = v.outstanding if amount is None else amount
        if sent <= 0 or sent > v.outstanding:
            taken = f" ({money(v.amount)} less {money(v.recouped)} the payer took back)" if v.recouped else ""
            raise NotAllowed(f"{refund_id}: cannot send {money(sent)}: {money(v.outstanding)} is outstanding{taken}")
        return (
            f"{method} {reference} of {money(sent)} on {when}".replace("  ", " "),
            {"method": method, "reference": reference, "sent_on": day or as_of, "sent_amount": sent, "recouped_when_sent": v.recouped},
        )
    if action == "mark-cashed":
        if v.payee_type != "patient":
            raise NotAllowed(f"{refund_id}: mark-cashed is for patient refunds; a payer refund is acknowledged by the payer's 835")
        return f"cashed on {when}", {"cashed_on": day or as_of}
    if action == "acknowledge":
        if v.payee_type != "payer":
            raise NotAllowed(f"{refund_id}: acknowledge is for payer refunds; a patient refund check is closed by mark-cashed")
        sent_on = v.state["sent_on"]
        if day is not None and sent_on is not None and day < sent_on:
            raise NotAllowed(f"{refund_id}: confirmed on {day.isoformat()}, before it was sent on {sent_on.isoformat()}")
        return (
            f"the payer's confirmation {reference} of {when}",
            {"acknowledged_by": CONFIRMATION + reference, "acknowledged_on": day, "acknowledged_amount": v.state["sent_amount"]},
        )
    if action == "mark-recovered":
        due = v.state["double_refund_amount"] or ZERO
        got = due if amount is None else amount
        if got > due:
            raise NotAllowed(f"{refund_id}: {money(got)} is more than the double refund to recover: {money(due)}")
        return f"{money(got)} recovered on {when}" + (f" ({reference})" if reference else ""), {"recovered_on": day or as_of, "recovered_amount": got}
    return "", {}


def events(store: Store, refund_id: str) -> list[dict[str, Any]]:
    """The audit trail of a refund, oldest first."""
    with store.engine.connect() as conn:
        return stored.events(conn, refund_id)


def changes(store: Store, after_id: int, limit: int) -> list[dict[str, Any]]:
    """The audit events of every refund after the event ``after_id`` (0: from the first), at most
    ``limit``, oldest first: the feed of what the workflow and the engine changed."""
    with store.engine.connect() as conn:
        return stored.events_after(conn, after_id, limit)


# -- syncing with the engine --------------------------------------------------------------------


def _read(conn: Connection, b: Book) -> None:
    by_id = {r.refund_id: r for r in b.decisions.refunds}
    arose = credit_arose_on(b.decisions)
    b.views = {row["refund_id"]: View(row, by_id.get(row["refund_id"]), arose.get(row["refund_id"])) for row in stored.states(conn)}


def _entry(r: Refund, config: Config) -> tuple[str, str, str]:
    """How a new refund enters: (status, action, note)."""
    if r.status == "settled_by_recoupment":
        return "settled", "identified", "the payer already took it back (settled_by_recoupment)"
    rules = config.refunds
    if r.payee_type == "patient" and r.amount < rules.patient_hold_below:
        return "held", "identified", f"patient credit {money(r.amount)} is below the hold threshold {money(rules.patient_hold_below)}"
    for rule in rules.auto_approve:
        if rule.applies(r.amount, r.reason, r.payer_id, r.payee_type):
            return "approved", "auto-approved", f"auto-approval rule {rule.name!r}"
    return "pending", "identified", ""


def _sync(conn: Connection, b: Book) -> None:
    rows = stored.states_by_id(conn)
    engine = {r.refund_id: r for r in b.decisions.refunds}
    taken = {row["acknowledged_by"] for row in rows.values() if row["acknowledged_by"]}
    acted = _acted_on(conn)
    for refund_id in sorted(engine):
        r = engine[refund_id]
        row = rows.get(refund_id)
        if row is None:
            status, action, note = _entry(r, b.config)
            stored.new_state(conn, refund_id, status, r.reason, r.payee_type, r.payer_id, r.amount, now())
            _event(conn, refund_id, SYSTEM_USER, action, "", status, note)
            log.info("refund_entered", refund_id=refund_id, status=status, reason=r.reason, payee_type=r.payee_type)
            if r.status == "acknowledged":  # met with the payer's booking of a check for it (an offset pair)
                _acknowledged(conn, {"refund_id": refund_id, "status": status}, r, taken)
            continue
        if row["status"] == "withdrawn":
            status, _action, note = _entry(r, b.config)
            _change(conn, row, status, "reidentified", SYSTEM_USER, "the engine identifies it again" + (f"; {note}" if note else ""), {"amount": r.amount})
        elif row["status"] in TO_WORK and r.amount != row["amount"]:
            rejudge = row["status"] == "approved" or refund_id not in acted
            status, _action, note = _entry(r, b.config) if rejudge else (row["status"], "", "")
            _change(
                conn,
                row,
                status,
                "amount_changed",
                SYSTEM_USER,
                f"amount {money(row['amount'])} -> {money(r.amount)}" + (f"; {note}" if note else ""),
                {"amount": r.amount},
            )
        elif row["status"] in TO_WORK and refund_id not in acted and r.status != "settled_by_recoupment":
            _rejudge(conn, row, r, b.config)
        if row["status"] in TO_WORK and r.status == "settled_by_recoupment":
            _change(conn, row, "settled", "settled", SYSTEM_USER, "the payer took it back: " + _recoupment_text(b.decisions, r), {})
        elif row["status"] in TO_WORK and r.status == "acknowledged":
            _acknowledged(conn, row, r, taken)
        elif row["status"] in ("sent", "acknowledged", "double_refund") and r.payee_type == "payer":
            _payer_answer(conn, b, r, row, taken)
    for refund_id, row in sorted(rows.items()):
        if refund_id not in engine and row["status"] in TO_WORK:
            _change(conn, row, "withdrawn", "withdrawn", SYSTEM_USER, "the engine no longer identifies this refund", {})


def _acted_on(conn: Connection) -> set[str]:
    """The refunds a person has decided (a :data:`MANUAL` action, whoever ran the command); an
    assignment or a note decides nothing."""
    return stored.acted_on(conn, sorted(MANUAL))


def _rejudge(conn: Connection, row: dict[str, Any], r: Refund, config: Config) -> None:
    """A refund still to be worked that no person has acted on follows the current entry rules:
    a store first synced without --config (or under other rules) is not stuck with that."""
    status, _action, note = _entry(r, config)
    if status != row["status"]:
        # audited as the edirecon user, and logged as refund_changed (action rejudged) by _change
        _change(conn, row, status, "rejudged", SYSTEM_USER, note or "no entry rule applies under the current configuration", {})


def _payer_answer(conn: Connection, b: Book, r: Refund, row: dict[str, Any], taken: set[str]) -> None:
    """Match a sent payer refund to the payer's acknowledgment, and flag a double refund."""
    if row["status"] == "sent":
        plb = _acknowledgment(b.facts.plbs, r, row, taken)
        if plb is not None:
            _acknowledge(
                conn,
                row,
                r,
                plb,
                taken,
                f"PLB {plb.reason} {money(plb.amount)} reference {plb.reference} in trace {plb.trace_number} "
                f"of {_day(plb.payment_date)} ({plb.source_file}:{plb.segment})",
            )
    # the take-backs a 72 offsets (PLBs and claim reversals alike) are no recoupments (``offsets``)
    taken_back = r.recouped - (row["recouped_when_sent"] or ZERO)
    double = min(row["sent_amount"] or ZERO, max(ZERO, taken_back))
    if double > 0 and (row["status"] != "double_refund" or double != row["double_refund_amount"]):
        tied = [
            rc
            for rc in b.decisions.recoupments
            if rc.encounter is r.encounter and rc.payer_id == r.payer_id and (rc.refund_id == r.refund_id or rc.icn == r.icn)
        ]
        traces = sorted({f"{rc.kind} trace {rc.trace_number} of {_day(rc.effective_date)}" for rc in tied})
        _change(
            conn,
            row,
            "double_refund",
            "double_refund",
            SYSTEM_USER,
            f"sent {money(row['sent_amount'])} and also taken back by the payer ({'; '.join(traces)}): {money(double)} to recover",
            {"double_refund_amount": double, "double_refund_traces": "; ".join(traces)},
        )
        log.warning("double_refund", refund_id=r.refund_id, amount=money(double))


def _acknowledgment(plbs: list[PlbFact], r: Refund, row: dict[str, Any], taken: set[str]) -> PlbFact | None:
    """The payer's acknowledgment of a sent refund: the 72 of an offset pair tied to it (as the engine
    decided), else a negative PLB 72 of that payer, on or after the day it was sent, whose reference
    is the check/EFT number, the payer claim number or the patient control number."""
    paired = next((o.ack for o in r.acknowledgments if plb_key(o.ack) not in taken), None)
    if paired is not None:  # the engine's offset pair tied to this refund (then r.status is acknowledged)
        return paired
    codes = mappings.refund_acknowledgment_codes()
    references = {x for x in (row["reference"], r.icn, r.encounter.pcn) if x}
    sent_on = row["sent_on"]
    for plb in sorted(plbs, key=lambda p: p.order):
        if (
            plb.reason in codes
            and plb.amount < 0
            and plb.payer_id == r.payer_id
            and plb.reference.strip() in references
            and (sent_on is None or plb.payment_date is None or plb.payment_date >= sent_on)
            and plb_key(plb) not in taken
        ):
            return plb
    return None


def plb_key(plb: PlbFact) -> str:
    """The PLB adjustment's identity in ``acknowledged_by``: payer|trace|segment|position."""
    return f"{plb.payer_id}|{plb.trace_number}|{plb.segment}|{plb.position}"


def _acknowledged(conn: Connection, row: dict[str, Any], r: Refund, taken: set[str]) -> None:
    """A refund still to be worked that the engine reports ``acknowledged`` (the payer booked a check
    for it) is acknowledged by the 72 of that offset pair."""
    _acknowledge(conn, row, r, r.acknowledgments[0].ack, taken, "the payer acknowledged a refund check for it: " + _offset_text(r))


def _acknowledge(conn: Connection, row: dict[str, Any], r: Refund, plb: PlbFact, taken: set[str], note: str) -> None:
    """The refund acknowledged by the payer's PLB 72 ``plb`` (which acknowledges nothing else)."""
    key = plb_key(plb)
    taken.add(key)
    _change(
        conn,
        row,
        "acknowledged",
        "acknowledged",
        SYSTEM_USER,
        note,
        {"acknowledged_by": key, "acknowledged_on": plb.payment_date, "acknowledged_amount": -plb.amount},
    )
    log.info("refund_acknowledged", refund_id=r.refund_id, trace=plb.trace_number)


def _offset_text(r: Refund) -> str:
    return "; ".join(
        f"PLB {o.ack.reason} {money(o.ack.amount)} reference {o.ack.reference} offsets {_take_back_text(o)} "
        f"in trace {o.ack.trace_number} of {_day(o.ack.payment_date)} ({o.ack.source_file}:{o.ack.segment})"
        for o in r.acknowledgments
    )


def _take_back_text(o: Offset) -> str:
    if isinstance(o.recovery, PaymentFact):
        return f"CLAIM_REVERSAL {money(o.amount)} of CLP07 {o.recovery.icn} (CLP02 22)"
    return f"PLB {o.recovery.reason} {money(o.amount)} reference {o.recovery.reference}"


def _recoupment_text(d: Decisions, r: Refund) -> str:
    found = sorted(
        f"{rc.kind} {money(rc.amount)} trace {rc.trace_number} of {_day(rc.effective_date)}"
        for rc in d.recoupments
        if rc.encounter is r.encounter and rc.payer_id == r.payer_id and rc.refund_id == r.refund_id
    )
    return "; ".join(found) or f"{money(r.recouped)} recouped"


def _day(d: date | None) -> str:
    return d.isoformat() if d else "(no date)"


def _change(conn: Connection, row: dict[str, Any], status: str, action: str, user: str, note: str, changes: dict[str, Any]) -> None:
    """Change a refund's state and write the audit row, in the caller's transaction."""
    old = row["status"]
    values = {**changes, "status": status, "updated_at": now()}
    stored.change_state(conn, row["refund_id"], values)
    _event(conn, row["refund_id"], user, action, old, status, note)
    row.update(values)
    if user == SYSTEM_USER:
        log.info("refund_changed", refund_id=row["refund_id"], action=action, from_status=old, to_status=status)


def _event(conn: Connection, refund_id: str, user: str, action: str, old: str, new: str, note: str) -> None:
    mappings.registered("audit_action", action)
    mappings.registered("workflow_status", new)
    if old:  # empty when the refund enters
        mappings.registered("workflow_status", old)
    stored.add_event(conn, refund_id, now(), user[:64], action, old, new, note)


# -- when a credit arose ---------------------------------------------------------------------------


def credit_arose_on(d: Decisions) -> dict[str, date | None]:
    """refund_id -> the day the money that made the credit came in: the duplicate payment's date for
    a duplicate; for the other reasons, the day the encounter went into credit (the engine's
    ``days_in_credit`` counts from it)."""
    since = {id(b.encounter): b.in_credit_since for b in d.balances}
    out: dict[str, date | None] = {}
    for r in d.refunds:
        if r.reason == "DUPLICATE_PAYMENT":
            out[r.refund_id] = next((p.payment_date for p in r.encounter.payments if p.key == r.payment_key), None)
        else:
            out[r.refund_id] = since.get(id(r.encounter)) or max(
                [*(p.payment_date for p in r.encounter.payments if p.payment_date), *(pp.paid_on for pp in r.encounter.patient_payments)], default=None
            )
    return out


def status_counts(b: Book) -> dict[str, dict[str, Any]]:
    """status -> count and amount, for summaries."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "amount": ZERO})
    for v in b.views.values():
        out[v.status]["count"] += 1
        out[v.status]["amount"] += v.amount
    return dict(out)
