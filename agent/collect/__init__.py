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

Modules: `model` (request, events, results, errors), `steps` (the step list), `snapshot` (the
consistent capture), `archive` (the temporary file, its rename, disk-full), `crashdump`,
`secret_rules`, `destination` (-s), `machine` (this machine's commands and files), `forms`
(the host and guest runs).
"""
from __future__ import annotations

from agent.collect.archive import default_open_file
from agent.collect.crashdump import CRASH_DIRS, CrashDump, find_crash_dump
from agent.collect.destination import check_destination, send_archive
from agent.collect.forms import LABEL_RE, check_request, collect_guest, collect_host
from agent.collect.model import (ARCHIVE_DIR, DISK_FULL_LINES, DOT_COLUMN, GC_LABEL, NA, NO, OK,
                                 REMOTE_LABEL, TAR, TAR_LABEL, TGZ, TOOL_VERSION,
                                 CollectCancelled, CollectError, CollectEvent, CollectRequest,
                                 CollectResult, DiskFullError, StepResult, archive_stamp, dotted,
                                 header_lines)
from agent.collect.secret_rules import SECRET_DIRS, SECRET_NAMES, SECRET_SUFFIXES, is_secret
from agent.collect.snapshot import DEBUG_DIR

__all__ = [
    "ARCHIVE_DIR", "CRASH_DIRS", "DEBUG_DIR", "DISK_FULL_LINES", "DOT_COLUMN", "GC_LABEL",
    "LABEL_RE", "NA", "NO", "OK", "REMOTE_LABEL", "SECRET_DIRS", "SECRET_NAMES",
    "SECRET_SUFFIXES", "TAR", "TAR_LABEL", "TGZ", "TOOL_VERSION", "CollectCancelled",
    "CollectError", "CollectEvent", "CollectRequest", "CollectResult", "CrashDump",
    "DiskFullError", "StepResult", "archive_stamp", "check_destination", "check_request",
    "collect_guest", "collect_host", "default_open_file", "dotted", "find_crash_dump",
    "header_lines", "is_secret", "send_archive",
]
