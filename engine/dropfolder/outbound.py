"""What ``edirecon watch`` publishes in ``outbound/`` after a batch: the outputs of ``edirecon run``
(the full current state), the clean 835s re-emitted per payer and payee, and ``manifest.json``.

Every file is written under a temporary dot-name and renamed into place; ``manifest.json`` is
written last, so a consumer that reads the manifest and only the files it lists, checking their
SHA-256, never reads a half-written output.

A re-emitted 835 holds only transaction sets that were ingested without an error finding and were
not duplicates.  Each ST..SE is copied segment for segment from the file it came from and wrapped in
a fresh ISA/GS/GE/IEA envelope: one GS per functional group of origin (so ST02 stays unique
within its group), GE01/IEA01 counted, ISA13 taken from the store (``outbound_interchanges.id``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from edirecon.engine.config import Config
from edirecon.engine.ingest.ingestor import sha256_of
from edirecon.engine.record import manifest
from edirecon.engine.record.manifest import MANIFEST as MANIFEST  # re-exported
from edirecon.engine.record.manifest import write_atomically as write_atomically  # re-exported
from edirecon.engine.run import decide_and_record
from edirecon.engine.store import interchanges
from edirecon.engine.store.connection import Store

REEMITTED = "835"
#: interchange sender of a re-emitted 835 (ISA05/ISA06); the receiver is the payee NPI (ZZ)
SENDER_QUALIFIER, SENDER_ID = "ZZ", "EDIRECON"


# -- the outputs of `run` -------------------------------------------------------------------


def publish_outputs(store: Store, out_dir: Path, as_of: date, config: Config, workers: int = 1) -> tuple[list[Path], dict[str, Any]]:
    """Decide from everything the store knows, in ``workers`` processes as ``run`` does, and write
    the outputs of ``edirecon run`` (the same chain: ``run.decide_and_record``); returns the files
    written and their row counts."""
    _, outputs, _, written = decide_and_record(store, out_dir, as_of, config, workers=workers)
    return written, {name: len(table) for name, table in outputs.items()}


# -- re-emitted 835s ------------------------------------------------------------------------


def spool_sets(spool: Path, inbound_id: int, source: str, sets: list[dict[str, Any]]) -> None:
    """Keep the clean 835 transaction sets of one inbound file until the batch is published."""
    if sets:
        write_atomically(spool / f"{inbound_id}.json", json.dumps({"source": source, "sets": sets}).encode("latin-1"))
    else:
        (spool / f"{inbound_id}.json").unlink(missing_ok=True)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "_", text.strip()) or "unknown"


def reemit_835s(store: Store, spool: Path, out_dir: Path, finished: set[int], now: datetime) -> list[dict[str, Any]]:
    """Write one 835 per payer and payee from the spooled sets of finished inbound files, then
    drop those spool files.  Returns what was written (file, payer, payee, counts)."""
    pending = sorted(int(p.stem) for p in spool.glob("*.json") if p.stem.isdigit() and int(p.stem) in finished)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for inbound_id in pending:
        doc = json.loads((spool / f"{inbound_id}.json").read_bytes().decode("latin-1"))
        for s in doc["sets"]:
            key = (s["payer_id"], s["payee_npi"], tuple(s["delimiters"]), s["isa11"], s["isa12"], s["isa15"])
            groups[key].append(s)
    written = []
    for key, sets in sorted(groups.items()):
        payer_id, payee_npi = key[0], key[1]
        with store.write() as conn:
            control = interchanges.new_interchange(conn, payer_id[:80], payee_npi[:80], len(sets), sum(s["claim_payments"] for s in sets), now)
        name = f"{control:09d}-{_safe(payer_id)}-{_safe(payee_npi)}.835"
        data = envelope(sets, control, payee_npi, now).encode("latin-1")
        write_atomically(out_dir / name, data)
        digest = hashlib.sha256(data).hexdigest()
        with store.write() as conn:
            interchanges.name_interchange(conn, control, name, digest)
        written.append(
            {
                "file": name,
                "payer_id": payer_id,
                "payee_npi": payee_npi,
                "transaction_sets": len(sets),
                "claim_payments": sum(s["claim_payments"] for s in sets),
            }
        )
    for inbound_id in pending:
        (spool / f"{inbound_id}.json").unlink(missing_ok=True)
    return written


def envelope(sets: list[dict[str, Any]], control: int, receiver: str, now: datetime) -> str:
    """A fresh interchange around ``sets`` (all with the same delimiters): one GS per functional
    group they came from, each ST..SE as it was."""
    elem, _rep, comp, term = sets[0]["delimiters"]
    first = sets[0]
    isa13 = f"{control % 10**9:09d}"
    eol = "" if term == "\n" else "\n"

    def seg(*elements: str) -> str:
        return elem.join(elements) + term + eol

    out = [
        seg(
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            SENDER_QUALIFIER,
            SENDER_ID.ljust(15),
            "ZZ",
            receiver[:15].ljust(15),
            now.strftime("%y%m%d"),
            now.strftime("%H%M"),
            first["isa11"],
            first["isa12"],
            isa13,
            "0",
            first["isa15"],
            comp,
        )
    ]
    by_group: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in sets:
        by_group[(s["source"], s["isa13"], s["gs"][6] if len(s["gs"]) > 6 else "")].append(s)
    for n, (_origin, members) in enumerate(by_group.items(), start=1):
        gs = list(members[0]["gs"]) + [""] * max(0, 9 - len(members[0]["gs"]))
        gs06 = str((control * 100 + n) % 10**9)
        gs[6] = gs06
        out.append(seg(*gs))
        out.extend(s["text"] for s in members)
        out.append(seg("GE", str(len(members)), gs06))
    out.append(seg("IEA", str(len(by_group)), isa13))
    return "".join(out)


def set_text(segments: list[list[str]], element: str, terminator: str) -> str:
    """The text of one transaction set: each segment's elements joined as they were read."""
    eol = "" if terminator == "\n" else "\n"
    return "".join(element.join(els) + terminator + eol for els in segments)


# -- manifest -------------------------------------------------------------------------------


def write_manifest(
    out_dir: Path, outputs: list[Path], row_counts: dict[str, int], reemitted: dict[str, tuple[int, int]], as_of: date, batch: str, now: datetime
) -> dict[str, Any]:
    """``manifest.json``: every output of this batch and every re-emitted 835 present in
    ``outbound/835/`` (``reemitted``: file name -> transaction sets, claim payments), each with
    its SHA-256, size and counts.  Written last."""
    files = manifest.output_entries(outputs, row_counts)
    folder = out_dir / REEMITTED
    for path in sorted(folder.glob("*.835")) if folder.is_dir() else []:
        if path.name.startswith("."):
            continue
        sets, payments = reemitted.get(path.name, (None, None))
        try:
            entry = {
                "path": f"{REEMITTED}/{path.name}",
                "sha256": sha256_of(path),
                "bytes": path.stat().st_size,
                "transaction_sets": sets,
                "claim_payments": payments,
            }
        except FileNotFoundError:  # the consumer took it meanwhile
            continue
        files.append(entry)
    return manifest.write_manifest(out_dir, files, as_of, batch, now)


def reemitted_counts(store: Store) -> dict[str, tuple[int, int]]:
    """File name -> (transaction sets, claim payments) of every 835 re-emitted so far."""
    with store.engine.connect() as conn:
        return interchanges.reemitted(conn)
