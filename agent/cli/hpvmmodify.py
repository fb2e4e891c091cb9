"""hpvmmodify: rename a virtual machine or change its attributes (spec 01 §26, hpvmmodify(1M)).

    hpvmmodify {-P vm-name | -p vm-number} [-F | -s] [-N new-vm-name] [-l vm-label]
               [-B start-attr] [-O os-type[:version]] [-c number-vcpus] [-e percent | -E cycles]
               [-r amount] [-R amount] [-g [+|-]group[:{admin|oper}]] [-u [+|-]user[:{admin|oper}]]
               [-a rsrc] [-m rsrc] [-d rsrc] [-i {SG|SG-pkgname|GWLM|NONE}] [-j {0|1}]
               [-x keyword=value]
    hpvmmodify -A {-P vm-name | -p vm-number} [-F] [-l vm-label] [-B start-attr]
               [-e percent | -E cycles] [-a rsrc] [-m rsrc] [-d rsrc] [-x keyword=value]
"""
from __future__ import annotations

import sys

from agent.cli.common import (check_force_and_check_only, open_agent, parse_guest_options,
                              print_problems, run, select_guest)
from agent.cli.guestargs import build_changes
from agent.errors import DriverUnavailable

PROG = "hpvmmodify"
SPEC = "P:p:AFsN:l:B:O:c:e:E:r:R:g:u:a:m:d:i:j:x:"


def _main(argv: list[str]) -> int:
    opts = parse_guest_options(PROG, argv, SPEC, repeatable="amdgux")
    check_force_and_check_only(opts)
    changes = build_changes(opts, "modify")
    agent = open_agent(opts, argv)
    guest = select_guest(agent, opts)
    try:
        out = agent.modify_guest(guest, changes, force=opts.has("F"),
                                 check_only=opts.has("s"), active_only=opts.has("A"))
    except DriverUnavailable as exc:
        # the guide's three lines (spec 03 §6.9), ending "Unable to modify the guest."
        for line in exc.lines:
            print(f"{PROG}: {line}", file=sys.stderr)
        print(f"{PROG}: Unable to modify the guest.", file=sys.stderr)
        return 1
    for line in out.info:
        print(line)
    print_problems(PROG, out.value.name, out.warnings, ending="starting", tail=None)
    sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    raise SystemExit(main())
