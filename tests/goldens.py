"""Byte-level goldens: comparing (or, with ``EDIRECON_UPDATE_GOLDENS=1``, rewriting) a folder of
expected outputs under ``tests/golden/``, and the few normalisations they need.

What is normalised, and why (each value is made by the clock of the run, never by the inputs):
- a refund's audit-trail time in ``refund show`` (``history``: the UTC time the workflow was synced)
  becomes ``YYYY-MM-DDTHH:MM:SSZ``;
- in a 999 or TA1, the envelope the acknowledgment is generated with: ISA09/ISA10 (date, time),
  ISA13 and IEA02 (control number from the clock), GS04/GS05 (date, time), GS06 and GE02 (a random
  group control number) become letters of the same width.  IEA02 = ISA13 and GE02 = GS06 are
  checked before they are replaced;
- a PDF is compared by its text (pypdf), one ``.pdf.txt`` per PDF: its bytes carry the creation
  time and a random file id;
- in ``workflow.csv`` and ``workflow.jsonl`` (``run``, ``report``), the time of each refund's last
  action (``last_action_at``, the UTC time of its audit event) becomes ``YYYY-MM-DDTHH:MM:SSZ``;
- in the ``manifest.json`` of ``run``, ``generated_at`` and ``batch`` (the clock and the process
  id) become letters of the same form, and the SHA-256 of a file normalised above becomes that of
  its normalised bytes, once the manifest's own SHA-256 is checked against the file as written.

Nothing else is touched: outputs are produced with a fixed ``--as-of``, inputs named by their path
relative to the repository (or the corpus folder), and a check refuses any output that carries
the temporary folder of the run or the repository's absolute path.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from pypdf import PdfReader

GOLDEN = Path(__file__).resolve().parent / "golden"
#: set to rewrite every golden from the current outputs (``make golden``), then review ``git diff``
UPDATE = bool(os.environ.get("EDIRECON_UPDATE_GOLDENS"))

HISTORY_TIME = re.compile(rb"^  \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z  ", re.MULTILINE)


def normalise_history(stdout: bytes) -> bytes:
    """``refund show`` with the wall-clock time of each audit event replaced."""
    return HISTORY_TIME.sub(b"  YYYY-MM-DDTHH:MM:SSZ  ", stdout)


ACTION_TIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
#: the outputs whose cells carry the time of an audit event
TIMED_OUTPUTS = ("workflow.csv", "workflow.jsonl")


def normalise_outputs(files: dict[str, bytes]) -> dict[str, bytes]:
    """The outputs of ``run`` or ``report`` (``read_tree``) with the clock taken out: the time of
    each refund's last action, and the manifest's time, batch and the SHA-256 of those files."""
    out = dict(files)
    for name in TIMED_OUTPUTS:
        if name in out:
            out[name] = ACTION_TIME.sub(b"YYYY-MM-DDTHH:MM:SSZ", out[name])
    if "manifest.json" in out:
        text = out["manifest.json"].decode("utf-8")
        for entry in json.loads(text)["files"]:
            path = entry["path"]
            assert entry["sha256"] == hashlib.sha256(files[path]).hexdigest(), f"manifest.json: the SHA-256 of {path} is not that of the file"
            if out[path] != files[path]:
                text = text.replace(entry["sha256"], hashlib.sha256(out[path]).hexdigest())
        text = re.sub(r'"generated_at": "\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"', '"generated_at": "YYYY-MM-DDTHH:MM:SSZ"', text)
        text = re.sub(r'"batch": "\d{8}T\d{6}Z-\d+"', '"batch": "YYYYMMDDTHHMMSSZ-PID"', text)
        out["manifest.json"] = text.encode("utf-8")
    return out


def normalise_ack(data: bytes) -> bytes:
    """A 999/TA1 with its generation date, time and control numbers replaced (same widths)."""
    text = data.decode("latin-1")
    elem, term = text[3], text[105]
    segments = text.split(term)
    ids: dict[str, str] = {}
    for i, seg in enumerate(segments):
        body = seg.lstrip()
        lead = seg[: len(seg) - len(body)]
        els = body.split(elem)
        if els[0] == "ISA":
            ids["isa13"] = els[13]
            els[9], els[10], els[13] = "YYMMDD", "HHMM", "N" * len(els[13])
        elif els[0] == "GS":
            ids["gs06"] = els[6]
            els[4], els[5], els[6] = "CCYYMMDD", "HHMMSS", "N"
        elif els[0] == "GE":
            assert els[2] == ids.get("gs06"), f"GE02 {els[2]} differs from GS06 {ids.get('gs06')}"
            els[2] = "N"
        elif els[0] == "IEA":
            assert els[2] == ids.get("isa13"), f"IEA02 {els[2]} differs from ISA13 {ids.get('isa13')}"
            els[2] = "N" * len(els[2])
        segments[i] = lead + elem.join(els)
    return term.join(segments).encode("latin-1")


def pdf_text(path: Path) -> bytes:
    """The text of a PDF as pypdf extracts it, page by page."""
    pages = PdfReader(path).pages
    return "".join(f"--- page {n} of {len(pages)} ---\n{page.extract_text()}\n" for n, page in enumerate(pages, start=1)).encode("utf-8")


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path; a PDF as its text (``X.pdf.txt``)."""
    files: dict[str, bytes] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".pdf":
            files[f"{name}.txt"] = pdf_text(path)
        else:
            files[name] = path.read_bytes()
    return files


def refuse_machine_paths(files: dict[str, bytes], *paths: Path) -> None:
    """No output may carry an absolute path of this machine (the run's folder, the repository)."""
    for name, data in files.items():
        for p in paths:
            assert str(p).encode() not in data, f"{name} carries the machine path {p}"


def _diff(name: str, want: bytes, got: bytes, limit: int = 40) -> str:
    lines = list(
        difflib.unified_diff(
            want.decode("utf-8", "replace").splitlines(keepends=True),
            got.decode("utf-8", "replace").splitlines(keepends=True),
            f"golden/{name}",
            f"actual/{name}",
            n=1,
        )
    )
    if not lines:  # same text, other bytes (line endings, encoding)
        return f"{name}: same text, different bytes\n"
    return "".join(lines[:limit]) + ("" if len(lines) <= limit else f"... ({len(lines) - limit} more diff lines)\n")


def check_tree(golden: Path, actual: dict[str, bytes]) -> None:
    """The files of ``golden`` are exactly ``actual``, byte for byte (rewritten first in update mode)."""
    if UPDATE:
        shutil.rmtree(golden, ignore_errors=True)
        for name, data in actual.items():
            (golden / name).parent.mkdir(parents=True, exist_ok=True)
            (golden / name).write_bytes(data)
    assert golden.is_dir(), f"no goldens at {golden}: write them with `make golden`, then review the diff"
    expected = {p.relative_to(golden).as_posix(): p.read_bytes() for p in sorted(golden.rglob("*")) if p.is_file()}
    problems = [f"missing output (golden has it): {n}" for n in sorted(expected.keys() - actual.keys())]
    problems += [f"new output (no golden): {n}" for n in sorted(actual.keys() - expected.keys())]
    problems += [_diff(n, expected[n], actual[n]) for n in sorted(expected.keys() & actual.keys()) if expected[n] != actual[n]]
    rel = golden.relative_to(GOLDEN.parent.parent).as_posix()
    assert not problems, f"outputs differ from {rel} (if deliberate: `make golden` and review the diff)\n" + "\n".join(problems)
