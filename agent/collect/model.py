"""What a collection is asked, reports and returns: the request, progress events, step
results, errors, and the text the guide prints around them."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

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


def text_block(lines) -> str:
    return "".join(line + "\n" for line in lines)
