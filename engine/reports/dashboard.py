"""The dashboard of ``edirecon report``: one self-contained HTML file (no network access needed to
open it: inline CSS, inline SVG charts built with lxml, a little inline JavaScript for tooltips and
a filter, and a Content-Security-Policy that forbids loading anything).

Amounts shown are the reports' Decimal amounts written for people (``money.dollars``: $285,129.00); floats are used
only for pixel coordinates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree, html

from edirecon import mappings
from edirecon.engine.record.writers import _Atomic
from edirecon.engine.reports.model import Report
from edirecon.engine.workflow.refunds import Book
from edirecon.money import ZERO
from edirecon.money import dollars as money  # amounts for people: $285,129.00 (CSV and JSON keep the plain form)

PALETTE = {"DUPLICATE_PAYMENT": "#c2410c", "PAYER_OVERPAYMENT": "#7c3aed", "COB_OVERPAYMENT": "#0f766e", "PATIENT_OVERPAYMENT": "#2563eb"}
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#1f2937}
header{background:#1e3a5f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;font-size:13px;opacity:.85}
main{padding:16px 24px;display:grid;grid-template-columns:repeat(auto-fill,minmax(430px,1fr));gap:16px}
.kpis{grid-column:1/-1;display:grid;grid-template-columns:repeat(5,1fr);gap:12px}
.kpi{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.kpi .v{font-size:22px;font-weight:600}.kpi .l{font-size:12px;color:#6b7280}.kpi.bad .v{color:#b91c1c}
section{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
section h2{font-size:14px;margin:0 0 8px}section.wide{grid-column:1/-1}
svg.chart{width:100%;height:auto;font-size:11px}svg text{fill:#374151}svg .axis{stroke:#d1d5db}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{padding:4px 6px;border-bottom:1px solid #e5e7eb;text-align:left}
td.n,th.n{text-align:right}tr.overdue td{color:#b91c1c}
#tip{position:fixed;pointer-events:none;background:#111827;color:#fff;font-size:12px;padding:4px 8px;border-radius:4px;display:none}
.legend span{display:inline-block;margin-right:10px;font-size:11px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
"""
SCRIPT = """
(function () {
  var tip = document.getElementById('tip');
  document.querySelectorAll('[data-tip]').forEach(function (el) {
    el.addEventListener('mousemove', function (ev) {
      tip.textContent = el.getAttribute('data-tip');
      tip.style.left = (ev.clientX + 12) + 'px';
      tip.style.top = (ev.clientY + 12) + 'px';
      tip.style.display = 'block';
    });
    el.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
  var only = document.getElementById('only-overdue');
  only.addEventListener('change', function () {
    document.querySelectorAll('#worklist tbody tr').forEach(function (row) {
      row.style.display = (only.checked && !row.classList.contains('overdue')) ? 'none' : '';
    });
  });
  document.documentElement.setAttribute('data-charts', String(document.querySelectorAll('svg.chart').length));
  document.documentElement.setAttribute('data-ready', 'yes');
})();
"""


def _svg(width: int, height: int, label: str) -> etree._Element:
    return etree.Element("svg", {"class": "chart", "viewBox": f"0 0 {width} {height}", "role": "img", "aria-label": label})


def _text(parent: etree._Element, x: float, y: float, text: str, anchor: str = "start", **attrs: str) -> None:
    el = etree.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", "text-anchor": anchor, **attrs})
    el.text = text


def _rect(parent: etree._Element, x: Any, y: Any, w: Any, h: Any, color: str, tip: str) -> None:
    etree.SubElement(
        parent, "rect", {"x": f"{x:.1f}", "y": f"{y:.1f}", "width": f"{max(w, 0):.1f}", "height": f"{max(h, 0):.1f}", "fill": color, "rx": "2", "data-tip": tip}
    )


def columns(label: str, items: Sequence[tuple[str, Decimal, str, str]], width: int = 420, height: int = 220) -> etree._Element:
    """Vertical bars: (label, amount, color, tooltip) each."""
    svg = _svg(width, height, label)
    # geometry in Decimal too: a bar's height is an amount's share of the tallest, never a float
    top, bottom, left = Decimal(20), Decimal(height - 34), Decimal(10)
    peak = max((a for _, a, _, _ in items), default=ZERO) or Decimal(1)
    step = (width - 2 * left) / max(len(items), 1)
    etree.SubElement(svg, "line", {"class": "axis", "x1": f"{left}", "x2": f"{width - left}", "y1": f"{bottom}", "y2": f"{bottom}"})
    for i, (name, amount, color, tip) in enumerate(items):
        h = (bottom - top) * amount / peak
        x = left + i * step + step * Decimal("0.15")
        _rect(svg, x, bottom - h, step * Decimal("0.7"), h, color, tip)
        _text(svg, x + step * Decimal("0.35"), bottom - h - 4, money(amount), "middle")
        _text(svg, x + step * Decimal("0.35"), bottom + 14, name, "middle")
    return svg


def bars(
    label: str, items: Sequence[tuple[str, Decimal, str, str]], width: int = 420, row: int = 26, value_text: Sequence[str] | None = None
) -> etree._Element:
    """Horizontal bars from a zero line (negative values go left): (label, value, color, tooltip)."""
    height = int(row * max(len(items), 1) + 16)
    svg = _svg(width, height, label)
    left, right = Decimal(150), Decimal(width - 100)
    low = min((v for _, v, _, _ in items), default=ZERO)
    high = max((v for _, v, _, _ in items), default=ZERO)
    span = (max(high, ZERO) - min(low, ZERO)) or Decimal(1)
    zero = left + (right - left) * (-min(low, ZERO)) / span
    etree.SubElement(svg, "line", {"class": "axis", "x1": f"{zero:.1f}", "x2": f"{zero:.1f}", "y1": "4", "y2": f"{height - 8}"})
    for i, (name, value, color, tip) in enumerate(items):
        y = 8 + i * row
        w = (right - left) * abs(value) / span
        x = zero - w if value < 0 else zero
        _rect(svg, x, y, w, row * 0.62, color, tip)
        _text(svg, left - 8, y + row * 0.45, name, "end")
        shown = value_text[i] if value_text is not None else money(value)
        _text(svg, width - 4, y + row * 0.45, shown, "end")
    return svg


def _kpi(parent: etree._Element, value: str, label: str, bad: bool = False, key: str = "") -> None:
    div = etree.SubElement(parent, "div", {"class": "kpi bad" if bad else "kpi", "id": f"kpi-{key}"})
    v = etree.SubElement(div, "div", {"class": "v"})
    v.text = value
    lab = etree.SubElement(div, "div", {"class": "l"})
    lab.text = label


def _section(parent: etree._Element, title: str, chart: etree._Element | None = None, wide: bool = False) -> etree._Element:
    sec = etree.SubElement(parent, "section", {"class": "wide"} if wide else {})
    h = etree.SubElement(sec, "h2")
    h.text = title
    if chart is not None:
        sec.append(chart)
    return sec


def dashboard(path: Path, b: Book, rep: Report) -> Path:
    """Write the dashboard of a report."""
    doc = html.fromstring("<html lang='en'><head></head><body></body></html>")
    head, body = doc.find("head"), doc.find("body")
    etree.SubElement(head, "meta", {"charset": "utf-8"})
    etree.SubElement(
        head,
        "meta",
        {"http-equiv": "Content-Security-Policy", "content": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"},
    )
    etree.SubElement(head, "title").text = f"edirecon credit balances - {b.as_of.isoformat()}"
    etree.SubElement(head, "style").text = CSS
    top = etree.SubElement(body, "header")
    etree.SubElement(top, "h1").text = "Credit balances and refunds"
    etree.SubElement(top, "p").text = (
        f"As of {b.as_of.isoformat()} - {len(b.decisions.encounters)} encounters, {len(b.decisions.refunds)} refunds found, "
        f"{len(rep.recoupments)} recoupments; CMS-838 quarter {rep.quarter}"
    )
    main = etree.SubElement(body, "main")
    kpis = etree.SubElement(main, "div", {"class": "kpis"})
    total = rep.totals[-1]
    double = sum((f["amount"] for f in rep.followups if f["kind"] == "DOUBLE_REFUND"), ZERO)
    _kpi(kpis, money(total["outstanding"]), f"open credits to refund ({total['count']})", key="open")
    _kpi(kpis, money(total["overdue_amount"]), f"overdue ({total['overdue_count']})", bad=total["overdue_count"] > 0, key="overdue")
    _kpi(kpis, money(double), "double refunds to recover", bad=double > 0, key="double")
    _kpi(kpis, str(sum(1 for f in rep.followups if f["kind"] == "ESCHEATMENT_CANDIDATE")), "escheatment candidates", key="escheat")
    _kpi(
        kpis, money(sum((r["amount_outstanding"] for r in rep.cms838), ZERO)), f"Medicare outstanding, CMS-838 {rep.quarter} ({len(rep.cms838)})", key="cms838"
    )

    buckets = [(code, desc) for code, desc, *_ in mappings.aging_buckets()]
    colors = ["#16a34a", "#ca8a04", "#ea580c", "#b91c1c"]
    counts = defaultdict(int)
    for row in rep.worklist:
        counts[row["aging_bucket"]] += 1
    _section(
        main,
        "Credit balance aging (outstanding by days in credit)",
        columns(
            "aging",
            [(code, total[code], colors[i % len(colors)], f"{desc}: {counts[code]} refund(s), {money(total[code])}") for i, (code, desc) in enumerate(buckets)],
        ),
    )
    deadline = [
        (
            row["refund_id"],
            Decimal((row["due_by"] - b.as_of).days) if row["due_by"] else ZERO,
            "#b91c1c" if row["overdue"] == "yes" else "#2563eb",
            f"{row['refund_id']} {money(row['outstanding'])} due {row['due_by']}",
        )
        for row in rep.worklist[:20]
    ]
    _section(
        main,
        "Open refunds vs. deadline (days left; overdue to the left)",
        bars("deadline", deadline, value_text=[f"{int(d)} d, {money(row['outstanding'])}" for (_, d, _, _), row in zip(deadline, rep.worklist)]),
    )
    dims = rep.causes.get("dimensions", [])
    by_payer = [d for d in dims if d["dimension"] == "payer"]
    _section(
        main,
        "Overpayments by payer (all refunds found)",
        bars(
            "payers", [(d["description"][:20], d["amount"], "#1e3a5f", f"{d['description']}: {d['count']} refund(s), {money(d['amount'])}") for d in by_payer]
        ),
    )
    by_reason = [d for d in dims if d["dimension"] == "reason"]
    _section(
        main,
        "Overpayments by cause",
        bars(
            "causes",
            [
                (
                    d["key"].replace("_", " ").lower(),
                    d["amount"],
                    PALETTE.get(d["key"], "#6b7280"),
                    f"{d['key']}: {d['count']}, {money(d['amount'])}, trend {d['trend']}",
                )
                for d in by_reason
            ],
        ),
    )
    months = rep.causes.get("months", [])
    _section(
        main,
        "Monthly trend (refunds by the month the credit arose)",
        columns("trend", [(m["month"][2:], m["amount"], "#0f766e", f"{m['month']}: {m['count']} refund(s), {money(m['amount'])}") for m in months], width=860),
        wide=True,
    )
    by_month: dict[str, Decimal] = defaultdict(lambda: ZERO)
    kinds: dict[str, set[str]] = defaultdict(set)
    for rc in rep.recoupments:
        key = rc["effective_date"].strftime("%Y-%m") if rc["effective_date"] else "undated"
        by_month[key] += rc["amount"]
        kinds[key].add(rc["kind"])
    _section(
        main,
        "Recoupments (taken back by payers, by month)",
        columns("recoupments", [(k[2:], by_month[k], "#7c3aed", f"{k}: {money(by_month[k])} ({', '.join(sorted(kinds[k]))})") for k in sorted(by_month)]),
    )
    sec = _section(main, "Worklist (open refunds by due date)", wide=True)
    label = etree.SubElement(sec, "label")
    etree.SubElement(label, "input", {"type": "checkbox", "id": "only-overdue"})
    label[-1].tail = " only overdue"
    table = etree.SubElement(sec, "table", {"id": "worklist"})
    heads = ["refund", "status", "reason", "payee", "due by", "days overdue", "aging", "outstanding"]
    tr = etree.SubElement(etree.SubElement(table, "thead"), "tr")
    for i, h in enumerate(heads):
        etree.SubElement(tr, "th", {"class": "n"} if i in (5, 7) else {}).text = h
    tbody = etree.SubElement(table, "tbody")
    for row in rep.worklist:
        tr = etree.SubElement(tbody, "tr", {"class": "overdue"} if row["overdue"] == "yes" else {})
        values = [
            row["refund_id"],
            row["workflow_status"],
            row["reason"],
            row["payer_id"] or "patient",
            str(row["due_by"] or ""),
            str(row["days_overdue"]),
            row["aging_bucket"],
            money(row["outstanding"]),
        ]
        for i, value in enumerate(values):
            etree.SubElement(tr, "td", {"class": "n"} if i in (5, 7) else {}).text = value
    etree.SubElement(body, "div", {"id": "tip"})
    etree.SubElement(body, "script").text = SCRIPT
    text = html.tostring(doc, doctype="<!DOCTYPE html>", encoding="unicode", method="html")
    with _Atomic(path) as fh:
        fh.write(text)
    return path
