"""The store's tables (SQLAlchemy Core).  Money is ``Numeric(12, 2)``, never a float.

The store keeps *facts* as parsed (claims, payments, adjustments, PLBs, patient payments), what
was ingested from where (files, transaction sets), the exceptions met while ingesting, and the day
each refund was first identified.  Decisions (refunds, recoupments, balances) are recomputed from
the facts on every run, so the same facts give the same decisions whatever the order they came in.

Schema changes go through alembic (``engine/migrations``); this module is the model the migrations
are written from.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.types import TypeDecorator

from edirecon.money import from_storage, to_storage

metadata = MetaData()


class Money(TypeDecorator[Decimal]):
    """An amount: ``NUMERIC(12,2)`` on PostgreSQL; exact decimal text on SQLite.

    SQLite has no decimal type: a NUMERIC column there stores a binary float (REAL).  Money is
    never a float, so on SQLite the column holds the decimal's text ("125.00") instead.
    """

    impl = Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(24))
        return dialect.type_descriptor(Numeric(12, 2, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return to_storage(from_storage(value))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return from_storage(value)


#: the parts of a mailing address kept (N301, N302, N401, N402, N403, N404), as column suffixes
ADDRESS_PARTS = ("address1", "address2", "city", "state", "postal_code", "country")
_ADDRESS_LENGTHS = (55, 55, 30, 2, 15, 3)


def address_columns(prefix: str) -> list[Column[Any]]:
    """The nullable columns of a mailing address: ``{prefix}_address1`` ... ``{prefix}_country``
    (NULL: stored before revision 0010, not known; "" when the file had none)."""
    return [Column(f"{prefix}_{part}", String(n)) for part, n in zip(ADDRESS_PARTS, _ADDRESS_LENGTHS, strict=True)]


files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("path", Text, nullable=False),  # as given on the command line (first time seen)
    Column("kind", String(20), nullable=False),  # x12, patient_payments, unsupported
    Column("complete", Boolean, nullable=False, default=False),  # every transaction set handled
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("ordinal", Integer, nullable=False),  # 1-based position of the ST in its file
    Column("isa13", String(9), nullable=False),
    Column("gs06", String(9), nullable=False),
    Column("st02", String(9), nullable=False),
    Column("transaction_type", String(8), nullable=False),
    Column("ingested", Boolean, nullable=False),  # False: skipped (untrusted, duplicate, unsupported)
    UniqueConstraint("file_id", "ordinal"),
)

# The bulk-loaded fact tables (claims, claim_lines, claim_payments, payment_lines, adjustments)
# name their parents by foreign keys that SQLite enforces and PostgreSQL does not (revision 0014:
# its row-by-row checks were half the time of ingest's COPYs): ingest writes parents and children
# in one transaction, and tests/integration/test_store_intake.py checks that no row is orphaned.
claims = Table(
    "claims",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("transaction_id", Integer, ForeignKey("transactions.id"), nullable=False),
    Column("transaction_type", String(8), nullable=False),
    Column("patient_control_number", String(38), nullable=False),
    Column("billing_npi", String(80), nullable=False),
    Column("billing_tin", String(80), nullable=False),
    Column("member_id", String(80), nullable=False),  # the subscriber's id with this claim's payer
    Column("other_member_ids", Text, nullable=False),  # 2330A ids, "|"-joined
    Column("other_payer_ids", Text),  # 2330B payer ids, "|"-joined (revision 0006; NULL: stored before it, not known)
    Column("patient_last", String(60), nullable=False),
    Column("patient_first", String(35), nullable=False),
    Column("patient_dob", Date),
    Column("service_from", Date),
    Column("service_to", Date),
    Column("total_charge", Money()),
    Column("frequency", String(2), nullable=False),
    Column("original_reference", String(50), nullable=False),
    Column("payer_id", String(80), nullable=False),
    Column("payer_name", String(60), nullable=False),
    Column("payer_responsibility", String(2), nullable=False),
    Column("filing_indicator", String(2), nullable=False),
    Column("created_on", Date),
    Column("source_file", Text, nullable=False),
    Column("segment", Integer, nullable=False),
    Column("byte_offset", Integer, nullable=False),
    # 837I (revision 0005; "" and NULL on other claims and on claims stored before it)
    Column("type_of_bill", String(4), nullable=False, server_default=""),  # CLM05-1 facility type + CLM05-3 frequency
    Column("statement_from", Date),  # DTP*434
    Column("statement_to", Date),
    Column("admission_date", Date),  # DTP*435
    # the letters' letterhead and envelope (revision 0010; NULL on claims stored before it: not known)
    Column("billing_name", String(60)),  # 2010AA NM103
    *address_columns("billing"),  # 2010AA N3/N4
    Column("billing_contact", String(60)),  # 2010AA PER02, else 1000A PER02
    Column("billing_phone", String(80)),  # the telephone (TE, EX) of that PER
    *address_columns("patient"),  # 2010CA N3/N4, else the subscriber's 2010BA
)
Index("ix_claims_pcn", claims.c.patient_control_number, claims.c.billing_npi)

claim_lines = Table(
    "claim_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("claim_id", Integer, ForeignKey("claims.id"), nullable=False),
    Column("line_number", String(6), nullable=False),
    Column("procedure_code", String(48), nullable=False),
    Column("modifiers", String(20), nullable=False),  # ":"-joined
    Column("charge", Money()),
    Column("units", Numeric(15, 3)),
    Column("service_date", Date),
    Column("line_item_control_number", String(50), nullable=False),
)
Index("ix_claim_lines_claim", claim_lines.c.claim_id)

remittances = Table(
    "remittances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("transaction_id", Integer, ForeignKey("transactions.id"), nullable=False),
    Column("payer_id", String(80), nullable=False),
    Column("payer_name", String(60), nullable=False),
    Column("trace_number", String(50), nullable=False),
    Column("payment_amount", Money()),
    Column("credit_debit", String(1), nullable=False),
    Column("payment_date", Date),
    Column("production_date", Date),
    Column("payee_npi", String(80), nullable=False),
    Column("payee_tin", String(80), nullable=False),
    Column("source_file", Text, nullable=False),
    Column("segment", Integer, nullable=False),
    Column("byte_offset", Integer, nullable=False),
    UniqueConstraint("payer_id", "trace_number", name="uq_remittance_payer_trace"),
    *address_columns("payer"),  # N1*PR N3/N4 (revision 0010; NULL on remittances stored before it)
)

claim_payments = Table(
    "claim_payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("remittance_id", Integer, ForeignKey("remittances.id"), nullable=False),
    Column("ordinal", Integer, nullable=False),  # position within the remittance
    Column("patient_control_number", String(38), nullable=False),
    Column("status", String(2), nullable=False),
    Column("charge", Money()),
    Column("paid", Money()),
    Column("patient_responsibility", Money()),
    Column("filing_indicator", String(2), nullable=False),
    Column("payer_claim_control_number", String(50), nullable=False),
    Column("member_id", String(80), nullable=False),
    Column("patient_last", String(60), nullable=False),
    Column("patient_first", String(35), nullable=False),
    Column("service_from", Date),
    Column("service_to", Date),
    Column("source_file", Text, nullable=False),
    Column("segment", Integer, nullable=False),
    Column("byte_offset", Integer, nullable=False),
    # NM1*TT NM109: the crossover carrier the payer forwarded the claim to ("" none; NULL: stored before revision 0007)
    Column("crossover_carrier_id", String(80)),
)
Index("ix_claim_payments_pcn", claim_payments.c.patient_control_number)

payment_lines = Table(
    "payment_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("claim_payment_id", Integer, ForeignKey("claim_payments.id"), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("procedure_code", String(48), nullable=False),  # SVC06 when present, else SVC01
    Column("modifiers", String(20), nullable=False),
    Column("charge", Money()),
    Column("paid", Money()),
    Column("units", Numeric(15, 3)),
    Column("service_date", Date),
    Column("line_item_control_number", String(50), nullable=False),
)
Index("ix_payment_lines_payment", payment_lines.c.claim_payment_id)

adjustments = Table(
    "adjustments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("claim_payment_id", Integer, ForeignKey("claim_payments.id"), nullable=False),
    Column("line_ordinal", Integer),  # None: claim level
    Column("group_code", String(2), nullable=False),
    Column("reason", String(5), nullable=False),
    Column("amount", Money()),
)
Index("ix_adjustments_payment", adjustments.c.claim_payment_id)

provider_adjustments = Table(
    "provider_adjustments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("remittance_id", Integer, ForeignKey("remittances.id"), nullable=False),
    Column("provider_id", String(50), nullable=False),
    Column("fiscal_period_date", Date),
    Column("position", Integer, nullable=False),
    Column("reason", String(2), nullable=False),
    Column("reference", String(50), nullable=False),
    Column("amount", Money()),
    Column("segment", Integer, nullable=False),
    Column("byte_offset", Integer, nullable=False),
)

patient_payments = Table(
    "patient_payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payment_id", String(80), nullable=False, unique=True),
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("patient_control_number", String(38), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("billing_npi", String(80), nullable=False),
    Column("member_id", String(80), nullable=False),
)

ingest_exceptions = Table(
    "ingest_exceptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),  # deterministic: the same problem is kept once
    Column("kind", String(32), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("source_file", Text, nullable=False),
    Column("segment", Integer, nullable=False),
    Column("patient_control_number", String(38), nullable=False),
    Column("payer_id", String(80), nullable=False),
    Column("amount", Money()),
    Column("detail", Text, nullable=False),
)

refund_history = Table(
    "refund_history",
    metadata,
    Column("refund_id", String(32), primary_key=True),
    Column("identified_on", Date, nullable=False),
)

# -- drop folders (``edirecon watch``) --------------------------------------------------------
# One row per file a watcher claimed from ``inbound/``: what it was, where it went, and how far
# its processing got (``state``: received, claimed, ingested, then archived or quarantined).  No
# patient data: names, ids, hashes, counts and finding codes only.  Times are UTC.

inbound_files = Table(
    "inbound_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("work_name", Text, nullable=False),  # its name in work/ while it is processed
    Column("original_name", Text, nullable=False),  # its path under inbound/, e.g. "acme/claims.837"
    Column("partner", String(120), nullable=False),  # the inbound/ subfolder it came from ("" at the top)
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),  # "" until claimed
    Column("kind", String(20), nullable=False),  # x12, patient_payments, unsupported
    Column("isa06", String(15), nullable=False),  # sender id of the first interchange
    Column("isa08", String(15), nullable=False),  # receiver id
    Column("isa13", String(9), nullable=False),  # interchange control number
    Column("state", String(12), nullable=False),
    Column("disposition", String(12), nullable=False),  # ingest or duplicate ("" until claimed)
    Column("duplicate_reason", Text, nullable=False),
    Column("ack_name", Text, nullable=False),  # acknowledgments are ack/<partner>/<ack_name>.999/.ta1
    Column("destination", Text, nullable=False),  # archive/... or error/... relative to the root
    Column("transaction_sets", Integer, nullable=False),
    Column("transaction_sets_ingested", Integer, nullable=False),
    Column("claims", Integer, nullable=False),
    Column("claim_payments", Integer, nullable=False),
    Column("patient_payments", Integer, nullable=False),
    Column("error", Text, nullable=False),  # finding codes and positions of a quarantined file
    Column("received_at", DateTime, nullable=False),
    Column("claimed_at", DateTime),
    Column("ingested_at", DateTime),
    Column("finished_at", DateTime),
)
Index("ix_inbound_files_sha256", inbound_files.c.sha256)
Index("ix_inbound_files_interchange", inbound_files.c.isa06, inbound_files.c.isa13)
Index("ix_inbound_files_work_name", inbound_files.c.work_name)

#: the 835s re-emitted into outbound/835/; the id is the ISA13 (and GS06 base) of the interchange
outbound_interchanges = Table(
    "outbound_interchanges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("payer_id", String(80), nullable=False),
    Column("payee_npi", String(80), nullable=False),
    Column("transaction_sets", Integer, nullable=False),
    Column("claim_payments", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# -- the scale-out path (issue 5): parts of files ingested by workers, decisions kept per encounter --
Index("ix_claims_npi_member", claims.c.billing_npi, claims.c.member_id)
Index("ix_provider_adjustments_reference", provider_adjustments.c.reference)
Index("ix_patient_payments_pcn", patient_payments.c.patient_control_number)

#: the parts of a file (every n-th transaction set) that workers have finished
file_parts = Table(
    "file_parts",
    metadata,
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("part", Integer, nullable=False),
    Column("parts", Integer, nullable=False),
    UniqueConstraint("file_id", "part"),
)

#: the refunds of each patient control number as the last detection decided them (incremental,
#: kept current by detection jobs); a refund id is unique, so two detections never keep two
detections = Table(
    "detections",
    metadata,
    Column("refund_id", String(40), primary_key=True),
    Column("patient_control_number", String(38), nullable=False),
    Column("encounter_id", String(40), nullable=False),
    Column("reason", String(24), nullable=False),
    Column("payee_type", String(8), nullable=False),
    Column("payer_id", String(80), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("recouped", Money(), nullable=False),
    Column("status", String(24), nullable=False),
    Column("identified_on", Date, nullable=False),
    Column("due_by", Date, nullable=False),
    # what ``refund list`` shows of it without deciding again (issue 15: decisions recorded, not recomputed)
    Column("acknowledged", Money(), nullable=False, server_default="0.00"),  # what the payer booked a refund check for (offset pairs)
    Column("payer_name", Text, nullable=False, server_default=""),
    Column("patient_name", Text, nullable=False, server_default=""),
    Column("credit_since", Date),  # the day the money that made the credit came in (``credit_arose_on``): days in credit
)
Index("ix_detections_pcn", detections.c.patient_control_number)
# the work queue's page in order (``records.sorted_page``): by due day, and by amount (on SQLite
# the amount's text by length, then itself: the order of the numbers; on PostgreSQL the ids byte by byte)
Index("ix_detections_due", detections.c.due_by, detections.c.refund_id).ddl_if(dialect="sqlite")
Index("ix_detections_amount", func.length(detections.c.amount), detections.c.amount, detections.c.refund_id).ddl_if(dialect="sqlite")
Index("ix_detections_due_pg", detections.c.due_by, detections.c.refund_id.collate("C")).ddl_if(dialect="postgresql")
Index("ix_detections_amount_pg", detections.c.amount, detections.c.refund_id.collate("C")).ddl_if(dialect="postgresql")

#: which facts (a fingerprint of the fact tables: ``records.facts_fingerprint``) and which
#: configuration the kept refunds (``detections``) and the refund workflow were last decided and
#: synced from, by ``run`` or by a command that found them stale; one row (none: an older store)
decision_records = Table(
    "decision_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("facts", String(200), nullable=False),
    Column("config", String(64), nullable=False),
    Column("as_of", Date),  # set when a kept refund was dated by the day decided (not in refund_history yet)
    Column("recorded_at", DateTime, nullable=False),
    # a detection kept refunds since the workflow last followed every kept refund: only then may a
    # refund be kept and not followed, or followed and no longer kept (``records.unfollowed``)
    Column("kept_since_sync", Boolean, nullable=False, server_default=false()),
)

#: the rows of the API's lists of what the engine decided (recoupments, credit balances,
#: exceptions: ``record.decided``) as ``run`` recorded them: each row's JSON item under its
#: ``kind`` with the text that orders it (``sort_key``, compared code point by code point:
#: collation "C" on PostgreSQL) and its position among equal keys (``seq``); a page is one
#: indexed query
decided_rows = Table(
    "decided_rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("sort_key", Text().with_variant(Text(collation="C"), "postgresql"), nullable=False),
    Column("row_json", Text, nullable=False),
)
Index("ix_decided_rows_kind_key", decided_rows.c.kind, decided_rows.c.sort_key, decided_rows.c.seq)

#: which facts, configuration and day the ``decided_rows`` were decided from (one row; none: not
#: recorded yet, an older store): they are current only while all three are the same
decided_lists = Table(
    "decided_lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("facts", String(200), nullable=False),
    Column("config", String(64), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("recorded_at", DateTime, nullable=False),
)

# -- refund workflow (``edirecon refund``) ----------------------------------------------------
# The engine recomputes refunds on every run; what people decided about them lives here, keyed
# by the deterministic refund_id, so it survives later runs.  ``refund_workflow`` holds the
# current state of each refund; ``refund_events`` is the audit trail: one row per change, never
# updated or deleted.  No patient names, member ids or dates of birth.  Times are UTC.

refund_workflow = Table(
    "refund_workflow",
    metadata,
    Column("refund_id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),  # pending, held, approved, sent, acknowledged, ... (docs/workflow-and-reports.md)
    # what the engine said when the workflow first met the refund, kept when it no longer does
    Column("reason", String(24), nullable=False),
    Column("payee_type", String(8), nullable=False),
    Column("payer_id", String(80), nullable=False),
    Column("amount", Money(), nullable=False),
    # mark-sent
    Column("method", String(12), nullable=False),  # check, eft, adjustment ("" until sent)
    Column("reference", String(50), nullable=False),  # check or EFT number
    Column("sent_on", Date),
    Column("sent_amount", Money()),
    Column("recouped_when_sent", Money()),  # what the payer had already taken back when it was sent
    # the payer's acknowledgment: the PLB 72 matched to it (payer|trace|segment|position), or the
    # payer's letter or portal confirmation recorded by `refund acknowledge` ("confirmation <reference>")
    Column("acknowledged_by", String(120), nullable=False),
    Column("acknowledged_on", Date),
    Column("acknowledged_amount", Money()),
    # sent and also taken back by the payer: money to recover
    Column("double_refund_amount", Money()),
    Column("double_refund_traces", Text, nullable=False),
    Column("recovered_on", Date),
    Column("recovered_amount", Money()),
    Column("cashed_on", Date),  # a patient refund check cashed
    Column("updated_at", DateTime, nullable=False),
    Column("assigned_to", String(64), nullable=False, server_default=""),  # a user name (refund assign); "" nobody
    # a person acted on it since it was last synced: the next command syncs it (the payer's answer to a refund sent)
    Column("needs_sync", Boolean, nullable=False, server_default=false()),
)

refund_events = Table(
    "refund_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("refund_id", String(32), ForeignKey("refund_workflow.refund_id"), nullable=False),
    Column("at", DateTime, nullable=False),  # UTC
    Column("user_name", String(64), nullable=False),  # --user, the OS user, or "edirecon" for automatic steps
    Column("action", String(24), nullable=False),
    Column("from_status", String(16), nullable=False),  # "" for the first event
    Column("to_status", String(16), nullable=False),
    Column("note", Text, nullable=False),
)
Index("ix_refund_events_refund", refund_events.c.refund_id, refund_events.c.id)
Index("ix_refund_workflow_needs_sync", refund_workflow.c.needs_sync)

#: jobs that failed (each attempt), for ``edirecon status``: the error, never patient data
job_failures = Table(
    "job_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task", String(60), nullable=False),
    Column("arguments", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("failed_at", DateTime, nullable=False),
)

# -- users, roles and API tokens (``edirecon user``, ``edirecon token``; docs/users.md) ------------
# Who may use the store through ``edirecon serve``: a user has one role (the ``role`` family of
# mappings/codes.csv) and an argon2 password hash, never the password.  Failed logins are counted
# on the user: MAX_FAILED_LOGINS in a row lock it until ``locked_until``.  A disabled user
# (``disabled_at`` set) stays listed, and is refused.  Times are UTC.

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),  # also the audit trail's user_name
    Column("role", String(16), nullable=False),  # viewer, analyst, approver, admin
    Column("password_hash", String(255), nullable=False),  # argon2id, in its PHC string form ($argon2id$v=19$...)
    Column("failed_logins", Integer, nullable=False, default=0),  # failed logins in a row since the last success or lock
    Column("locked_until", DateTime),  # no login before then (too many failed logins)
    Column("disabled_at", DateTime),  # set: the user is disabled (its logins and tokens refused)
    Column("created_at", DateTime, nullable=False),
)

# An API token is shown once, when made, and stored as the SHA-256 of its text: a token is 256
# random bits (secrets.token_urlsafe(32)), so unlike a password it cannot be guessed from a fast
# hash, and a fast hash lets each API call find its token by an indexed lookup (argon2 would cost
# every call tens of milliseconds and could not be indexed).  ``token_id`` is a short random id,
# also the token's first characters, by which `edirecon token revoke` names it.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_id", String(16), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),  # hex SHA-256 of the whole token
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),  # set: the token is refused
)
Index("ix_api_tokens_user", api_tokens.c.user_id)
