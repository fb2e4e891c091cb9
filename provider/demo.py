"""What `vmprovider serve` does to the host at start: Integrity VM "boots" (guests whose start
attribute is `auto` start), and with `--demo` a host without guests gets one to look at."""
from __future__ import annotations

from agent.errors import AgentError

DEMO_GUEST = "demo1"


def start_host(agent, *, demo: bool) -> list[str]:
    """Returns the lines to show the operator. Agent errors become lines, never a crash:
    the CIM server is useful without any guest running."""
    lines: list[str] = []
    if demo and not agent.guests() and not agent.invalid_guests():
        from agent.api.guests import GuestChanges
        try:
            outcome = agent.create_guest(DEMO_GUEST, GuestChanges(
                label="vmprovider demo guest", vcpus=1, memory_mb=2048, os_type="LINUX"))
            lines.append(f"created demo guest {DEMO_GUEST}")
            lines.extend(f"  warning: {w}" for w in outcome.warnings)
        except AgentError as e:
            lines.append(f"could not create the demo guest: {' '.join(e.lines)}")
    try:
        outcome = agent.boot_host()
    except AgentError as e:
        lines.append(f"starting auto guests failed: {' '.join(e.lines)}")
        return lines
    lines.extend(outcome.info)
    lines.extend(outcome.warnings)
    return lines
