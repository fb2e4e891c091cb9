"""The durable store: plain files under one state root, changed only in atomic transactions.

A transaction stages every change in memory (reads inside it see the staged state), then on
commit:

1. writes a journal of all its operations (temp file, fsync, rename to `.store/journal`);
2. applies them in order: each file is written to a temp file, fsynced and renamed over its
   target; appends (logs, the event log) are written at a recorded offset; the directories
   touched are fsynced;
3. records the new generation (`.store/generation`), then drops the journal.

Whoever next takes the lock finds a leftover journal and replays it (every operation is
idempotent: whole-file writes, appends at a recorded offset, deletes), unless the generation
shows it was already applied; an unfinished `journal.tmp` is discarded. So a kill -9 at any
instant leaves the old state or the new one, never a torn one.

Processes share a store through `fcntl.flock` on `.store/lock`: exclusive for transactions,
shared for snapshots. Each acquisition opens its own descriptor, and flock treats separate
descriptors independently, so threads of one process exclude each other the same way.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import posixpath
import pwd
import shutil
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from agent import events as _events
from agent.clock import Clock, SystemClock
from agent.errors import AgentError
from agent.events import Event

META_DIR = ".store"
TMP_PREFIX = ".vmpstore-"
EVENT_LOG = "common/events.log"
COMMAND_LOG = "common/command.log"

_JOURNAL_MAGIC = b"VMPSTORE-JOURNAL-1"
_MAX_LINK_HOPS = 16
_DIR_MODE = 0o755          # inside a 0700 root; see docs/store.md for why
_ROOT_MODE = 0o700

# What each thread holds, per state root (not per Store object: two Store objects on one root
# in one thread would otherwise deadlock on their own flocks).
_HELD = threading.local()


def _held() -> dict[str, int]:
    held = getattr(_HELD, "roots", None)
    if held is None:
        held = _HELD.roots = {}
    return held


class StoreError(AgentError):
    """The store refused or failed an operation; one line saying which file and why."""

    def __init__(self, message: str, kind: str = "failed"):
        super().__init__(message, kind)


def default_actor() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid{os.geteuid()}"


def _clean(rel: str | os.PathLike, *, allow_root: bool = False) -> str:
    """A relative store path in canonical text form ('' is the root), or a StoreError."""
    text = os.fspath(rel) if isinstance(rel, os.PathLike) else rel
    if not isinstance(text, str) or "\0" in text:
        raise StoreError(f"invalid store path {rel!r}", "invalid")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError(f"store path is not valid UTF-8: {rel!r}", "invalid") from None
    if text.startswith("/"):
        raise StoreError(f"store path must be relative: {text}", "invalid")
    parts = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise StoreError(f"store path must not contain '..': {text}", "invalid")
        if part.startswith(TMP_PREFIX):
            raise StoreError(f"store path uses a reserved name: {text}", "invalid")
        parts.append(part)
    if parts and parts[0] == META_DIR:
        raise StoreError(f"store path uses a reserved name: {text}", "invalid")
    if not parts and not allow_root:
        raise StoreError("store path is empty", "invalid")
    return "/".join(parts)


def _parent(canon: str) -> str:
    return canon.rpartition("/")[0]


def _ancestors(canon: str) -> Iterator[str]:
    """Proper ancestors of a path, nearest first, excluding the root."""
    p = _parent(canon)
    while p:
        yield p
        p = _parent(p)


def _tmp_name(path: str) -> str:
    # Deterministic, so a replayed journal reuses (and replaces) a temp a crash left behind.
    head, _, tail = path.rpartition("/")
    tag = hashlib.sha1(tail.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{head}/{TMP_PREFIX}{tag}.tmp" if head else f"{TMP_PREFIX}{tag}.tmp"


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        if offset is None:
            n = os.write(fd, view[pos:])
        else:
            n = os.pwrite(fd, view[pos:], offset + pos)
        pos += n


def _atomic_write(path: str, data: bytes, mode: int, dirty: set[str]) -> None:
    tmp = _tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, mode)     # exact mode whatever the umask; a secret is never wider
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dirty.add(os.path.dirname(path))


def atomic_write_file(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Replace one file outside any store (temp, fsync, rename, fsync the folder)."""
    path = os.fspath(path)
    dirty: set[str] = set()
    _atomic_write(path, data, mode, dirty)
    for d in dirty:
        _fsync_dir(d)


# ----------------------------------------------------------------------------- applying


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _clear(path: str) -> None:
    """Remove whatever is at `path` (file, link or folder); nothing if absent."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


# Staging checked every operation against the state it would meet, so when applying finds
# something else in the way (a link where a folder was, a folder where a file goes), a later
# operation of the same journal put it there before a crash; the replay clears it, and that
# later operation recreates it. Paths never pass through links: they were resolved at staging.


def _ensure_dirs(root: str, canon_parent: str, dirty: set[str]) -> None:
    if not canon_parent:
        return
    missing = []
    p = canon_parent
    while p and not _is_real_dir(os.path.join(root, p)):
        missing.append(p)
        p = _parent(p)
    for p in reversed(missing):
        full = os.path.join(root, p)
        _clear(full)
        os.mkdir(full, _DIR_MODE)
        dirty.add(os.path.dirname(full))
        dirty.add(full)


def _parents_real(root: str, canon: str) -> bool:
    return all(_is_real_dir(os.path.join(root, a)) for a in _ancestors(canon))


def _apply(root: str, ops: list[dict[str, Any]], payloads: list[bytes]) -> None:
    """Apply journal operations in order; safe to run again on a partly applied journal."""
    dirty: set[str] = set()
    for op, data in zip(ops, payloads):
        canon = op["path"]
        path = os.path.join(root, canon)
        kind = op["op"]
        if kind == "write":
            _ensure_dirs(root, _parent(canon), dirty)
            if _is_real_dir(path):
                _clear(path)
            _atomic_write(path, data, op["mode"], dirty)
        elif kind == "append":
            _ensure_dirs(root, _parent(canon), dirty)
            if os.path.lexists(path) and not os.path.isfile(path) or os.path.islink(path):
                _clear(path)
            created = not os.path.lexists(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                if created:
                    os.fchmod(fd, op["mode"])
                os.ftruncate(fd, op["offset"])     # undo a torn earlier attempt
                _write_all(fd, data, op["offset"])
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                dirty.add(os.path.dirname(path))
        elif kind == "delete":
            if _parents_real(root, canon) and os.path.lexists(path) and not _is_real_dir(path):
                os.unlink(path)
                dirty.add(os.path.dirname(path))
        elif kind == "symlink":
            _ensure_dirs(root, _parent(canon), dirty)
            if _is_real_dir(path):
                _clear(path)
            tmp = _tmp_name(path)
            _clear(tmp)
            os.symlink(op["target"], tmp)
            os.replace(tmp, path)
            dirty.add(os.path.dirname(path))
        elif kind == "rmtree":
            if _parents_real(root, canon) and os.path.lexists(path):
                _clear(path)
                dirty.add(os.path.dirname(path))
        else:
            raise StoreError(f"journal holds an unknown operation {kind!r}")
    for d in sorted(dirty, key=len, reverse=True):
        _fsync_dir(d)


def _encode_journal(generation: int, ops: list[dict[str, Any]], payloads: list[bytes]) -> bytes:
    header = json.dumps({"generation": generation, "ops": ops}).encode("utf-8")
    body = header + b"\n" + b"".join(payloads)
    digest = hashlib.sha256(body).hexdigest().encode()
    return _JOURNAL_MAGIC + b" " + digest + b" " + str(len(body)).encode() + b"\n" + body


def _decode_journal(raw: bytes, where: str) -> tuple[int, list[dict[str, Any]], list[bytes]]:
    first, sep, body = raw.partition(b"\n")
    fields = first.split(b" ")
    if not sep or len(fields) != 3 or fields[0] != _JOURNAL_MAGIC:
        raise StoreError(f"{where}: not a store journal; move it away after checking the state")
    if not fields[2].isdigit() or int(fields[2]) != len(body) \
            or hashlib.sha256(body).hexdigest().encode() != fields[1]:
        raise StoreError(f"{where}: journal is damaged (checksum mismatch); "
                         "move it away after checking the state")
    header, _, rest = body.partition(b"\n")
    meta = json.loads(header)
    payloads = []
    pos = 0
    for op in meta["ops"]:
        n = op.get("len", 0)
        payloads.append(rest[pos:pos + n])
        pos += n
    return int(meta["generation"]), meta["ops"], payloads


# ----------------------------------------------------------------------------- views


class _View:
    """Read access to the store's files, resolving symlinks inside the root."""

    def __init__(self, store: "Store"):
        self._store = store
        self._root = store._root_str

    # -- what a path is; overridden by the transaction's overlay
    def _kind(self, canon: str) -> str | None:
        try:
            st = os.lstat(os.path.join(self._root, canon))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return "link"
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if stat.S_ISREG(st.st_mode):
            return "file"
        return "other"          # a device, fifo or socket someone put here: never opened

    def _readlink(self, canon: str) -> str:
        return os.readlink(os.path.join(self._root, canon))

    def _read_canon(self, canon: str) -> bytes | None:
        try:
            with open(os.path.join(self._root, canon), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError:
            raise StoreError(f"{canon}: is a directory", "invalid") from None

    def _disk_names(self, canon: str) -> list[str]:
        try:
            return os.listdir(os.path.join(self._root, canon) if canon else self._root)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _names(self, canon: str) -> set[str]:
        return set(self._disk_names(canon))

    # -- resolution
    def _resolve(self, rel: str, *, follow_last: bool = True) -> str:
        parts = rel.split("/") if rel else []
        done: list[str] = []
        hops = 0
        i = 0
        while i < len(parts):
            name = parts[i]
            last = i == len(parts) - 1
            cand = "/".join(done + [name])
            if last and not follow_last:
                done.append(name)
                break
            if self._kind(cand) == "link":
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise StoreError(f"{rel}: too many levels of symbolic links", "invalid")
                target = self._readlink(cand)
                if target.startswith("/"):
                    raise StoreError(f"{cand}: symbolic link leaves the store ({target})", "invalid")
                joined = posixpath.normpath(posixpath.join("/".join(done), target))
                if joined == ".." or joined.startswith("../"):
                    raise StoreError(f"{cand}: symbolic link leaves the store ({target})", "invalid")
                new = [] if joined == "." else joined.split("/")
                if new and new[0] == META_DIR:
                    raise StoreError(f"{cand}: symbolic link points into the store's metadata",
                                     "invalid")
                parts = new + parts[i + 1:]
                done = []
                i = 0
                continue
            done.append(name)
            i += 1
        return "/".join(done)

    # -- public reads
    def read(self, rel: str | os.PathLike) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        canon = self._resolve(_clean(rel))
        if not canon:
            raise StoreError(f"{rel}: is a directory", "invalid")
        kind = self._kind(canon)
        if kind is None:
            return None
        if kind == "dir":
            raise StoreError(f"{rel}: is a directory", "invalid")
        if kind != "file":
            raise StoreError(f"{rel}: is not a regular file", "invalid")
        return self._read_canon(canon)

    def read_text(self, rel: str | os.PathLike) -> str | None:
        data = self.read(rel)
        return None if data is None else data.decode("utf-8")

    def exists(self, rel: str | os.PathLike) -> bool:
        canon = self._resolve(_clean(rel, allow_root=True))
        return canon == "" or self._kind(canon) is not None

    def is_dir(self, rel: str | os.PathLike) -> bool:
        canon = self._resolve(_clean(rel, allow_root=True))
        return canon == "" or self._kind(canon) == "dir"

    def is_link(self, rel: str | os.PathLike) -> bool:
        canon = self._resolve(_clean(rel), follow_last=False)
        return self._kind(canon) == "link"

    def readlink(self, rel: str | os.PathLike) -> str | None:
        """The target text of a symbolic link, or None when `rel` is not one."""
        canon = self._resolve(_clean(rel), follow_last=False)
        return self._readlink(canon) if self._kind(canon) == "link" else None

    def resolve(self, rel: str | os.PathLike) -> str:
        """The canonical store path `rel` refers to once symbolic links are followed."""
        return self._resolve(_clean(rel, allow_root=True))

    def listdir(self, rel: str | os.PathLike = "") -> list[str]:
        """Sorted entry names of a folder ([] when it does not exist)."""
        canon = self._resolve(_clean(rel, allow_root=True))
        if canon:
            kind = self._kind(canon)
            if kind is None:
                return []
            if kind != "dir":
                raise StoreError(f"{rel}: is not a directory", "invalid")
        names = []
        for name in self._names(canon):
            if name.startswith(TMP_PREFIX) or (not canon and name == META_DIR):
                continue
            if self._kind(f"{canon}/{name}" if canon else name) is not None:
                names.append(name)
        return sorted(names)


class Snapshot(_View):
    """A consistent read-only view: no transaction can commit while it is open."""

    def __init__(self, store: "Store"):
        super().__init__(store)
        self.generation = store._read_generation()

    def events(self, since_seq: int = 0, subject: str | Iterable[str] | None = None,
               kind: str | Iterable[str] | None = None, limit: int | None = None) -> list[Event]:
        return _events.read_events(os.path.join(self._root, EVENT_LOG), since_seq, subject,
                                   kind, limit)

    def last_seq(self) -> int:
        return _events.last_seq(os.path.join(self._root, EVENT_LOG))


class _Staged:
    """A file, symlink or deletion the transaction has staged at one canonical path."""

    __slots__ = ("kind", "base", "appended", "target")

    def __init__(self, kind: str | None, base: bytes | None = None, target: str | None = None):
        self.kind = kind            # "file", "link", or None (deleted)
        self.base = base            # whole content for a written file; None: on-disk content
        self.appended: list[bytes] = []
        self.target = target


class Transaction(_View):
    """Staged changes under the exclusive lock; committed atomically when the block ends."""

    def __init__(self, store: "Store", actor: str):
        super().__init__(store)
        self.actor = actor
        self._ops: list[dict[str, Any]] = []
        self._payloads: list[bytes] = []
        self._staged: dict[str, _Staged] = {}
        self._dirs: set[str] = set()          # folders that staged entries live in
        self._removed: set[str] = set()       # deleted paths: nothing on disk below them shows
        self._pending_events: list[tuple[float, str, str, dict[str, Any]]] = []
        self._open = True
        self.events: list[Event] = []         # filled with sequence numbers at commit
        self.generation: int | None = None    # the new generation, after commit

    # -- overlay view
    def _under_removed(self, canon: str) -> bool:
        if not self._removed:
            return False
        if canon in self._removed:
            return True
        return any(a in self._removed for a in _ancestors(canon))

    def _kind(self, canon: str) -> str | None:
        if canon in self._dirs:
            return "dir"
        staged = self._staged.get(canon)
        if staged is not None:
            return staged.kind
        if self._under_removed(canon):
            return None
        return super()._kind(canon)

    def _readlink(self, canon: str) -> str:
        staged = self._staged.get(canon)
        if staged is not None and staged.kind == "link":
            return staged.target
        return super()._readlink(canon)

    def _read_canon(self, canon: str) -> bytes | None:
        staged = self._staged.get(canon)
        if staged is None:
            return super()._read_canon(canon)
        if staged.kind is None:
            return None
        base = staged.base if staged.base is not None else (super()._read_canon(canon) or b"")
        return base + b"".join(staged.appended)

    def _names(self, canon: str) -> set[str]:
        names = set() if self._under_removed(canon) else super()._names(canon)
        prefix = canon + "/" if canon else ""
        for path in list(self._staged) + list(self._dirs):
            if path.startswith(prefix):
                rest = path[len(prefix):]
                if rest:
                    names.add(rest.split("/", 1)[0])
        return names

    def _size(self, canon: str) -> int:
        staged = self._staged.get(canon)
        if staged is not None and staged.kind == "file" and staged.base is not None:
            return len(staged.base) + sum(map(len, staged.appended))
        extra = sum(map(len, staged.appended)) if staged is not None else 0
        if self._under_removed(canon) and staged is None:
            return 0
        try:
            return os.lstat(os.path.join(self._root, canon)).st_size + extra
        except (FileNotFoundError, NotADirectoryError):
            return extra

    # -- staging helpers
    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("transaction is already finished")

    def _target(self, rel: str | os.PathLike, *, follow_last: bool) -> str:
        self._check_open()
        canon = self._resolve(_clean(rel), follow_last=follow_last)
        if not canon:
            raise StoreError(f"{rel}: is the store root", "invalid")
        if canon.split("/", 1)[0] == META_DIR:
            raise StoreError(f"{rel}: uses a reserved name", "invalid")
        for anc in _ancestors(canon):
            kind = self._kind(anc)
            if kind not in (None, "dir"):
                raise StoreError(f"{rel}: {anc} is not a directory", "invalid")
        return canon

    def _add_dirs(self, canon: str) -> None:
        for anc in _ancestors(canon):
            self._dirs.add(anc)

    def _record(self, op: dict[str, Any], payload: bytes = b"") -> None:
        op["len"] = len(payload)
        self._ops.append(op)
        self._payloads.append(payload)

    # -- changes
    def _file_change(self, rel: str | os.PathLike, data: bytes | str) -> tuple[str, bytes]:
        """Where a write or an append goes, and its bytes (never the event log)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        canon = self._target(rel, follow_last=True)
        if canon == EVENT_LOG:
            raise StoreError(f"{rel}: the event log is written only through events", "invalid")
        return canon, bytes(data)

    def write(self, rel: str | os.PathLike, data: bytes | str, mode: int = 0o644) -> None:
        """Replace (or create) a whole file."""
        canon, data = self._file_change(rel, data)
        if self._kind(canon) == "dir":
            raise StoreError(f"{rel}: is a directory", "invalid")
        self._add_dirs(canon)
        self._staged[canon] = _Staged("file", base=data)
        self._record({"op": "write", "path": canon, "mode": mode & 0o7777}, data)

    def append(self, rel: str | os.PathLike, data: bytes | str, mode: int = 0o644) -> None:
        """Add bytes at the end of a file (created when missing), for logs."""
        canon, data = self._file_change(rel, data)
        self._append(canon, data, mode)

    def _append(self, canon: str, data: bytes, mode: int) -> None:
        kind = self._kind(canon)
        if kind == "dir":
            raise StoreError(f"{canon}: is a directory", "invalid")
        offset = self._size(canon) if kind == "file" else 0
        staged = self._staged.get(canon)
        if staged is None or staged.kind != "file":
            staged = _Staged("file", base=None if kind == "file" else b"")
            self._staged[canon] = staged
        staged.appended.append(data)
        self._add_dirs(canon)
        self._record({"op": "append", "path": canon, "offset": offset, "mode": mode & 0o7777},
                     data)

    def delete(self, rel: str | os.PathLike) -> bool:
        """Remove a file or symbolic link (not what it points to); False if it was absent."""
        canon = self._target(rel, follow_last=False)
        kind = self._kind(canon)
        if kind is None:
            return False
        if kind == "dir":
            raise StoreError(f"{rel}: is a directory (use remove_tree)", "invalid")
        if canon == EVENT_LOG:
            raise StoreError(f"{rel}: the event log cannot be deleted", "invalid")
        self._staged[canon] = _Staged(None)
        self._removed.add(canon)        # hides what a deleted link pointed to
        self._record({"op": "delete", "path": canon})
        return True

    def symlink(self, rel: str | os.PathLike, target: str) -> None:
        """Create or replace a symbolic link; `target` is relative and stays in the store."""
        canon = self._target(rel, follow_last=False)
        if not isinstance(target, str) or not target or target.startswith("/") or "\0" in target:
            raise StoreError(f"{rel}: link target must be a relative path", "invalid")
        joined = posixpath.normpath(posixpath.join(_parent(canon), target))
        if joined == ".." or joined.startswith("../") or joined.split("/", 1)[0] == META_DIR:
            raise StoreError(f"{rel}: link target leaves the store ({target})", "invalid")
        if self._kind(canon) == "dir":
            raise StoreError(f"{rel}: is a directory", "invalid")
        self._add_dirs(canon)
        self._staged[canon] = _Staged("link", target=target)
        self._record({"op": "symlink", "path": canon, "target": target})

    def remove_tree(self, rel: str | os.PathLike) -> bool:
        """Remove a folder and everything in it (a symbolic link: the link only)."""
        canon = self._target(rel, follow_last=False)
        if canon == "common" or EVENT_LOG.startswith(canon + "/"):
            raise StoreError(f"{rel}: holds the event log and cannot be removed", "invalid")
        kind = self._kind(canon)
        if kind is None:
            return False
        prefix = canon + "/"
        for path in [p for p in self._staged if p.startswith(prefix)]:
            del self._staged[path]
        self._dirs = {d for d in self._dirs if d != canon and not d.startswith(prefix)}
        if kind == "dir":
            self._staged.pop(canon, None)
        else:
            self._staged[canon] = _Staged(None)
        self._removed.add(canon)
        self._record({"op": "rmtree", "path": canon})
        return True

    def event(self, kind: str, subject: str, **detail: Any) -> None:
        """Record that something happened; it commits (with its sequence number) with the rest."""
        self._check_open()
        if not isinstance(kind, str) or not kind or "\n" in kind:
            raise ValueError("event kind must be a non-empty single-line string")
        if not isinstance(subject, str):
            raise ValueError("event subject must be a string")
        _events.check_detail(detail)
        self._pending_events.append((self._store.clock.now(), kind, subject, detail))

    @property
    def changed(self) -> bool:
        return bool(self._ops or self._pending_events)

    # -- commit
    def _commit(self) -> None:
        self._check_open()
        self._open = False
        if not self._ops and not self._pending_events:
            return
        store = self._store
        if self._pending_events:
            log = os.path.join(self._root, EVENT_LOG)
            seq = _events.last_seq(log)
            for when, kind, subject, detail in self._pending_events:
                seq += 1
                self.events.append(Event(seq, when, self.actor, kind, subject, detail))
            self._append(EVENT_LOG, b"".join(e.to_line() for e in self.events), 0o644)
        generation = store._read_generation() + 1
        store._commit(generation, self._ops, self._payloads)
        self.generation = generation


# ----------------------------------------------------------------------------- the store


class Store:
    """A state folder shared safely by threads and processes (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, *, clock: Clock | None = None,
                 actor: str | None = None):
        self.root = Path(root).absolute()
        self._root_str = str(self.root)
        self.clock: Clock = clock or SystemClock()
        self.actor = actor or default_actor()
        self._meta = os.path.join(self._root_str, META_DIR)
        self._lock_path = os.path.join(self._meta, "lock")
        self._journal = os.path.join(self._meta, "journal")
        self._journal_tmp = os.path.join(self._meta, "journal.tmp")
        self._gen_path = os.path.join(self._meta, "generation")
        self._prepare()
        self._key = os.path.realpath(self._root_str)
        if not _held().get(self._key):
            with self._lock(exclusive=False):
                pass        # replays a journal a crash left behind

    def __repr__(self) -> str:
        return f"Store({self._root_str!r})"

    def _prepare(self) -> None:
        try:
            if not os.path.isdir(self._root_str):
                os.makedirs(self._root_str, _ROOT_MODE, exist_ok=True)
                os.chmod(self._root_str, _ROOT_MODE)
            if not os.path.isdir(self._meta):
                try:
                    # Readable like the rest (the root's own mode decides who gets in), so
                    # readers an administrator lets in can take shared locks; the journal,
                    # which may hold secrets, is 0600.
                    os.mkdir(self._meta, 0o755)
                except FileExistsError:     # another process or thread was first
                    pass
                _fsync_dir(self._root_str)
        except OSError as exc:
            raise StoreError(f"{self._root_str}: cannot create state folder: "
                             f"{exc.strerror}") from None

    # -- locking
    def _open_lock(self) -> int:
        try:
            return os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            try:    # a reader without write access may still take a shared lock
                return os.open(self._lock_path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise StoreError(f"{self._lock_path}: cannot open lock: {exc.strerror}") from None
        except OSError as exc:
            raise StoreError(f"{self._lock_path}: cannot open lock: {exc.strerror}") from None

    def _flock(self, fd: int, op: int, deadline: float | None) -> None:
        if deadline is None:
            fcntl.flock(fd, op)
            return
        # Waiting for another process is real time, not model time: poll until the deadline.
        while True:
            try:
                fcntl.flock(fd, op | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(f"{self._root_str}: the store is busy (another command "
                                     "holds its lock); try again") from None
                time.sleep(0.005)

    @contextmanager
    def _lock(self, *, exclusive: bool, timeout: float | None = None) -> Iterator[None]:
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self._open_lock()
        try:
            if exclusive:
                self._flock(fd, fcntl.LOCK_EX, deadline)
                if os.path.lexists(self._journal) or os.path.lexists(self._journal_tmp):
                    self._recover()
            else:
                while True:
                    self._flock(fd, fcntl.LOCK_SH, deadline)
                    if not (os.path.lexists(self._journal) or os.path.lexists(self._journal_tmp)):
                        break
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    self._flock(fd, fcntl.LOCK_EX, deadline)
                    self._recover()
                    fcntl.flock(fd, fcntl.LOCK_UN)
            yield
        finally:
            os.close(fd)        # releases the flock

    # -- generation
    def _read_generation(self) -> int:
        try:
            with open(self._gen_path, "rb") as f:
                return int(f.read().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            raise StoreError(f"{self._gen_path}: damaged generation counter") from None

    def generation(self) -> int:
        """A number that grows with every commit; compare it to know if a cache is stale."""
        return self._read_generation()

    # -- commit and recovery (called with the exclusive lock held)
    def _commit(self, generation: int, ops: list[dict[str, Any]], payloads: list[bytes]) -> None:
        journal = _encode_journal(generation, ops, payloads)
        try:
            fd = os.open(self._journal_tmp,
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                _write_all(fd, journal)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._journal_tmp, self._journal)
            _fsync_dir(self._meta)
        except OSError as exc:
            self._discard(self._journal_tmp)
            raise StoreError(f"cannot write the store journal: {exc.strerror}") from None
        # From here the change is durable: if applying fails, the next lock holder finishes it.
        try:
            self._finish(generation, ops, payloads)
        except OSError as exc:
            raise StoreError(f"{exc.filename or self._root_str}: cannot apply change "
                             f"({exc.strerror}); it will be completed when the store is next "
                             "opened") from None

    def _finish(self, generation: int, ops: list[dict[str, Any]], payloads: list[bytes]) -> None:
        _apply(self._root_str, ops, payloads)
        dirty: set[str] = set()
        _atomic_write(self._gen_path, f"{generation}\n".encode(), 0o644, dirty)
        _fsync_dir(self._meta)
        os.unlink(self._journal)
        _fsync_dir(self._meta)

    @staticmethod
    def _discard(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _recover(self) -> None:
        try:
            self._recover_journal()
        except OSError as exc:
            raise StoreError(f"{exc.filename or self._journal}: cannot complete an interrupted "
                             f"change ({exc.strerror})") from None

    def _recover_journal(self) -> None:
        if os.path.lexists(self._journal_tmp):
            self._discard(self._journal_tmp)       # never completed: the change never happened
            _fsync_dir(self._meta)
        try:
            with open(self._journal, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return
        generation, ops, payloads = _decode_journal(raw, self._journal)
        current = self._read_generation()
        if current >= generation:
            self._discard(self._journal)           # fully applied before the crash
            _fsync_dir(self._meta)
            return
        if generation != current + 1:
            raise StoreError(f"{self._journal}: journal generation {generation} does not follow "
                             f"the store's generation {current}")
        self._finish(generation, ops, payloads)

    # -- public API
    @contextmanager
    def transaction(self, actor: str | None = None, *,
                    timeout: float | None = None) -> Iterator[Transaction]:
        """Exclusive access; everything staged commits atomically when the block ends without
        an exception, and nothing does otherwise. `timeout` (seconds) bounds the wait for the
        lock (StoreError when it runs out); None waits as long as it takes."""
        held = _held()
        if held.get(self._key):
            raise StoreError("a transaction cannot start while this thread holds the store "
                             "(nested transaction or transaction inside a snapshot)")
        with self._lock(exclusive=True, timeout=timeout):
            txn = Transaction(self, actor or self.actor)
            held[self._key] = 1
            try:
                yield txn
                txn._commit()
            finally:
                txn._open = False
                held.pop(self._key, None)

    @contextmanager
    def snapshot(self, *, timeout: float | None = None) -> Iterator[Snapshot]:
        """A consistent view of the committed state (shared lock; `timeout` as above)."""
        held = _held()
        depth = held.get(self._key, 0)
        if depth:
            # Already holding the store in this thread (a snapshot, or a transaction whose
            # staged changes are not visible here): the committed state cannot move.
            held[self._key] = depth + 1
            try:
                yield Snapshot(self)
            finally:
                held[self._key] = depth
            return
        with self._lock(exclusive=False, timeout=timeout):
            held[self._key] = 1
            try:
                yield Snapshot(self)
            finally:
                held.pop(self._key, None)

    def read(self, rel: str | os.PathLike) -> bytes | None:
        """One file, consistently (None when absent)."""
        with self.snapshot() as snap:
            return snap.read(rel)

    def events(self, since_seq: int = 0, subject: str | Iterable[str] | None = None,
               kind: str | Iterable[str] | None = None, limit: int | None = None) -> list[Event]:
        """Committed events with seq > since_seq, oldest first."""
        with self.snapshot() as snap:
            return snap.events(since_seq, subject, kind, limit)

    def last_seq(self) -> int:
        with self.snapshot() as snap:
            return snap.last_seq()
