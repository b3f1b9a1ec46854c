"""The dashboard of `edirecon report`, opened in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium): it loads with no script error, its charts and figures are
there, its filters and sorting work, and a screenshot is taken.

Figures: one run of sample_edi/ as of 2026-11-27 leaves three open refunds (Blue River duplicate
155.50, Medicaid COB 27.00, patient LEE 15.00: 197.50), none overdue (identified that day, due
2027-01-26), all over 90 days in credit (since 04-08, 07-15, 08-07); Medicare's duplicate was taken
back by its PLB WO.  Without Chromium the test is skipped outside CI and fails in CI.

At scale (slow): a store of 20,000 encounters built as a billing office fills one
(``bench/generate.py``: 837P and 835 of seed 7 with 150 duplicates and 150 overpayments, run as of
2026-09-01, then the front desk's patient payments in three batches run as of 2026-10-01, 10-20 and
11-10), reported as of 2026-11-27: 2,333 open refunds, 300 of them overdue. Its dashboard is under
3,000 px tall, its deadline chart starts with the refund due soonest, and with
EDIRECON_UPDATE_GOLDENS=1 its screenshot replaces docs/dashboard.png.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import html
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.money import dollars

REPO = Path(__file__).resolve().parents[2]

CHROMIUM = Path(os.environ.get("EDIRECON_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("EDIRECON_CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver"))


@pytest.fixture
def browser() -> Any:
    """Headless Chromium through selenium; skipped with the reason outside CI when missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        message = f"headless Chromium is not available: missing {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1600"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def dashboard(in_repo: Path, tmp_path: Path) -> Path:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    for args in (
        ["run", "sample_edi", "--db", db, "--out", str(tmp_path / "out"), "--as-of", "2026-11-27", "--workers", "1"],
        ["report", "--db", db, "--out", str(tmp_path / "report"), "--as-of", "2026-11-27"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    return tmp_path / "report" / "dashboard.html"


def test_dashboard_is_self_contained(dashboard: Path) -> None:
    """Nothing to fetch: no link, no external src/href, and a policy that forbids any load."""
    doc = html.parse(str(dashboard)).getroot()
    assert doc.xpath("//link") == []
    assert [el for el in doc.iter() if any(str(el.get(a, "")).startswith(("http:", "https:", "//")) for a in ("src", "href"))] == []
    (policy,) = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")
    assert policy.startswith("default-src 'none'")


def test_dashboard_in_headless_chromium(browser: Any, dashboard: Path, tmp_path: Path) -> None:
    """Chromium loads the file with no script error; the six charts, the figures and the overdue
    filter work; a screenshot is captured."""
    from selenium.webdriver.common.by import By

    browser.get(dashboard.as_uri())
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    root = browser.find_element(By.TAG_NAME, "html")
    assert (root.get_attribute("data-ready"), root.get_attribute("data-charts")) == ("yes", "6")
    assert browser.find_element(By.CSS_SELECTOR, "#kpi-open .v").text == "$197.50"
    assert browser.find_element(By.CSS_SELECTOR, "#kpi-open .l").text == "open credits to refund (3)"
    assert browser.find_element(By.CSS_SELECTOR, "#kpi-overdue .v").text == "$0.00"
    assert browser.find_element(By.CSS_SELECTOR, "#kpi-double .v").text == "$0.00"
    aging = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "svg[aria-label=aging] text")]
    assert aging == ["$0.00", "0-30", "$0.00", "31-60", "$0.00", "61-90", "$197.50", "over-90"]
    causes = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "svg[aria-label=causes] text")]
    assert causes == ["duplicate payment", "$255.46", "cob overpayment", "$27.00", "patient overpayment", "$15.00"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")
    # all three are due 2027-01-26: the tie is broken by refund id
    assert sorted(r.find_elements(By.TAG_NAME, "td")[-1].text for r in rows) == ["$15.00", "$155.50", "$27.00"]
    assert {r.find_elements(By.TAG_NAME, "td")[4].text for r in rows} == {"2027-01-26"}
    assert {r.find_elements(By.TAG_NAME, "td")[3].text for r in rows} == {"BLUE RIVER HEALTH PLAN (87726)", "STATE MEDICAID (77099)", "patient"}
    browser.find_element(By.ID, "only-overdue").click()  # none is overdue: the filter leaves no row
    assert browser.find_elements(By.CSS_SELECTOR, "#worklist tbody tr") == []
    assert browser.find_element(By.ID, "worklist-shown").text == "showing 0 of 0 matching (3 open)"
    browser.find_element(By.ID, "only-overdue").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")) == 3
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


HOSTILE = "</script><img src=x id=injected>&amp; <b>RIVER</b>"


def test_text_of_the_835_stays_text(browser: Any, in_repo: Path, tmp_path: Path) -> None:
    """A payer name that is markup (an 835's N1*PR) is shown as its characters in the charts, the
    worklist and the payee filter, and breaks neither the page nor its JSON."""
    from selenium.webdriver.common.by import By

    scenario = in_repo / "tests" / "fixtures" / "engine" / "formula-payloads-in-names-and-ids"
    folder = tmp_path / "in"
    shutil.copytree(scenario, folder, ignore=shutil.ignore_patterns("*.json", "*.md"))
    for remit in folder.glob("*.835"):
        remit.write_bytes(remit.read_bytes().replace(b'=HYPERLINK("//x.example/p","MEDICARE PART B")', HOSTILE.encode()))
    db = f"sqlite:///{tmp_path / 'e.db'}"
    for args in (
        ["run", str(folder), "--db", db, "--out", str(tmp_path / "out"), "--as-of", "2026-11-27", "--workers", "1"],
        ["report", "--db", db, "--out", str(tmp_path / "report"), "--as-of", "2026-11-27"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    browser.get((tmp_path / "report" / "dashboard.html").as_uri())
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("data-ready") == "yes"
    assert browser.find_elements(By.ID, "injected") == [] and browser.find_elements(By.CSS_SELECTOR, "main b") == []
    assert f"{HOSTILE} (12202)" in [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#filter-payer option")]
    assert f"{HOSTILE} (12202)" in [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#worklist td.payee")]
    labels = " ".join(t.get_attribute("textContent") for t in browser.find_elements(By.CSS_SELECTOR, "svg[aria-label=payers] title"))
    assert HOSTILE in labels
    browser.find_element(By.ID, "only-overdue").click()  # the script re-renders the rows from its JSON
    browser.find_element(By.ID, "only-overdue").click()
    assert f"{HOSTILE} (12202)" in [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#worklist td.payee")]
    assert browser.find_elements(By.ID, "injected") == []


# -- at scale -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reports of a 20,000-encounter store (module docstring), built once per session."""
    sys.path.insert(0, str(REPO / "bench"))
    # deferred: bench/ is no package; its generator is on the path only here
    import generate as gen

    work = tmp_path_factory.mktemp("dashboard-20000")
    claims = work / "claims"
    claims.mkdir()
    gen.generate("837p", str(claims / "claims.837"), 20_000, seed=7, claims_per_transaction=1000)
    gen.generate("835", str(claims / "remit.835"), 20_000, seed=7, claims_per_transaction=1000, duplicates=150, overpayments=150)
    db = f"sqlite:///{work / 'store.db'}"
    batches = [(claims, "2026-09-01")]
    for part, day in ((1, "2026-10-01"), (2, "2026-10-20"), (3, "2026-11-10")):
        folder = work / f"desk-{part}"
        folder.mkdir()
        with open(folder / "patient-payments.csv", "w", encoding="ascii", newline="") as out:
            gen.write_patient_payments(out, 20_000, seed=7, part=part, parts=3)
        batches.append((folder, day))
    for folder, day in batches:
        result = CliRunner().invoke(app, ["run", str(folder), "--db", db, "--out", str(work / f"out-{day}"), "--as-of", day, "--workers", "1"])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["report", "--db", db, "--out", str(work / "report"), "--as-of", "2026-11-27"])
    assert result.exit_code == 0, result.output
    return work / "report"


def _cells(browser: Any) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in browser.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")]


@pytest.mark.slow
def test_dashboard_of_20000_encounters(browser: Any, big_report: Path, tmp_path: Path) -> None:
    """Under 3,000 px tall; the deadline chart starts with the refund due soonest and counts the
    open and overdue ones; the worklist shows the 100 due soonest, filters by payee and reason and
    sorts, over every open refund; one font size in every chart; no script error."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with open(big_report / "worklist.csv", encoding="utf-8", newline="") as fh:
        work = list(csv.DictReader(fh))
    assert len(work) == 2333 and sum(r["overdue"] == "yes" for r in work) == 300
    soonest = min(work, key=lambda r: (date.fromisoformat(r["due_by"]), r["refund_id"]))

    browser.get((big_report / "dashboard.html").as_uri())
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("data-ready") == "yes"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    assert height < 3000, height

    bars = browser.find_elements(By.CSS_SELECTOR, "svg[aria-label=deadline] rect")
    assert len(bars) == 20 and bars[0].get_attribute("data-key") == soonest["refund_id"]
    assert f"due {soonest['due_by']}" in bars[0].get_attribute("data-tip")
    title = browser.find_element(By.CSS_SELECTOR, "#deadline h2").text
    assert title.startswith("Refunds due soonest: 20 of 2,333 open, 300 overdue"), title

    # one font size: every chart is drawn at its own width or a little narrower, never scaled up
    scales = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart')).map(s => s.getBoundingClientRect().width / s.viewBox.baseVal.width)"
    )
    assert len(scales) == 6 and all(0.8 <= k <= 1.0 for k in scales), scales

    rows = _cells(browser)
    assert len(rows) == 100 and [r[0] for r in rows] == [r["refund_id"] for r in sorted(work, key=lambda r: (r["due_by"], r["refund_id"]))[:100]]
    assert browser.find_element(By.CSS_SELECTOR, "#worklist-section a").get_attribute("href").endswith("/worklist.csv")

    # filters: by reason, then also by payee, over all 2,333 (not only the 100 shown)
    Select(browser.find_element(By.ID, "filter-reason")).select_by_value("PATIENT_OVERPAYMENT")
    patients = [r for r in work if r["reason"] == "PATIENT_OVERPAYMENT"]
    rows = _cells(browser)
    assert len(rows) == 100 and {r[2] for r in rows} == {"PATIENT_OVERPAYMENT"} and rows[0][0] == patients[0]["refund_id"]
    assert browser.find_element(By.ID, "worklist-shown").text == f"showing 100 of {len(patients):,} matching (2,333 open)"
    Select(browser.find_element(By.ID, "filter-reason")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-payer")).select_by_value("60054")
    payer = [r for r in work if r["payer_id"] == "60054"]
    assert browser.find_element(By.ID, "worklist-shown").text == f"showing 100 of {len(payer):,} matching (2,333 open)"
    assert {r[3] for r in _cells(browser)} == {"ACME HEALTH PLAN (60054)"}
    Select(browser.find_element(By.ID, "filter-payer")).select_by_value("")

    # sorting: outstanding, largest first (a second click), whole cents compared
    head = browser.find_element(By.CSS_SELECTOR, "#worklist th[data-key=c]")
    head.click()
    head.click()
    assert head.get_attribute("aria-sort") == "descending"
    largest = max(work, key=lambda r: (int(r["outstanding"].replace(".", "")), -work.index(r)))
    assert _cells(browser)[0][-1] == dollars(Decimal(largest["outstanding"]))
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []

    browser.execute_script("window.scrollTo(0, 0)")
    browser.set_window_size(1400, height + 140)  # the window's frame: the page itself is 1,400 by height
    shot = tmp_path / "dashboard.png"
    browser.get((big_report / "dashboard.html").as_uri())
    assert browser.save_screenshot(str(shot))
    if os.environ.get("EDIRECON_UPDATE_GOLDENS"):
        shutil.copyfile(shot, REPO / "docs" / "dashboard.png")
