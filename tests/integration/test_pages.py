"""The HTML work queue of `edirecon serve` (engine/web/pages.py), called in-process with FastAPI's
TestClient over a store of sample_edi/ run as of 2026-11-27 (the pages' as-of day is set to it).

That store holds four refunds, all due 2027-01-26: three pending (Blue River duplicate 155.50 in
credit since 2026-04-08, Medicaid COB 27.00 since 07-15, patient LEE 15.00 since 08-07) and the
Medicare duplicate 99.96 settled by its PLB WO (since 10-16).  Users: alice approver, ann analyst,
vic viewer, and dora, disabled.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SAMPLE_EDI
from fastapi.testclient import TestClient
from lxml import html
from typer.testing import CliRunner

from edirecon.cli import app as cli_app
from edirecon.engine.config import Config
from edirecon.engine.store.connection import open_store
from edirecon.engine.web import pages
from edirecon.engine.web.app import create_app
from edirecon.engine.workflow import users as us

AS_OF = date(2026, 11, 27)
PASSWORD = "correct horse battery staple"
BLUE_RIVER, MEDICAID, LEE, MEDICARE = "RF-B75521E9D448A3C2", "RF-604FA47D0AA549DD", "RF-043CA28A9E27D7FE", "RF-9CDAD4E99137F3F1"
PENDING = {BLUE_RIVER, MEDICAID, LEE}
SECRET = "a-test-secret-that-is-long-enough-0123456789"


def _store(folder: Path, source: Path) -> Path:
    db = folder / "e.db"
    result = CliRunner().invoke(
        cli_app, ["run", str(source), "--db", f"sqlite:///{db}", "--out", str(folder / "out"), "--as-of", AS_OF.isoformat(), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    store = open_store(f"sqlite:///{db}")
    try:
        for name, role in (("alice", "approver"), ("ann", "analyst"), ("vic", "viewer"), ("dora", "approver")):
            us.add_user(store, name, role, PASSWORD)
        us.disable_user(store, "dora")
    finally:
        store.dispose()  # closed: the file alone holds everything (it is copied)
    return db


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _store(tmp_path_factory.mktemp("pages-store"), SAMPLE_EDI)


@pytest.fixture
def client(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A fresh copy of the store (the tests act on it) behind a new app, as of 2026-11-27."""
    db = tmp_path / "e.db"
    shutil.copy(built, db)
    monkeypatch.setattr(pages, "today", lambda: AS_OF)
    with TestClient(create_app(f"sqlite:///{db}", Config.load(None), SECRET)) as c:
        yield c


def token(response: Any) -> str:
    """The CSRF token of the first form of a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found, response.text[:500]
    return found.group(1)


def login(c: TestClient, name: str = "alice", password: str = PASSWORD) -> Any:
    return c.post("/login", data={"username": name, "password": password, "csrf": token(c.get("/login")), "next": "/worklist"}, follow_redirects=False)


def logged_in(c: TestClient, name: str = "alice") -> TestClient:
    r = login(c, name)
    assert (r.status_code, r.headers["location"]) == (303, "/worklist")
    return c


def ids(response: Any) -> list[str]:
    """The refund ids of the work queue's rows, in order."""
    return html.fromstring(response.text).xpath("//table[@id='worklist']/tbody/tr/@data-refund")


def history(c: TestClient, refund_id: str) -> list[list[str]]:
    doc = html.fromstring(c.get(f"/refunds/{refund_id}").text)
    return [[td.text_content().strip() for td in tr.xpath("td")] for tr in doc.xpath("//table[@id='history']/tbody/tr")]


def status(c: TestClient, refund_id: str) -> str:
    return html.fromstring(c.get(f"/refunds/{refund_id}").text).xpath("string(//*[@id='status'])")


# -- login, sessions ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/worklist?status=pending", f"/refunds/{BLUE_RIVER}", "/reports", "/reports/files/dashboard.html"])
def test_every_page_redirects_to_login_without_a_session(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=True)
    assert r.url.path == "/login" and r.status_code == 200
    assert 'name="username"' in r.text and 'name="password"' in r.text


def test_a_post_without_a_session_goes_to_login_and_changes_nothing(client: TestClient) -> None:
    csrf = token(client.get("/login"))  # a valid CSRF token of an anonymous session: still no user
    r = client.post(f"/refunds/{BLUE_RIVER}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    logged_in(client)
    assert status(client, BLUE_RIVER) == "pending"


def test_login_goes_back_to_the_page_asked_for_and_never_elsewhere(client: TestClient) -> None:
    r = client.get("/worklist?reason=COB_OVERPAYMENT", follow_redirects=True)
    assert r.url.path == "/login"
    nxt = html.fromstring(r.text).xpath("string(//input[@name='next']/@value)")
    assert nxt == "/worklist?reason=COB_OVERPAYMENT"
    r = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token(r), "next": nxt})
    assert ids(r) == [MEDICAID]
    # another host is never a destination
    client.post("/logout", data={"csrf": token(client.get("/worklist"))})
    r = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf": token(client.get("/login")), "next": "//evil.example/x"}, follow_redirects=False
    )
    assert r.headers["location"] == "/worklist"


def test_session_cookie_is_signed_httponly_lax_and_expires(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    r = login(client)
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith(pages.COOKIE + "=")
    assert "httponly" in cookie and "samesite=lax" in cookie and f"max-age={us.SESSION_HOURS * 3600}" in cookie
    assert client.get("/worklist").url.path == "/worklist"
    # a forged session (another secret) is no session
    forged = TestClient(create_app(str(client.app.state.served.db_url), Config.load(None), "another-secret-another-secret-0123"))  # type: ignore[attr-defined]
    forged.cookies.set(pages.COOKIE, client.cookies[pages.COOKIE])
    assert forged.get("/worklist").url.path == "/login"
    # idle for longer than the session lasts: back to the login page
    start = pages.clock()
    monkeypatch.setattr(pages, "clock", lambda: start + us.SESSION_HOURS * 3600 + 60)
    assert client.get("/worklist").url.path == "/login"
    # each request renews the session: a minute under 8 hours after the last one it still works
    logged_in(client)
    monkeypatch.setattr(pages, "clock", lambda: start + 2 * us.SESSION_HOURS * 3600)
    assert client.get("/worklist").url.path == "/worklist"


def test_wrong_passwords_are_refused_then_lock_the_user(client: TestClient) -> None:
    for _ in range(us.MAX_FAILED_LOGINS):
        r = login(client, "alice", "not the password at all")
        assert r.status_code == 401 and "wrong user name or password" in r.text
        assert "not the password" not in r.text
    r = login(client, "alice", PASSWORD)  # the right password, while locked
    assert r.status_code == 401 and "locked" in r.text
    assert client.get("/worklist").url.path == "/login"
    r = login(client, "nobody-at-all", PASSWORD)
    assert r.status_code == 401 and "wrong user name or password" in r.text


def test_a_disabled_user_is_refused_and_a_session_ends_when_its_user_is_disabled(client: TestClient) -> None:
    r = login(client, "dora")
    assert r.status_code == 401 and "disabled" in r.text
    assert client.get("/worklist").url.path == "/login"
    logged_in(client, "ann")
    us.disable_user(client.app.state.served.store, "ann")  # type: ignore[attr-defined]
    assert client.get("/worklist").url.path == "/login"


def test_logout_ends_the_session(client: TestClient) -> None:
    logged_in(client)
    r = client.post("/logout", data={"csrf": token(client.get("/worklist"))}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert client.get("/worklist").url.path == "/login"


# -- CSRF -----------------------------------------------------------------------------------------


def test_a_form_post_without_its_csrf_token_is_refused(client: TestClient) -> None:
    logged_in(client)
    good = token(client.get("/worklist"))
    bulk = {"action": "approve", "refund_id": [BLUE_RIVER, MEDICAID], "note": "x"}
    assert client.post("/worklist/act", data=bulk).status_code == 403
    assert client.post("/worklist/act", data={**bulk, "csrf": good[:-2] + "xx"}).status_code == 403
    assert client.post(f"/refunds/{LEE}/hold", data={"note": "x"}).status_code == 403
    assert client.post("/reports", data={}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    # another session's token is not this one's
    other = TestClient(client.app)
    logged_in(other)
    assert client.post(f"/refunds/{LEE}/hold", data={"csrf": token(other.get("/worklist"))}).status_code == 403
    assert {status(client, r) for r in (BLUE_RIVER, MEDICAID, LEE)} == {"pending"}
    assert client.get("/worklist").url.path == "/worklist"  # still logged in
    # a login form without its token is refused too (login CSRF)
    fresh = TestClient(client.app)
    assert fresh.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 403


def test_every_form_carries_the_csrf_token(client: TestClient) -> None:
    logged_in(client)
    seen = set()
    for path in ("/worklist", f"/refunds/{BLUE_RIVER}", "/reports"):
        doc = html.fromstring(client.get(path).text)
        posts = doc.xpath("//form[@method='post']")
        assert len(posts) >= 2, path
        for form in posts:
            seen.update(form.xpath(".//input[@type='hidden'][@name='csrf']/@value"))
            assert len(form.xpath(".//input[@name='csrf']")) == 1, (path, form.get("action"))
    assert len(seen) == 1 and len(seen.pop()) >= 40  # one token per session, 256 bits


# -- the work queue -------------------------------------------------------------------------------


def test_worklist_filters(client: TestClient) -> None:
    logged_in(client)
    assert sorted(ids(client.get("/worklist"))) == sorted([*PENDING, MEDICARE])
    assert sorted(ids(client.get("/worklist?status=pending"))) == sorted(PENDING)
    assert ids(client.get("/worklist?status=settled")) == [MEDICARE]
    assert sorted(ids(client.get("/worklist?status=settled&status=pending"))) == sorted([*PENDING, MEDICARE])
    assert sorted(ids(client.get("/worklist?reason=DUPLICATE_PAYMENT"))) == sorted([BLUE_RIVER, MEDICARE])
    assert ids(client.get("/worklist?payee_type=patient")) == [LEE]
    assert ids(client.get("/worklist?overdue=1")) == []
    assert len(ids(client.get("/worklist?due_before=2027-01-27"))) == 4
    assert ids(client.get("/worklist?due_before=2027-01-26")) == []
    assert ids(client.get("/worklist?assigned_to=alice")) == []
    r = client.get("/worklist?reason=NOT_A_REASON")
    assert r.status_code == 400 and "is not one of" in r.text
    assert client.get("/worklist?due_before=tomorrow").status_code == 400
    # overdue once the due day is past
    pages_today = pages.today
    try:
        pages.today = lambda: date(2027, 2, 1)  # type: ignore[assignment]
        r = client.get("/worklist?overdue=1")
        assert sorted(ids(r)) == sorted(PENDING) and "overdue 6d" in r.text
    finally:
        pages.today = pages_today  # type: ignore[assignment]


def test_worklist_payer_filter(client: TestClient) -> None:
    logged_in(client)
    doc = html.fromstring(client.get("/worklist").text)
    payer_ids = {tr.get("data-refund"): tr for tr in doc.xpath("//table[@id='worklist']/tbody/tr")}
    assert set(payer_ids) == {*PENDING, MEDICARE}
    from edirecon.engine.workflow import views

    rows = {r.refund_id: r for r in views.refund_list(client.app.state.served.db_url, AS_OF, Config.load(None))}  # type: ignore[attr-defined]
    assert ids(client.get(f"/worklist?payer={rows[MEDICAID].payer_id}")) == [MEDICAID]


def test_worklist_sorts(client: TestClient) -> None:
    logged_in(client)
    assert ids(client.get("/worklist?sort=amount")) == [LEE, MEDICAID, MEDICARE, BLUE_RIVER]
    assert ids(client.get("/worklist?sort=amount&order=desc")) == [BLUE_RIVER, MEDICARE, MEDICAID, LEE]
    # days in credit: since 04-08 (233 days), 07-15 (135), 08-07 (112), 10-16 (42)
    r = client.get("/worklist?sort=days_in_credit&order=desc")
    assert ids(r) == [BLUE_RIVER, MEDICAID, LEE, MEDICARE]
    cells = html.fromstring(r.text).xpath("//table[@id='worklist']/tbody/tr/td[11]/text()")
    assert cells == ["233", "135", "112", "42"]
    assert ids(client.get("/worklist?sort=days_in_credit")) == [MEDICARE, LEE, MEDICAID, BLUE_RIVER]
    # all due the same day: by refund id
    assert ids(client.get("/worklist?sort=due")) == sorted([*PENDING, MEDICARE])


def test_worklist_pages(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "PAGE_SIZE", 3)
    logged_in(client)
    first = client.get("/worklist?sort=amount")
    assert ids(first) == [LEE, MEDICAID, MEDICARE] and "page 1 of 2" in first.text
    (nxt,) = html.fromstring(first.text).xpath("//a[@id='next']/@href")
    assert "sort=amount" in nxt and "page=2" in nxt
    assert ids(client.get(nxt)) == [BLUE_RIVER]
    assert ids(client.get("/worklist?sort=amount&page=99")) == [BLUE_RIVER]  # past the end: the last page


def test_bulk_approve_two_refunds_with_one_note(client: TestClient) -> None:
    logged_in(client)
    r = client.get("/worklist?status=pending")
    form = {"csrf": token(r), "action": "approve", "refund_id": [BLUE_RIVER, MEDICAID], "note": "checked with the payer's portal"}
    r = client.post("/worklist/act", data=form)
    assert r.status_code == 200
    doc = html.fromstring(r.text)
    assert doc.xpath("string(//*[@id='summary'])") == "2 done, 0 refused."
    assert [tr.xpath("string(td[2])") for tr in doc.xpath("//table[@id='results']/tbody/tr")] == ["approved", "approved"]
    assert sorted(ids(client.get("/worklist?status=approved"))) == sorted([BLUE_RIVER, MEDICAID])
    for refund_id in (BLUE_RIVER, MEDICAID):
        last = history(client, refund_id)[-1]
        assert last[1:] == ["alice", "approve", "pending → approved", "checked with the payer's portal"]
    assert status(client, LEE) == "pending"


def test_bulk_shows_the_refused_with_their_reason(client: TestClient) -> None:
    logged_in(client)
    r = client.post("/worklist/act", data={"csrf": token(client.get("/worklist")), "action": "hold", "refund_id": [LEE, MEDICARE], "note": ""})
    doc = html.fromstring(r.text)
    assert doc.xpath("string(//*[@id='summary'])") == "1 done, 1 refused."
    rows = {tr.xpath("string(td[1])"): tr.xpath("string(td[4])") for tr in doc.xpath("//table[@id='results']/tbody/tr")}
    assert rows[LEE] == "done"
    assert rows[MEDICARE].startswith(f"refused: {MEDICARE} is settled")


def test_bulk_assign_and_the_assigned_to_filter(client: TestClient) -> None:
    logged_in(client, "ann")
    r = client.post(
        "/worklist/act", data={"csrf": token(client.get("/worklist")), "action": "assign", "assignee": "vic", "refund_id": [LEE, MEDICAID], "note": "yours"}
    )
    assert "2 done, 0 refused." in r.text
    assert sorted(ids(client.get("/worklist?assigned_to=vic"))) == sorted([LEE, MEDICAID])
    assert sorted(ids(client.get(f"/worklist?assigned_to={pages.NOBODY}"))) == sorted([BLUE_RIVER, MEDICARE])
    assert history(client, LEE)[-1][1:] == ["ann", "assign", "pending → pending", "assigned to vic; yours"]


def test_bulk_refuses_nothing_selected_and_unknown_actions(client: TestClient) -> None:
    logged_in(client)
    csrf = token(client.get("/worklist"))
    assert client.post("/worklist/act", data={"csrf": csrf, "action": "approve"}).status_code == 400
    assert client.post("/worklist/act", data={"csrf": csrf, "action": "void", "refund_id": [LEE]}).status_code == 400
    r = client.post("/worklist/act", data={"csrf": csrf, "action": "approve", "refund_id": ["RF-0000000000000000"]})
    assert r.status_code == 400 and "no refund" in r.text


# -- a refund's page and its actions ----------------------------------------------------------------


def test_refund_page_shows_encounter_evidence_and_audit_trail(client: TestClient) -> None:
    logged_in(client)
    doc = html.fromstring(client.get(f"/refunds/{BLUE_RIVER}").text)
    encounter = doc.xpath("string(//dl[@id='encounter'])")
    assert "GARCIA, MARIA" in encounter and "RFM2602001" in encounter and "BLUE RIVER HEALTH PLAN" in encounter
    evidence = [li.text_content() for li in doc.xpath("//ul[@id='evidence']/li")]
    assert len(evidence) == 2
    assert evidence[0].startswith("earlier payment:") and evidence[1].startswith("duplicate payment:")
    assert all(re.search(r"at \S*sample_edi/duplicate-payment/remit-[12]\.835:\d+$", e) for e in evidence), evidence
    assert [row[1:4] for row in history(client, BLUE_RIVER)] == [["edirecon", "identified", "(new) → pending"]]
    # the settled one shows its recoupment
    recouped = html.fromstring(client.get(f"/refunds/{MEDICARE}").text).xpath("string(//dl[@id='recoupments'])")
    assert "settled_by_recoupment" in recouped and "recouped 99.96" in recouped
    doc = html.fromstring(client.get(f"/refunds/{MEDICARE}").text)
    ((kind, payer, trace, day, amount, source),) = [[td.text_content() for td in tr.xpath("td")] for tr in doc.xpath("//table[@id='recoupment-list']/tbody/tr")]
    assert (kind, amount, day) == ("PLB_WO", "$99.96", "2026-11-20") and "MEDICARE PART B" in payer and trace
    assert re.fullmatch(r"\S*sample_edi/plb-recoupment-settles-refund/[^:]+\.835:\d+", source), source
    assert html.fromstring(client.get(f"/refunds/{BLUE_RIVER}").text).xpath("string(//*[@id='no-recoupment'])").startswith("No take-back")
    assert client.get("/refunds/RF-0000000000000000").status_code == 404


def test_refund_actions_approve_send_and_the_audit_trail(client: TestClient) -> None:
    logged_in(client)
    page = client.get(f"/refunds/{BLUE_RIVER}")
    forms = html.fromstring(page.text).xpath("//form[@class='action']/@action")
    assert forms == [f"/refunds/{BLUE_RIVER}/{a}" for a in ("approve", "hold", "void", "assign", "note")]
    r = client.post(f"/refunds/{BLUE_RIVER}/approve", data={"csrf": token(page), "note": "ok"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/refunds/{BLUE_RIVER}?done=approve")
    page = client.get(r.headers["location"])
    assert "approve: done." in page.text and status(client, BLUE_RIVER) == "approved"
    form = {"csrf": token(page), "method": "check", "reference": "100234", "date": "2026-11-30", "amount": "155.50", "note": "mailed"}
    assert client.post(f"/refunds/{BLUE_RIVER}/mark-sent", data=form).status_code == 200
    assert status(client, BLUE_RIVER) == "sent"
    client.post(f"/refunds/{BLUE_RIVER}/note", data={"csrf": token(page), "note": "called <Blue River> rep"})
    trail = history(client, BLUE_RIVER)
    assert [row[1:4] for row in trail] == [
        ["edirecon", "identified", "(new) → pending"],
        ["alice", "approve", "pending → approved"],
        ["alice", "mark-sent", "approved → sent"],
        ["alice", "note", "sent → sent"],
    ]
    assert trail[2][4] == "check 100234 of 155.50 on 2026-11-30; mailed"
    assert trail[3][4] == "called <Blue River> rep"
    assert "called &lt;Blue River&gt; rep" in client.get(f"/refunds/{BLUE_RIVER}").text


def test_refund_action_refused_by_the_workflow_is_409_with_the_reason(client: TestClient) -> None:
    logged_in(client)
    page = client.get(f"/refunds/{MEDICARE}")
    r = client.post(f"/refunds/{MEDICARE}/approve", data={"csrf": token(page)})
    assert r.status_code == 409
    assert "Refused: " in r.text and "is settled" in r.text
    r = client.post(f"/refunds/{LEE}/void", data={"csrf": token(page), "note": ""})
    assert r.status_code == 400 and "void needs" in r.text
    r = client.post(f"/refunds/{LEE}/mark-sent", data={"csrf": token(page), "method": "check", "reference": "1", "amount": "abc"})
    assert r.status_code == 400 and "is not an amount" in r.text
    assert client.post(f"/refunds/{LEE}/fly", data={"csrf": token(page)}).status_code == 400
    assert status(client, LEE) == "pending"


# -- roles ----------------------------------------------------------------------------------------


def test_a_viewer_sees_no_action_and_is_refused_403(client: TestClient) -> None:
    logged_in(client, "vic")
    worklist = client.get("/worklist")
    doc = html.fromstring(worklist.text)
    assert doc.xpath("//input[@name='refund_id']") == [] and doc.xpath("//select[@name='action']") == []
    assert len(ids(worklist)) == 4
    page = client.get(f"/refunds/{BLUE_RIVER}")
    assert html.fromstring(page.text).xpath("//form[@class='action']") == []
    csrf = token(page)  # the logout form's
    for action in ("approve", "hold", "note", "assign", "void"):
        r = client.post(f"/refunds/{BLUE_RIVER}/{action}", data={"csrf": csrf, "note": "x", "assignee": "vic"})
        assert r.status_code == 403 and "may not" in r.text, action
    r = client.post("/worklist/act", data={"csrf": csrf, "action": "approve", "refund_id": [BLUE_RIVER], "note": "x"})
    assert r.status_code == 403
    assert [row[2] for row in history(client, BLUE_RIVER)] == ["identified"]


def test_an_analyst_holds_and_assigns_but_does_not_approve(client: TestClient) -> None:
    logged_in(client, "ann")
    doc = html.fromstring(client.get("/worklist").text)
    assert doc.xpath("//select[@name='action']/option/@value") == ["hold", "assign"]
    page = client.get(f"/refunds/{LEE}")
    assert html.fromstring(page.text).xpath("//form[@class='action']/@id") == ["action-hold", "action-assign", "action-note"]
    assert client.post(f"/refunds/{LEE}/approve", data={"csrf": token(page)}).status_code == 403
    assert client.post(f"/refunds/{LEE}/hold", data={"csrf": token(page), "note": "waiting"}, follow_redirects=False).status_code == 303
    assert status(client, LEE) == "held"


# -- reports --------------------------------------------------------------------------------------


def test_reports_written_and_served_for_the_logged_in_user(client: TestClient) -> None:
    logged_in(client, "vic")
    page = client.get("/reports")
    assert "No reports written" in page.text
    assert client.get("/reports/files/dashboard.html").status_code == 404
    r = client.post("/reports", data={"csrf": token(page)})
    files = html.fromstring(r.text).xpath("//ul[@id='report-files']/li/a/text()")
    assert {"dashboard.html", "worklist.csv", "report.json"} <= set(files)
    dash = client.get("/reports/files/dashboard.html")
    assert dash.status_code == 200 and dash.headers["content-type"].startswith("text/html") and "BLUE RIVER HEALTH PLAN" in dash.text
    csv = client.get("/reports/files/worklist.csv")
    assert csv.status_code == 200 and BLUE_RIVER in csv.text
    for evil in ("../e.db", "..%2Fe.db", "%2Fetc%2Fpasswd", "packets/../../e.db"):
        assert client.get(f"/reports/files/{evil}").status_code == 404, evil


# -- hostile text from 837/835 files --------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The formula-payloads scenario with markup in the patients' and the payer's names too."""
    source = tmp_path / "hostile-src"
    shutil.copytree(FIXTURES / "engine" / "formula-payloads-in-names-and-ids", source)
    for path in source.iterdir():
        if path.suffix in (".837", ".835"):
            text = path.read_text(encoding="utf-8")
            text = text.replace("ANNA", SCRIPT).replace("OSCAR", IMG.replace('"', "'")).replace("MEDICARE PART B", "MEDICARE </td><b>B</b>")
            path.write_text(text, encoding="utf-8")
    db = _store(tmp_path, source)
    monkeypatch.setattr(pages, "today", lambda: AS_OF)
    with TestClient(create_app(f"sqlite:///{db}", Config.load(None), SECRET)) as c:
        yield c


def _no_markup_from_the_files(text: str) -> None:
    doc = html.fromstring(text)
    assert doc.xpath("//script") == [] and doc.xpath("//img") == [] and doc.xpath("//b") == []
    assert "<script>" not in text and "<img" not in text and "</td><b>" not in text


def test_hostile_text_is_escaped_on_every_page(hostile: TestClient) -> None:
    c = logged_in(hostile)
    worklist = c.get("/worklist")
    _no_markup_from_the_files(worklist.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in worklist.text
    doc = html.fromstring(worklist.text)
    patients = doc.xpath("//table[@id='worklist']/tbody/tr/td[7]/text()")
    assert sorted(patients) == sorted(['=HYPERLINK("//x.example/a","y"), ' + SCRIPT, "+SUM(1+1), " + IMG.replace('"', "'")])
    assert '=HYPERLINK("//x.example/p","MEDICARE </td><b>B</b>")' in doc.xpath("//table[@id='worklist']/tbody/tr/td[8]/text()")
    refund_ids = ids(worklist)
    assert len(refund_ids) == 2
    for refund_id in refund_ids:
        page = c.get(f"/refunds/{refund_id}")
        assert page.status_code == 200
        _no_markup_from_the_files(page.text)
        text = html.fromstring(page.text).text_content()
        assert SCRIPT in text or IMG.replace('"', "'") in text
        assert "+cmd|'/C calc'!A0" in text or "=cmd|'/C calc'!A0" in text
    assert any("@remit-2.835:17" in c.get(f"/refunds/{r}").text for r in refund_ids)
    for refund_id in refund_ids:  # the results of a bulk action, and a refused action's page
        c.post(f"/refunds/{refund_id}/note", data={"csrf": token(worklist), "note": SCRIPT})
        _no_markup_from_the_files(c.get(f"/refunds/{refund_id}").text)
    acted = c.post("/worklist/act", data={"csrf": token(worklist), "action": "approve", "refund_id": refund_ids, "note": IMG})
    _no_markup_from_the_files(acted.text)
    refused = c.post(f"/refunds/{refund_ids[0]}/approve", data={"csrf": token(worklist)})
    assert refused.status_code == 409
    _no_markup_from_the_files(refused.text)
    for path in ("/worklist?status=approved", f"/worklist?payer={SCRIPT}", "/worklist?sort=days_in_credit", f"/refunds/{SCRIPT}", f"/worklist?reason={SCRIPT}"):
        _no_markup_from_the_files(c.get(path).text)
    reports = c.post("/reports", data={"csrf": token(worklist)})
    _no_markup_from_the_files(reports.text)
    for name in html.fromstring(reports.text).xpath("//ul[@id='report-files']/li/a/@href"):
        if name.endswith(".html"):  # the dashboard: its own script only, the names escaped
            dash = c.get(name).text
            assert SCRIPT not in dash and "<img" not in dash and "</td><b>" not in dash
            # its own inline script and its worklist's JSON data, nothing loaded from elsewhere
            scripts = html.fromstring(dash).xpath("//script")
            assert [(s.get("src"), s.get("type")) for s in scripts] == [(None, "application/json"), (None, None)]


def test_pages_forbid_scripts_and_framing(client: TestClient) -> None:
    logged_in(client)
    for path in ("/login", "/worklist", f"/refunds/{LEE}", "/reports"):
        policy = client.get(path).headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script-src" not in policy


def test_the_reports_folder_is_removed_when_the_server_stops(built: Path, tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    shutil.copy(built, db)
    with TestClient(create_app(f"sqlite:///{db}", Config.load(None), SECRET)) as c:
        logged_in(c, "vic")
        assert c.app.state.report_dir is None  # type: ignore[attr-defined]
        c.post("/reports", data={"csrf": token(c.get("/reports"))})
        folder = c.app.state.report_dir  # type: ignore[attr-defined]
        assert (folder / "dashboard.html").is_file()
    assert not folder.exists()


def test_requests_side_by_side(client: TestClient) -> None:
    """Several users at once: each request opens the store in its own thread (alembic's upgrade
    of each open is not thread-safe by itself: connection._UPGRADING)."""
    from concurrent.futures import ThreadPoolExecutor

    sessions = [logged_in(TestClient(client.app), name) for name in ("alice", "ann", "vic", "alice", "ann", "vic")]

    def work(c: TestClient) -> list[int]:
        return [c.get(path).status_code for path in ("/worklist", f"/refunds/{LEE}", "/worklist?sort=amount")]

    with ThreadPoolExecutor(len(sessions)) as pool:
        codes = list(pool.map(work, sessions))
    assert codes == [[200, 200, 200]] * len(sessions)


def test_each_request_is_one_event_naming_its_route_not_its_path(client: TestClient) -> None:
    """`serve --verbose` logs a `request` event per request: the route's template, never the path
    or query as given (they may carry 837/835 text), nor the password or cookie."""
    import structlog
    from structlog.testing import capture_logs

    structlog.reset_defaults()  # the store was built by a CLI run, which set the log level
    with capture_logs() as logs:
        logged_in(client)
        client.get(f"/refunds/{LEE}?x=LEE%2C+KAREN")
        client.get("/worklist?payer=%3Cscript%3E")
    requests = [e for e in logs if e["event"] == "request"]
    assert [(e["method"], e["route"], e["status"]) for e in requests] == [
        ("GET", "/login", 200),
        ("POST", "/login", 303),
        ("GET", "/refunds/{refund_id}", 200),
        ("GET", "/worklist", 200),
    ]
    text = repr(logs)
    assert "KAREN" not in text and "script" not in text and PASSWORD not in text and SECRET not in text
