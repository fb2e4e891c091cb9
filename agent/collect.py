"""hpvmcollect: one archive holding everything support needs about a guest and its host.

The guide's collection (spec 03 §11, hpvmcollect(1M)) adapted to what this product's host
has. A run is a list of steps, each reporting `OK` (collected), `NO` (the option that
collects it was not given: -c, -g, -s) or `N/A` (looked for, nothing to collect: the file or
command is absent on this host, or the backend has no such thing). The list, the files each
step writes and the archive rules are documented in docs/user-guide/collect.md.

Consistency: everything the collection takes from the state folder is captured under one
store snapshot (shared lock) before the steps run: the guest's files are opened, appended
logs are bounded at their size at that instant, and the hpvmstatus views are rendered. The
store replaces files by rename and only appends to logs, so an open descriptor and a length
pin one version of each file; the lock is held for milliseconds and guests keep changing
meanwhile without tearing what is collected.

Safety: the archive is written to a hidden temporary name in `hpvmcollect_archive/` and
renamed into place only when complete, so a failure (full or unwritable destination,
cancellation) leaves nothing behind. Secrets are never collected (`is_secret`).

Progress: `progress(CollectEvent)` is called before and after every step; the CLI prints the
guide's dotted lines from it, a CIM job turns `event.percent` into PercentComplete.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import platform
import re
import secrets as _secrets
import shutil
import socket
import stat
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from agent.clock import Clock, SystemClock
from agent.errors import AgentError

TOOL_VERSION = "3.0"            # hpvmcollect(1M) of A.03.00 prints "version 3.0"
ARCHIVE_DIR = "hpvmcollect_archive"
DOT_COLUMN = 69                 # label, a space and dots reach column 69 (guide srcL9589)
OK, NO, NA = "OK", "NO", "N/A"
TGZ, TAR = "TGZ", "TAR"

# The guide's disk-full text (spec 03 §11.8), printed verbatim.
DISK_FULL_LINES = (
    "msgcnt 10 vxfs: mesg 001: vx_nospace - /dev/vg00/lvol5 file system full(1 block extent)",
    "Tar: end of tape",
    "Tar: to continue, enter device/file name when ready or null string to quit.",
)

# Labels of the trailer items (after "Finished with the collection").
TAR_LABEL = "Tar archiving and compressing"
GC_LABEL = "Garbage collect guest debug memory files"
REMOTE_LABEL = "Remote copying the archive"

CRASH_DIRS = ("/var/adm/crash", "/var/crash")          # HP-UX savecrash, Linux kdump
TOMBSTONE_DIR = "/var/tombstones"
SYSLOGS = ("/var/adm/syslog/syslog.log", "/var/log/syslog", "/var/log/messages")
SYSLOG_TAIL_BYTES = 16 * 1024 * 1024                   # the newest 16 MB of a system log
COMMAND_TIMEOUT = 60.0
LABEL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}$")
DEBUG_DIR = "debug"             # uuids/<uuid>/debug/: guest debug memory dumps a backend saves

# --- secrets -----------------------------------------------------------------------------------
# Names the CIM side keeps secrets under (provider/auth/users.py USERS_FILE and
# ADMIN_PASSWORD_FILE, provider/tls.py KEY_NAME; a test keeps these in step) plus the usual
# private key files. A file is also secret when its content holds a private key.
# The server's audit log (provider/audit.py AUDIT_FILE) is no secret, but it is the security
# reviewer's record of who did what from where: it stays on the host, not in support archives.
SECRET_NAMES = frozenset({"users.json", "users.json.lock", "admin-password", "server.key",
                          "audit.log",
                          "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "identity"})
SECRET_SUFFIXES = (".key", ".p12", ".pfx", ".jks")
SECRET_DIRS = frozenset({"certs", ".ssh", ".ssh2", "client-ca"})
_PRIVATE_KEY_RE = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def is_secret(rel: str, head: bytes = b"") -> bool:
    """True when a file must never be collected: by its name, a folder it sits in, or a
    private key in its first bytes (`head`)."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p]
    if not parts:
        return False
    name = parts[-1]
    if name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES) or name.startswith("admin-password"):
        return True
    if any(p in SECRET_DIRS for p in parts[:-1]):
        return True
    return bool(_PRIVATE_KEY_RE.search(head))


# --- requests, events, results ---------------------------------------------------------------


@dataclass(frozen=True)
class CollectRequest:
    """What one hpvmcollect run asks for (the options of hpvmcollect(1M))."""

    guest_name: str | None = None      # -P (host form)
    guest_number: int | None = None    # -p (host form)
    crash: bool = False                # -c
    crash_number: int | None = None    # -n (only with -c)
    label: str | None = None           # -b: the archive's name instead of <name>_<time>
    force: bool = False                # -f: replace an archive of the same name
    directory: str | os.PathLike | None = None   # -d: where hpvmcollect_archive/ goes
    keep_directory: bool = False       # -l: leave a folder, no tar
    send_to: str | None = None         # -s: host, host:path or a local path
    purge_debug: bool = False          # -g: delete the collected guest debug memory files


@dataclass(frozen=True)
class CollectEvent:
    """Progress. `event` is "begin" (once: `subject` is the guest or hostname), "step" (a step
    starts: `status` None) or "done" (it finished with `status`). `index` counts from 1 over
    `total` items: the steps, then the trailer (archive, debug cleanup, remote copy)."""

    event: str
    index: int
    total: int
    label: str = ""
    status: str | None = None
    subject: str = ""
    form: str = "host"
    trailer: bool = False

    @property
    def percent(self) -> int:
        done = self.index if self.event == "done" else max(0, self.index - 1)
        return 100 if self.total == 0 else min(100, int(100 * done / self.total))


@dataclass
class StepResult:
    index: int
    label: str
    status: str
    files: list[str] = field(default_factory=list)    # archive member paths (under the top)
    note: str = ""                                     # why N/A, for the manifest


@dataclass
class CollectResult:
    form: str                     # "host" | "guest"
    subject: str                  # the guest's name (host form) or this machine's hostname
    path: Path                    # the archive (or folder, -l)
    kind: str                     # TGZ | TAR | "DIR"
    steps: list[StepResult]
    trailer: list[StepResult]
    size: int | None = None       # bytes (None for a folder)
    sha256: str | None = None
    remote: str | None = None     # where -s copied it
    shown: str = ""               # the path as the guide prints it ("//hpvmcollect_archive/..")
    remote_error: str | None = None   # -s failed: the archive is kept, the run fails


class CollectError(AgentError):
    """A refused or failed collection; nothing was left behind."""


class DiskFullError(CollectError):
    """The destination filled up: the guide's three lines, then where."""

    def __init__(self, where: str):
        self.where = where
        super().__init__(list(DISK_FULL_LINES) + [f"{where}: No space left on device; no archive "
                                                  "was left behind."], "failed")


class CollectCancelled(CollectError):
    def __init__(self):
        super().__init__("The collection was cancelled; no archive was left behind.", "failed")


# --- output helpers (shared with the CLI) ------------------------------------------------------


def dotted(label: str) -> str:
    """`Collecting I/O configuration info .....` up to the guide's status column."""
    return f"{label} ".ljust(DOT_COLUMN, ".")


def header_lines(form: str, subject: str) -> list[str]:
    if form == "host":
        return [f"HPVM host crash/log collection tool version {TOOL_VERSION}",
                f"Gathering info for post-mortem analysis of guest '{subject}' on host"]
    return [f"HPVM guest crash/log collection tool version {TOOL_VERSION}",
            f"Gathering info for post-mortem analysis on guest (hostname '{subject}')"]


def archive_stamp(when: float) -> str:
    """`Sep.28.06_095249EDT`: local time of the injected clock, with the zone's abbreviation."""
    return time.strftime("%b.%d.%y_%H%M%S%Z", time.localtime(when))


# --- crash dumps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrashDump:
    path: Path
    number: int | None


def find_crash_dump(crash_dir: str | os.PathLike | None, number: int | None) -> CrashDump | None:
    """The crash dump -c collects: `crash.N` when -n N is given (an error when it does not
    exist), else the latest: the one before the `bounds` file's next number (HP-UX savecrash),
    else the highest `crash.N`, else the newest folder (Linux kdump). None when there is none."""
    dirs = [Path(crash_dir)] if crash_dir else [Path(d) for d in CRASH_DIRS]
    base = next((d for d in dirs if d.is_dir()), None)
    if number is not None:
        cand = base / f"crash.{number}" if base else None
        if cand is None or not cand.is_dir():
            where = base or dirs[0]
            raise CollectError(f"Crash dump {number} does not exist in {where}.", "not_found")
        return CrashDump(cand, number)
    if base is None:
        return None
    try:
        bounds = int((base / "bounds").read_text().strip())
    except (OSError, ValueError):
        bounds = None
    if bounds is not None and (base / f"crash.{bounds - 1}").is_dir():
        return CrashDump(base / f"crash.{bounds - 1}", bounds - 1)
    numbered = []
    others = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.is_dir() or entry.is_symlink():
            continue
        m = re.fullmatch(r"crash\.(\d+)", entry.name)
        if m:
            numbered.append((int(m.group(1)), entry))
        else:
            others.append(entry)
    if numbered:
        n, path = max(numbered)
        return CrashDump(path, n)
    if others:
        return CrashDump(max(others, key=lambda p: p.stat().st_mtime), None)
    return None


# --- the archive being written -----------------------------------------------------------------


def default_open_file(path: str):
    """A new private file for writing (the archive and -l files: support data is 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    return os.fdopen(fd, "wb")


class _Sink:
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


# --- the snapshot of the state folder ------------------------------------------------------------


@dataclass
class _Pinned:
    """One store file pinned at capture: an open descriptor and the length it had."""

    rel: str
    fd: int
    size: int
    ino: int

    def reader(self):
        return _BoundedReader(self.fd, self.size)

    def read(self) -> bytes:
        return self.reader().read(self.size)


class _BoundedReader:
    def __init__(self, fd: int, size: int):
        self.fd, self.size, self.pos = fd, size, 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.pos
        if n is None or n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        data = os.pread(self.fd, n, self.pos)
        self.pos += len(data)
        return data


@dataclass
class _Capture:
    """Everything the host form takes from the state folder, at one instant."""

    guest_name: str = ""
    uuid: str = ""
    guest = None                         # agent.guest.Guest, None for an invalid guest
    files: dict = field(default_factory=dict)      # store rel -> _Pinned
    guest_files: dict = field(default_factory=dict)  # name inside the guest dir -> _Pinned
    views: dict = field(default_factory=dict)        # name -> text (None: not available)
    notes: dict = field(default_factory=dict)        # view name -> why it is missing
    device_users: dict = field(default_factory=dict)  # host device path -> [guest names]
    generation: int = 0

    def close(self) -> None:
        for p in list(self.files.values()) + list(self.guest_files.values()):
            try:
                os.close(p.fd)
            except OSError:
                pass
        self.files.clear()
        self.guest_files.clear()


def _pin(snap, root: str, rel: str) -> _Pinned | None:
    """Open one store file under the snapshot (None when absent, not a file, or secret)."""
    try:
        canon = snap.resolve(rel)
    except AgentError:
        return None
    path = os.path.join(root, canon)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or is_secret(rel, os.pread(fd, 4096, 0)):
        os.close(fd)
        return None
    return _Pinned(rel, fd, st.st_size, st.st_ino)


def _text(lines) -> str:
    return "".join(line + "\n" for line in lines)


def _capture(agent, request: CollectRequest) -> _Capture:
    """Under one store snapshot: find the guest, pin its files and the host's, render views."""
    from agent.api.core import GUESTS, UUIDS
    from agent.cli import hpvmnet as net_text
    from agent.cli import status_text as text

    cap = _Capture()
    root = str(agent.store.root)
    with agent.store.snapshot() as snap:
        cap.generation = snap.generation
        try:
            _find(agent, snap, request, cap)
            base = f"{UUIDS}/{cap.uuid}"
            for name in snap.listdir(base):
                rel = f"{base}/{name}"
                if snap.is_dir(rel):
                    if name == DEBUG_DIR:
                        for sub in snap.listdir(rel):
                            p = _pin(snap, root, f"{rel}/{sub}")
                            if p is not None:
                                cap.guest_files[f"{DEBUG_DIR}/{sub}"] = p
                    continue
                p = _pin(snap, root, rel)
                if p is not None:
                    cap.guest_files[name] = p
            for name in snap.listdir(""):
                if name in (UUIDS, GUESTS) or snap.is_dir(name):
                    continue
                p = _pin(snap, root, name)
                if p is not None:
                    cap.files[name] = p
            for name in snap.listdir("common"):
                rel = f"common/{name}"
                if not snap.is_dir(rel):
                    p = _pin(snap, root, rel)
                    if p is not None:
                        cap.files[rel] = p

            sel = {"name": cap.guest_name}

            def view(key, fn):
                try:
                    cap.views[key] = fn()
                except AgentError as exc:
                    cap.views[key] = None
                    cap.notes[key] = " ".join(exc.lines)

            view("summary", lambda: _text(text.summary(agent.status_summary())))
            view("status", lambda: _text(text.details(agent.status_details(**sel),
                                                      verbose=False)))
            view("verbose", lambda: _text(text.details(agent.status_details(**sel),
                                                       verbose=True)))
            if cap.guest is not None and agent.next_config(cap.guest) is not None:
                view("deferred", lambda: _text(text.details([agent.status_deferred(**sel)],
                                                            verbose=True)))
            def entitlement():
                rows = agent.resource_allocation(**sel)
                return _text(text.resources(rows, per_vcpu=True)) if rows else None

            view("entitlement", entitlement)
            view("host_resources", lambda: _text(text.host_resources(agent.host_resources())))
            view("events", lambda: _text(text.events(agent.event_log(**sel))))
            view("vswitches", lambda: net_text.render_summary(agent.vswitch_summaries()) + "\n"
                 + "\n" + net_text.render_verbose(agent.vswitch_details()) + "\n")
            for item in list(agent.host.disks) + list(agent.host.logical_volumes):
                try:
                    cap.device_users[item.path] = list(agent.device_users(item.path))
                except AgentError:
                    cap.device_users[item.path] = []
        except BaseException:
            cap.close()
            raise
    return cap


def _find(agent, snap, request: CollectRequest, cap: _Capture) -> None:
    """The guest to collect, valid or not (an invalid guest is when collection matters most)."""
    if request.guest_name is not None:
        for bad in agent.invalid_guests():
            if bad.name == request.guest_name:
                cap.guest_name, cap.uuid = bad.name, bad.uuid
                return
        try:
            g = agent.find_guest(name=request.guest_name)
        except AgentError as exc:
            raise CollectError(exc.lines, exc.kind) from None
    else:
        try:
            g = agent.find_guest(number=request.guest_number)
        except AgentError as exc:
            raise CollectError(exc.lines, exc.kind) from None
    cap.guest, cap.guest_name, cap.uuid = g, g.name, g.uuid


# --- running host commands ---------------------------------------------------------------------


def _run(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> bytes | None:
    """A command's output, or None when it is not installed or fails."""
    exe = shutil.which(argv[0])
    if exe is None:
        return None
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"}
    try:
        proc = subprocess.run([exe] + argv[1:], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0 or not proc.stdout:
        return None
    return proc.stdout


# --- the steps ---------------------------------------------------------------------------------


class _Run:
    """One collection in progress: its steps, its sink, its progress reports."""

    def __init__(self, *, form: str, request: CollectRequest, clock: Clock, progress,
                 cancel, open_file, crash: CrashDump | None, agent=None,
                 capture: _Capture | None = None, subject: str = ""):
        self.form, self.request, self.clock = form, request, clock
        self.progress = progress or (lambda event: None)
        self.cancel = cancel
        self.open_file = open_file or default_open_file
        self.crash = crash
        self.agent, self.cap, self.subject = agent, capture, subject
        self.sink: _Sink | None = None
        self.results: list[StepResult] = []
        self.collected_debug: list[_Pinned] = []
        self._machine = None

    # -- the step lists
    def steps(self) -> list[tuple[str, Callable[[StepResult], str]]]:
        crash_label = "Collecting crash dump"
        if self.crash is not None and self.crash.number is not None:
            crash_label += f" {self.crash.number}"
        machine = [
            ("Collecting I/O configuration info", self.s_ioscan),
            ("Collecting filesystem info", self.s_fsinfo),
            ("Collecting system info", self.s_sysinfo),
            ("Collecting lan info", self.s_laninfo),
            ("Running lanshow", self.s_lanshow),
            ("Collecting installed sw info", self.s_swlist),
        ]
        tail = [
            (crash_label, self.s_crash),
            ("Running crashinfo", self.s_crashinfo),
            ("Collecting tombstone", self.s_tombstone),
            ("Collecting system message buffer", self.s_msgbuf),
            ("Collecting system syslogs", self.s_syslog),
        ]
        if self.form == "guest":
            return machine + tail
        return [("Copying host's device database", self.s_devdb)] + machine + [
            ("Collecting command logs", self.s_command_logs),
            ("Collecting messages from vmm", self.s_vmm_messages),
            ("Collecting lv info", self.s_lvinfo),
            ("Collecting vgdisplay info", self.s_vginfo),
            ("Collecting disk info", self.s_diskinfo),
            ("Collecting passthru disk info", self.s_passthru),
            ("Collecting file backing store info", self.s_backing_files),
            ("Copying guest's log file", self.s_guest_log),
            ("Copying guest's console log file", self.s_console_log),
            ("Copying hpvm configuration", self.s_hpvm_config),
            ("Copying guest's config file", self.s_guest_config),
            ("Getting status of the guest", self.s_status),
            ("Getting detailed status of the guest", self.s_detailed_status),
            ("Getting guest's entitlement", self.s_entitlement),
            ("Copying guest's config file change log", self.s_change_log),
            ("Copying guest's domain XML", self.s_domain_xml),
            ("Copying guest's QEMU log", self.s_qemu_log),
            ("Copying guest debug memory file", self.s_debug_files),
        ] + tail

    def trailer_labels(self) -> list[str]:
        return [TAR_LABEL] + ([GC_LABEL] if self.form == "host" else []) + [REMOTE_LABEL]

    # -- helpers
    def _put(self, res: StepResult, rel: str, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        res.files.append(self.sink.add_bytes(rel, data))

    def _put_pinned(self, res: StepResult, rel: str, pinned: _Pinned) -> None:
        res.files.append(self.sink.add_stream(rel, pinned.reader(), pinned.size))

    def _na(self, res: StepResult, why: str) -> str:
        res.note = why
        return NA

    def _host(self):
        if self.agent is not None:
            return self.agent.host
        if self._machine is None:
            self._machine = _this_machine()
        return self._machine

    # -- machine steps (both forms)
    def s_ioscan(self, res):
        h = self._host()
        lines = ["# I/O configuration: " + ("the VM Host as host.toml describes it"
                                             if self.form == "host" else "this machine"), ""]
        lines.append("Disks:")
        if self.form == "host":
            lines += [f"  {d.path:<24} {d.kind:<5} {d.size_mb:>9} MB  wwid={d.wwid or '-'}"
                      f"{'  partitions=' + ','.join(d.partitions) if d.partitions else ''}"
                      f"{'  ' + d.description if d.description else ''}" for d in h.disks]
        else:
            parts = _read_file("/proc/partitions")
            if parts:
                lines += ["  " + line for line in
                          parts.decode("utf-8", "replace").rstrip().splitlines()]
        lines += ["", "Network interfaces:"]
        lines += [f"  {n.name:<8} {n.mac}  {n.device or '-':<12} {n.speed_mbps} Mb/s"
                  for n in h.nics]
        self._put(res, "host.ioscan", _text(lines))
        return OK

    def s_fsinfo(self, res):
        mounts = []
        if self.form == "host":
            mounts = [(fs.mount, fs.device) for fs in self.agent.host.filesystems]
            mounts.append((str(self.agent.store.root), "(state folder)"))
        else:
            mounts = _real_mounts()
        lines = [f"{'Mounted on':<28} {'Device':<24} {'Size MB':>10} {'Used MB':>10} "
                 f"{'Avail MB':>10} Capacity"]
        for mount, dev in mounts:
            try:
                st = os.statvfs(mount)
            except OSError:
                lines.append(f"{mount:<28} {dev:<24} (not mounted here)")
                continue
            size = st.f_blocks * st.f_frsize // (1 << 20)
            avail = st.f_bavail * st.f_frsize // (1 << 20)
            used = (st.f_blocks - st.f_bfree) * st.f_frsize // (1 << 20)
            cap = f"{(100 * used // size) if size else 0}%"
            lines.append(f"{mount:<28} {dev:<24} {size:>10} {used:>10} {avail:>10} {cap}")
        if len(lines) == 1:
            return self._na(res, "no file systems")
        self._put(res, "host.fsinfo", _text(lines))
        return OK

    def s_sysinfo(self, res):
        from agent.api.views import PRODUCT_RELEASE, product_version
        h = self._host()
        u = platform.uname()
        lines = [f"Hostname                 : {h.hostname}",
                 f"Model                    : {h.model}",
                 f"Serial number            : {h.serial}",
                 f"Host UUID                : {h.host_uuid}",
                 f"Processors               : {h.cpus}",
                 f"Processor speed          : {h.cpu_mhz} Mhz",
                 f"Physical memory          : {h.memory_mb} Mbytes",
                 f"Swap space               : {h.swap_mb} Mbytes",
                 f"Operating system         : {u.system} {u.release} {u.version} {u.machine}",
                 f"Integrity VM release     : {PRODUCT_RELEASE}",
                 f"vmprovider build         : {product_version()}",
                 f"Python                   : {platform.python_version()}",
                 f"Collected at             : "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(self.clock.now()))}"]
        if self.form == "host":
            lines += [f"Backend                  : {getattr(self.agent.driver, 'name', '')}",
                      f"State folder             : {self.agent.store.root}",
                      f"Store generation         : {self.cap.generation}"]
            for key, title in (("summary", "hpvmstatus"), ("host_resources", "hpvmstatus -s")):
                if self.cap.views.get(key):
                    lines += ["", f"# {title}", self.cap.views[key].rstrip()]
        else:
            uptime = _read_file("/proc/uptime")
            if uptime:
                lines.append(f"Uptime seconds           : {uptime.split()[0].decode()}")
        self._put(res, "host.sysinfo", _text(lines))
        return OK

    def s_laninfo(self, res):
        h = self._host()
        lines = ["Interfaces:"]
        lines += [f"  {n.name:<8} {n.mac}  {n.device or '-':<12} {n.speed_mbps} Mb/s"
                  for n in h.nics]
        lines += ["", "Addresses:"] + [f"  {a}" for a in h.ip_addresses]
        if self.form == "host":
            vsw = self.cap.views.get("vswitches")
            if vsw:
                lines += ["", "# hpvmnet", vsw.rstrip()]
        self._put(res, "host.laninfo", _text(lines))
        return OK

    def s_lanshow(self, res):
        out = _run(["lanshow"])
        if out is None:
            return self._na(res, "lanshow is not installed")
        self._put(res, "host.lanshow", out)
        return OK

    def s_swlist(self, res):
        from importlib import metadata
        lines = ["# Python distributions"]
        dists = sorted({(d.metadata["Name"] or "?", d.version) for d in metadata.distributions()},
                       key=lambda x: x[0].lower())
        lines += [f"{n:<40} {v}" for n, v in dists]
        for argv in (["swlist"], ["dpkg-query", "-W"], ["rpm", "-qa"]):
            out = _run(argv)
            if out is not None:
                lines += ["", f"# {' '.join(argv)}", out.decode("utf-8", "replace").rstrip()]
                break
        self._put(res, "host.swlist", _text(lines))
        return OK

    def s_crash(self, res):
        if not self.request.crash:
            return NO
        if self.crash is None:
            return self._na(res, "no crash dump on this host")
        name = self.crash.path.name
        res.files += self.sink.add_tree(name, self.crash.path)
        return OK if res.files else self._na(res, f"{self.crash.path} holds no readable file")

    def s_crashinfo(self, res):
        if not self.request.crash:
            return NO
        if self.crash is None:
            return self._na(res, "no crash dump")
        out = _run(["crashinfo", str(self.crash.path)], timeout=600)
        if out is None:
            return self._na(res, "crashinfo is not installed or failed")
        self._put(res, "crashinfo.out", out)
        return OK

    def s_tombstone(self, res):
        if not self.request.crash:
            return NO
        if not os.path.isdir(TOMBSTONE_DIR):
            return self._na(res, f"{TOMBSTONE_DIR} does not exist")
        res.files += self.sink.add_tree("tombstones", Path(TOMBSTONE_DIR))
        return OK if res.files else self._na(res, "no tombstone")

    def s_msgbuf(self, res):
        out = _run(["dmesg"])
        if out is None:
            return self._na(res, "dmesg is not available")
        self._put(res, "host.msgbuf", out)
        return OK

    def s_syslog(self, res):
        for path in SYSLOGS:
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    start = max(0, size - SYSLOG_TAIL_BYTES)
                    f.seek(start)
                    self._put(res, f"syslog/{os.path.basename(path)}", f.read(size - start))
            except OSError:
                continue
        return OK if res.files else self._na(res, "no readable system log")

    # -- host form: the state folder (all from the capture)
    def s_devdb(self, res):
        p = self.cap.files.get("common/hpvm_mgmtdb")
        if p is None:
            return self._na(res, "the device database is empty")
        self._put_pinned(res, "config/hpvm_mgmtdb", p)
        return OK

    def s_command_logs(self, res):
        from agent.store import COMMAND_LOG
        if COMMAND_LOG in self.cap.files:
            self._put_pinned(res, "logs/command.log", self.cap.files[COMMAND_LOG])
        if "command.log" in self.cap.guest_files:
            self._put_pinned(res, "guest/command.log", self.cap.guest_files["command.log"])
        return OK if res.files else self._na(res, "no command log yet")

    def s_vmm_messages(self, res):
        from agent.store import EVENT_LOG
        if EVENT_LOG in self.cap.files:
            self._put_pinned(res, "logs/events.log", self.cap.files[EVENT_LOG])
        for rel, p in sorted(self.cap.files.items()):
            if rel.startswith("common/hpvm_mon_log"):
                self._put_pinned(res, f"logs/{rel.split('/', 1)[1]}", p)
        return OK if res.files else self._na(res, "no event log yet")

    def s_lvinfo(self, res):
        lvs = self.agent.host.logical_volumes
        if not lvs:
            return self._na(res, "the host has no logical volumes")
        lines = [f"{'LV Name':<28} {'VG':<10} {'Size MB':>9}  Used by"]
        lines += [f"{lv.path:<28} {lv.volume_group:<10} {lv.size_mb:>9}  "
                  f"{','.join(self.cap.device_users.get(lv.path, [])) or '-'}" for lv in lvs]
        self._put(res, "host.lvinfo", _text(lines))
        return OK

    def s_vginfo(self, res):
        groups: dict[str, list] = {}
        for lv in self.agent.host.logical_volumes:
            groups.setdefault(lv.volume_group, []).append(lv)
        if not groups:
            return self._na(res, "the host has no volume groups")
        lines = []
        for vg, lvs in sorted(groups.items()):
            pvs = sorted({d for lv in lvs for d in lv.disks})
            lines += [f"--- Volume groups ---", f"VG Name                     /dev/{vg}",
                      f"Cur LV                      {len(lvs)}",
                      f"Alloc MB                    {sum(lv.size_mb for lv in lvs)}",
                      f"Cur PV                      {len(pvs)}"]
            lines += [f"PV Name                     {pv}" for pv in pvs] + [""]
        self._put(res, "host.vginfo", _text(lines))
        return OK

    def s_diskinfo(self, res):
        disks = self.agent.host.disks
        if not disks:
            return self._na(res, "the host has no disks")
        lines = [f"{'Device':<24} {'Kind':<5} {'Size MB':>9} {'WWID':<20} Used by"]
        lines += [f"{d.path:<24} {d.kind:<5} {d.size_mb:>9} {d.wwid or '-':<20} "
                  f"{','.join(self.cap.device_users.get(d.path, [])) or '-'}" for d in disks]
        g = self.cap.guest
        if g is not None and g.storage:
            from agent.resources import format_resource
            lines += ["", f"# storage of guest {g.name}"]
            lines += [format_resource(s) for s in g.storage]
        self._put(res, "host.diskinfo", _text(lines))
        return OK

    def s_passthru(self, res):
        g = self.cap.guest
        attached = [s for s in (g.storage if g else []) if s.storage == "attach"]
        if not attached:
            return self._na(res, "the guest has no attached (pass-through) device")
        from agent.resources import format_resource
        self._put(res, "guest/passthru.info", _text(format_resource(s) for s in attached))
        return OK

    def s_backing_files(self, res):
        g = self.cap.guest
        files = [s for s in (g.storage if g else []) if s.storage == "file"]
        if not files:
            return self._na(res, "the guest has no file backing store")
        lines = []
        for s in files:
            try:
                st = os.stat(s.location)
                lines.append(f"{s.location}: {st.st_size} bytes, mode {stat.filemode(st.st_mode)}"
                             f", modified {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(st.st_mtime))}")
            except OSError as exc:
                lines.append(f"{s.location}: {exc.strerror}")
        self._put(res, "guest/backing_files.info", _text(lines))
        return OK

    def s_guest_log(self, res):
        p = self.cap.guest_files.get("log")
        if p is None:
            return self._na(res, "the guest has no log")
        self._put_pinned(res, "guest/log", p)
        return OK

    def s_console_log(self, res):
        p = self.cap.guest_files.get("console.log")
        if p is None:
            return self._na(res, "the backend keeps no console log for this guest")
        self._put_pinned(res, "guest/console.log", p)
        return OK

    def s_hpvm_config(self, res):
        skip = ("common/events.log", "common/command.log", "common/hpvm_mgmtdb")
        for rel, p in sorted(self.cap.files.items()):
            if rel in skip or rel.startswith("common/hpvm_mon_log"):
                continue
            self._put_pinned(res, f"config/{rel.rsplit('/', 1)[-1]}", p)
        return OK if res.files else self._na(res, "no configuration files")

    def s_guest_config(self, res):
        for name in ("vmm_config.current", "vmm_config.prev", "vmm_config.next"):
            if name in self.cap.guest_files:
                self._put_pinned(res, f"guest/{name}", self.cap.guest_files[name])
        return OK if res.files else self._na(res, "the guest has no configuration file")

    def _views(self, res, pairs) -> str:
        for key, rel in pairs:
            if self.cap.views.get(key):
                self._put(res, rel, self.cap.views[key])
        if not res.files:
            notes = [self.cap.notes[k] for k, _ in pairs if k in self.cap.notes]
            return self._na(res, "; ".join(notes) or "not available")
        return OK

    def s_status(self, res):
        return self._views(res, [("status", "guest/hpvmstatus.P"),
                                 ("summary", "hpvmstatus")])

    def s_detailed_status(self, res):
        status = self._views(res, [("verbose", "guest/hpvmstatus.V"),
                                   ("deferred", "guest/hpvmstatus.D")])
        for name in ("runtime", "model"):
            if name in self.cap.guest_files:
                self._put_pinned(res, f"guest/{name}", self.cap.guest_files[name])
        return OK if res.files else status

    def s_entitlement(self, res):
        return self._views(res, [("entitlement", "guest/hpvmstatus.r"),
                                 ("host_resources", "hpvmstatus.s")])

    def s_change_log(self, res):
        return self._views(res, [("events", "guest/hpvmstatus.e")])

    def _driver_item(self, res, method: str, rel: str) -> str:
        """Backend-provided items (libvirt: domain XML, QEMU log); N/A where the backend has
        no such thing (ivm)."""
        fn = getattr(self.agent.driver, method, None)
        if fn is None or self.cap.guest is None:
            return self._na(res, f"the {getattr(self.agent.driver, 'name', '')} backend has none")
        try:
            data = fn(self.cap.guest)
        except Exception as exc:    # an outside service failing costs this item, not the run
            return self._na(res, f"the backend failed: {exc}")
        if not data:
            return self._na(res, "the backend returned nothing")
        self._put(res, rel, data)
        return OK

    def s_domain_xml(self, res):
        return self._driver_item(res, "collect_domain_xml", "guest/domain.xml")

    def s_qemu_log(self, res):
        return self._driver_item(res, "collect_qemu_log", "guest/qemu.log")

    def s_debug_files(self, res):
        debug = sorted((k, p) for k, p in self.cap.guest_files.items()
                       if k.startswith(DEBUG_DIR + "/"))
        if not debug:
            return self._na(res, "the guest has no debug memory file")
        for name, p in debug:
            self._put_pinned(res, f"guest/{name}", p)
            self.collected_debug.append(p)
        return OK

    # -- running it
    def report(self, event: str, index: int, total: int, label: str = "",
               status: str | None = None, trailer: bool = False) -> None:
        self.progress(CollectEvent(event, index, total, label, status, self.subject, self.form,
                                   trailer))

    def run_steps(self, steps, total: int) -> None:
        for i, (label, fn) in enumerate(steps, 1):
            if self.cancel is not None and self.cancel():
                raise CollectCancelled()
            self.report("step", i, total, label)
            res = StepResult(i, label, NA)
            res.status = fn(res)
            self.results.append(res)
            self.report("done", i, total, label, res.status)

    def manifest(self) -> bytes:
        lines = header_lines(self.form, self.subject)
        lines += [f"{dotted(r.label)} {r.status}" + (f"    # {r.note}" if r.note else "")
                  for r in self.results]
        lines += [""] + [f"{r.label}: {f}" for r in self.results for f in r.files]
        return _text(lines).encode("utf-8")


# --- destinations -------------------------------------------------------------------------------


def _archive_dir(directory, cwd) -> tuple[Path, str, bool]:
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


def _final_name(folder: Path, base: str, ext: str, stamp: str, force: bool) -> str:
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


def _commit(sink: _Sink, folder: Path, base: str, ext: str, stamp: str, force: bool) -> Path:
    """Move the finished temporary archive (or folder) to its name, never over another run's
    archive unless -f."""
    for _ in range(100):
        name = _final_name(folder, base, ext, stamp, force)
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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_destination(text: str) -> None:
    """-s: a host, host:path or a local path; never something scp would read as an option."""
    if not text or text.strip() != text or any(c in text for c in "\n\r\0"):
        raise CollectError(f"Invalid destination '{text}' for option -s.", "invalid")
    if text.startswith("-"):
        raise CollectError(f"Invalid destination '{text}' for option -s: it must not begin "
                           "with '-'.", "invalid")


def _is_remote(dest: str) -> bool:
    if dest.startswith(("/", "./", "../", "~")) or dest in (".", ".."):
        return False
    if ":" in dest.split("/", 1)[0]:
        return True
    return "/" not in dest and not os.path.isdir(dest)     # a bare host name, as the guide


def send_archive(path: Path, dest: str, *, scp: str | None = None,
                 timeout: float = 600.0) -> str:
    """-s: copy the finished archive; returns where it went, raises CollectError otherwise."""
    check_destination(dest)
    if _is_remote(dest):
        target = dest if ":" in dest.split("/", 1)[0] else dest + ":"
        exe = scp if scp is not None else shutil.which("scp")
        if not exe or not os.path.exists(exe):
            raise CollectError(f"Cannot copy the archive to '{target}': scp is not installed "
                               "on this host.", "failed")
        argv = [exe, "-q", "-B", "-p"] + (["-r"] if path.is_dir() else []) + ["--", str(path),
                                                                            target]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise CollectError(f"Cannot copy the archive to '{target}': scp timed out.",
                               "failed") from None
        if proc.returncode != 0:
            why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise CollectError(f"Cannot copy the archive to '{target}': "
                               f"{why[-1] if why else f'scp exited with {proc.returncode}'}",
                               "failed")
        return target
    target = Path(dest)
    if target.is_dir():
        target = target / path.name
    if os.path.lexists(target):
        raise CollectError(f"Cannot copy the archive to '{target}': it already exists.",
                           "exists")
    tmp = target.parent / f".{target.name}.partial-{_secrets.token_hex(4)}"
    try:
        if path.is_dir():
            shutil.copytree(path, tmp, symlinks=True)
        else:
            shutil.copyfile(path, tmp)
            os.chmod(tmp, 0o600)
        os.rename(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else _unlink(tmp)
        raise CollectError(f"Cannot copy the archive to '{target}': {exc.strerror}.",
                           "failed") from None
    return str(target)


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _sha256(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


# --- the two forms --------------------------------------------------------------------------------


def check_request(request: CollectRequest, *, form: str) -> None:
    """The man page's rules; bad input raises CollectError('invalid') before anything is done."""
    if request.crash_number is not None and not request.crash:
        raise CollectError("Option -n is valid only with -c.", "invalid")
    if request.crash_number is not None and request.crash_number < 0:
        raise CollectError(f"Invalid crash dump number '{request.crash_number}' for option -n.",
                           "invalid")
    if request.label is not None and not LABEL_RE.match(request.label):
        raise CollectError(f"Invalid report number '{request.label}' for option -b: use letters, "
                           "digits, '.', '_', '+' and '-' (at most 200, not beginning with "
                           "'.', '+' or '-').", "invalid")
    if request.send_to is not None:
        check_destination(request.send_to)
    if form == "host":
        if (request.guest_name is None) == (request.guest_number is None):
            raise CollectError("On the VM Host, give the guest with -P vm-name or -p "
                               "vm-number.", "invalid")
    else:
        if request.guest_name is not None or request.guest_number is not None:
            raise CollectError("Options -P and -p are valid on the VM Host only.", "invalid")
        if request.purge_debug:
            raise CollectError("Option -g is valid on the VM Host only.", "invalid")


def collect_host(agent, request: CollectRequest, *, progress=None, cancel=None,
                 cwd=None, crash_dir=None, open_file=None, scp=None) -> CollectResult:
    """The host form: the VM Host and one guest (-P/-p). See the module docstring."""
    check_request(request, form="host")
    crash = find_crash_dump(crash_dir, request.crash_number) if request.crash else None
    folder, shown, create = _archive_dir(request.directory, cwd)
    cap = _capture(agent, request)
    try:
        run = _Run(form="host", request=request, clock=agent.clock, progress=progress,
                   cancel=cancel, open_file=open_file, crash=crash, agent=agent, capture=cap,
                   subject=cap.guest_name)
        return _execute(run, folder, shown, create, scp=scp)
    finally:
        cap.close()


def collect_guest(request: CollectRequest, *, clock: Clock | None = None, progress=None,
                  cancel=None, cwd=None, crash_dir=None, open_file=None, scp=None,
                  hostname: str | None = None) -> CollectResult:
    """The guest form (no -P/-p): what this machine, a guest, has."""
    check_request(request, form="guest")
    crash = find_crash_dump(crash_dir, request.crash_number) if request.crash else None
    folder, shown, create = _archive_dir(request.directory, cwd)
    subject = hostname or socket.gethostname().split(".")[0] or "localhost"
    run = _Run(form="guest", request=request, clock=clock or SystemClock(), progress=progress,
               cancel=cancel, open_file=open_file, crash=crash, subject=subject)
    return _execute(run, folder, shown, create, scp=scp)


def _execute(run: _Run, folder: Path, shown: str, create: bool, *, scp) -> CollectResult:
    req = run.request
    now = run.clock.now()
    stamp = archive_stamp(now)
    base = req.label or f"{run.subject}_{stamp}"
    if not re.fullmatch(r"[^/\0]{1,240}", base):
        raise CollectError(f"The guest name '{run.subject}' cannot name an archive.", "invalid")
    kind = "DIR" if req.keep_directory else (TAR if run.crash is not None else TGZ)
    ext = {"DIR": "", TAR: ".tar", TGZ: ".tar.gz"}[kind]
    steps = run.steps()
    trailer = run.trailer_labels()
    total = len(steps) + len(trailer)
    run.report("begin", 0, total)

    created = False
    sink = None
    try:
        if create:
            try:
                os.mkdir(folder, 0o700)
                created = True
            except FileExistsError:
                pass
        temp = str(folder / f".{base}{ext}.partial-{_secrets.token_hex(6)}")
        sink = run.sink = _Sink(temp, base, kind=kind, open_file=run.open_file, mtime=now)
        run.run_steps(steps, total)
        sink.add_bytes("hpvmcollect.steps", run.manifest())
        if run.cancel is not None and run.cancel():
            raise CollectCancelled()
        i = len(steps) + 1
        run.report("step", i, total, TAR_LABEL, trailer=True)
        sink.close()
        final = _commit(sink, folder, base, ext, stamp, req.force)
        _fsync_dir(folder)
        sink = None
    except OSError as exc:
        if sink is not None:
            sink.abort()
        _drop_folder(folder, created)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(shown) from None
        where = exc.filename or shown
        raise CollectError(f"Cannot write the collection in '{shown}': "
                           f"{exc.strerror or exc}" + (f" ({where})" if where != shown else "")
                           + ".", "failed") from None
    except BaseException:
        if sink is not None:
            sink.abort()
        _drop_folder(folder, created)
        raise

    tar_status = NO if kind == "DIR" else kind
    result = CollectResult(run.form, run.subject, final, kind, run.results, [],
                           shown=f"{shown}/{final.name}")
    result.trailer.append(StepResult(len(steps) + 1, TAR_LABEL, tar_status, [final.name]))
    run.report("done", len(steps) + 1, total, TAR_LABEL, tar_status, trailer=True)
    if kind != "DIR":
        result.size, result.sha256 = _sha256(final)

    i = len(steps) + 2
    if run.form == "host":
        run.report("step", i, total, GC_LABEL, trailer=True)
        gc = _purge_debug(run) if req.purge_debug else NO
        result.trailer.append(StepResult(i, GC_LABEL, gc))
        run.report("done", i, total, GC_LABEL, gc, trailer=True)
        i += 1

    run.report("step", i, total, REMOTE_LABEL, trailer=True)
    remote = NO
    if req.send_to is not None:
        try:
            result.remote = send_archive(final, req.send_to, scp=scp)
            remote = OK
        except CollectError as exc:
            result.remote_error = " ".join(exc.lines)
            remote = NA
    result.trailer.append(StepResult(i, REMOTE_LABEL, remote))
    run.report("done", i, total, REMOTE_LABEL, remote, trailer=True)
    return result


def _drop_folder(folder: Path, created: bool) -> None:
    """Remove hpvmcollect_archive/ again if this run made it and left it empty."""
    if created:
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _purge_debug(run: _Run) -> str:
    """-g: delete the guest debug memory files now safely in the archive (only those: a file
    replaced or added since the capture is kept)."""
    if not run.collected_debug:
        return NA
    agent = run.agent
    removed = []
    with agent.store.transaction(actor=agent.actor) as txn:
        for p in run.collected_debug:
            try:
                st = os.stat(os.path.join(str(agent.store.root), txn.resolve(p.rel)))
            except (OSError, AgentError):
                continue
            if st.st_ino == p.ino and st.st_size == p.size:
                txn.delete(p.rel)
                removed.append(p.rel.rsplit("/", 1)[-1])
        if removed:
            txn.event("guest.debug_purge", run.cap.uuid, name=run.subject,
                      files=",".join(removed))
    return OK if removed else NA


# --- the machine a guest-form run is on ---------------------------------------------------------


def _this_machine():
    from agent.hostfacts import probe_host
    return probe_host()


def _read_file(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


_PSEUDO_FS = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs",
              "pstore", "bpf", "debugfs", "tracefs", "mqueue", "hugetlbfs", "configfs",
              "fusectl", "autofs", "binfmt_misc", "rpc_pipefs", "nsfs", "efivarfs"}


def _real_mounts() -> list[tuple[str, str]]:
    data = _read_file("/proc/mounts") or b""
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] not in _PSEUDO_FS:
            out.append((parts[1].replace("\\040", " "), parts[0]))
    return out
