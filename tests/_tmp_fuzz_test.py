import functools, random
from pathlib import Path
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st
import parsers
from parsers.serialize import record_dict
from tests.test_properties import SAMPLE_BYTES, SAMPLE_NAMES, MUTATIONS, mutate, _with_chunk_size
S = settings(deadline=None, max_examples=3000, database=None, suppress_health_check=list(HealthCheck))
TMP = Path("/tmp/explore/f.x12")

@S
@given(name=SAMPLE_NAMES, ops=MUTATIONS)
def test_crash(name, ops):
    data = mutate(SAMPLE_BYTES[name], ops); TMP.write_bytes(data)
    try:
        recs, s = parsers.parse_file(TMP)
    except parsers.EdireconError:
        return
    for f in s.findings:
        if f.source.segment > 0 and f.code not in ("DATA_AFTER_INTERCHANGE",):
            o = f.source.offset
            assert data[o:o+2].isalnum() or data[o:o+1] in (b"\x00",) or True
            # preceding non-white byte
            k = o - 1
            while k >= 0 and data[k] <= 32: k -= 1
            assert k < 0 or data[k:k+1] in b"~'\n" or data[k:k+1] == data[105:106], (f, data[max(0,o-20):o+20])

@S
@given(name=SAMPLE_NAMES, ops=MUTATIONS, size=st.integers(1, 300))
def test_chunk_msgs(name, ops, size):
    data = mutate(SAMPLE_BYTES[name], ops); TMP.write_bytes(data)
    orig = parsers.document.X12Reader
    def run(sz):
        parsers.document.X12Reader = functools.partial(orig, chunk_size=sz)
        try:
            r, s = parsers.parse_file(TMP)
        finally:
            parsers.document.X12Reader = orig
        return [record_dict(x) for x in r], [(f.code, f.source, f.message) for f in s.findings if f.code not in ("NOT_X12","DATA_AFTER_INTERCHANGE")]
    assert run(size) == run(1<<20)
