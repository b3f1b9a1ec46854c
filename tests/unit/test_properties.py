"""Property tests: any damage to a real sample file yields findings, never a crash or a lie.

Each example takes one sample_edi X12 file and applies a few random mutations (byte flips,
deletions, insertions of delimiters/NUL/arbitrary bytes, truncation, a duplicated or two swapped
segments).  Hypothesis runs derandomized with no example database, so CI sees the same examples
every run.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_EDI
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from edirecon import parsers
from edirecon.parsers.serialize import record_dict

SAMPLES = sorted(p for p in SAMPLE_EDI.rglob("*") if p.suffix in {".835", ".837"})
SAMPLE_BYTES = {p.relative_to(SAMPLE_EDI).as_posix(): p.read_bytes() for p in SAMPLES}
PROPERTY = settings(
    deadline=None,
    max_examples=200,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: byte strings worth inserting: every delimiter, line breaks, NUL, envelope ids, a UTF-8 letter
NASTY = [
    b"~",
    b"*",
    b":",
    b"^",
    b"|",
    b"'",
    b"\x00",
    b"\n",
    b"\r\n",
    b" ",
    b"ISA",
    b"IEA*1*",
    b"GS*",
    b"GE*",
    b"ST*",
    b"SE*",
    b"~ST*835*1~",
    b"CLP*",
    b"CLM*",
    b"PLB*",
    b"\xc3\xa9",
    b"\xff\xfe",
    b"\x1a",
    b" " * 24,
    b"\r\n" + b" " * 40,
]
#: the reader buffers 64 KiB ahead after each ISA: only files past that exercise chunked reading
BIG = 70_000
POS = st.integers(0, 1 << 16)
MUTATION = st.one_of(
    st.tuples(st.just("flip"), POS, st.integers(1, 255)),
    st.tuples(st.just("delete"), POS, st.integers(1, 40)),
    st.tuples(st.just("insert"), POS, st.one_of(st.sampled_from(NASTY), st.binary(min_size=1, max_size=12))),
    st.tuples(st.just("truncate"), POS, st.just(0)),
    st.tuples(st.just("duplicate"), POS, st.just(0)),
    st.tuples(st.just("swap"), POS, POS),
)
MUTATIONS = st.lists(MUTATION, min_size=1, max_size=4)
SAMPLE_NAMES = st.sampled_from(sorted(SAMPLE_BYTES))


def segments_of(data: bytes) -> list[bytes]:
    """The file cut after each terminator (the byte after ISA16), line breaks kept with their segment."""
    term = re.escape(data[105:106] if len(data) > 105 and data.startswith(b"ISA") else b"~")
    return re.findall(b"[^" + term + b"]*" + term + b"[\r\n]*|[^" + term + b"]+$", data)


def mutate(data: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    """Apply mutations in order; positions are taken modulo the current length."""
    for kind, a, b in ops:
        n = len(data)
        if kind == "flip" and n:
            i = a % n
            data = data[:i] + bytes([data[i] ^ int(b)]) + data[i + 1 :]  # type: ignore[arg-type]
        elif kind == "delete" and n:
            i = a % n
            data = data[:i] + data[i + int(b) :]  # type: ignore[arg-type]
        elif kind == "insert":
            i = a % (n + 1)
            data = data[:i] + bytes(b) + data[i:]  # type: ignore[arg-type]
        elif kind == "truncate":
            data = data[: a % (n + 1)]
        elif kind in ("duplicate", "swap"):
            segs = segments_of(data)
            if len(segs) < 2:
                continue
            i = a % len(segs)
            if kind == "duplicate":
                segs.insert(i, segs[i])
            else:
                j = int(b) % len(segs)  # type: ignore[arg-type]
                segs[i], segs[j] = segs[j], segs[i]
            data = b"".join(segs)
    return data


def inflate(data: bytes) -> bytes:
    """The file repeated until it is past the reader's 64 KiB look-ahead (each copy meets the
    chunk boundaries at a different place)."""
    return data * (BIG // len(data) + 1) if data else data


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One scratch folder for the whole module (hypothesis examples reuse one file name)."""
    with tempfile.TemporaryDirectory(prefix="edirecon-props-") as d:
        yield Path(d)


def write(folder: Path, data: bytes, name: str = "mutated.x12") -> Path:
    """Write ``data`` to ``folder/name`` and return the path."""
    path = folder / name
    path.write_bytes(data)
    return path


def parse_or_input_error(path: Path) -> tuple[list[parsers.Record], parsers.FileSummary] | None:
    """parse_file, where only EdireconError may escape (it returns None then)."""
    try:
        return parsers.parse_file(path, display_name="mutated.x12")
    except parsers.EdireconError:
        return None


def test_mutations_change_the_files() -> None:
    """The mutation helper really damages files: each kind of mutation changes the bytes."""
    data = SAMPLE_BYTES["clean-payment/remit.835"]
    for op in [("flip", 200, 1), ("delete", 200, 3), ("insert", 200, b"\x00"), ("truncate", 200, 0), ("duplicate", 20, 0), ("swap", 3, 7)]:
        out = mutate(data, [op])
        assert out != data, op
    assert segments_of(data)[0].startswith(b"ISA") and b"".join(segments_of(data)) == data
    assert len(mutate(data, [("duplicate", 20, 0)])) > len(data)


@PROPERTY
@given(name=SAMPLE_NAMES, ops=MUTATIONS)
def test_mutated_file_gives_findings_never_a_crash(scratch: Path, name: str, ops: list) -> None:
    """A mutated sample parses (or raises EdireconError only) and its summary and records agree."""
    data = mutate(SAMPLE_BYTES[name], ops)
    result = parse_or_input_error(write(scratch, data))
    if result is None:
        return
    records, s = result
    kinds = [r.record for r in records]
    assert (s.claims, s.claim_payments, s.provider_adjustments) == (kinds.count("claim"), kinds.count("claim_payment"), kinds.count("provider_adjustment"))
    assert s.claims <= data.count(b"CLM")
    assert s.claim_payments <= data.count(b"CLP")
    assert s.provider_adjustments <= 6 * data.count(b"PLB")
    assert s.transaction_sets <= data.count(b"ST")
    assert s.functional_groups <= data.count(b"GS")
    assert s.interchanges <= data.count(b"ISA")
    assert s.service_lines <= data.count(b"SV")
    assert sum(s.transaction_types.values()) == s.transaction_sets
    for f in s.findings:
        assert f.code in parsers.CODES and f.severity is parsers.CODES[f.code][0], f
        assert 0 <= f.source.offset <= len(data) and f.source.segment >= 0, f
    not_postable = {(f.source.isa13, f.source.gs06, f.source.st02) for f in s.findings if f.code == "TRANSACTION_NOT_POSTABLE"}
    for r in records:
        assert data.startswith({"claim": b"CLM", "claim_payment": b"CLP", "provider_adjustment": b"PLB"}[r.record], r.source.offset), r.source
        assert 0 < r.source.segment <= s.segments, r.source
        if not r.trusted:
            assert (r.source.isa13, r.source.gs06, r.source.st02) in not_postable, r.source
    if not s.findings:
        # a file with no finding at all must be a clean file: every record trusted
        assert all(r.trusted for r in records)


@PROPERTY
@given(name=SAMPLE_NAMES, ops=MUTATIONS)
def test_parsing_the_same_bytes_twice_gives_the_same_result(scratch: Path, name: str, ops: list) -> None:
    """Two parses of one mutated file give identical record JSON and identical findings."""
    path = write(scratch, mutate(SAMPLE_BYTES[name], ops))
    first, second = parse_or_input_error(path), parse_or_input_error(path)
    assert (first is None) == (second is None)
    if first is None or second is None:
        return
    assert [record_dict(r) for r in first[0]] == [record_dict(r) for r in second[0]]
    assert [f.as_dict() for f in first[1].findings] == [f.as_dict() for f in second[1].findings]


def _with_chunk_size(size: int, path: Path) -> tuple[list[parsers.Record], list[tuple]]:
    """Records and findings (code, severity, position) read ``size`` bytes at a time."""
    original = parsers.document.X12Reader
    parsers.document.X12Reader = functools.partial(original, chunk_size=size)  # type: ignore[misc]
    try:
        records, s = parsers.parse_file(path, display_name="mutated.x12")
    finally:
        parsers.document.X12Reader = original  # type: ignore[misc]
    return records, [(f.code, f.severity, f.source) for f in s.findings]


@pytest.mark.slow
@settings(PROPERTY, phases=[Phase.explicit, Phase.generate])  # no shrinking: each example reads 70 KB twice
@given(name=SAMPLE_NAMES, ops=MUTATIONS, size=st.integers(1, 4096))
# found by hypothesis: an ISA whose terminator is its element separator, in copies glued to a cut
# segment ("CAS*CO*4ISA*00*"); a chunk boundary hid the '4', so the glued ISAs became headers
@example(name="broken-file/remit-truncated.835", ops=[("insert", 98, b"*"), ("duplicate", 252, 0), ("duplicate", 65536, 0)], size=1)
@example(name="broken-file/remit-truncated.835", ops=[("insert", 98, b"*")], size=7)
def test_chunk_size_never_changes_what_a_damaged_file_yields(scratch: Path, name: str, ops: list, size: int) -> None:
    """Any chunk size gives the records and finding positions of a whole-file read, even on a damaged 70 KB file."""
    path = write(scratch, inflate(mutate(SAMPLE_BYTES[name], ops)))
    (records, findings), (whole_records, whole_findings) = _with_chunk_size(size, path), _with_chunk_size(1 << 20, path)
    first = next((i for i, (a, b) in enumerate(zip(findings, whole_findings)) if a != b), min(len(findings), len(whole_findings)))
    assert findings == whole_findings, f"finding {first} differs: {findings[first : first + 1]} != {whole_findings[first : first + 1]}"
    assert records == whole_records


@pytest.mark.parametrize("big", [False, True], ids=["as-is", "repeated-past-64KiB"])
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.relative_to(SAMPLE_EDI).as_posix())
def test_chunk_size_7_reads_every_sample_exactly_like_the_default(path: Path, big: bool, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """X12Reader(chunk_size=7) gives exactly the default read's records and findings (messages too)."""
    name = path.relative_to(REPO).as_posix()
    if big:
        path = write(scratch, inflate(path.read_bytes()), "repeated.x12")
        assert path.stat().st_size > BIG
    records, summary = parsers.parse_file(path, display_name=name)
    monkeypatch.setattr(parsers.document, "X12Reader", functools.partial(parsers.X12Reader, chunk_size=7))
    small, small_summary = parsers.parse_file(path, display_name=name)
    assert records and [record_dict(r) for r in small] == [record_dict(r) for r in records]
    assert [f.as_dict() for f in small_summary.findings] == [f.as_dict() for f in summary.findings]
    assert (small_summary.segments, small_summary.transaction_sets) == (summary.segments, summary.transaction_sets)


def test_reader_streams_with_chunk_size_7() -> None:
    """X12Reader itself, 7 bytes at a time, yields every segment of every transaction set of a sample."""
    path = SAMPLE_EDI / "clean-payment" / "remit.835"
    reader = parsers.X12Reader(path, chunk_size=7)
    segments = [els[0] for ts in reader for _, _, els in ts.segments()]
    text = path.read_bytes().decode("ascii")
    ids = [s.strip().split("*")[0] for s in text.split("~") if s.strip()]
    assert segments == ids[2:-2] and reader.findings == []
