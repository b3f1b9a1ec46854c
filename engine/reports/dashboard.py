"""The dashboard of ``edirecon report``: one self-contained HTML file (no network access needed to
open it: inline CSS, inline SVG charts built with lxml, a little inline JavaScript for tooltips and
a filter, and a Content-Security-Policy that forbids loading anything).

Amounts shown are the reports' Decimal amounts written for people (``money.dollars``: $285,129.00); floats are used
only for pixel coordinates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
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
#: refunds in the deadline chart, rows of the worklist table (the rest in worklist.csv), payers in the payer chart
DEADLINE_BARS, WORKLIST_ROWS, PAYER_BARS = 20, 100, 10
#: one size for the text of every chart: an SVG is drawn at its own width or narrower, never scaled up
CHART_FONT = 11
#: the room left of a horizontal bar chart for its labels: two lines of 22 capitals at CHART_FONT
LABEL_WIDTH = 180
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#1f2937}
header{background:#1e3a5f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;font-size:13px;opacity:.85}
main{padding:16px 24px;display:grid;grid-template-columns:repeat(auto-fill,minmax(430px,1fr));gap:16px}
.kpis{grid-column:1/-1;display:grid;grid-template-columns:repeat(5,1fr);gap:12px}
.kpi{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.kpi .v{font-size:22px;font-weight:600}.kpi .l{font-size:12px;color:#6b7280}.kpi.bad .v{color:#b91c1c}
section{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:0}
section h2{font-size:14px;margin:0 0 8px}section.wide{grid-column:1/-1}section p.note{font-size:12px;color:#4b5563;margin:6px 0 0}
svg.chart{display:block;max-width:100%;height:auto;font-size:11px}svg text{fill:#374151}svg .axis{stroke:#d1d5db}
.controls{font-size:12px;margin:0 0 8px;display:flex;flex-wrap:wrap;gap:12px;align-items:center}.controls select{font-size:12px;max-width:320px}
.scroll{max-height:640px;overflow:auto;border:1px solid #e5e7eb}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{padding:4px 6px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{position:sticky;top:0;background:#f9fafb;cursor:pointer;user-select:none;white-space:nowrap}th[aria-sort=ascending]::after{content:' \\25B2'}
th[aria-sort=descending]::after{content:' \\25BC'}td.payee{white-space:normal;overflow-wrap:anywhere;min-width:160px}
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
  // the worklist: every open refund is in #worklist-data; the table shows the first LIMIT that
  // pass the filters, in the order chosen (due date first; a click on a column head sorts by it)
  var data = JSON.parse(document.getElementById('worklist-data').textContent);
  var table = document.getElementById('worklist');
  var limit = Number(table.getAttribute('data-limit'));
  var body = table.querySelector('tbody');
  var heads = table.querySelectorAll('thead th');
  var payer = document.getElementById('filter-payer');
  var reason = document.getElementById('filter-reason');
  var only = document.getElementById('only-overdue');
  var shown = document.getElementById('worklist-shown');
  var sortKey = null, sortDir = 1;
  function compare(a, b) {
    if (sortKey === null) { return a.i - b.i; }
    var x = a[sortKey], y = b[sortKey];
    if (x === y) { return a.i - b.i; }
    if (x === '') { return 1; }
    if (y === '') { return -1; }
    return (x < y ? -1 : 1) * sortDir;
  }
  function render() {
    var rows = data.filter(function (r) {
      return (!payer.value || r.pk === payer.value) && (!reason.value || r.re === reason.value) && (!only.checked || r.o);
    });
    rows.sort(compare);
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.slice(0, limit).forEach(function (r) {
      var tr = document.createElement('tr');
      if (r.o) { tr.className = 'overdue'; }
      [[r.id], [r.st], [r.re], [r.pn, 'payee'], [r.due], [String(r.od), 'n'], [r.ag], [r.amt, 'n']].forEach(function (cell) {
        var td = document.createElement('td');
        td.textContent = cell[0];
        if (cell[1]) { td.className = cell[1]; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    function n(x) { return x.toLocaleString('en-US'); }
    shown.textContent = 'showing ' + n(Math.min(rows.length, limit)) + ' of ' + n(rows.length) + (rows.length === data.length ? '' : ' matching (' + n(data.length) + ' open)');
  }
  heads.forEach(function (th) {
    th.addEventListener('click', function () {
      var key = th.getAttribute('data-key');
      sortDir = (sortKey === key) ? -sortDir : 1;
      sortKey = key;
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      render();
    });
  });
  [payer, reason, only].forEach(function (el) { el.addEventListener('change', render); });
  document.documentElement.setAttribute('data-charts', String(document.querySelectorAll('svg.chart').length));
  document.documentElement.setAttribute('data-ready', 'yes');
})();
"""


def _svg(width: int, height: int, label: str) -> etree._Element:
    # drawn at its own width (or narrower), so that its text has the same size in every chart
    return etree.Element(
        "svg", {"class": "chart", "width": str(width), "height": str(height), "viewBox": f"0 0 {width} {height}", "role": "img", "aria-label": label}
    )


def _text(parent: etree._Element, x: float, y: float, text: str, anchor: str = "start", **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", "text-anchor": anchor, **attrs})
    el.text = text
    return el


def _rect(parent: etree._Element, x: Any, y: Any, w: Any, h: Any, color: str, tip: str, **attrs: str) -> None:
    etree.SubElement(
        parent,
        "rect",
        {"x": f"{x:.1f}", "y": f"{y:.1f}", "width": f"{max(w, 0):.1f}", "height": f"{max(h, 0):.1f}", "fill": color, "rx": "2", "data-tip": tip, **attrs},
    )


def wrap(name: str, width: int = 22, lines: int = 2) -> list[str]:
    """A label in at most ``lines`` lines of at most ``width`` characters, broken between words (a
    word longer than a line is cut); the last line ends with an ellipsis when the name is longer."""
    out: list[str] = []
    words = name.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and len(line) + 1 + len(words[0]) <= width:
            line += " " + words.pop(0)
        if len(line) > width:
            words.insert(0, line[width:])
            line = line[:width]
        out.append(line)
    if words:
        out[-1] = out[-1][: width - 1].rstrip() + "\u2026"
    return out or [""]


def _label(parent: etree._Element, x: float, y: float, name: str, anchor: str = "end") -> None:
    """A bar's name: on one line, or wrapped on two; a name that does not fit whole is shown whole on hover."""
    parts = wrap(name)
    if len(parts) == 1 and parts[0] == name:
        _text(parent, x, y, name, anchor)
        return
    g = etree.SubElement(parent, "g")
    etree.SubElement(g, "title").text = name  # the full name on hover
    if len(parts) == 1:
        _text(g, x, y, parts[0], anchor)
        return
    el = _text(g, x, y - CHART_FONT / 2, "", anchor)
    el.text = None
    for i, part in enumerate(parts):
        span = etree.SubElement(el, "tspan", {"x": f"{x:.1f}", "dy": "0" if i == 0 else f"{CHART_FONT + 1}"})
        span.text = part


def columns(label: str, items: Sequence[tuple[str, Decimal, str, str]], width: int = 420, height: int = 220) -> etree._Element:
    """Vertical bars: (label, amount, color, tooltip) each; the amounts written above the bars
    when they fit (else in the tooltips only)."""
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
        if step >= 7 * len(money(amount)):
            _text(svg, x + step * Decimal("0.35"), bottom - h - 4, money(amount), "middle")
        _text(svg, x + step * Decimal("0.35"), bottom + 14, name, "middle")
    return svg


def bars(
    label: str,
    items: Sequence[tuple[str, Decimal, str, str]],
    width: int = 420,
    row: int = 26,
    value_text: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
) -> etree._Element:
    """Horizontal bars from a zero line (negative values go left): (label, value, color, tooltip);
    ``keys`` name what each bar stands for (``data-key``)."""
    height = int(row * max(len(items), 1) + 16)
    svg = _svg(width, height, label)
    left, right = Decimal(LABEL_WIDTH), Decimal(width - 100)
    low = min((v for _, v, _, _ in items), default=ZERO)
    high = max((v for _, v, _, _ in items), default=ZERO)
    span = (max(high, ZERO) - min(low, ZERO)) or Decimal(1)
    zero = left + (right - left) * (-min(low, ZERO)) / span
    etree.SubElement(svg, "line", {"class": "axis", "x1": f"{zero:.1f}", "x2": f"{zero:.1f}", "y1": "4", "y2": f"{height - 8}"})
    for i, (name, value, color, tip) in enumerate(items):
        y = 8 + i * row
        w = (right - left) * abs(value) / span
        x = zero - w if value < 0 else zero
        _rect(svg, x, y, w, row * 0.62, color, tip, **({"data-key": keys[i]} if keys is not None else {}))
        _label(svg, left - 8, y + row * 0.45, name)
        shown = value_text[i] if value_text is not None else money(value)
        _text(svg, width - 4, y + row * 0.45, shown, "end")
    return svg


def _kpi(parent: etree._Element, value: str, label: str, bad: bool = False, key: str = "") -> None:
    div = etree.SubElement(parent, "div", {"class": "kpi bad" if bad else "kpi", "id": f"kpi-{key}"})
    v = etree.SubElement(div, "div", {"class": "v"})
    v.text = value
    lab = etree.SubElement(div, "div", {"class": "l"})
    lab.text = label


def _section(parent: etree._Element, title: str, chart: etree._Element | None = None, wide: bool = False, key: str = "") -> etree._Element:
    sec = etree.SubElement(parent, "section", {**({"class": "wide"} if wide else {}), **({"id": key} if key else {})})
    h = etree.SubElement(sec, "h2")
    h.text = title
    if chart is not None:
        sec.append(chart)
    return sec


def _note(parent: etree._Element, text: str) -> None:
    etree.SubElement(parent, "p", {"class": "note"}).text = text


def _payee(row: dict[str, Any]) -> tuple[str, str]:
    """(filter key, name shown) of a worklist row's payee: the payer's full name and id, or patient."""
    if row["payee_type"] != "payer":
        return "patient", "patient"
    name = row["payer_name"] or ""
    return row["payer_id"], f"{name} ({row['payer_id']})" if name else row["payer_id"]


def deadline_bands(work: Sequence[dict[str, Any]], as_of: date) -> list[tuple[str, int, Decimal]]:
    """(band, count, outstanding) of the open refunds by time left to their due date."""
    bands = [("overdue", 0, ZERO), ("due in 7 days", 0, ZERO), ("in 8-30 days", 0, ZERO), ("later", 0, ZERO), ("no due date", 0, ZERO)]
    for row in work:
        due = row["due_by"]
        k = 4 if due is None else 0 if row["overdue"] == "yes" else 1 if (due - as_of).days <= 7 else 2 if (due - as_of).days <= 30 else 3
        band, n, amount = bands[k]
        bands[k] = (band, n + 1, amount + row["outstanding"])
    return [b for b in bands if b[1] or b[0] != "no due date"]


def _n(count: int) -> str:
    return f"{count:,}"


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
        f"As of {b.as_of.isoformat()} - {rep.encounters} encounters, {len(b.decisions.refunds)} refunds found, "
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
    # the worklist is in due-date order (the most overdue first): its head is what is due soonest
    soonest = rep.worklist[:DEADLINE_BARS]
    deadline = [
        (
            row["refund_id"],
            Decimal((row["due_by"] - b.as_of).days) if row["due_by"] else ZERO,
            "#b91c1c" if row["overdue"] == "yes" else "#2563eb",
            f"{row['refund_id']} {_payee(row)[1]} {money(row['outstanding'])} due {row['due_by']}",
        )
        for row in soonest
    ]
    overdue = sum(1 for row in rep.worklist if row["overdue"] == "yes")
    sec = _section(
        main,
        f"Refunds due soonest: {_n(len(soonest))} of {_n(len(rep.worklist))} open, {_n(overdue)} overdue (days left; overdue to the left)",
        bars(
            "deadline",
            deadline,
            value_text=[f"{int(d)} d, {money(row['outstanding'])}" for (_, d, _, _), row in zip(deadline, soonest)],
            keys=[row["refund_id"] for row in soonest],
        ),
        key="deadline",
    )
    _note(sec, "; ".join(f"{band}: {_n(n)} ({money(amount)})" for band, n, amount in deadline_bands(rep.worklist, b.as_of)))
    dims = rep.causes.get("dimensions", [])
    by_payer = sorted((d for d in dims if d["dimension"] == "payer"), key=lambda d: (-d["amount"], d["key"]))
    payer_items = [
        (d["description"] or d["key"], d["amount"], "#1e3a5f", f"{d['description']} ({d['key']}): {d['count']} refund(s), {money(d['amount'])}")
        for d in by_payer
    ]
    if len(payer_items) > PAYER_BARS:
        rest = by_payer[PAYER_BARS - 1 :]
        amount = sum((d["amount"] for d in rest), ZERO)
        others = f"{len(rest)} other payees"
        payer_items = [*payer_items[: PAYER_BARS - 1], (others, amount, "#9ca3af", f"{others}: {sum(d['count'] for d in rest)} refund(s), {money(amount)}")]
    _section(main, "Overpayments by payer (all refunds found)", bars("payers", payer_items))
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
    months = rep.causes.get("months", [])
    _section(
        main,
        "Monthly trend (refunds by the month the credit arose)",
        columns("trend", [(m["month"][2:], m["amount"], "#0f766e", f"{m['month']}: {m['count']} refund(s), {money(m['amount'])}") for m in months], width=1300),
        wide=True,
    )
    _worklist(main, rep.worklist)
    etree.SubElement(body, "div", {"id": "tip"})
    etree.SubElement(body, "script").text = SCRIPT
    text = html.tostring(doc, doctype="<!DOCTYPE html>", encoding="unicode", method="html")
    with _Atomic(path) as fh:
        fh.write(text)
    return path


def _worklist(main: etree._Element, work: list[dict[str, Any]]) -> None:
    """The first WORKLIST_ROWS open refunds by due date, a link to worklist.csv for all of them,
    and every one of them as JSON for the script, which filters (payer, reason, overdue) and sorts
    (a click on a column head) without a network."""
    sec = _section(main, f"Worklist: the {_n(min(len(work), WORKLIST_ROWS))} due soonest of {_n(len(work))} open refunds", wide=True, key="worklist-section")
    controls = etree.SubElement(sec, "div", {"class": "controls"})
    data = []
    for i, row in enumerate(work):
        pk, pn = _payee(row)
        data.append(
            {
                "i": i,
                "id": row["refund_id"],
                "st": row["workflow_status"],
                "re": row["reason"],
                "pk": pk,
                "pn": pn,
                "due": str(row["due_by"] or ""),
                "od": row["days_overdue"],
                "ag": row["aging_bucket"],
                "amt": money(row["outstanding"]),
                "c": int(row["outstanding"] * 100),  # sorted as whole cents
                "o": row["overdue"] == "yes",
            }
        )
    payees = sorted({(d["pk"], d["pn"]) for d in data}, key=lambda p: (p[0] == "patient", p[1]))
    for key, label, options in (
        ("payer", "payee", payees),
        ("reason", "reason", [(r, r.replace("_", " ").lower()) for r in sorted({d["re"] for d in data})]),
    ):
        lab = etree.SubElement(controls, "label")
        lab.text = f"{label} "
        select = etree.SubElement(lab, "select", {"id": f"filter-{key}"})
        etree.SubElement(select, "option", {"value": ""}).text = "all"
        for value, text in options:
            etree.SubElement(select, "option", {"value": value}).text = text
    lab = etree.SubElement(controls, "label")
    etree.SubElement(lab, "input", {"type": "checkbox", "id": "only-overdue"}).tail = " only overdue"
    shown = etree.SubElement(controls, "span", {"id": "worklist-shown"})
    shown.text = f"showing {_n(min(len(work), WORKLIST_ROWS))} of {_n(len(work))}"
    link = etree.SubElement(controls, "span")
    link.text = "every open refund: "
    etree.SubElement(link, "a", {"href": "worklist.csv"}).text = "worklist.csv"
    scroll = etree.SubElement(sec, "div", {"class": "scroll"})
    table = etree.SubElement(scroll, "table", {"id": "worklist", "data-limit": str(WORKLIST_ROWS)})
    heads = [
        ("refund", "id"),
        ("status", "st"),
        ("reason", "re"),
        ("payee", "pn"),
        ("due by", "due"),
        ("days overdue", "od"),
        ("aging", "ag"),
        ("outstanding", "c"),
    ]
    tr = etree.SubElement(etree.SubElement(table, "thead"), "tr")
    for i, (h, key) in enumerate(heads):
        etree.SubElement(tr, "th", {"data-key": key, **({"class": "n"} if i in (5, 7) else {})}).text = h
    tbody = etree.SubElement(table, "tbody")
    for d in data[:WORKLIST_ROWS]:
        tr = etree.SubElement(tbody, "tr", {"class": "overdue"} if d["o"] else {})
        for value, cls in (
            (d["id"], ""),
            (d["st"], ""),
            (d["re"], ""),
            (d["pn"], "payee"),
            (d["due"], ""),
            (str(d["od"]), "n"),
            (d["ag"], ""),
            (d["amt"], "n"),
        ):
            etree.SubElement(tr, "td", {"class": cls} if cls else {}).text = value
    # JSON in a script element: "<", ">" and "&" escaped so that no text of an 837/835 can end it
    blob = json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    etree.SubElement(sec, "script", {"type": "application/json", "id": "worklist-data"}).text = blob
