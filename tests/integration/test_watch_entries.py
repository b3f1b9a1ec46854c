"""`edirecon watch` and entries of inbound/ it must not read: a symbolic link, a named pipe, a folder
inside a partner folder, a file that cannot be read, a name that is not UTF-8 or too long.  Each is
moved as it is into error/ with its error.json and a `rejected` warning, and the good file dropped
beside it is ingested in the same `watch --once` pass."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import SAMPLE_EDI
from test_shards import note_the_plans
from test_watch import (
    AS_OF,
    GOOD,
    PRIVATE,
    RUN_OUTPUTS,
    day_folder,
    drop,
    events,
    files_under,
    sha,
    watch,
)
from typer.testing import CliRunner

from edirecon.cli import app

GOOD_REL = "blueriver/remit-1.835"
GOOD_SOURCE = SAMPLE_EDI / "duplicate-payment" / "remit-1.835"
ELSEWHERE_835 = SAMPLE_EDI / "clean-payment" / "remit.835"
NOT_UTF8 = b"acme/caf\xe9-remit.835"  # Latin-1 e-acute: not valid UTF-8
LONG_PARTNER = "p" * 60  # with "__" and a 238-byte name: a 300-byte name in work/
LONG_NAME = "remit-" + "n" * 228 + ".835"


def make_symlink(root: Path, outside: Path) -> str:
    target = outside / "remit.835"
    target.write_bytes(ELSEWHERE_835.read_bytes())
    (root / "inbound" / "acme").mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / "inbound" / "acme" / "linked.835")
    return "acme/linked.835"


def make_fifo(root: Path, _outside: Path) -> str:
    (root / "inbound" / "acme").mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "inbound" / "acme" / "pipe.835")
    return "acme/pipe.835"


def make_folder(root: Path, _outside: Path) -> str:
    drop(root, "acme/nested/claims.837", (SAMPLE_EDI / "clean-payment" / "claims.837").read_bytes())
    return "acme/nested"


def make_not_utf8(root: Path, _outside: Path) -> str:
    (root / "inbound" / "acme").mkdir(parents=True, exist_ok=True)
    with open(os.fsencode(root / "inbound") + b"/" + NOT_UTF8, "wb") as fh:
        fh.write(ELSEWHERE_835.read_bytes())
    return os.fsdecode(NOT_UTF8)


def make_long_name(root: Path, _outside: Path) -> str:
    rel = f"{LONG_PARTNER}/{LONG_NAME}"
    assert len(f"{LONG_PARTNER}__{LONG_NAME}".encode()) == 300
    drop(root, rel, ELSEWHERE_835.read_bytes())
    return rel


#: case -> (how the bad entry is made, its entry kind, its finding code, the name it has in error/)
CASES: dict[str, tuple[Callable[[Path, Path], str], str, str, str]] = {
    "symlink": (make_symlink, "symlink", "NOT_A_REGULAR_FILE", "acme/linked.835"),
    "fifo": (make_fifo, "fifo", "NOT_A_REGULAR_FILE", "acme/pipe.835"),
    "folder": (make_folder, "folder", "NOT_A_REGULAR_FILE", "acme/nested"),
    "not-utf8": (make_not_utf8, "file", "UNSAFE_FILE_NAME", "acme/caf\\xe9-remit.835"),
    "300-byte-name": (make_long_name, "file", "FILE_NAME_TOO_LONG", ""),  # shortened: checked below
}


def rejected_events(stderr: str) -> list[dict[str, Any]]:
    return [e for e in events(stderr) if e["event"] == "rejected"]


def assert_good_file_ingested(root: Path, db: Path) -> None:
    assert files_under(root / "archive") == [f"{day_folder()}/{GOOD_REL}"]
    assert files_under(root / "work") == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("select original_name, state from inbound_files").fetchall() == [(GOOD_REL, "archived")]
        assert conn.execute("select sha256 from files").fetchall() == [(sha(GOOD_SOURCE),)]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_entry_goes_to_error_and_the_good_file_beside_it_is_ingested(tmp_path: Path, case: str) -> None:
    """The entry itself is moved into error/ with its error.json and a `rejected` warning (no patient data); exit 1; the good file is archived."""
    make, kind, code, where = CASES[case]
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    outside.mkdir()
    drop(root, GOOD_REL, GOOD_SOURCE.read_bytes())
    rel = make(root, outside)
    target = outside / "remit.835"
    before = (target.read_bytes(), target.stat().st_ino) if target.exists() else None
    done = watch(root, f"sqlite:///{tmp_path}/store.db", "--once", "--interval", "0.2", timeout=60)
    assert done.returncode == 1, done.stderr
    assert_good_file_ingested(root, tmp_path / "store.db")
    assert not os.path.lexists(root / "inbound" / rel)
    (event,) = rejected_events(done.stderr)
    assert (event["level"], event["component"], event["entry"], event["code"], event["moved"]) == ("warning", "watch", kind, code, True)
    if case == "300-byte-name":  # shortened to fit, ending with a hash of the original name
        where = event["destination"].removeprefix("error/")
        folder, name = where.split("/")
        assert folder == LONG_PARTNER and name.startswith("remit-nnn") and len(name.encode()) <= 231 and name[-9] == "-"
    assert event["destination"] == f"error/{where}" and event["record"] == f"error/{where}.error.json"
    assert event["file"] == (rel if case != "not-utf8" else "acme/caf\\xe9-remit.835")
    record = json.loads((root / "error" / f"{where}.error.json").read_text(encoding="utf-8"))
    assert (record["file"], record["entry"], record["kind"], record["moved"], record["destination"]) == (event["file"], kind, "unread", True, f"error/{where}")
    assert [e["code"] for e in record["errors"]] == [code] and record["reason"] == event["reason"]
    moved = root / "error" / where
    mode = os.lstat(moved).st_mode
    assert {"symlink": stat.S_ISLNK, "fifo": stat.S_ISFIFO, "folder": stat.S_ISDIR, "file": stat.S_ISREG}[kind](mode)
    if case == "symlink":  # the link was moved, never followed: its target is where it was, same inode, same bytes
        assert os.readlink(moved) == str(target) and (target.read_bytes(), target.stat().st_ino) == before
    if case == "folder":  # moved whole, with what it held
        assert files_under(moved) == ["claims.837"]
    if kind == "file":
        assert moved.read_bytes() == ELSEWHERE_835.read_bytes()
    for private in PRIVATE:
        assert private not in done.stderr


def test_a_symlinks_target_is_never_read(tmp_path: Path) -> None:
    """The target of a link dropped in inbound/ keeps its access time: the watcher never opened it."""
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    outside.mkdir()
    probe = outside / "probe"
    probe.write_bytes(b"x")
    old = probe.stat().st_mtime_ns - 10**12
    os.utime(probe, ns=(old, probe.stat().st_mtime_ns))
    probe.read_bytes()
    if probe.stat().st_atime_ns == old:
        pytest.skip("this file system does not record access times (noatime)")
    drop(root, GOOD_REL, GOOD_SOURCE.read_bytes())
    make_symlink(root, outside)
    target = outside / "remit.835"
    os.utime(target, ns=(old, target.stat().st_mtime_ns))
    done = watch(root, f"sqlite:///{tmp_path}/store.db", "--once", "--interval", "0.2", timeout=60)
    assert done.returncode == 1, done.stderr
    assert target.stat().st_atime_ns == old
    assert [e["entry"] for e in rejected_events(done.stderr)] == ["symlink"]


# ------------------------------------------------------- in process: what root cannot do for real
@pytest.fixture
def in_process() -> Iterator[Callable[..., Any]]:
    """`edirecon watch` in this process (to patch a system call); structlog reset afterwards."""

    def run(root: Path, db: Path) -> Any:
        return CliRunner().invoke(app, ["watch", str(root), "--db", f"sqlite:///{db}", "--as-of", AS_OF, "--once", "--interval", "0.2"])

    yield run
    structlog.reset_defaults()


def test_an_unreadable_file_goes_to_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process: Callable[..., Any]) -> None:
    """A file whose open fails with EACCES (simulated: tests run as root) is moved to error/ with UNREADABLE_FILE; the good file goes on."""
    root = tmp_path / "root"
    drop(root, GOOD_REL, GOOD_SOURCE.read_bytes())
    drop(root, "acme/locked.835", ELSEWHERE_835.read_bytes())
    locked = str(root / "inbound" / "acme" / "locked.835")
    real_open = os.open

    def deny(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    done = in_process(root, tmp_path / "store.db")
    assert done.exit_code == 1, done.output
    assert_good_file_ingested(root, tmp_path / "store.db")
    (event,) = rejected_events(done.stderr)
    assert (event["level"], event["file"], event["entry"], event["code"]) == ("warning", "acme/locked.835", "file", "UNREADABLE_FILE")
    assert event["reason"] == "it cannot be read (Permission denied)" and event["destination"] == "error/acme/locked.835"
    assert (root / "error" / "acme" / "locked.835").read_bytes() == ELSEWHERE_835.read_bytes()
    assert json.loads((root / "error" / "acme" / "locked.835.error.json").read_text())["errors"][0]["code"] == "UNREADABLE_FILE"


def test_an_entry_that_cannot_be_moved_is_left_with_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process: Callable[..., Any]) -> None:
    """A refused entry whose rename fails stays in inbound/ with an error/ record and a warning; a second pass rewrites the one record."""
    root = tmp_path / "root"
    drop(root, GOOD_REL, GOOD_SOURCE.read_bytes())
    (root / "inbound" / "acme").mkdir(parents=True)
    os.mkfifo(root / "inbound" / "acme" / "pipe.835")
    stuck = str(root / "inbound" / "acme" / "pipe.835")
    real_rename = os.rename

    def refuse(src: Any, dst: Any) -> None:
        if os.fspath(src) == stuck:
            raise PermissionError(errno.EPERM, "Operation not permitted", src)
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", refuse)
    for attempt in (1, 2):
        done = in_process(root, tmp_path / "store.db")
        assert done.exit_code == 1, done.output
        (event,) = rejected_events(done.stderr)
        assert (event["level"], event["entry"], event["moved"], event["destination"]) == ("warning", "fifo", False, "")
        assert event["reason"].endswith("it could not be moved out of inbound/ (Operation not permitted) and was left there")
        assert stat.S_ISFIFO(os.lstat(stuck).st_mode)
        assert files_under(root / "error") == ["acme/pipe.835.error.json"], attempt
        record = json.loads((root / "error" / "acme" / "pipe.835.error.json").read_text())
        assert (record["moved"], record["left_in"], record["destination"]) == (False, "inbound/acme/pipe.835", "")
    assert_good_file_ingested(root, tmp_path / "store.db")


def test_a_name_the_kernel_finds_too_long_for_work_is_rejected_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process: Callable[..., Any]
) -> None:
    """Regression: ENAMETOOLONG moving a file into work/ ended the watcher (exit 2); now the file goes to error/ and the batch goes on."""
    import edirecon.engine.dropfolder.layout as layout

    monkeypatch.setattr(layout, "name_max", lambda _folder: 10_000)  # the up-front length check lets it through
    root = tmp_path / "root"
    drop(root, GOOD_REL, GOOD_SOURCE.read_bytes())
    rel = make_long_name(root, tmp_path)
    done = in_process(root, tmp_path / "store.db")
    assert done.exit_code == 1, done.output
    assert_good_file_ingested(root, tmp_path / "store.db")
    (event,) = rejected_events(done.stderr)
    assert (event["code"], event["reason"], event["moved"]) == ("FILE_NAME_TOO_LONG", "its name is too long to be moved into work/", True)
    assert not (root / "inbound" / rel).exists()
    assert sorted(os.listdir(root / "work")) == [".outbound-835", ".store.lock"]  # no lock file left behind


def test_each_publish_decides_in_the_workers_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--workers`` is how many processes decide the store at each publish, as for `run`: with two,
    a store of ``PARALLEL_CLAIMS`` claims or more (lowered here to the samples' size) is decided in
    one shard per worker (a publish of 100,000 encounters: 10.1-10.4 -> 5.7-6.1 s); with one, in
    this process.  The outputs are the same bytes."""
    from edirecon.engine.scale import processes, shards  # deferred: patched for this test only

    monkeypatch.setattr(shards, "PARALLEL_CLAIMS", 1)
    monkeypatch.setattr(processes, "FORKS", True)  # as on Linux, on any platform
    note_the_plans(monkeypatch, tmp_path / "planned")
    outbound = {}
    try:
        for workers in (1, 2):
            root = tmp_path / f"root-{workers}"
            for rel, source in GOOD.items():
                drop(root, rel, source.read_bytes())
            args = ["watch", str(root), "--db", f"sqlite:///{tmp_path}/store-{workers}.db", "--as-of", AS_OF, "--once", "--interval", "0.2"]
            done = CliRunner().invoke(app, [*args, "--workers", str(workers)])
            assert done.exit_code == 0, done.output
            assert (tmp_path / "planned").exists() == (workers == 2), f"--workers {workers}"
            outbound[workers] = {name: (root / "outbound" / name).read_bytes() for name in RUN_OUTPUTS}
    finally:
        structlog.reset_defaults()
    assert (tmp_path / "planned").read_text() == "2 2", "one shard per worker"
    assert outbound[2] == outbound[1]
