"""The two forms of a run: the host form (a guest and its VM Host) and the guest form."""
from __future__ import annotations

import os
import re
import secrets as _secrets
import socket
from pathlib import Path

from agent.clock import Clock, SystemClock
from agent.collect.archive import (ArchiveSink, archive_dir, commit, drop_folder, fsync_dir,
                                   sha256_of, write_error)
from agent.collect.crashdump import find_crash_dump
from agent.collect.destination import check_destination, send_archive
from agent.collect.model import (GC_LABEL, NA, NO, OK, REMOTE_LABEL, TAR, TAR_LABEL, TGZ,
                                 CollectCancelled, CollectError, CollectRequest, CollectResult,
                                 StepResult, archive_stamp)
from agent.collect.snapshot import capture
from agent.collect.steps import CollectionRun
from agent.errors import AgentError

LABEL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}\Z")


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
    """The host form: the VM Host and one guest (-P/-p). See agent.collect's docstring."""
    check_request(request, form="host")
    crash = find_crash_dump(crash_dir, request.crash_number) if request.crash else None
    folder, shown, create = archive_dir(request.directory, cwd)
    cap = capture(agent, request)
    try:
        run = CollectionRun(form="host", request=request, clock=agent.clock,
                            progress=progress, cancel=cancel, open_file=open_file, crash=crash,
                            agent=agent, capture=cap, subject=cap.guest_name)
        return execute(run, folder, shown, create, scp=scp)
    finally:
        cap.close()


def collect_guest(request: CollectRequest, *, clock: Clock | None = None, progress=None,
                  cancel=None, cwd=None, crash_dir=None, open_file=None, scp=None,
                  hostname: str | None = None) -> CollectResult:
    """The guest form (no -P/-p): what this machine, a guest, has."""
    check_request(request, form="guest")
    crash = find_crash_dump(crash_dir, request.crash_number) if request.crash else None
    folder, shown, create = archive_dir(request.directory, cwd)
    subject = hostname or socket.gethostname().split(".")[0] or "localhost"
    run = CollectionRun(form="guest", request=request, clock=clock or SystemClock(),
                        progress=progress, cancel=cancel, open_file=open_file, crash=crash,
                        subject=subject)
    return execute(run, folder, shown, create, scp=scp)


def execute(run: CollectionRun, folder: Path, shown: str, create: bool, *, scp) -> CollectResult:
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
        sink = run.sink = ArchiveSink(temp, base, kind=kind, open_file=run.open_file, mtime=now)
        run.run_steps(steps, total)
        sink.add_bytes("hpvmcollect.steps", run.manifest())
        if run.cancel is not None and run.cancel():
            raise CollectCancelled()
        i = len(steps) + 1
        run.report("step", i, total, TAR_LABEL, trailer=True)
        sink.close()
        final = commit(sink, folder, base, ext, stamp, req.force)
        fsync_dir(folder)
        sink = None
    except OSError as exc:
        if sink is not None:
            sink.abort()
        drop_folder(folder, created)
        raise write_error(exc, shown) from None
    except BaseException:
        if sink is not None:
            sink.abort()
        drop_folder(folder, created)
        raise

    tar_status = NO if kind == "DIR" else kind
    result = CollectResult(run.form, run.subject, final, kind, run.results, [],
                           shown=f"{shown}/{final.name}")
    result.trailer.append(StepResult(len(steps) + 1, TAR_LABEL, tar_status, [final.name]))
    run.report("done", len(steps) + 1, total, TAR_LABEL, tar_status, trailer=True)
    if kind != "DIR":
        result.size, result.sha256 = sha256_of(final)

    i = len(steps) + 2
    if run.form == "host":
        run.report("step", i, total, GC_LABEL, trailer=True)
        gc = purge_debug(run) if req.purge_debug else NO
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


def purge_debug(run: CollectionRun) -> str:
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
