"""The machine a run is on: its commands, files and mounts (the guest form reads these
rather than the host model)."""
from __future__ import annotations

import os
import shutil
import subprocess

TOMBSTONE_DIR = "/var/tombstones"
SYSLOGS = ("/var/adm/syslog/syslog.log", "/var/log/syslog", "/var/log/messages")
SYSLOG_TAIL_BYTES = 16 * 1024 * 1024                   # the newest 16 MB of a system log
COMMAND_TIMEOUT = 60.0


def run_command(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> bytes | None:
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


def this_machine():
    from agent.hostfacts import probe_host
    return probe_host()


def read_file(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


_PSEUDO_FS = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs",
              "pstore", "bpf", "debugfs", "tracefs", "mqueue", "hugetlbfs", "configfs",
              "fusectl", "autofs", "binfmt_misc", "rpc_pipefs", "nsfs", "efivarfs"}


def real_mounts() -> list[tuple[str, str]]:
    data = read_file("/proc/mounts") or b""
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] not in _PSEUDO_FS:
            out.append((parts[1].replace("\\040", " "), parts[0]))
    return out
