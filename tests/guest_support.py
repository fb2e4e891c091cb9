"""Shared helpers of the guest tests (tests/test_guest_*.py): a host with the guide's numbers,
an Agent on a ManualClock, a CLI runner, and a fingerprint of a state folder."""
from __future__ import annotations

import hashlib
import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from agent.api import Agent
from agent.clock import ManualClock
from agent.hostfacts import HostFacts, HostNic, Timings, default_storage, write_host

HOST_MAC = "00:30:6e:39:f7:0b"


def guide_host(cpus: int = 2, cpu_mhz: int = 1400, memory_mb: int = 12276,
               swap_mb: int = 20480, **timings) -> HostFacts:
    """The guide's `hpvmstatus -s` host: 2 x 1400 MHz, 12276 MB; the default storage
    layout (c1t2d0, c2t1d0 with slices, vg01 on c4t1d0+c4t2d0, / on vg00/lvol3...)."""
    disks, lvs, fss = default_storage()
    t = dict(efi_seconds=5.0, os_boot_seconds=30.0, stop_seconds=10.0)
    t.update(timings)
    return HostFacts(cpus=cpus, cpu_mhz=cpu_mhz, memory_mb=memory_mb, swap_mb=swap_mb,
                     host_uuid="11111111-2222-3333-4444-555555555555", hostname="vmhost",
                     nics=(HostNic("lan0", HOST_MAC),), disks=disks, logical_volumes=lvs,
                     filesystems=fss, timings=Timings(**t))


def make_agent(state_dir, host: HostFacts | None = None, clock: ManualClock | None = None,
               **host_kw) -> Agent:
    host = host or guide_host(**host_kw)
    write_host(state_dir, host)
    return Agent(state_dir, clock=clock or ManualClock(), host=host)


def init_state(state_dir, **host_kw) -> Path:
    """A state folder with host.toml written (for CLI runs in this or another process)."""
    write_host(state_dir, guide_host(**host_kw))
    return Path(state_dir)


def run_cli(main, argv, state_dir, stdin: str = "") -> tuple[int, str, str]:
    """Run a CLI `main` in-process with --state-dir; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv) + ["--state-dir", str(state_dir)])
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def fingerprint(state_dir) -> dict[str, str]:
    """Every file (and link) under a state folder with a hash of its content."""
    out = {}
    root = Path(state_dir)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if rel.startswith(".store/lock"):
                continue
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
