"""The drop-folder protocol on disk: the layout under ROOT, when an arriving file is ready, and how a
watcher claims it so that two watchers never both take one.

* **Ready**: an entry at the top of ``inbound/`` or in a partner folder (dotfiles, dot-folders and
  names ending ``.part``, ``.tmp`` or ``.done`` are never candidates) is ready when its size and
  modification time are unchanged across two consecutive polls, or at once when ``<name>.done``
  exists beside it.  Entries are looked at with ``lstat`` and never followed: only a regular file
  with a safe name (``refusal``) is claimed; anything else is refused (``engine.rejects``).
* **Claim**: an atomic ``rename`` from ``inbound/`` into ``work/``.  Before renaming, the watcher
  creates ``work/.<work name>.lock`` exclusively and holds an ``flock`` on it until the file has
  left ``work/``.  A rename that fails with "no such file" means another watcher took it.
* **Resume**: a file in ``work/`` whose lock nobody holds belongs to a watcher that died (the kernel
  drops the ``flock`` of a killed process).  Any watcher takes the lock and finishes the file.

The owner of a file in ``work/`` is whoever holds the ``flock`` on the inode currently linked at
its lock path; a lock file is unlinked only by its holder, and every taker checks after locking
that the inode it locked is still the one on disk.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from edirecon import mappings

#: names that are never candidates: uploads in progress and release markers
IGNORED_SUFFIXES = (".part", ".tmp", ".done")
MARKER = ".done"
FOLDERS = ("inbound", "work", "archive", "error", "ack", "outbound")
#: bytes kept free in a name for what the watcher adds to it: ``.<name>.lock``, ``~N``,
#: ``.error.json``, ``.<name>.tmp`` (a longer work name is refused, FILE_NAME_TOO_LONG)
NAME_MARGIN = 24


@dataclass(frozen=True)
class Layout:
    """The folders under a watched ROOT."""

    root: Path

    @property
    def inbound(self) -> Path:
        return self.root / "inbound"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def error(self) -> Path:
        return self.root / "error"

    @property
    def ack(self) -> Path:
        return self.root / "ack"

    @property
    def outbound(self) -> Path:
        return self.root / "outbound"

    @property
    def spool(self) -> Path:
        """Clean 835 transaction sets waiting to be re-emitted (one JSON file per inbound file)."""
        return self.work / ".outbound-835"

    @property
    def store_lock(self) -> Path:
        """Held while a watcher writes to the store or to outbound/: one writer per ROOT at a time."""
        return self.work / ".store.lock"

    def create(self) -> None:
        for name in FOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(exist_ok=True)


# -- arrival ------------------------------------------------------------------------------------


def is_candidate(rel: Path) -> bool:
    """A path under inbound/ that may be a partner's file (not a dotfile, upload or marker)."""
    return not any(part.startswith(".") for part in rel.parts) and not rel.name.lower().endswith(IGNORED_SUFFIXES)


def entry_kind(mode: int) -> str:
    """What a directory entry is, from its ``lstat`` mode."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _entries(folder: Path) -> list[tuple[str, os.stat_result]]:
    """The names in a folder with their ``lstat`` (nothing followed), sorted; [] when it cannot be listed."""
    out = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                try:
                    out.append((e.name, e.stat(follow_symlinks=False)))
                except FileNotFoundError:  # taken by another watcher meanwhile
                    continue
    except OSError:
        return []
    return sorted(out, key=lambda pair: pair[0])


#: an entry's state at one poll: (kind, size, mtime_ns)
Signature = tuple[str, int, int]


def scan(inbound: Path) -> dict[Path, Signature]:
    """Every candidate entry at the top of inbound/ or in a partner folder (relative path), with its
    kind, size and mtime.  A real folder at the top is a partner folder and is looked into; a
    symbolic link is never followed, and a folder inside a partner folder is an entry itself."""
    seen: dict[Path, Signature] = {}
    for name, st in _entries(inbound):
        if name.startswith("."):
            continue
        if stat.S_ISDIR(st.st_mode):
            for sub, sst in _entries(inbound / name):
                rel = Path(name) / sub
                if is_candidate(rel):
                    seen[rel] = (entry_kind(sst.st_mode), sst.st_size, sst.st_mtime_ns)
        elif is_candidate(Path(name)):
            seen[Path(name)] = (entry_kind(st.st_mode), st.st_size, st.st_mtime_ns)
    return seen


def released(inbound: Path, rel: Path) -> bool:
    """Whether the partner wrote ``<name>.done`` beside the file."""
    return (inbound / rel).with_name(rel.name + MARKER).exists()


class Ready(NamedTuple):
    """An entry of inbound/ that stood still (or was released by its marker)."""

    rel: Path
    why: str  # marker or stable
    first_seen: datetime
    signature: Signature

    @property
    def kind(self) -> str:
        return self.signature[0]


class Poller:
    """Remembers the previous poll, to tell which entries stood still between two polls."""

    def __init__(self, inbound: Path):
        self.inbound = inbound
        self.previous: dict[Path, Signature] = {}
        self.first_seen: dict[Path, datetime] = {}

    def poll(self) -> list[Ready]:
        """Scan once; return the ready entries, sorted by relative path."""
        current = scan(self.inbound)
        now = utcnow()
        ready = []
        for rel, sig in sorted(current.items()):
            first = self.first_seen.setdefault(rel, now)
            if released(self.inbound, rel):
                ready.append(Ready(rel, "marker", first, sig))
            elif self.previous.get(rel) == sig:
                ready.append(Ready(rel, "stable", first, sig))
        self.previous = current
        self.first_seen = {rel: t for rel, t in self.first_seen.items() if rel in current}
        return ready

    def pending(self) -> bool:
        """Whether the last poll saw a file that is neither released nor yet stable."""
        return any(not released(self.inbound, rel) for rel in self.previous)


def utcnow() -> datetime:
    """Naive UTC (the store's DateTime columns hold UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


# -- refusing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why an entry of inbound/ is not claimed: it is moved as it is into error/ (``engine.rejects``)."""

    code: str  # NOT_A_REGULAR_FILE, UNREADABLE_FILE, UNSAFE_FILE_NAME, FILE_NAME_TOO_LONG (mappings/codes.csv)
    entry: str  # file, symlink, folder, fifo, socket, device
    reason: str  # one line, with no text from the entry's name

    def __post_init__(self) -> None:
        mappings.registered("refusal", self.code)


NOT_REGULAR = {
    "symlink": "a symbolic link (never followed)",
    "folder": "a folder inside a partner folder (inbound/ holds files at the top or in one folder per partner)",
    "fifo": "a named pipe (FIFO)",
    "socket": "a socket",
    "device": "a device",
}


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) the file system of ``folder`` takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def is_utf8(text: str) -> bool:
    """Whether a name read from disk was valid UTF-8 (undecodable bytes come back as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_text(text: str) -> str:
    """A name read from disk as text that can be stored and logged: bytes that are not UTF-8 are
    backslash-escaped (``caf\\xe9.835``)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def refusal(layout: Layout, ready: Ready) -> Refusal | None:
    """Why a ready entry must not be claimed (None when it is a regular file that can be taken).

    A regular file is opened once, without following a link and without blocking, to check that it
    can be read and is still a regular file; nothing is read from it."""
    kind = ready.kind
    if kind != "file":
        return Refusal("NOT_A_REGULAR_FILE", kind, f"{NOT_REGULAR[kind]}: only regular files are taken")
    if not is_utf8(ready.rel.as_posix()):
        return Refusal("UNSAFE_FILE_NAME", kind, "its name (or its partner folder's) is not valid UTF-8; it is recorded backslash-escaped")
    size, limit = len(work_name(ready.rel).encode("utf-8")), name_max(layout.work) - NAME_MARGIN
    if size > limit:
        return Refusal("FILE_NAME_TOO_LONG", kind, f"its name in work/ (<partner>__<name>) would be {size} bytes; at most {limit} are taken")
    try:
        fd = os.open(layout.inbound / ready.rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None  # taken by another watcher meanwhile: claim() finds nothing to move
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a symbolic link since the poll
            return Refusal("NOT_A_REGULAR_FILE", "symlink", f"{NOT_REGULAR['symlink']}: only regular files are taken")
        return Refusal("UNREADABLE_FILE", kind, f"it cannot be read ({exc.strerror or exc})")
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if not stat.S_ISREG(mode):
        other = entry_kind(mode)
        return Refusal("NOT_A_REGULAR_FILE", other, f"{NOT_REGULAR.get(other, other)}: only regular files are taken")
    return None


# -- claiming -----------------------------------------------------------------------------------


def partner_of(rel: Path) -> str:
    """The partner is the first subfolder under inbound/ ("" for a file at the top)."""
    return rel.parts[0] if len(rel.parts) > 1 else ""


def work_name(rel: Path) -> str:
    """The name in work/: the relative path with "__" between its parts (``acme__claims.837``)."""
    return "__".join(rel.parts)


@dataclass
class Claim:
    """A file in work/ that this watcher owns (it holds the flock on its lock file)."""

    path: Path  # in work/
    original: str  # relative to inbound/, posix
    partner: str
    received_at: datetime
    why: str  # marker, stable, or resume
    lock_fd: int = field(repr=False, default=-1)

    @property
    def lock_path(self) -> Path:
        return lock_path(self.path)

    def release(self) -> None:
        """Unlink the lock (this watcher holds it) and close it: the file has left work/."""
        if self.lock_fd < 0:
            return
        try:
            self.lock_path.unlink(missing_ok=True)
        finally:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def abandon(self) -> None:
        """Close the lock without unlinking it: the file stays in work/ for a later resume."""
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


def lock_path(work_file: Path) -> Path:
    return work_file.with_name(f".{work_file.name}.lock")


def _lock(path: Path, exclusive_create: bool) -> int | None:
    """Open and flock the lock file at ``path`` without blocking; None when someone else has it.

    The lock counts only if the inode locked is still the one linked at ``path`` (its holder may
    have unlinked it between our open and our flock)."""
    flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if exclusive_create else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return None
    return fd


def claim(layout: Layout, rel: Path, why: str, first_seen: datetime) -> Claim | None:
    """Move ``inbound/<rel>`` into work/ under a free name and lock it; None when another watcher
    took it first (or it vanished)."""
    base = work_name(rel)
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}~{n}"
        target = layout.work / name
        if target.exists():
            continue
        fd = _lock(lock_path(target), exclusive_create=True)
        if fd is None:
            continue
        if target.exists():  # a file left in work/ without its lock: not ours to overwrite
            lock_path(target).unlink(missing_ok=True)
            os.close(fd)
            continue
        note = {"original": rel.as_posix(), "received_at": first_seen.isoformat()}
        os.write(fd, json.dumps(note).encode())
        try:
            os.rename(layout.inbound / rel, target)
        except OSError as exc:
            lock_path(target).unlink(missing_ok=True)
            os.close(fd)
            if isinstance(exc, FileNotFoundError):  # another watcher claimed it first
                return None
            raise
        (layout.inbound / rel).with_name(rel.name + MARKER).unlink(missing_ok=True)
        return Claim(target, rel.as_posix(), partner_of(rel), first_seen, why, fd)
    raise RuntimeError(f"no free name in work/ for {rel}")


def orphans(layout: Layout) -> list[Claim]:
    """Files in work/ whose owner died: lock each one this watcher can take, and return them."""
    out = []
    for path in sorted(layout.work.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        fd = _lock(lock_path(path), exclusive_create=False)
        if fd is None:
            continue  # a live watcher is on it
        if not path.exists():  # finished by its owner between our listing and our lock
            lock_path(path).unlink(missing_ok=True)
            os.close(fd)
            continue
        note = _read_note(fd)
        original = note.get("original") or _decode(path.name)
        try:
            received = datetime.fromisoformat(note["received_at"])
        except (KeyError, ValueError):
            received = utcnow()
        out.append(Claim(path, original, partner_of(Path(original)), received, "resume", fd))
    _sweep_stale_locks(layout)
    return out


def _read_note(fd: int) -> dict[str, str]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 65536) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _decode(name: str) -> str:
    """The original relative path from a work name, when the lock note is lost."""
    head, sep, tail = name.rpartition("~")
    if sep and tail.isdigit():
        name = head
    return "/".join(name.split("__"))


def _sweep_stale_locks(layout: Layout) -> None:
    """Unlink lock files whose data file has gone and whose holder is gone too."""
    for lock in layout.work.glob(".*.lock"):
        if lock == layout.store_lock:
            continue
        data = lock.with_name(lock.name[1 : -len(".lock")])
        if data.exists():
            continue
        fd = _lock(lock, exclusive_create=False)
        if fd is None:
            continue
        if not data.exists():
            lock.unlink(missing_ok=True)
        os.close(fd)


class StoreLock:
    """An flock on ``work/.store.lock``: the store and outbound/ have one writer per ROOT at a time.

    Reentrant within one watcher (nested ``with`` blocks keep the lock)."""

    def __init__(self, path: Path):
        self.path = path
        self.depth = 0
        self.fd = -1

    def __enter__(self) -> StoreLock:
        if self.depth == 0:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.depth += 1
        return self

    def __exit__(self, *_: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            os.close(self.fd)
            self.fd = -1


def free_name(folder: Path, name: str, *extra_suffixes: str) -> str:
    """``name``, or ``name~2``, ``name~3`` …: the first for which neither ``folder/name`` nor any
    ``folder/name<suffix>`` exists."""
    for n in range(1, 100000):
        candidate = name if n == 1 else f"{name}~{n}"
        if not (folder / candidate).exists() and not any((folder / f"{candidate}{s}").exists() for s in extra_suffixes):
            return candidate
    raise RuntimeError(f"no free name for {name} in {folder}")
