"""hpvmstart: start a virtual machine (spec 01 §25, hpvmstart(1M)).

    hpvmstart {-P vm-name | -p vm-number} [-F | -s] [-Q]

Every check is made against the guests running now; any problem refuses the start with the
guide's block ("These problems may prevent HPVM guest <name> from booting." / "hpvmstart:
Unable to continue."). -F skips the checks, -s only checks. -Q is silent mode: no trace.
"""
from __future__ import annotations

import sys

from agent.cli.common import (check_force_and_check_only, open_agent, parse_guest_options,
                              print_problems, run, select_guest)

PROG = "hpvmstart"
SPEC = "P:p:FsQ"


def _main(argv: list[str]) -> int:
    opts = parse_guest_options(PROG, argv, SPEC)
    check_force_and_check_only(opts)
    agent = open_agent(opts, argv)
    guest = select_guest(agent, opts)
    out = agent.start_guest(guest, force=opts.has("F"), check_only=opts.has("s"))
    if opts.has("s"):
        print_problems(PROG, guest.name, out.warnings, ending="booting", tail=None)
        return 1 if out.warnings else 0
    if not opts.has("Q"):
        for line in out.info:
            print(line)
    print(f"{PROG}: Successful start initiation of guest '{guest.name}'")
    sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    raise SystemExit(main())
