"""`edirecon user add|list|disable` and `edirecon token create|revoke` (docs/users.md): their
output, exit codes and messages; the token alone on the last line of stdout; the password asked
twice, hidden, or read from stdin; nothing secret on stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.store.connection import open_store
from edirecon.engine.workflow import users as u
from edirecon.errors import Unauthorized

PASSWORD = "correct horse battery staple"
TOKEN = re.compile(r"^edr_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def cli(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=stdin)


def test_user_add_with_password_stdin_list_and_disable(db: str) -> None:
    added = cli("user", "add", "alice", "--role", "approver", "--password-stdin", "--db", db, stdin=PASSWORD + "\n")
    assert (added.exit_code, added.stdout, added.stderr) == (0, "user alice added (approver)\n", "")
    cli("user", "add", "bob", "--role", "viewer", "--password-stdin", "--db", db, stdin="another long password\n")
    listed = cli("user", "list", "--db", db)
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["user", "role", "tokens", "added", "state"]
    assert [line.split()[:3] + line.split()[5:] for line in lines[1:3]] == [["alice", "approver", "0", "active"], ["bob", "viewer", "0", "active"]]
    assert lines[3] == "2 user(s)"
    disabled = cli("user", "disable", "bob", "--db", db)
    assert (disabled.exit_code, disabled.stdout) == (0, "user bob disabled\n")
    assert cli("user", "disable", "bob", "--db", db).stdout == "user bob was already disabled\n"
    assert "disabled since" in cli("user", "list", "--db", db).stdout.splitlines()[2]
    store = open_store(db)
    try:
        assert u.login(store, "alice", PASSWORD).role == "approver"  # the line's end is not part of the password
    finally:
        store.dispose()


def test_user_add_asks_for_the_password_twice(db: str) -> None:
    typed = cli("user", "add", "alice", "--role", "admin", "--db", db, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    # (CliRunner echoes a newline for each hidden answer; a terminal's getpass writes it to the terminal)
    assert typed.exit_code == 0 and typed.stdout.splitlines()[-1] == "user alice added (admin)"
    assert "Password:" in typed.stderr and "Repeat for confirmation:" in typed.stderr
    assert PASSWORD not in typed.stdout + typed.stderr  # hidden input: not echoed
    mismatch = cli("user", "add", "bob", "--role", "admin", "--db", db, stdin=f"{PASSWORD}\nsomething else entirely\n")
    assert mismatch.exit_code != 0
    assert "bob" not in cli("user", "list", "--db", db).stdout


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        (["alice", "--role", "viewer"], "short pass\n", "edirecon: the password is too short: at least 12 characters\n"),
        (["alice", "--role", "boss"], PASSWORD + "\n", "edirecon: role 'boss' is not one of viewer, analyst, approver, admin\n"),
        (
            ["al ice", "--role", "viewer"],
            PASSWORD + "\n",
            "edirecon: user name 'al ice' is not one: 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit\n",
        ),
    ],
)
def test_user_add_refusals_are_usage_errors(db: str, args: list[str], stdin: str, message: str) -> None:
    result = cli("user", "add", *args, "--password-stdin", "--db", db, stdin=stdin)
    assert (result.exit_code, result.stderr, result.stdout) == (2, message, "")
    assert PASSWORD not in result.stderr and "short pass" not in result.stderr


def test_a_name_taken_is_refused(db: str) -> None:
    cli("user", "add", "alice", "--role", "viewer", "--password-stdin", "--db", db, stdin=PASSWORD)
    again = cli("user", "add", "alice", "--role", "admin", "--password-stdin", "--db", db, stdin=PASSWORD)
    assert (again.exit_code, again.stderr) == (2, "edirecon: a user named 'alice' already exists\n")


def test_token_create_prints_the_token_alone_on_the_last_line_and_revoke_refuses_it(db: str) -> None:
    cli("user", "add", "alice", "--role", "analyst", "--password-stdin", "--db", db, stdin=PASSWORD)
    made = cli("token", "create", "alice", "--db", db)
    assert made.exit_code == 0 and made.stderr == ""
    *before, last = made.stdout.splitlines()
    found = TOKEN.fullmatch(last)
    assert found, made.stdout
    token_id = found.group(1)
    assert before == [f"API token {token_id} for alice (analyst); it is shown once, keep it now:"]
    store = open_store(db)
    try:
        assert u.resolve_token(store, last).name == "alice"
        assert "1" in cli("user", "list", "--db", db).stdout.splitlines()[1].split()[2]
        revoked = cli("token", "revoke", token_id, "--db", db)
        assert (revoked.exit_code, revoked.stdout) == (0, f"API token {token_id} of alice revoked\n")
        with pytest.raises(Unauthorized, match="revoked"):
            u.resolve_token(store, last)
    finally:
        store.dispose()
    assert cli("token", "revoke", token_id, "--db", db).stdout == f"API token {token_id} of alice was already revoked\n"
    unknown = cli("token", "revoke", "0badc0de", "--db", db)
    assert (unknown.exit_code, unknown.stderr) == (2, "edirecon: no API token '0badc0de' in the store\n")


def test_commands_need_a_store_and_known_users(db: str, tmp_path: Path) -> None:
    """list, disable and the token commands create no store; an unknown user is a usage error."""
    missing = cli("user", "list", "--db", db)
    assert missing.exit_code == 2 and missing.stderr.startswith(f"edirecon: no store at {tmp_path / 'store.db'}")
    assert not (tmp_path / "store.db").exists()
    cli("user", "add", "alice", "--role", "viewer", "--password-stdin", "--db", db, stdin=PASSWORD)
    for args in (["user", "disable", "nobody"], ["token", "create", "nobody"]):
        result = cli(*args, "--db", db)
        assert (result.exit_code, result.stderr) == (2, "edirecon: no user 'nobody' in the store (see `edirecon user list`)\n")


def test_through_python_m_edirecon_nothing_secret_reaches_stderr(db: str, tmp_path: Path) -> None:
    """The installed command: the token on stdout's last line and nowhere else; stderr (log events
    included: the lock is a warning) holds no password or token."""

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edirecon", *args, "--db", db], input=stdin, capture_output=True, text=True, cwd=tmp_path, timeout=120)

    assert run("user", "add", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    made = run("token", "create", "alice")
    token = made.stdout.splitlines()[-1]
    assert TOKEN.fullmatch(token) and made.stdout.count(token) == 1
    store = open_store(db)
    try:
        for _ in range(u.MAX_FAILED_LOGINS):
            with pytest.raises(Unauthorized):
                u.login(store, "alice", "not the password at all")
    finally:
        store.dispose()
    listed = run("user", "list")
    assert "locked until" in listed.stdout
    revoked = run("token", "revoke", token)  # the whole token names it too
    assert revoked.returncode == 0 and token not in revoked.stdout
    for result in (made, listed, revoked):
        assert PASSWORD not in result.stderr and token not in result.stderr and "not the password" not in result.stderr
