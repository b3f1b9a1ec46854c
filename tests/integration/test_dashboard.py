"""The dashboard of `edirecon report`, opened in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium): it loads with no script error, its charts and figures are
there, its filter works, and a screenshot is taken.

Figures: one run of sample_edi/ as of 2026-11-27 leaves three open refunds (Blue River duplicate
155.50, Medicaid COB 27.00, patient LEE 15.00: 197.50), none overdue (identified that day, due
2027-01-26), all over 90 days in credit (since 04-08, 07-15, 08-07); Medicare's duplicate was taken
back by its PLB WO.  Without Chromium the test is skipped outside CI and fails in CI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from lxml import html
from typer.testing import CliRunner

from edirecon.cli import app

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
    browser.find_element(By.ID, "only-overdue").click()  # none is overdue: the filter hides every row
    assert [r.is_displayed() for r in rows] == [False, False, False]
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
