"""The work queue of `edirecon serve` in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium, as tests/integration/test_dashboard.py does): the server runs
as its own process on a free port over a store of sample_edi/; a user logs in, filters, approves
two refunds at once with a note, opens one and sees its evidence (file:segment) and audit trail.

With EDIRECON_SCREENSHOT=1 the work queue's screenshot is saved as docs/worklist.png (README).
Without Chromium the test is skipped outside CI and fails in CI.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_dashboard import browser  # noqa: F401  (the headless Chromium fixture)
from typer.testing import CliRunner

from edirecon.cli import app

PASSWORD = "correct horse battery staple"
BLUE_RIVER, MEDICAID, LEE, MEDICARE = "RF-B75521E9D448A3C2", "RF-604FA47D0AA549DD", "RF-043CA28A9E27D7FE", "RF-9CDAD4E99137F3F1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(in_repo: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`edirecon serve` over a store of sample_edi/ with the user alice (approver): its base URL."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    for args, stdin in (
        (["run", "sample_edi", "--db", db, "--out", str(tmp_path / "out"), "--as-of", "2026-11-27", "--workers", "1"], None),
        (["user", "add", "alice", "--role", "approver", "--password-stdin", "--db", db], PASSWORD + "\n"),
        (["user", "add", "ann", "--role", "analyst", "--password-stdin", "--db", db], PASSWORD + "\n"),
    ):
        result = CliRunner().invoke(app, args, input=stdin)
        assert result.exit_code == 0, result.output
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "EDIRECON_SECRET": "browser-test-secret-0123456789-abcdefghij"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edirecon", "serve", "--db", db, "--port", str(port), "--verbose"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(base + "/login", timeout=2) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "edirecon serve did not answer in 60 s:\n" + log.read_text()
                time.sleep(0.2)
            yield base, log
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _go(driver: Any, element: Any) -> None:
    """Click a link or a submit button and wait for the next page to replace this one."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_driver: Any) -> bool:
        """The page before the click is gone: its root is stale, or (Chromium, when asked in the
        middle of the navigation) no longer belongs to the document."""
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    WebDriverWait(driver, 30).until(replaced)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _rows(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [tr.get_attribute("data-refund") for tr in driver.find_elements(By.CSS_SELECTOR, "#worklist tbody tr[data-refund]")]


def test_work_queue_in_headless_chromium(browser: Any, server: tuple[str, Path], tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, log = server
    browser.get(base + "/worklist")
    assert browser.current_url.startswith(base + "/login")  # not logged in: the login page
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    _go(browser, browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]"))
    assert browser.current_url == base + "/worklist"
    assert browser.find_element(By.ID, "who").text == "alice (approver)"
    assert sorted(_rows(browser)) == sorted([BLUE_RIVER, MEDICAID, LEE, MEDICARE])

    # filter: pending duplicate and COB refunds, sorted by amount, largest first
    status = Select(browser.find_element(By.NAME, "status"))
    status.select_by_value("pending")
    _go(browser, browser.find_element(By.ID, "apply-filters"))
    assert sorted(_rows(browser)) == sorted([BLUE_RIVER, MEDICAID, LEE])
    _go(browser, browser.find_element(By.ID, "sort-amount"))
    _go(browser, browser.find_element(By.ID, "sort-amount"))  # again: descending
    assert _rows(browser) == [BLUE_RIVER, MEDICAID, LEE]
    assert "status=pending" in browser.current_url and "order=desc" in browser.current_url

    # approve two at once with one note
    for refund_id in (BLUE_RIVER, MEDICAID):
        browser.find_element(By.CSS_SELECTOR, f"input[name=refund_id][value='{refund_id}']").click()
    Select(browser.find_element(By.ID, "bulk-action")).select_by_value("approve")
    browser.find_element(By.ID, "bulk-note").send_keys("checked against the payer's portal")
    _go(browser, browser.find_element(By.ID, "bulk-submit"))
    assert browser.find_element(By.ID, "summary").text == "2 done, 0 refused."
    results = [tr.text for tr in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")]
    assert len(results) == 2 and all("approved" in r and r.endswith("done") for r in results)

    # back to the queue (the same filters): the two are approved now
    _go(browser, browser.find_element(By.ID, "back"))
    assert _rows(browser) == [LEE]
    browser.get(base + "/worklist?status=approved")
    assert sorted(_rows(browser)) == sorted([BLUE_RIVER, MEDICAID])

    # open one: the encounter, the payments behind it with file:segment, the audit trail
    _go(browser, browser.find_element(By.LINK_TEXT, BLUE_RIVER))
    assert browser.current_url == f"{base}/refunds/{BLUE_RIVER}"
    assert browser.find_element(By.ID, "status").text == "approved"
    assert "GARCIA, MARIA" in browser.find_element(By.ID, "encounter").text
    evidence = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#evidence li")]
    assert len(evidence) == 2
    assert re.search(r"earlier payment: payer \S+ trace \S+ CLP07 \S+ paid 155\.50 at sample_edi/duplicate-payment/remit-1\.835:\d+$", evidence[0])
    assert re.search(r"duplicate payment: .* paid 155\.50 at sample_edi/duplicate-payment/remit-2\.835:\d+$", evidence[1])
    trail = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")]
    assert [row[1:4] for row in trail] == [["edirecon", "identified", "(new) → pending"], ["alice", "approve", "pending → approved"]]
    assert trail[1][4] == "checked against the payer's portal"
    # the actions an approver may take on an approved refund
    assert [f.get_attribute("id") for f in browser.find_elements(By.CSS_SELECTOR, "form.action")] == [
        "action-hold",
        "action-mark-sent",
        "action-void",
        "action-assign",
        "action-note",
    ]
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []

    # the work queue as a team sees it: one assigned, then the screenshot
    browser.get(base + "/worklist")
    browser.find_element(By.CSS_SELECTOR, f"input[name=refund_id][value='{LEE}']").click()
    Select(browser.find_element(By.ID, "bulk-action")).select_by_value("assign")
    Select(browser.find_element(By.NAME, "assignee")).select_by_value("ann")
    _go(browser, browser.find_element(By.ID, "bulk-submit"))
    assert browser.find_element(By.ID, "summary").text == "1 done, 0 refused."
    browser.get(base + "/worklist?sort=days_in_credit&order=desc")
    assert _rows(browser) == [BLUE_RIVER, MEDICAID, LEE, MEDICARE]
    browser.set_window_size(1400, 760)
    shot = tmp_path / "worklist.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    if os.environ.get("EDIRECON_SCREENSHOT"):
        (Path("docs") / "worklist.png").write_bytes(data)

    # log out: the queue asks for a login again
    _go(browser, browser.find_element(By.CSS_SELECTOR, "form.logout button"))
    browser.get(base + "/worklist")
    assert browser.current_url.startswith(base + "/login")

    # the server's log names users and refunds, never a password or a patient
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "login" in text and "refund_action" in text
    assert PASSWORD not in text and "GARCIA" not in text and "LEE, KAREN" not in text
