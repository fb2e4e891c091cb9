"""hpvmstop: stop a virtual machine (spec 01 §28, hpvmstop(1M)).

    hpvmstop {-P vm-name | -p vm-number | -a} [-h | -g] [-F] [-q] [-Q]

Graceful (-g, the default) or hard (-h). Asks `Stop the virtual machine '<name>'? [n/y]:`
unless -F or -Q. `-a` stops every running guest and needs -F. -q prints less.
"""
from __future__ import annotations

from agent.backends.base import OFF
from agent.cli.common import (Declined, UsageError, check_guest_selector, confirm, open_agent,
                              parse_options, run, select_guest)
from agent.errors import AgentError

PROG = "hpvmstop"
SPEC = "P:p:ahgFqQ"


def _main(argv: list[str]) -> int:
    opts = parse_options(PROG, argv, SPEC)
    opts.require_one("P", "p", "a")
    opts.exclusive("h", "g")
    check_guest_selector(opts)
    if opts.has("a") and not opts.has("F"):
        raise UsageError("Option -a requires -F")
    hard = opts.has("h")
    agent = open_agent(opts, argv)
    if opts.has("a"):
        out = agent.stop_all(hard=hard)
        if not opts.has("q"):
            for line in out.info:
                print(line)
        return 0
    guest = select_guest(agent, opts)
    if agent.runtime(guest).state == OFF:
        raise AgentError(f"The guest '{guest.name}' is not running.", "state")
    if not (opts.has("F") or opts.has("Q")) and \
            not confirm(PROG, f"Stop the virtual machine '{guest.name}'"):
        raise Declined()
    agent.stop_guest(guest, hard=hard, force=opts.has("F"))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    raise SystemExit(main())
