"""hpvmremove: delete a virtual machine (spec 01 §29, hpvmremove(1M)).

    hpvmremove {-P vm-name | -p vm-number} [-F] [-Q]

Asks `Remove the virtual machine '<name>'? [n/y]:` unless -F or -Q. The guest must be Off;
its configuration goes, its backing stores stay. With -F a guest whose configuration cannot
be read (Invalid) is removed too.
"""
from __future__ import annotations

from agent.backends.base import OFF
from agent.cli.common import (Declined, confirm, open_agent, parse_guest_options, run,
                              select_guest)
from agent.errors import AgentError

PROG = "hpvmremove"
SPEC = "P:p:FQ"


def _main(argv: list[str]) -> int:
    opts = parse_guest_options(PROG, argv, SPEC)
    agent = open_agent(opts, argv)
    if opts.has("P") and opts.has("F") and \
            any(i.name == opts.get("P") for i in agent.invalid_guests()):
        # -F: "regardless of errors": a guest whose configuration is broken can be removed
        agent.remove_invalid_guest(opts.get("P"))
        return 0
    guest = select_guest(agent, opts)
    if agent.runtime(guest).state != OFF:
        raise AgentError("The guest is currently running, not able to remove.", "state")
    if not (opts.has("F") or opts.has("Q")) and \
            not confirm(PROG, f"Remove the virtual machine '{guest.name}'"):
        raise Declined()
    agent.remove_guest(guest)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    raise SystemExit(main())
