"""hpvmcreate: create a virtual machine (spec 01 §23, hpvmcreate(1M)).

    hpvmcreate -P vm-name [-F | -s] [-l vm-label] [-B start-attr] [-O os-type[:version]]
               [-c number-vcpus] [-e percent | -E cycles] [-r amount] [-g group[:{admin|oper}]]
               [-u user[:{admin|oper}]] [-a rsrc] [-i {SG|SG-pkgname|GWLM|NONE}] [-j {0|1}]
               [-x keyword=value]

`-b start-attr` is accepted as an alias of `-B` (DECISIONS §1.1).
"""
from __future__ import annotations

from agent.cli.common import (UsageError, check_force_and_check_only, open_agent,
                              parse_options, print_problems, run)
from agent.cli.guestargs import build_changes, check_vm_name

PROG = "hpvmcreate"
SPEC = "P:Fsl:B:b:O:c:e:E:r:g:u:a:i:j:x:"


def _main(argv: list[str]) -> int:
    opts = parse_options(PROG, argv, SPEC, repeatable="agux")
    if not opts.has("P"):
        raise UsageError("Option -P vm-name is required")
    name = check_vm_name(opts.get("P"))
    check_force_and_check_only(opts)
    opts.exclusive("B", "b")
    changes = build_changes(opts, "create")
    agent = open_agent(opts, argv)
    out = agent.create_guest(name, changes, force=opts.has("F"), check_only=opts.has("s"))
    print_problems(PROG, name, out.warnings, ending="starting",
                   tail=None if opts.has("s") else "The creation process is continuing.")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    raise SystemExit(main())
