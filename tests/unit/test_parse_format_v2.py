"""`edirecon parse` format version 2 carries exactly what version 1 does.

Version 2 (docs/outputs.md) is decoded here back into version-1 objects with a reader written from
the documentation (columns from the format line, envelope ids from the transaction_set line, parties
written once then named by segment number), and compared with `parse --format-version 1` of the same
files: every record, field and position must come back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.parsers import model

FILES = [
    "sample_edi/clean-payment/claims.837",
    "sample_edi/clean-payment/remit.835",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "sample_edi").rglob("*") if p.suffix in (".835", ".837") and "clean-payment" not in p.parts),
    "tests/fixtures/bad/malformed-amount-and-date.835",
    "tests/fixtures/bad/dmg02-birth-date-not-a-date.837",
]
KINDS = {
    "party": model.Party,
    "address": model.Address,
    "contact": model.Contact,
    "adjustment": model.Adjustment,
    "service_line": model.ServiceLine,
    "line_adjudication": model.LineAdjudication,
    "other_payer": model.OtherPayer,
    "service_payment": model.ServicePayment,
}
CLASS_OF = {cls.__name__: cls for cls in KINDS.values()}
RECORDS = {"claim": model.Claim, "claim_payment": model.ClaimPayment, "provider_adjustment": model.ProviderAdjustment}
PAIRS = {
    "references": ("qualifier", "value"),
    "secondary_ids": ("qualifier", "value"),
    "diagnosis_codes": ("qualifier", "code"),
    "amounts": ("qualifier", "amount"),
    "numbers": ("qualifier", "number"),
}


class Decoder:
    def __init__(self) -> None:
        self.columns: dict[str, list[str]] = {}
        self.head: dict[str, Any] = {}
        self.parties: dict[int, dict[str, Any]] = {}

    def source(self, value: Any, loop: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        h = self.head
        return {
            "file": h["file"],
            "segment": value[0],
            "offset": value[1],
            "isa13": h["isa13"],
            "gs06": h["gs06"],
            "st02": h["st02"],
            "loop": value[2] if len(value) > 2 else loop,
        }

    def value(self, name: str, typ: str, value: Any, loop: str) -> Any:
        if value is None:
            return "" if typ == "str" else [] if typ.startswith(("list", "tuple")) else True if typ == "bool" else None
        if name in PAIRS:
            return [dict(zip(PAIRS[name], pair, strict=True)) for pair in value]
        if typ.startswith("Source"):
            return self.source(value, loop)
        if typ.startswith("list[") and typ[5:-1] in CLASS_OF:
            return [self.nested(CLASS_OF[typ[5:-1]], item, loop) for item in value]
        cls = CLASS_OF.get(typ.split(" ")[0])
        if cls is not None:
            return self.nested(cls, value, loop)
        return value

    def nested(self, cls: type, value: Any, loop: str) -> dict[str, Any]:
        if isinstance(value, int):  # a party written before: its source segment number
            return self.parties[value]
        names = self.columns[next(k for k, c in KINDS.items() if c is cls)]
        fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        raw = dict(zip(names, value, strict=False))
        own = raw.get("source")
        inner = own[2] if isinstance(own, list) and len(own) > 2 else loop
        out = {n: self.value(n, fields[n], raw.get(n), inner) for n in names}
        if cls is model.Party and out["source"] is not None:
            self.parties[out["source"]["segment"]] = out
        return out

    def keyed(self, cls: type, obj: dict[str, Any]) -> dict[str, Any]:
        return {f.name: self.value(f.name, str(f.type), obj.get(f.name), "") for f in dataclasses.fields(cls)}

    def record(self, obj: dict[str, Any]) -> dict[str, Any]:
        cls = RECORDS[obj["record"]]
        values = dict(zip(self.columns[obj["record"]], obj["values"], strict=False))
        src = values.get("source")
        loop = src[2] if isinstance(src, list) and len(src) > 2 else ""
        kind = values.get("transaction_type") or self.head["transaction_type"]
        out: dict[str, Any] = {"record": obj["record"], "transaction_type": kind}
        for f in dataclasses.fields(cls):
            name, typ = f.name, str(f.type)
            if name == "transaction_type":
                continue
            if name == "remittance":
                out[name] = self.keyed(model.Remittance, self.head["remittance"])
            elif name in ("version", "submitter", "receiver", "created_on"):
                out[name] = self.value(name, typ, self.head.get(name), "")
            elif name in model.INSTITUTIONAL_FIELDS and kind != "837I":
                continue
            else:
                out[name] = self.value(name, typ, values.get(name), loop)
        out["source"] = out.pop("source")
        return out

    def decode(self, text: str) -> list[dict[str, Any]]:
        records = []
        for line in text.splitlines():
            obj = json.loads(line)
            if obj["record"] == "format":
                assert obj["format_version"] == 2
                self.columns = obj["columns"]
            elif obj["record"] == "transaction_set":
                self.head, self.parties = obj, {}
                if "remittance" in obj:  # the remittance's parties are written in full on this line
                    for key in ("payer", "payee"):
                        if key in obj["remittance"]:
                            obj["remittance"][key] = self.nested(model.Party, obj["remittance"][key], "")
                    for key in ("payer", "payee"):
                        if key in obj["remittance"]:
                            obj["remittance"][key] = _Done(obj["remittance"][key])
                for key in ("submitter", "receiver"):
                    if key in obj:
                        obj[key] = _Done(self.nested(model.Party, obj[key], ""))
            else:
                if "header" in obj:  # this record's own header values, not the transaction_set line's
                    head = self.head
                    self.head = {**head, **obj["header"]}
                    for key in ("submitter", "receiver"):
                        if key in obj["header"]:
                            self.head[key] = _Done(self.nested(model.Party, obj["header"][key], ""))
                    records.append(self.record(obj))
                    self.head = head
                    continue
                records.append(self.record(obj))
        return records


class _Done(dict):  # type: ignore[type-arg]
    """A party already decoded on the transaction_set line."""


_value = Decoder.value


def _value_done(self: Decoder, name: str, typ: str, value: Any, loop: str) -> Any:
    return dict(value) if isinstance(value, _Done) else _value(self, name, typ, value, loop)


Decoder.value = _value_done  # type: ignore[method-assign]


@pytest.mark.parametrize("name", FILES)
def test_version_2_decodes_to_version_1(name: str, in_repo: Path) -> None:
    """Every record of format version 2, decoded, equals its format version 1 object (fields, values, sources)."""
    runner = CliRunner()
    v1 = runner.invoke(app, ["parse", "--format-version", "1", name])
    v2 = runner.invoke(app, ["parse", name])
    assert v1.exit_code == v2.exit_code and v1.stderr == v2.stderr
    expected = [json.loads(line) for line in v1.stdout.splitlines()]
    assert Decoder().decode(v2.stdout) == expected
    assert len(v2.stdout_bytes) < len(v1.stdout_bytes) or not expected


def test_a_claim_after_a_second_bht_carries_its_own_header(tmp_path: Path, in_repo: Path) -> None:
    """Header values that change inside a transaction set (a second BHT: another creation date)
    are written on the claims they belong to, and decode to version 1 exactly."""
    text = (REPO / "sample_edi/clean-payment/claims.837").read_text()
    first, rest = text.split("HL*2*1*22*0", 1)
    second_claim = rest.index("HL*")
    changed = first + "HL*2*1*22*0" + rest[:second_claim] + "BHT*0019*00*RFM260213B*20260301*1015*CH~\n" + rest[second_claim:]
    path = tmp_path / "two-bht.837"
    path.write_text(changed)
    runner = CliRunner()
    v1 = runner.invoke(app, ["parse", "--format-version", "1", str(path)])
    v2 = runner.invoke(app, ["parse", str(path)])
    expected = [json.loads(line) for line in v1.stdout.splitlines()]
    assert [o["created_on"] for o in expected] == ["2026-02-13", "2026-03-01"]
    assert [("header" in json.loads(line)) for line in v2.stdout.splitlines()[2:]] == [False, True]
    assert Decoder().decode(v2.stdout) == expected


def test_version_2_has_no_empty_noise_and_a_header_per_transaction_set(in_repo: Path) -> None:
    """A header line per transaction set before its records; records carry no empty string, empty list or trailing null."""
    out = CliRunner().invoke(app, ["parse", "sample_edi/clean-payment/remit.835", "sample_edi/clean-payment/claims.837"]).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [o["record"] for o in lines][:2] == ["format", "transaction_set"]
    heads = [o for o in lines if o["record"] == "transaction_set"]
    assert [(h["ts"], h["transaction_type"], h["file"]) for h in heads] == [
        (1, "835", "sample_edi/clean-payment/remit.835"),
        (2, "837P", "sample_edi/clean-payment/claims.837"),
    ]
    for o in lines:
        if "values" in o:
            assert o["values"][-1] is not None
            assert '""' not in json.dumps(o) and "[]" not in json.dumps(o)


def test_version_2_decodes_to_version_1_on_the_corpus(corpus: Path) -> None:
    """The same on every real file of the public corpus (stderr identical, records decoded equal)."""
    runner = CliRunner()
    names = [str(p) for p in sorted(corpus.iterdir()) if p.is_file() and p.name != "MANIFEST.tsv"]
    for start in range(0, len(names), 50):
        batch = names[start : start + 50]
        v1 = runner.invoke(app, ["parse", "--format-version", "1", *batch])
        v2 = runner.invoke(app, ["parse", *batch])
        assert (v1.exit_code, v1.stderr) == (v2.exit_code, v2.stderr)
        assert Decoder().decode(v2.stdout) == [json.loads(line) for line in v1.stdout.splitlines()], batch


@pytest.mark.slow  # tracemalloc over 8,000 claims, twice per kind: about 30 s
def test_version_2_writing_keeps_memory_flat(tmp_path: Path) -> None:
    """Writing version 2 of one transaction set of 8,000 claims (about 7 MB of output) peaks within
    4 MiB of parsing it alone: lines go out 200 at a time, the parties and amount texts remembered
    are bounded."""
    import importlib.util
    import io
    import sys
    import tracemalloc

    from edirecon import parsers
    from edirecon.parsers.serialize import CompactWriter, write_lines

    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_generate"] = module
    spec.loader.exec_module(module)
    peaks = []
    for kind in ("835", "837p"):
        path = tmp_path / f"one.{kind}"
        module.generate(kind, str(path), 8000, seed=1)

        def parse_only(path: Path = path) -> None:
            for _ in parsers.iter_records(path):
                pass

        def write_v2(path: Path = path) -> None:
            writer, sink = CompactWriter(), io.StringIO()
            for parsed in parsers.iter_transactions(path):
                for text in write_lines(writer.lines(parsed)):
                    sink.seek(0)
                    sink.truncate()  # a sink that keeps nothing, as a pipe would
                    sink.write(text)
                assert len(writer._parties) <= 1024

        for run in (parse_only, write_v2):
            tracemalloc.start()
            try:
                run()
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
    for parse_peak, write_peak in zip(peaks[::2], peaks[1::2], strict=True):
        assert write_peak < parse_peak + 4 * 1024 * 1024, (parse_peak, write_peak)
