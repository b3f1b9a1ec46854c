"""A 999 for an 837 that pyx12 cannot acknowledge: its guide has no pyx12 map (837D 005010X224,
837I 005010X223A3) or pyx12's 999 writer failed on it.

This 999 reports what edirecon's own reader checks, the envelope of each transaction set: IK5 = A
for a set whose ST/SE envelope is sound, R with IK501 = 2 (trailer missing), 3 (control numbers
differ) or 4 (segment count wrong) otherwise, and an AK9 per functional group (A all accepted,
P some, R none).  It carries no IK3/IK4 detail, since the implementation guide itself was not
checked.  Same layout as pyx12's own 999s: one interchange, one GS FA, one ST 999 per functional
group of the 837.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from edirecon import parsers

#: our envelope finding -> IK501 (999 transaction set syntax error code)
IK5_CODES = {"MISSING_SE": "2", "SE_CONTROL_MISMATCH": "3", "SE_COUNT_MISMATCH": "4"}
VERSION = "005010X231"


def fallback_999(path: Path, target: Path, now: datetime | None = None) -> bool:
    """Write ``target`` (a 999) for the 837 transaction sets of ``path``; False when there are none
    or the file is not a 5010 interchange."""
    now = now or datetime.now()
    groups: dict[tuple[str, str], list[tuple[list[str], list[str], bool, str]]] = {}
    isa: list[str] | None = None
    for ts in parsers.X12Reader(path):
        if ts.code != "837" or ts.group is None:
            continue
        isa = isa or ts.interchange.isa
        code = next((IK5_CODES[f.code] for f in ts.findings if f.code in IK5_CODES), "")
        groups.setdefault((ts.interchange.control_number, ts.group.get(6)), []).append((ts.group.gs, ts.st, ts.trusted, code))
    if isa is None or not groups or not isa[12].strip().startswith("00501"):
        return False
    elem, term = "*", "~"
    control = now.strftime("%j%H%M%S")[:9]

    def seg(*elements: str) -> str:
        return elem.join(elements) + term + "\n"

    def pad(value: str, width: int) -> str:
        return value.strip()[:width].ljust(width)

    gs0 = next(iter(groups.values()))[0][0]
    get = lambda els, i: els[i].strip() if len(els) > i else ""  # noqa: E731 - a tiny accessor
    out = [
        seg(
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            pad(get(isa, 7) or "ZZ", 2),
            pad(get(isa, 8), 15),
            pad(get(isa, 5) or "ZZ", 2),
            pad(get(isa, 6), 15),
            now.strftime("%y%m%d"),
            now.strftime("%H%M"),
            "^",
            "00501",
            control,
            "0",
            pad(get(isa, 15) or "P", 1),
            ":",
        ),
        seg("GS", "FA", get(gs0, 3), get(gs0, 2), now.strftime("%Y%m%d"), now.strftime("%H%M%S"), str(int(control)), "X", VERSION),
    ]
    for n, ((_isa13, gs06), sets) in enumerate(groups.items(), start=1):
        gs = sets[0][0]
        body = [seg("AK1", get(gs, 1), gs06, get(gs, 8))]
        accepted = 0
        for _gs, st, trusted, code in sets:
            body.append(seg("AK2", get(st, 1), get(st, 2), *([get(st, 3)] if get(st, 3) else [])))
            if trusted:
                body.append(seg("IK5", "A"))
                accepted += 1
            else:
                body.append(seg("IK5", "R", code or "5"))
        status = "A" if accepted == len(sets) else "P" if accepted else "R"
        body.append(seg("AK9", status, str(len(sets)), str(len(sets)), str(accepted)))
        st02 = f"{n:04d}"
        out.append(seg("ST", "999", st02, VERSION))
        out.extend(body)
        out.append(seg("SE", str(len(body) + 2), st02))
    out.append(seg("GE", str(len(groups)), str(int(control))))
    out.append(seg("IEA", "1", control))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text("".join(out), encoding="latin-1")
    os.replace(tmp, target)
    return True
