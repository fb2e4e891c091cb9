"""Finished collections (CollectSystemData) kept for download, and their pruning.

Layout under the server's state folder (every folder 0700, every file 0600):

    collections/hpvmcollect_archive/<name>.tar.gz   the archives, named as hpvmcollect names them
    collections/index/<id>.json                      one record per finished collection

`<id>` is an opaque random token (`secrets.token_urlsafe`, 32 characters). A download finds
its record by that token in the in-memory index, and the file it opens is the name the
record holds, inside the archive folder: nothing a request says is ever used as a path.

Pruning (`RetentionPolicy`): records older than `max_age_days` go, then the oldest until
at most `keep` remain; archives no record names (a run interrupted between the archive and
its record, temporary files of a run that died with the server) and records whose archive
is gone are removed too. It runs in the collection worker, which also runs the collections
one at a time, so it never races a collection in progress.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.collect import ARCHIVE_DIR

log = logging.getLogger("vmprovider.collections")

COLLECTIONS_DIR = "collections"
INDEX_DIR = "index"
ID_RE = re.compile(r"^[A-Za-z0-9_-]{32}\Z")
_NAME_RE = re.compile(r"^[^/\0.][^/\0]{0,254}\Z")
DAY = 86400.0
CONTENT_TYPES = {"TGZ": "application/gzip", "TAR": "application/x-tar"}


@dataclass(frozen=True)
class RetentionPolicy:
    keep: int = 10                  # at most this many finished collections
    max_age_days: float = 30.0      # and none older than this


@dataclass(frozen=True)
class Collection:
    """One finished collection: its archive file (a name in the archive folder) and facts."""

    id: str
    name: str            # file name in collections/hpvmcollect_archive/
    kind: str            # TGZ | TAR
    size: int
    sha256: str
    created: float       # the injected clock's wall time when it finished
    owner: str           # the CIM user who asked for it
    guest: str
    job: str             # the HPVM_ConcreteJob InstanceID

    @property
    def url(self) -> str:
        return f"/collections/{self.id}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]

    @classmethod
    def from_json(cls, data: dict) -> "Collection":
        item = cls(id=str(data["id"]), name=str(data["name"]), kind=str(data["kind"]),
                   size=int(data["size"]), sha256=str(data["sha256"]),
                   created=float(data["created"]), owner=str(data["owner"]),
                   guest=str(data["guest"]), job=str(data["job"]))
        if not ID_RE.match(item.id) or not _NAME_RE.match(item.name) or \
                item.kind not in CONTENT_TYPES or not re.fullmatch(r"[0-9a-f]{64}", item.sha256):
            raise ValueError("malformed collection record")
        return item


class ArchiveStore:
    """The archive folder and the index of finished collections. Thread-safe; every method
    does file I/O, so call them off the reactor."""

    def __init__(self, state_dir, clock, policy: RetentionPolicy | None = None):
        self.root = Path(state_dir) / COLLECTIONS_DIR
        self.archive_dir = self.root / ARCHIVE_DIR
        self.index_dir = self.root / INDEX_DIR
        self.clock = clock
        self.policy = policy or RetentionPolicy()
        self._lock = threading.Lock()
        self._entries: dict[str, Collection] | None = None

    # -- folders and the index --------------------------------------------------------------

    def ensure(self) -> None:
        """Create the folders (0700; an existing one is tightened to 0700)."""
        for path in (self.root, self.archive_dir, self.index_dir):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                if path.is_symlink() or not path.is_dir():
                    raise OSError(f"{path} is not a folder") from None
            os.chmod(path, 0o700)

    def _load(self) -> dict[str, Collection]:
        """The index, read from disk on first use (the caller holds the lock)."""
        if self._entries is None:
            entries = {}
            for rec in sorted(self.index_dir.glob("*.json")) if self.index_dir.is_dir() else ():
                try:
                    item = Collection.from_json(json.loads(rec.read_text(encoding="utf-8")))
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    log.warning("ignoring unreadable collection record %s: %s", rec.name, exc)
                    continue
                if rec.name == f"{item.id}.json":
                    entries[item.id] = item
            self._entries = entries
        return self._entries

    def get(self, cid: str) -> Collection | None:
        """The finished collection with id `cid`, or None (also for anything not an id)."""
        if not isinstance(cid, str) or not ID_RE.match(cid):
            return None
        with self._lock:
            return self._load().get(cid)

    def all(self) -> list[Collection]:
        """Finished collections, oldest first."""
        with self._lock:
            return sorted(self._load().values(), key=lambda c: (c.created, c.id))

    def open(self, item: Collection):
        """The archive of `item` opened for reading, or None when it is not there as recorded
        (a regular file of the recorded size, not a link)."""
        path = self.archive_dir / item.name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        f = os.fdopen(fd, "rb")
        st = os.fstat(f.fileno())
        if not (st.st_mode & 0o170000 == 0o100000) or st.st_size != item.size:
            f.close()
            return None
        return f

    # -- adding -----------------------------------------------------------------------------

    def add(self, path: Path, *, kind: str, size: int, sha256: str, owner: str, guest: str,
            job: str) -> Collection:
        """Record a finished archive (it must be in the archive folder). An older record of
        the same file name (Overwrite replaced its archive) is dropped."""
        path = Path(path)
        if path.parent.resolve() != self.archive_dir.resolve():
            raise ValueError(f"{path} is not in {self.archive_dir}")
        os.chmod(path, 0o600)
        with self._lock:
            entries = self._load()
            cid = secrets.token_urlsafe(24)
            while cid in entries:
                cid = secrets.token_urlsafe(24)
            item = Collection(id=cid, name=path.name, kind=kind, size=int(size),
                              sha256=sha256, created=self.clock.now(), owner=owner,
                              guest=guest, job=job)
            self._write_record(item)
            for old in [e for e in entries.values() if e.name == item.name]:
                self._drop_record(old.id)
                del entries[old.id]
            entries[cid] = item
        return item

    def _write_record(self, item: Collection) -> None:
        data = (json.dumps(asdict(item), indent=1, sort_keys=True) + "\n").encode()
        final = self.index_dir / f"{item.id}.json"
        temp = self.index_dir / f".{item.id}.json.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, final)

    def _drop_record(self, cid: str) -> None:
        try:
            os.unlink(self.index_dir / f"{cid}.json")
        except FileNotFoundError:
            pass

    # -- pruning ----------------------------------------------------------------------------

    def prune(self) -> list[Collection]:
        """Apply the retention policy (see the module docstring); returns what was removed.
        Call it only where no collection is being written (the collection worker)."""
        removed = []
        with self._lock:
            entries = self._load()
            now = self.clock.now()
            limit = now - self.policy.max_age_days * DAY
            ordered = sorted(entries.values(), key=lambda c: (c.created, c.id))
            keep = [c for c in ordered if c.created > limit]
            gone = [c for c in ordered if c.created <= limit]
            if len(keep) > self.policy.keep:
                gone += keep[:len(keep) - self.policy.keep]
                keep = keep[len(keep) - self.policy.keep:]
            kept_names = {c.name for c in keep}
            for item in gone:
                self._drop_record(item.id)
                del entries[item.id]
                if item.name not in kept_names:
                    _unlink(self.archive_dir / item.name)
                removed.append(item)
            # a record whose archive is gone is no collection any more
            for item in list(entries.values()):
                if not (self.archive_dir / item.name).is_file():
                    self._drop_record(item.id)
                    del entries[item.id]
                    removed.append(item)
            named = {c.name for c in entries.values()}
            for path in _listing(self.archive_dir):
                if path.name not in named:
                    _remove(path)
            for path in _listing(self.index_dir):
                if path.suffix != ".json" or path.stem not in entries:
                    _remove(path)
        for item in removed:
            log.info("pruned collection %s (%s, guest %s)", item.id, item.name, item.guest)
        return removed


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc.strerror)


def _remove(path: Path) -> None:
    import shutil
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink(path)
