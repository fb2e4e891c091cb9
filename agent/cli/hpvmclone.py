"""hpvmclone: create a virtual machine as a copy of another (spec 01 §27, hpvmclone(1M)).

    hpvmclone {-P vm-name | -p vm-number} -N clone-name [-F | -s] [-l vm-label]
              [-B start-attr] [-O os-type[:version]] [-c number-vcpus] [-e percent | -E cycles]
              [-r amount] [-S] [-g [+|-]group[:{admin|oper}]] [-u [+|-]user[:{admin|oper}]]
              [-a rsrc] [-m rsrc] [-d rsrc] [-b rsrc] [-x keyword=value]

Omitted options inherit from the source; `-x mac_address` and `-x serial_number` default to
`new` (DECISIONS §1.7). `-b` names a source storage device to duplicate for the clone.
"""
from __future__ import annotations

from agent.cli.common import (UsageError, check_force_and_check_only, check_vm_name,
                              open_agent, parse_guest_options, print_problems, run,
                              select_guest)
from agent.cli.guestargs import build_changes

PROG = "hpvmclone"
SPEC = "P:p:N:Fsl:B:O:c:e:E:r:Sg:u:a:m:d:b:x:"


def _main(argv: list[str]) -> int:
    opts = parse_guest_options(PROG, argv, SPEC, repeatable="amdgubx")
    if not opts.has("N"):
        raise UsageError("Option -N clone-name is required")
    new_name = check_vm_name(opts.get("N"), "-N")
    check_force_and_check_only(opts)
    changes = build_changes(opts, "clone")
    agent = open_agent(opts, argv)
    source = select_guest(agent, opts)
    out = agent.clone_guest(source, new_name, changes, force=opts.has("F"),
                            check_only=opts.has("s"))
    print_problems(PROG, new_name, out.warnings, ending="starting", tail=None)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    raise SystemExit(main())
