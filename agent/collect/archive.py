"""The archive being written: a hidden temporary file (or folder, -l) in
`hpvmcollect_archive/`, renamed to its final name only when complete, so a failure leaves
nothing behind."""
from __future__ import annotations

import errno
import hashlib
import io
import os
import secrets as _secrets
import shutil
import stat
import tarfile
from pathlib import Path

from agent.collect.model import ARCHIVE_DIR, TGZ, CollectError, DiskFullError
from agent.collect.secret_rules import is_secret


def default_open_file(path: str):
    """A new private file for writing (the archive and -l files: support data is 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    return os.fdopen(fd, "wb")


class ArchiveSink:
    """Where collected members go: a tar (optionally gzip) file or a folder (-l). Member paths
    are relative to the collection's top folder. OSErrors propagate (the caller maps ENOSPC)."""

    def __init__(self, temp: str, top: str, *, kind: str, open_file, mtime: float):
        self.temp, self.top, self.kind = temp, top, kind
        self.open_file, self.mtime = open_file, mtime
        self.members: list[str] = []
        self.f = None
        self.tar = None
        if kind == "DIR":
            os.mkdir(temp, 0o700)
        else:
            self.f = open_file(temp)
            mode = "w:gz" if kind == TGZ else "w"
            kw = {"compresslevel": 6} if kind == TGZ else {}
            self.tar = tarfile.open(fileobj=self.f, mode=mode, format=tarfile.PAX_FORMAT, **kw)
            self._dir(top)

    def _info(self, name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, mode, int(self.mtime)
        info.uname = info.gname = "root"
        return info

    def _dir(self, name: str) -> None:
        info = self._info(name, 0, 0o755)
        info.type = tarfile.DIRTYPE
        self.tar.addfile(info)

    def _local(self, rel: str) -> str:
        path = os.path.join(self.temp, rel)
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        return path

    def add_bytes(self, rel: str, data: bytes) -> str:
        return self.add_stream(rel, io.BytesIO(data), len(data))

    def add_stream(self, rel: str, src, size: int) -> str:
        if self.kind == "DIR":
            with self.open_file(self._local(rel)) as out:
                remaining = size
                while remaining > 0:
                    chunk = src.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise OSError(errno.EIO, "file shrank while it was collected")
                    out.write(chunk)
                    remaining -= len(chunk)
        else:
            self.tar.addfile(self._info(f"{self.top}/{rel}", size), src)
        self.members.append(rel)
        return rel

    def add_tree(self, rel: str, src: Path) -> list[str]:
        """A real folder of the host (a crash dump, tombstones), files only, no links out."""
        added = []
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                sub = os.path.relpath(path, src)
                if is_secret(sub):
                    continue
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    with open(path, "rb") as f:
                        added.append(self.add_stream(f"{rel}/{sub}", f, st.st_size))
                except PermissionError:
                    continue
        return added

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.f.flush()
            os.fsync(self.f.fileno())
            self.f.close()
            self.tar = self.f = None

    def abort(self) -> None:
        for obj in (self.tar, self.f):
            try:
                if obj is not None:
                    obj.close()
            except Exception:       # the archive is being discarded; nothing to keep
                pass
        self.tar = self.f = None
        if self.kind == "DIR":
            shutil.rmtree(self.temp, ignore_errors=True)
        else:
            try:
                os.unlink(self.temp)
            except FileNotFoundError:
                pass


def archive_dir(directory, cwd) -> tuple[Path, str, bool]:
    """(hpvmcollect_archive folder, the text shown for it, whether we must create it)."""
    parent = os.path.abspath(os.fspath(directory)) if directory is not None else \
        os.path.abspath(cwd if cwd is not None else os.getcwd())
    if not os.path.isdir(parent):
        raise CollectError(f"The directory '{directory if directory is not None else parent}' "
                           "does not exist or is not a directory.", "invalid")
    shown = f"{parent}/{ARCHIVE_DIR}"     # "//hpvmcollect_archive" from /, as the guide shows
    path = Path(parent) / ARCHIVE_DIR
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise CollectError(f"Cannot use '{shown}': it is not a directory.", "failed")
    return path, shown, not path.exists()


def final_name(folder: Path, base: str, ext: str, stamp: str, force: bool) -> str:
    """An existing archive of the same name is kept: the new one gets the timestamp (then a
    counter) appended, unless -f replaces it (DECISIONS §1.12)."""
    name = base + ext
    if force or not os.path.lexists(folder / name):
        return name
    name = f"{base}_{stamp}{ext}"
    n = 1
    while os.path.lexists(folder / name):
        name = f"{base}_{stamp}.{n}{ext}"
        n += 1
    return name


def commit(sink: ArchiveSink, folder: Path, base: str, ext: str, stamp: str, force: bool) -> Path:
    """Move the finished temporary archive (or folder) to its name, never over another run's
    archive unless -f."""
    for _ in range(100):
        name = final_name(folder, base, ext, stamp, force)
        final = folder / name
        if sink.kind == "DIR":
            if force and os.path.lexists(final):
                old = folder / f".{name}.old-{_secrets.token_hex(4)}"
                os.rename(final, old)
                os.rename(sink.temp, final)
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else os.unlink(old)
                return final
            try:
                os.mkdir(final, 0o700)       # claims the name; fails if someone has it
            except FileExistsError:
                continue
            os.rename(sink.temp, final)       # onto the empty folder we just made
            return final
        if force:
            os.replace(sink.temp, final)
            return final
        try:
            os.link(sink.temp, final)        # fails rather than replace a concurrent archive
        except FileExistsError:
            continue
        os.unlink(sink.temp)
        return final
    raise CollectError(f"Cannot find a free archive name in {folder}.", "failed")


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_folder(folder: Path, created: bool) -> None:
    """Remove hpvmcollect_archive/ again if this run made it and left it empty."""
    if created:
        try:
            os.rmdir(folder)
        except OSError:
            pass


def sha256_of(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def write_error(exc: OSError, shown: str) -> CollectError:
    """What a failed write of the archive tells the user: the guide's disk-full text for a full
    destination, else the reason and the file."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(shown)
    where = exc.filename or shown
    return CollectError(f"Cannot write the collection in '{shown}': "
                        f"{exc.strerror or exc}" + (f" ({where})" if where != shown else "")
                        + ".", "failed")
