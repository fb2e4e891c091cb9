"""The crash dump `-c` collects."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from agent.collect.model import CollectError

CRASH_DIRS = ("/var/adm/crash", "/var/crash")          # HP-UX savecrash, Linux kdump


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
