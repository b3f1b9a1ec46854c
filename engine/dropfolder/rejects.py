"""Entries of ``inbound/`` that ``edirecon watch`` refuses to read (``dropfolder.refusal``): a
symbolic link, a named pipe, a socket or device, a folder inside a partner folder, a file that
cannot be read, or one whose name is not UTF-8 or too long.

``reject`` moves the entry itself (one ``rename``: a link is moved, never its target; nothing is
opened) into ``error/<partner>/`` with ``<name>.error.json``, under a safe name: the original name
with bytes that are not UTF-8 backslash-escaped, shortened (with a hash of the original) when it
would not fit.  When the entry cannot be moved it is left where it is, and the record says so.
Nothing of it reaches the store or ``outbound/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from edirecon.engine.dropfolder.layout import (
    MARKER,
    NAME_MARGIN,
    Layout,
    Ready,
    Refusal,
    free_name,
    name_max,
    partner_of,
    safe_text,
    utcnow,
)
from edirecon.engine.dropfolder.outbound import write_atomically


def fit(name: str, limit: int) -> str:
    """The safe text of a name, at most ``limit`` bytes: a longer one keeps its start and ends with
    ``-`` and 8 hex digits of the SHA-256 of the original name's bytes."""
    text = safe_text(name)
    if len(text.encode("utf-8")) <= limit:
        return text
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    head = text.encode("utf-8")[: limit - 9].decode("utf-8", "ignore")
    return f"{head}-{digest}"


def reject(layout: Layout, ready: Ready, why: Refusal) -> dict[str, Any] | None:
    """Move a refused entry into error/ and write its record; the fields of its log event.  None
    when the entry is gone (another watcher took it)."""
    limit = name_max(layout.error) - NAME_MARGIN
    original, partner = ready.rel.as_posix(), partner_of(ready.rel)
    folder = layout.error / fit(partner, limit) if partner else layout.error
    folder.mkdir(parents=True, exist_ok=True)
    name = fit(ready.rel.name, limit)
    source = layout.inbound / ready.rel
    target = folder / free_name(folder, name, ".error.json")
    moved, problem = True, ""
    try:
        os.rename(source, target)
    except FileNotFoundError:
        if not os.path.lexists(source):
            return None
        moved, problem = False, "No such file or directory"
    except OSError as exc:
        moved, problem = False, exc.strerror or str(exc)
    if moved:
        source.with_name(ready.rel.name + MARKER).unlink(missing_ok=True)
    else:  # left in inbound/: one record per entry, rewritten while it stays there
        target = folder / name
    destination = target.relative_to(layout.root).as_posix()
    reason = why.reason if moved else f"{why.reason}; it could not be moved out of inbound/ ({problem}) and was left there"
    record = target.with_name(target.name + ".error.json")
    report = {
        "file": safe_text(original),
        "partner": safe_text(partner),
        "sha256": "",
        "kind": "unread",
        "entry": why.entry,
        "interchange": {"isa06": "", "isa08": "", "isa13": ""},
        "received_at": f"{ready.first_seen:%Y-%m-%dT%H:%M:%S}Z",
        "quarantined_at": f"{utcnow():%Y-%m-%dT%H:%M:%S}Z",
        "reason": reason,
        "moved": moved,
        "destination": destination if moved else "",
        "left_in": "" if moved else f"inbound/{safe_text(original)}",
        "errors": [{"code": why.code, "severity": "error", "message": reason, "segment": 0, "offset": 0, "isa13": "", "gs06": "", "st02": ""}],
        "warnings": [],
        "transaction_sets": [],
        "ingested": {"transaction_sets_ingested": 0, "claims": 0, "claim_payments": 0, "patient_payments": 0},
        "acknowledgments": [],
    }
    write_atomically(record, (json.dumps(report, indent=1) + "\n").encode())
    return {
        "file": report["file"],
        "partner": report["partner"],
        "entry": why.entry,
        "code": why.code,
        "reason": reason,
        "moved": moved,
        "destination": report["destination"],
        "record": record.relative_to(layout.root).as_posix(),
    }
