"""The refund workflow (``edirecon refund``): what people decide about the engine's refunds, and an
audit trail of every change.

The engine recomputes refunds on every run (``decide``); the workflow keeps its own state per
``refund_id`` in the store (``refund_workflow``) and one ``refund_events`` row per change.  ``run``
records the decisions (``detections``, ``decision_records``: :func:`record`) and *syncs* the
workflow with them in the same transaction; each command then syncs only what it touches, from
the records (:func:`listing`) or by deciding its refunds' encounters again (:func:`refunds_book`),
and a store whose records are stale is decided as a whole once (:func:`book`)
(docs/workflow-and-reports.md).  A sync:

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
import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edirecon import mappings
from edirecon.engine.config import Config
from edirecon.engine.decide.facts import Facts, PaymentFact, PlbFact
from edirecon.engine.decide.offsets import Offset
from edirecon.engine.decide.rules import Decisions, Refund, credit_arose_on, decide
from edirecon.engine.logging import get_logger
from edirecon.engine.scale.detect import keep
from edirecon.engine.store import records
from edirecon.engine.store import workflow as stored
from edirecon.engine.store.connection import Connection, Store
from edirecon.engine.store.connection import open_store as _open_store
from edirecon.engine.store.detections import closure
from edirecon.engine.store.facts import load, looked_up, plbs_referencing
from edirecon.errors import NotAllowed, UsageError
from edirecon.money import ZERO
from edirecon.money import text as money

if TYPE_CHECKING:
    from edirecon.engine.scale.shards import ReportWhole

log = get_logger("edirecon.refunds")

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
    refund: Refund | Recorded | None  # Recorded: as ``refund list`` reads it from the records
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
    #: payer id -> name, for the refunds the engine no longer identifies (None: from ``facts``)
    payer_names: dict[str, str] | None = None

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


def _decided(store: Store, as_of: date, config: Config) -> tuple[Book, str]:
    """The facts and the engine's decisions, before the workflow is synced with them, and the
    fingerprint of the facts they were decided from (taken first: facts added meanwhile leave
    the records stale, never wrongly current)."""
    with store.engine.connect() as conn:
        facts_key = records.facts_fingerprint(conn)
        facts = load(conn)
    return Book(as_of, config, facts, decide(facts, as_of, config)), facts_key


def book(store: Store, as_of: date, config: Config) -> Book:
    """Load and decide everything, sync the whole workflow with the decisions, record them (the
    next commands read the records), and return the picture."""
    b, facts_key = _decided(store, as_of, config)
    with _locked(store) as conn:
        record(conn, b, facts_key, history=False)
        _read(conn, b)
    return b


def book_in_shards(store: Store, as_of: date, config: Config, workers: int, spool: Path) -> tuple[Book, ReportWhole]:
    """``book`` for a large store without holding its facts: decided shard by shard in
    ``workers`` processes (``shards.decide_for_report``), then synced, recorded and read as
    ``book`` does.  The book holds the refunds, the recoupments, the credit balances of the
    refunds' encounters, and the claim payments and PLBs the reports look up (no claims, no
    encounters): what the workflow and the reports read of it; the rest comes with the merge."""
    # deferred: the shards' processes (multiprocessing, the writers) only for `report`, not the `refund` commands
    from edirecon.engine.scale import shards

    fingerprint = facts_key(store)  # taken first, as ``_decided`` does
    store.checkpoint()
    whole = shards.decide_for_report(store, as_of, config, workers, spool)
    facts = Facts([], whole.payments, whole.plbs, [], [], [], whole.identified)
    decisions = Decisions([], whole.refunds, whole.recoupments, whole.balances)
    b = Book(as_of, config, facts, decisions)
    with _locked(store) as conn:
        record(conn, b, fingerprint, history=False)
        _read(conn, b)
    return b, whole


def book_from_records(store: Store, as_of: date, config: Config) -> Book | None:
    """``book`` for ``report`` from what ``run`` recorded, without deciding the whole store: when
    the records are current (:func:`_current`), the refunds waiting for a sync are synced (as
    :func:`listing` does), and the claim-number closure of every kept refund is loaded and decided
    (as ``refund show`` decides one refund's).  The book holds those refunds, each checked against
    its record, the recoupments and credit balances decided with them, and what the reports look
    up across the store (``facts.looked_up``): every PLB, the claim reversals and the payments
    with the keys of the refunds' earlier payments, as ``book_in_shards`` gives them.  None when
    the records are not current, or a refund decided again is not as recorded: the caller then
    decides everything."""
    with store.engine.connect() as conn:
        current = _current(conn, as_of, config)
        waiting = current and bool(_dirty(conn))
    if not current:
        return None
    if waiting:
        with _locked(store) as conn:
            if not _current(conn, as_of, config):
                return None
            dirty = _dirty(conn)
            if dirty:
                _sync_some(conn, dirty, as_of, config)
            records.mark_followed(conn)
    with store.engine.connect() as conn:
        if not _current(conn, as_of, config):  # facts came in meanwhile
            return None
        kept = records.kept(conn)
        pcns = sorted({row["patient_control_number"] for row in kept.values()})
        keys = closure(conn, pcns) if pcns else []
        facts = load(conn, keys) if keys else Facts([], [], [], [], [], [], {})
        decisions = decide(facts, as_of, config)
        refunds = [r for r in decisions.refunds if r.refund_id in kept]
        differs = len(refunds) != len(kept) or any(
            (r.amount, r.recouped, r.status) != (kept[r.refund_id]["amount"], kept[r.refund_id]["recouped"], kept[r.refund_id]["status"]) for r in refunds
        )
        if differs:
            log.warning("records_differ", refunds=len(kept), decided=len(refunds))
            return None
        mine = {id(r.encounter) for r in refunds}
        # the claim payments the reports look up: the claim reversals (where a take-back came from)
        # and those with the key of a duplicate's earlier payment (its root cause)
        earlier = {
            (ev["payer_id"], ev["trace_number"], ev["payer_claim_control_number"]) for r in refunds for ev in r.evidence if ev.get("role") == "earlier payment"
        }
        seen = looked_up(conn, sorted({icn or "" for _payer, _trace, icn in earlier}))
        payments = sorted((p for p in seen.payments if p.status == "22" or (p.payer_id, p.trace_number, p.icn) in earlier), key=lambda p: p.id)
        plbs = sorted(seen.plbs, key=lambda plb: plb.order)
        balances = [x for x in decisions.balances if id(x.encounter) in mine]
        b = Book(as_of, config, Facts([], payments, plbs, [], [], [], {}), Decisions([], refunds, decisions.recoupments, balances))
        _read(conn, b)
    return b


def record(conn: Connection, b: Book, facts_key: str, history: bool = True) -> None:
    """In the caller's transaction: keep every refund of ``b`` (``detections``; with ``history``
    also the day each was first identified, as ``run`` does), sync the whole workflow with them,
    and record which facts and configuration that was (``decision_records``)."""
    keep(conn, None, b.decisions, history)
    stored.lock(conn)
    _sync(conn, b)
    records.synced(conn)
    dated = not history and any(r.refund_id not in b.facts.identified for r in b.decisions.refunds)
    records.set_recorded(conn, facts_key, config_key(b.config), b.as_of if dated else None, now())


#: set (to anything but "" or "0") to decide the whole store on every ``refund`` command, as
#: before the decisions were recorded: the peer of bench/bench_workflow.py
FULL_ENV = "EDIRECON_WORKFLOW_FULL"


def facts_key(store: Store) -> str:
    """The fingerprint of the store's facts now (``records.facts_fingerprint``)."""
    with store.engine.connect() as conn:
        return records.facts_fingerprint(conn)


def _current(conn: Connection, as_of: date, config: Config) -> bool:
    """Whether the recorded decisions and the workflow's sync are those of the store's facts now,
    under ``config`` (and ``as_of``, when a recorded refund was dated by the day decided)."""
    if os.environ.get(FULL_ENV, "") not in ("", "0"):
        return False
    rec = records.recorded(conn)
    return (
        rec is not None
        and rec["config"] == config_key(config)
        and (rec["as_of"] is None or rec["as_of"] == as_of)
        and rec["facts"] == records.facts_fingerprint(conn)
    )


def config_key(config: Config) -> str:
    """A fingerprint of the configuration (decisions and entry rules depend on it)."""
    return hashlib.sha256(repr(_canonical(config)).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """``value`` as nested tuples in a stable order (sets sorted: their order is not)."""
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple((f.name, _canonical(getattr(value, f.name))) for f in fields(value)))
    if isinstance(value, dict):
        return tuple(sorted((repr(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(repr(_canonical(v)) for v in value))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return repr(value)


def refunds_book(store: Store, refund_ids: list[str], as_of: date, config: Config) -> Book:
    """The refunds ``refund_ids`` synced and read.  When the recorded decisions are current, only
    their encounters (the claim-number closure) are loaded and decided again, and only they (and
    the refunds a person acted on since their last sync) are synced; else everything is decided,
    synced and recorded once (``book``)."""
    with _locked(store) as conn:
        if _current(conn, as_of, config):
            return _some(conn, refund_ids, as_of, config)
    return book(store, as_of, config)


def _some(conn: Connection, refund_ids: list[str], as_of: date, config: Config, pre: Predecided | None = None) -> Book:
    """In the caller's locked transaction, records current: sync ``refund_ids`` (with the refunds
    acted on since their last sync, and any the workflow has not met yet or lost) and read them
    (their closure decided before the lock when ``pre`` is still good: ``_sync_some``)."""
    ids = sorted(set(refund_ids))
    b = _sync_some(conn, sorted(set(ids) | set(_dirty(conn))), as_of, config, pre)
    records.mark_followed(conn)
    _read(conn, b, ids)
    return b


T = TypeVar("T")


def listing(store: Store, as_of: date, config: Config) -> Book:
    """Every refund of the workflow as the records hold it (``Recorded``), after syncing the
    refunds a person acted on since their last sync; when the records are not current, everything
    is decided, synced and recorded once (``book``).  Facts and decisions of the book are empty.

    When the records are current and nothing waits to be synced, the rows are read in one read
    transaction without the workflow's lock, so many readers (the app's users) list side by side."""
    return _from_records(store, as_of, config, lambda conn: _listed(conn, as_of, config), stale=lambda b: b)


def _from_records(store: Store, as_of: date, config: Config, read: Callable[[Connection], T], stale: Callable[[Book], T] | None = None) -> T:
    """``read`` of the records, synced first: in a read transaction without the workflow's lock
    when they are current and nothing waits to be synced; else under the lock, after syncing the
    refunds that wait (the workflow then follows every kept refund); else, the records stale,
    after everything is decided, synced and recorded once (``book``), whose book ``stale`` answers
    from when given."""
    with store.engine.connect() as conn:
        if _current(conn, as_of, config) and not _dirty(conn):
            return read(conn)
    with _locked(store) as conn:
        if _current(conn, as_of, config):
            dirty = _dirty(conn)
            if dirty:
                _sync_some(conn, dirty, as_of, config)
            records.mark_followed(conn)
            return read(conn)
    b = book(store, as_of, config)  # decided, synced and recorded: the records are current now
    if stale is not None:
        return stale(b)
    with store.engine.connect() as conn:
        return read(conn)


#: a refund as the work queue sorts it: (refund id, due day, amount, day its credit arose)
Key = tuple[str, date | None, Decimal, date | None]


def listing_page(
    store: Store, as_of: date, config: Config, where: records.Where, order: Callable[[list[Key]], list[Key]], offset: int, limit: int
) -> tuple[Book, list[Key]]:
    """One page of the work queue: the refunds passing ``where`` (their keys: refund id, due day,
    amount, day the credit arose), put in ``order``, and the views of the ``limit`` from ``offset``
    alone, with the keys, read from the records (synced first as :func:`listing` does).  What a page costs follows
    the refunds that pass the filters (their keys) and the page, not the store's facts.  When the
    records are not current, everything is decided, synced and recorded once first."""
    return _from_records(store, as_of, config, lambda conn: _page(conn, as_of, config, where, order, offset, limit))


def listing_sorted_page(
    store: Store,
    as_of: date,
    config: Config,
    where: records.Where,
    descending: bool,
    offset: int,
    limit: int,
    after: tuple[date | None, str] | None,
    by_amount: bool = False,
) -> tuple[Book, list[str], int, int | None, bool]:
    """As :func:`listing_page`, by due day or amount with the database sorting and paging
    (``records.sorted_page``): the views of the page, its refund ids in order, how many refunds pass
    ``where``, where the page starts (None after a row: not counted) and whether more follow."""

    def read(conn: Connection) -> tuple[Book, list[str], int, int | None, bool]:
        ids, total, start, more = records.sorted_page(conn, where, descending, offset, limit, after, by_amount)
        return _listed(conn, as_of, config, ids), ids, total, start, more

    return _from_records(store, as_of, config, read)


def _page(
    conn: Connection, as_of: date, config: Config, where: records.Where, order: Callable[[list[Key]], list[Key]], offset: int, limit: int
) -> tuple[Book, list[Key]]:
    ordered = order(records.keys(conn, where))
    return _listed(conn, as_of, config, [k[0] for k in ordered[offset : offset + limit]]), ordered


def _dirty(conn: Connection) -> list[str]:
    """The refunds whose workflow state waits for a sync: acted on since (an indexed query), or not
    followed yet (looked for only when a detection kept refunds since the workflow last followed
    every kept refund: ``records.kept_since_sync``), so that a page or an action costs what it
    touches, not the number of refunds in the store."""
    unfollowed = records.unfollowed(conn, sorted(TO_WORK)) if records.kept_since_sync(conn) else []
    return sorted(set(records.to_sync(conn)) | set(unfollowed))


def _listed(conn: Connection, as_of: date, config: Config, refund_ids: list[str] | None = None) -> Book:
    b = Book(as_of, config, Facts([], [], [], [], [], [], {}), Decisions([]))
    for item in records.listing(conn, refund_ids) if refund_ids is None or refund_ids else []:
        state, kept = item["state"], item["kept"]
        b.views[state["refund_id"]] = View(state, None if kept is None else _recorded(kept), None if kept is None else kept["credit_since"])
    unidentified = [v.state["payer_id"] for v in b.views.values() if v.refund is None and v.payee_type == "payer" and v.state["payer_id"]]
    b.payer_names = records.payer_names(conn, unidentified) if unidentified else {}
    return b


def sync_changed(store: Store, as_of: date, config: Config, facts_key: str) -> int:
    """After the refunds were kept without their decisions in hand (``run`` in shards): sync, set
    by set, the refunds whose kept decision differs from the workflow's state (new, amount,
    settled, acknowledged, withdrawn, identified again), every payer refund sent or acknowledged
    (the payer's answer), and every refund still to be worked when the configuration changed; then
    record the decisions as current.  Returns how many refunds were synced."""
    with _locked(store) as conn:
        rec = records.recorded(conn)
        ids = records.changed(conn, sorted(TO_WORK), rejudge=rec is None or rec["config"] != config_key(config))
        # a refund new to the workflow enters by its kept decision alone (``_entry``), unless the
        # engine found it acknowledged (whose entry reads the offset pair): no closure to load and
        # decide again for it (measured: 3.4 s of a 100,000-encounter run with 10,000 new refunds)
        new = [_recorded(kept) for kept in records.entering(conn, ids) if kept["status"] != "acknowledged"]
        rows = [_entering(r, config) for r in new]
        stored.new_states(conn, [state for state, _event in rows])
        stored.add_events(conn, [event for _state, event in rows])
        done = {r.refund_id for r in new}
        rest = [i for i in ids if i not in done]
        for i in range(0, len(rest), _SYNC_BATCH):
            _sync_some(conn, rest[i : i + _SYNC_BATCH], as_of, config)
        records.synced(conn)
        records.set_recorded(conn, facts_key, config_key(config), None, now())
    return len(ids)


#: refunds synced per closure loaded by ``sync_changed``
_SYNC_BATCH = 500


@dataclass
class Predecided:
    """The claim-number closure of some refunds loaded and decided before the workflow's lock was
    taken (``predecide``), with the fingerprint of the facts it was decided from."""

    refund_ids: list[str]
    facts_key: str
    facts: Facts
    decisions: Decisions


def predecide(store: Store, refund_ids: list[str], as_of: date, config: Config) -> Predecided | None:
    """Outside the workflow's lock (a read transaction): when the records are current, the
    closure of ``refund_ids`` and of every refund waiting to be synced, loaded and decided, so that
    an action holds the lock only to check the facts are still those and to write (None: the
    records are not current; the action decides under the lock)."""
    with store.engine.connect() as conn:
        if not _current(conn, as_of, config):
            return None
        ids = sorted(set(refund_ids) | set(_dirty(conn)))
        facts, decisions = _closure_decided(conn, ids, as_of, config)
        return Predecided(ids, records.facts_fingerprint(conn), facts, decisions)


def _closure_decided(conn: Connection, refund_ids: list[str], as_of: date, config: Config) -> tuple[Facts, Decisions]:
    pcns = sorted(set(records.claim_numbers(conn, refund_ids).values()))
    keys = closure(conn, pcns) if pcns else []
    facts = load(conn, keys) if keys else Facts([], [], [], [], [], [], {})
    return facts, decide(facts, as_of, config)


def _sync_some(conn: Connection, refund_ids: list[str], as_of: date, config: Config, pre: Predecided | None = None) -> Book:
    """Sync the refunds ``refund_ids`` alone (in the caller's locked transaction): load and decide
    the claim-number closure of their kept refunds (or take ``pre``'s, decided before the lock for
    the same refunds from the same facts), with the PLBs that name a check sent for one of them
    (the payer's acknowledgment), and run the workflow's rules on those refunds only."""
    if pre is not None and pre.refund_ids == sorted(set(refund_ids)) and pre.facts_key == records.facts_fingerprint(conn):
        facts, decisions = pre.facts, pre.decisions
    else:
        facts, decisions = _closure_decided(conn, refund_ids, as_of, config)
    rows = stored.states_by_id(conn, refund_ids)
    references = sorted({row["reference"] for row in rows.values() if row["reference"] and row["status"] in ("sent", "acknowledged", "double_refund")})
    if references:
        have = {plb_key(p) for p in facts.plbs}
        facts.plbs += [p for p in plbs_referencing(conn, references) if plb_key(p) not in have]
    b = Book(as_of, config, facts, decisions)
    _sync(conn, b, set(refund_ids), rows)
    records.synced(conn, refund_ids)
    return b


@dataclass(slots=True)
class RecordedEncounter:
    """What ``refund list`` shows of a refund's encounter, from the records."""

    pcn: str
    patient_name: str


@dataclass(slots=True)
class Recorded:
    """A refund as the records keep it (a row of ``detections``): what ``refund list`` needs of
    the engine's :class:`Refund`, without deciding it again."""

    refund_id: str
    reason: str
    payee_type: str
    payer_id: str
    payer_name: str
    encounter: RecordedEncounter
    amount: Decimal
    recouped: Decimal
    acknowledged: Decimal
    status: str
    identified_on: date
    due_by: date


def _recorded(row: dict[str, Any]) -> Recorded:
    return Recorded(
        row["refund_id"],
        row["reason"],
        row["payee_type"],
        row["payer_id"],
        row["payer_name"],
        RecordedEncounter(row["patient_control_number"], row["patient_name"]),
        row["amount"],
        row["recouped"],
        row["acknowledged"],
        row["status"],
        row["identified_on"],
        row["due_by"],
    )


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

    def act_on(conn: Connection, b: Book) -> list[Outcome]:
        """The action on each refund, in the transaction that synced and read them."""
        unknown = [refund_id for refund_id in ids if refund_id not in b.views]
        if unknown:
            raise UsageError(
                f"no refund {', '.join(repr(u[:40]) for u in unknown)} in the store (see `edirecon refund list`)"
                + (f": none of the {len(ids)} refunds was acted on" if len(ids) > 1 else "")
            )
        done: list[Outcome] = []
        for refund_id in ids:
            v = b.views[refund_id]
            before = v.status
            try:
                detail, changes = _allowed(v, action, as_of, method, reference, day, amount, assignee)
            except NotAllowed as exc:
                done.append(Outcome(refund_id, v, before, exc))
                continue
            after = MANUAL[action][1] if action in MANUAL else before
            if action in MANUAL:  # decided by a person: the next sync may match the payer's answer to it
                changes = {**changes, "needs_sync": True}
            _change(conn, v.state, after, action, user, "; ".join(p for p in (detail, note) if p), changes)
            done.append(Outcome(refund_id, v, before))
        return done

    outcomes: list[Outcome] | None = None
    pre = predecide(store, ids, as_of, config)  # their encounters decided before the lock: it is held only to check and write
    with _locked(store) as conn:
        if _current(conn, as_of, config):  # decide only their encounters, sync and act in one transaction
            outcomes = act_on(conn, _some(conn, ids, as_of, config, pre))
    if outcomes is None:  # stale records: decide everything (outside the lock), then sync, record and act
        b, facts_key = _decided(store, as_of, config)
        with _locked(store) as conn:
            record(conn, b, facts_key, history=False)
            _read(conn, b)
            outcomes = act_on(conn, b)
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


def _read(conn: Connection, b: Book, refund_ids: list[str] | None = None) -> None:
    """The views of every refund (or of ``refund_ids``) after syncing."""
    by_id = {r.refund_id: r for r in b.decisions.refunds}
    arose = credit_arose_on(b.decisions)
    b.views = {row["refund_id"]: View(row, by_id.get(row["refund_id"]), arose.get(row["refund_id"])) for row in stored.states(conn, refund_ids)}


def _entering(r: Refund | Recorded, config: Config) -> tuple[tuple[str, str, str, str, str, Decimal, datetime], tuple[str, datetime, str, str, str, str, str]]:
    """A refund new to the workflow: its state row (``stored.new_states``) and audit row
    (``stored.add_events``) as it enters (``_entry``), logged."""
    status, action, note = _entry(r, config)
    log.info("refund_entered", refund_id=r.refund_id, status=status, reason=r.reason, payee_type=r.payee_type)
    return (r.refund_id, status, r.reason, r.payee_type, r.payer_id, r.amount, now()), _event_row(r.refund_id, SYSTEM_USER, action, "", status, note)


def _entry(r: Refund | Recorded, config: Config) -> tuple[str, str, str]:
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


def _sync(conn: Connection, b: Book, only: set[str] | None = None, rows: dict[str, dict[str, Any]] | None = None) -> None:
    """Sync the workflow with the engine's decisions of ``b``: every refund, or those of ``only``
    (whose rows may be given, read in the same transaction)."""
    if rows is None:
        rows = stored.states_by_id(conn, only)
    engine = {r.refund_id: r for r in b.decisions.refunds if only is None or r.refund_id in only}
    taken = {row["acknowledged_by"] for row in rows.values() if row["acknowledged_by"]} if only is None else stored.taken(conn)
    acted = _acted_on(conn, only)
    # the refunds entering, written many in one statement (measured: one statement each took 15 s
    # of 150 on 10,000 new refunds): flushed before any other write, so the audit trail's ids keep
    # the order of the steps
    entering: list[tuple[str, str, str, str, str, Decimal, datetime]] = []
    entered: list[tuple[str, datetime, str, str, str, str, str]] = []

    def flush() -> None:
        stored.new_states(conn, entering)
        stored.add_events(conn, entered)
        entering.clear()
        entered.clear()

    for refund_id in sorted(engine):
        r = engine[refund_id]
        row = rows.get(refund_id)
        if row is None:
            state, event = _entering(r, b.config)
            entering.append(state)
            entered.append(event)
            if r.status == "acknowledged":  # met with the payer's booking of a check for it (an offset pair)
                flush()
                _acknowledged(conn, {"refund_id": refund_id, "status": state[1]}, r, taken)
            continue
        flush()
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
    flush()
    for refund_id, row in sorted(rows.items()):
        if refund_id not in engine and row["status"] in TO_WORK:
            _change(conn, row, "withdrawn", "withdrawn", SYSTEM_USER, "the engine no longer identifies this refund", {})


def _acted_on(conn: Connection, only: set[str] | None = None) -> set[str]:
    """The refunds (of ``only``, or all) a person has decided (a :data:`MANUAL` action, whoever
    ran the command); an assignment or a note decides nothing."""
    return stored.acted_on(conn, sorted(MANUAL), only)


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
    stored.add_events(conn, [_event_row(refund_id, user, action, old, new, note)])


def _event_row(refund_id: str, user: str, action: str, old: str, new: str, note: str) -> tuple[str, datetime, str, str, str, str, str]:
    """The audit row of a step (``stored.add_events``), its action and statuses checked registered."""
    mappings.registered("audit_action", action)
    mappings.registered("workflow_status", new)
    if old:  # empty when the refund enters
        mappings.registered("workflow_status", old)
    return (refund_id, now(), user[:64], action, old, new, note)


# -- when a credit arose ---------------------------------------------------------------------------


def status_counts(b: Book) -> dict[str, dict[str, Any]]:
    """status -> count and amount, for summaries."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "amount": ZERO})
    for v in b.views.values():
        out[v.status]["count"] += 1
        out[v.status]["amount"] += v.amount
    return dict(out)
