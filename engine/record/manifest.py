"""``manifest.json``: the list of the outputs a consumer may read, each with its SHA-256, size and
row count, written last (docs/outputs.md, docs/dropfolders.md).  The one writer of it, for ``run``
(its ``--out`` folder) and for ``watch`` (``outbound/``, which adds its re-emitted 835s).

A consumer reads the manifest, then only the files it lists, checking each SHA-256: a mismatch
means a newer set of outputs is being written, and it reads the manifest again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from edirecon.engine.ingest.ingestor import sha256_of
from edirecon.engine.record.writers import FORMAT_VERSION

MANIFEST = "manifest.json"


def utcnow() -> datetime:
    """Naive UTC (as the store's DateTime columns), the ``generated_at`` of a manifest."""
    return datetime.now(UTC).replace(tzinfo=None)


def batch_name(now: datetime) -> str:
    """The name of one publication: its UTC time and this process's id."""
    return f"{now:%Y%m%dT%H%M%S}Z-{os.getpid()}"


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` under ``.<name>.tmp`` beside ``target``, flush it to disk, rename it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def output_entries(outputs: Iterable[Path], row_counts: dict[str, int]) -> list[dict[str, Any]]:
    """The manifest entries of the outputs written in one folder (``path`` is the file's name):
    ``sha256`` and ``bytes``, and ``rows`` for a CSV or JSON Lines file of a table in
    ``row_counts`` (table name -> rows)."""
    files = []
    for path in outputs:
        entry: dict[str, Any] = {"path": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size}
        table = path.name.rsplit(".", 1)[0]
        if path.suffix in (".csv", ".jsonl") and table in row_counts:
            entry["rows"] = row_counts[table]
        files.append(entry)
    return files


def write_manifest(out_dir: Path, files: list[dict[str, Any]], as_of: date, batch: str, now: datetime) -> dict[str, Any]:
    """Write ``out_dir/manifest.json`` listing ``files`` (entries as ``output_entries`` makes
    them, in the order given), atomically; return its document."""
    doc = {
        "format_version": FORMAT_VERSION,
        "as_of": as_of.isoformat(),
        "generated_at": now.isoformat(timespec="seconds") + "Z",
        "batch": batch,
        "files": files,
    }
    write_atomically(out_dir / MANIFEST, (json.dumps(doc, indent=1) + "\n").encode())
    return doc
