"""CollectOps: hpvmcollect's host form as an agent call, for the CLI and a CIM job alike.

    result = agent.collect(CollectRequest(guest_name="compass1", directory=folder),
                           progress=lambda ev: job.set_percent(ev.percent),
                           cancel=job.cancel_requested)

Runs in the caller's thread (a CIM job runs it in a worker thread, never on the reactor);
the store is locked only for the instant its files are captured. Raises `CollectError`
(an AgentError: 'invalid' bad request, 'not_found' unknown guest or crash dump, 'failed'
unwritable or full destination, cancelled) and then leaves no archive behind.
"""
from __future__ import annotations

from agent.collect import CollectRequest, CollectResult, collect_host


class CollectOps:
    """Mixed into `agent.api.Agent`; works on AgentCore's store, host, clock and driver."""

    def collect(self, request: CollectRequest, *, progress=None, cancel=None, cwd=None,
                crash_dir=None, open_file=None, scp=None) -> CollectResult:
        """Collect the VM Host and the guest `request` names into one archive.

        `progress(CollectEvent)` is called as each step starts and ends (`event.percent` is
        0..100); `cancel()` is polled between steps; `cwd` is where hpvmcollect_archive/ goes
        when the request has no directory (default: the process's current directory);
        `crash_dir` overrides where crash dumps are looked for (-c); `open_file(path)` opens
        each file the collection writes (tests inject a failing writer); `scp` the scp binary.
        """
        return collect_host(self, request, progress=progress, cancel=cancel, cwd=cwd,
                            crash_dir=crash_dir, open_file=open_file, scp=scp)
