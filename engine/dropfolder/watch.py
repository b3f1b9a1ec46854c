"""``edirecon watch ROOT``: clearinghouse drop folders.

Partners drop files into ``inbound/``; the watcher claims each ready file into ``work/``
(``engine.dropfolder``), records it in ``inbound_files``, ingests it (``engine.ingest``, idempotent
per transaction set), reads what it held (``engine.examine``), acknowledges 837s (``parsers.validate``: 999, and TA1 when the envelope
asks for one), and moves it to ``archive/YYYY/MM/DD/`` or, with ``<name>.error.json``, to
``error/``.  After a batch it publishes the outputs of ``run`` and the re-emitted 835s in
``outbound/`` (``engine.outbound``), manifest last.

Exactly once: a file's row records how far it got (received → claimed → ingested → archived or
quarantined), and the duplicate decision is taken once, when it is claimed.  A watcher killed
mid-file leaves the file in ``work/``; the next poll of any watcher on the ROOT takes its lock and
carries on from the recorded state (ingestion itself resumes per transaction set).

One structured log event per file and step (``received``, ``resumed``, ``claimed``, ``ingested``,
``acknowledged``, ``archived`` / ``quarantined``), with the file's name, partner, SHA-256 and
counts — never patient data.  An entry that is not a readable regular file with a safe name is
never claimed: it is moved as it is into ``error/`` (``engine.rejects``) with a ``rejected``
warning, and the other files of the batch go on.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from edirecon import parsers
from edirecon.engine.config import Config
from edirecon.engine.dropfolder.acks import fallback_999
from edirecon.engine.dropfolder.examine import (
    Analysis,
    Identity,
    examine,
    finding_dict,
    identify,
    stored_for,
)
from edirecon.engine.dropfolder.layout import (
    Claim,
    Layout,
    Poller,
    Ready,
    Refusal,
    StoreLock,
    claim,
    free_name,
    orphans,
    refusal,
    safe_text,
    utcnow,
)
from edirecon.engine.dropfolder.outbound import (
    REEMITTED,
    publish_outputs,
    reemit_835s,
    reemitted_counts,
    spool_sets,
    write_atomically,
    write_manifest,
)
from edirecon.engine.dropfolder.rejects import reject
from edirecon.engine.ingest.ingestor import Ingestor, record_exception
from edirecon.engine.logging import get_logger
from edirecon.engine.record.manifest import batch_name
from edirecon.engine.run import ingest_files
from edirecon.engine.scale.processes import worker_count
from edirecon.engine.store import inbound
from edirecon.engine.store.connection import open_store, store_error
from edirecon.errors import StoreUnavailable, UsageError, WatchError

log = get_logger("edirecon.watch", component="watch")

DEFAULT_INTERVAL = 2.0
DUPLICATE_WINDOW_DAYS = 365
ACK_SUFFIXES = (".999", ".997", ".ta1")
#: error findings listed in the store's ``error`` column (error.json lists them all)
ERROR_SUMMARY_LIMIT = 20


@dataclass
class Options:
    interval: float = DEFAULT_INTERVAL
    once: bool = False
    as_of: date | None = None
    config: Config = field(default_factory=Config)
    duplicate_window: timedelta = timedelta(days=DUPLICATE_WINDOW_DAYS)
    queue: bool = False  # PostgreSQL: each file's parse-and-ingest is deferred to `edirecon worker` jobs
    create: bool = False  # create ROOT when it does not exist (else a usage error: a mistyped ROOT)
    workers: int | None = None  # processes deciding the store at each publish, as `run`'s; None: one per core


class Watcher:
    """One watcher on one ROOT and store."""

    def __init__(self, root: Path, db_url: str, options: Options):
        if root.exists() and not root.is_dir():
            raise UsageError(f"{root}: is not a folder")
        if not root.exists() and not options.create:
            raise UsageError(f"{root}: no such folder (give --create to create the drop folders there)")
        self.layout = Layout(root)
        try:
            self.layout.create()
        except OSError as exc:
            raise UsageError(f"{root}: cannot create the drop folders ({exc.strerror})") from exc
        self.options = options
        self.lock = StoreLock(self.layout.store_lock)
        try:
            with self.lock:  # two watchers starting together on a new store: one creates the schema
                self.store = open_store(db_url, create=True)
        except StoreUnavailable as exc:  # not a database, of a newer edirecon, unreachable: one line
            raise WatchError(str(exc)) from None
        self.poller = Poller(self.layout.inbound)
        self.stop_requested = False
        self.quarantined = 0
        self.processed = 0
        self.left: set[tuple[Path, tuple[str, int, int]]] = set()  # refused entries that could not be moved (warned once)

    # -- the loop ------------------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        """SIGTERM/SIGINT: finish the file in hand, publish, and exit."""
        self.stop_requested = True

    def run(self) -> int:
        """Poll until stopped (or once); return the exit code."""
        try:
            with self.lock:
                self._reconcile()
            if self.options.once:
                self.poller.poll()
                if self.poller.pending():
                    self._sleep(self.options.interval)
                self.batch(self.poller.poll() if not self.stop_requested else [])
                return 1 if self.quarantined else 0
            while not self.stop_requested:
                self.batch(self.poller.poll())
                self._sleep(self.options.interval)
            return 0
        except SQLAlchemyError as exc:  # by its kind: never SQL parameters (patient data)
            raise WatchError(str(store_error(exc, self.store.given_url))) from None
        finally:
            self.store.dispose()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop_requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    def batch(self, ready: list[Ready]) -> None:
        """Finish orphaned files, then claim and process each ready file (refusing the entries that
        are not readable regular files with a safe name); publish if anything moved."""
        processed = 0
        for c in self._orphans():
            processed += self._guarded(c)
        for entry in ready:
            if self.stop_requested:
                break
            c: Claim | None = None
            why = refusal(self.layout, entry)
            if why is None:
                try:
                    c = claim(self.layout, entry.rel, entry.why, entry.first_seen)
                except OSError as exc:
                    if exc.errno != errno.ENAMETOOLONG:
                        raise WatchError(
                            f"inbound/{safe_text(entry.rel.as_posix())}: cannot be moved into work/ ({exc.strerror or exc}); "
                            "inbound/ and work/ must be writable and on the same file system"
                        ) from exc
                    why = Refusal("FILE_NAME_TOO_LONG", "file", "its name is too long to be moved into work/")
            if why is not None:
                self._reject(entry, why)
            elif c is not None:
                processed += self._guarded(c)
        if processed or self._spooled_finished():
            try:
                self.publish()
            except OSError as exc:
                raise WatchError(f"outbound/: cannot be written ({exc.strerror or exc}); published again after the next batch") from exc

    def _reject(self, entry: Ready, why: Refusal) -> None:
        """Move a refused entry into error/ with its record, and warn; the batch goes on."""
        key = (entry.rel, entry.signature)
        if key in self.left:
            return  # already warned: it could not be moved, and has not changed
        try:
            with self.lock:
                event = reject(self.layout, entry, why)
        except OSError as exc:
            raise WatchError(f"error/: cannot be written ({exc.strerror or exc})") from exc
        if event is None:
            return
        if not event["moved"]:
            self.left.add(key)
        self.quarantined += 1
        log.warning("rejected", **event)

    def _orphans(self) -> Iterator[Claim]:
        for c in orphans(self.layout):
            if self.stop_requested:
                c.abandon()  # left for the next start
                return
            yield c

    def _guarded(self, c: Claim) -> int:
        try:
            self.process(c)
        except DBAPIError:
            c.abandon()  # the store is down: the file stays in work/ and is resumed later
            raise
        except OSError as exc:
            c.abandon()
            raise WatchError(f"{c.original}: {exc.strerror or exc} (the file stays in work/ and is resumed on the next start)") from exc
        self.processed += 1
        return 1

    # -- one file ------------------------------------------------------------------------------
    def process(self, c: Claim) -> None:
        """Take one claimed file from where its row says it got to, through to archive/ or error/."""
        with self.lock:
            row = self._row(c)
        ev = {"file": c.original, "partner": c.partner}
        if row["state"] == "received":
            log.info("received", **ev, size=row["size"], released_by=c.why)
        else:
            log.info("resumed", **ev, state=row["state"])
        ident = identify(c.path)
        if row["state"] == "received":
            with self.lock:
                row = self._claimed(c, row, ident)
        log.info(
            "claimed",
            **ev,
            sha256=ident.sha256,
            kind=ident.kind,
            isa06=ident.isa06,
            isa08=ident.isa08,
            isa13=ident.isa13,
            disposition=row["disposition"],
            duplicate=row["duplicate_reason"] or None,
        )
        analysis: Analysis | None = None
        if row["disposition"] == "ingest":
            if row["state"] == "claimed" and self.options.queue:
                # workers parse and ingest it (a large file in parts, side by side) and detect as of this
                # watch's day, not their own clock; this watcher waits
                ingest_files(self.store, [(c.path, c.original)], queue=True, as_of=self.options.as_of or date.today())
            elif row["state"] == "claimed":
                with self.lock:
                    Ingestor(self.store).ingest(c.path, c.original)
            analysis = self._analyse(c, ident)
            with self.lock:
                spool_sets(self.layout.spool, row["id"], c.original, analysis.clean_835)
                row = self._update(row["id"], state="ingested", ingested_at=row["ingested_at"] or utcnow(), **analysis.counts)
            log.info("ingested", **ev, sha256=ident.sha256, **analysis.counts, errors=len(analysis.errors), clean_835_sets=len(analysis.clean_835))
        elif row["disposition"] == "duplicate":
            analysis = self._duplicate_of_quarantined(row, ident)
        acks = self._acknowledge(c, row, ident, analysis)
        self._finish(c, row, ident, analysis, acks)

    def _duplicate_of_quarantined(self, row: dict[str, Any], ident: Identity) -> Analysis | None:
        """A duplicate of a file that was quarantined is quarantined too (not hidden in archive/)."""
        with self.store.engine.connect() as conn:
            earlier = inbound.quarantined_as(conn, row["id"], ident.sha256)
        if earlier is None:
            return None
        return Analysis(
            extra_errors=[
                {
                    "code": "DUPLICATE_FILE",
                    "severity": "error",
                    "segment": 0,
                    "offset": 0,
                    "message": f"the same bytes were quarantined as {earlier} (see its error.json); not ingested again",
                }
            ]
        )

    def _row(self, c: Claim) -> dict[str, Any]:
        """The row of a file being resumed, or a new one in state ``received``."""
        with self.store.write() as conn:
            found = inbound.open_row(conn, c.path.name)
            if found is not None:
                return found
            values = {
                "work_name": c.path.name,
                "original_name": c.original,
                "partner": c.partner[:120],
                "size": c.path.stat().st_size,
                "sha256": "",
                "kind": "",
                "isa06": "",
                "isa08": "",
                "isa13": "",
                "state": "received",
                "disposition": "",
                "duplicate_reason": "",
                "ack_name": "",
                "destination": "",
                "transaction_sets": 0,
                "transaction_sets_ingested": 0,
                "claims": 0,
                "claim_payments": 0,
                "patient_payments": 0,
                "error": "",
                "received_at": c.received_at,
            }
            new_id = inbound.insert_row(conn, values)
        return {"id": new_id, **values, "claimed_at": None, "ingested_at": None, "finished_at": None}

    def _update(self, row_id: int, **values: Any) -> dict[str, Any]:
        with self.store.write() as conn:
            return inbound.update_row(conn, row_id, values)

    def _claimed(self, c: Claim, row: dict[str, Any], ident: Identity) -> dict[str, Any]:
        """Decide, once, whether the file is a duplicate; name its acknowledgments."""
        reason = self._duplicate_of(row, ident)
        ack_name = self._ack_name(c, row["id"]) if ident.kind == "x12" else ""
        if reason:
            with self.store.write() as conn:
                record_exception(conn, [ident.sha256, c.original, row["id"]], "DUPLICATE_FILE", c.original, f"{reason}; not ingested again", severity="warning")
        return self._update(
            row["id"],
            state="claimed",
            sha256=ident.sha256,
            kind=ident.kind,
            isa06=ident.isa06,
            isa08=ident.isa08,
            isa13=ident.isa13,
            size=ident.size,
            disposition="duplicate" if reason else "ingest",
            duplicate_reason=reason,
            ack_name=ack_name,
            claimed_at=utcnow(),
        )

    def _duplicate_of(self, row: dict[str, Any], ident: Identity) -> str:
        """Why the file is a duplicate ("" when it is not): the same bytes already ingested (or
        being ingested by another watcher), or the same sender and ISA13 within the window."""
        with self.store.engine.connect() as conn:
            known = inbound.ingested_from(conn, ident.sha256)
            if known is not None:
                return f"the same bytes (SHA-256 {ident.sha256[:12]}…) were ingested from {known}"
            other = inbound.received_as(conn, row["id"], ident.sha256)
            if other is not None:
                return f"the same bytes (SHA-256 {ident.sha256[:12]}…) were received as {other}"
            if ident.isa06 and ident.isa13:
                since = row["received_at"] - self.options.duplicate_window
                earlier = inbound.interchange_received(conn, row["id"], ident.isa06, ident.isa13, since)
                if earlier is not None:
                    return (
                        f"interchange ISA06={ident.isa06} ISA13={ident.isa13} was received as {earlier[0]} "
                        f"on {earlier[1]:%Y-%m-%d} (duplicate window {self.options.duplicate_window.days} days)"
                    )
        return ""

    def _ack_name(self, c: Claim, row_id: int) -> str:
        """``<name>``, or ``<name>~2`` … while an acknowledgment of that name waits in ack/ or is
        reserved by a file in flight."""
        with self.store.engine.connect() as conn:
            reserved = inbound.reserved_ack_names(conn, c.partner[:120], row_id)
        name = Path(c.original).name
        folder = self.layout.ack / c.partner
        for n in range(1, 100000):
            candidate = free_name(folder, name if n == 1 else f"{name}~{n}", *ACK_SUFFIXES)
            if candidate not in reserved:
                return candidate
        raise RuntimeError("no free acknowledgment name")

    # -- what a file held ----------------------------------------------------------------------
    def _analyse(self, c: Claim, ident: Identity) -> Analysis:
        """What the file held (a second read) and what the store took from it."""
        with self.lock, self.store.engine.connect() as conn:
            stored = stored_for(conn, ident.sha256)
        return examine(c.path, c.original, ident.kind, stored)

    # -- acknowledgments, archive, quarantine ---------------------------------------------------
    def _acknowledge(self, c: Claim, row: dict[str, Any], ident: Identity, analysis: Analysis | None) -> list[str]:
        """999 (and TA1 when the envelope asks for one) for an 837, named after the original file."""
        if ident.kind != "x12":
            return []
        codes = {s["st01"] for s in analysis.sets} if analysis is not None and analysis.sets else {ident.first_set} - {""}
        if codes and "837" not in codes:
            return []
        # deferred: pyx12 (the implementation-guide maps) loads only when an 837 is acknowledged
        from edirecon.parsers.validate import validate_file

        folder = self.layout.ack / c.partner
        result = validate_file(c.path, folder, row["ack_name"])
        written = list(result.acknowledgments)
        validator = "pyx12" if result.validated else "edirecon (pyx12 has no map for this guide)"
        if "837" in codes and not any(p.suffix in (".999", ".997") for p in written):
            # no implementation-guide map, or pyx12's 999 writer failed: a 999 from our own envelope checks
            target = folder / f"{row['ack_name']}.999"
            if fallback_999(c.path, target):
                written.append(target)
                validator = "edirecon" if result.validated else validator
        acks = [p.relative_to(self.layout.root).as_posix() for p in written]
        ig_errors = sum(1 for f in result.findings if f.severity is parsers.Severity.ERROR)
        log.info(
            "acknowledged",
            file=c.original,
            partner=c.partner,
            sha256=ident.sha256,
            acknowledgments=acks,
            validator=validator,
            valid=result.valid,
            implementation_guide_errors=ig_errors,
        )
        return acks

    def _finish(self, c: Claim, row: dict[str, Any], ident: Identity, analysis: Analysis | None, acks: list[str]) -> None:
        broken = analysis is not None and analysis.broken
        name = Path(c.original).name
        with self.lock:
            destination = row["destination"]
            if not destination:
                if broken:
                    folder = self.layout.error / c.partner
                    destination = (folder / free_name(folder, name, ".error.json")).relative_to(self.layout.root).as_posix()
                else:
                    day = utcnow()
                    folder = self.layout.archive / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / c.partner
                    destination = (folder / free_name(folder, name)).relative_to(self.layout.root).as_posix()
                row = self._update(row["id"], destination=destination)
        target = self.layout.root / destination
        target.parent.mkdir(parents=True, exist_ok=True)
        summary_text = ""
        if broken:
            assert analysis is not None
            errors = analysis.errors
            summary_text = "; ".join(f"{e['code']} at segment {e['segment']} byte {e['offset']}" for e in errors[:ERROR_SUMMARY_LIMIT])
            if len(errors) > ERROR_SUMMARY_LIMIT:
                summary_text += f"; and {len(errors) - ERROR_SUMMARY_LIMIT} more"
            report = {
                "file": c.original,
                "partner": c.partner,
                "sha256": ident.sha256,
                "kind": ident.kind,
                "interchange": {"isa06": ident.isa06, "isa08": ident.isa08, "isa13": ident.isa13},
                "received_at": f"{row['received_at']:%Y-%m-%dT%H:%M:%S}Z",
                "quarantined_at": f"{utcnow():%Y-%m-%dT%H:%M:%S}Z",
                "reason": f"{len(errors)} error finding(s); "
                f"{sum(1 for s in analysis.sets if not s['ingested'])} of {len(analysis.sets)} transaction set(s) not ingested",
                "errors": errors,
                "warnings": [finding_dict(f) for f in analysis.findings if f.severity is not parsers.Severity.ERROR],
                "transaction_sets": analysis.sets,
                "ingested": {k: analysis.counts.get(k, 0) for k in ("transaction_sets_ingested", "claims", "claim_payments", "patient_payments")},
                "acknowledgments": acks,
            }
            write_atomically(target.with_name(target.name + ".error.json"), (json.dumps(report, indent=1) + "\n").encode())
        os.rename(c.path, target)
        state = "quarantined" if broken else "archived"
        with self.lock:
            self._update(row["id"], state=state, error=summary_text, finished_at=utcnow())
        c.release()
        event = {"file": c.original, "partner": c.partner, "sha256": ident.sha256, "destination": destination}
        if broken:
            self.quarantined += 1
            log.info("quarantined", **event, errors=len(analysis.errors) if analysis else 0)
        else:
            log.info("archived", **event, duplicate=row["disposition"] == "duplicate")

    # -- publishing ----------------------------------------------------------------------------
    def _spooled_finished(self) -> bool:
        return bool(self._finished_spools())

    def _finished_spools(self) -> set[int]:
        ids = {int(p.stem) for p in self.layout.spool.glob("*.json") if p.stem.isdigit()}
        if not ids:
            return set()
        with self.store.engine.connect() as conn:
            return inbound.finished(conn, ids)

    def publish(self) -> None:
        """The outputs of ``run``, the re-emitted 835s, then manifest.json (one publisher at a time)."""
        with self.lock:
            now = utcnow()
            as_of = self.options.as_of or date.today()
            written, row_counts = publish_outputs(self.store, self.layout.outbound, as_of, self.options.config, worker_count(self.options.workers))
            emitted = reemit_835s(self.store, self.layout.spool, self.layout.outbound / REEMITTED, self._finished_spools(), now)
            batch = batch_name(now)
            manifest = write_manifest(self.layout.outbound, written, row_counts, reemitted_counts(self.store), as_of, batch, now)
        for e in emitted:
            log.info(
                "reemitted",
                file=f"{REEMITTED}/{e['file']}",
                payer_id=e["payer_id"],
                payee_npi=e["payee_npi"],
                transaction_sets=e["transaction_sets"],
                claim_payments=e["claim_payments"],
            )
        log.info("published", batch=batch, as_of=as_of.isoformat(), files=len(manifest["files"]), **row_counts)

    def _reconcile(self) -> None:
        """Rows left short of their final state by a crash after their file was moved."""
        with self.store.write() as conn:
            for r in inbound.moved_unfinished(conn):
                if (self.layout.root / r["destination"]).exists() and not (self.layout.work / r["work_name"]).exists():
                    state = "quarantined" if r["destination"].startswith("error/") else "archived"
                    inbound.set_final(conn, r["id"], state, utcnow())


def watch(root: Path, db_url: str, options: Options) -> int:
    """Run a watcher until it is done (``--once``) or stopped by SIGTERM/SIGINT; the exit code."""
    watcher = Watcher(root, db_url, options)
    previous = {sig: signal.signal(sig, watcher.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return watcher.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
