"""hpvmstatus(1M): the status of the VM Host and its guests.

    hpvmstatus [-P vm-name | -p vm-number] [ -V | -X | -M ] [-v]
    hpvmstatus -D|-d { -P vm-name | -p vm-number } [ -V | -X | -M ] [-v]
    hpvmstatus -e|-r [ -P vm-name | -p vm-number ] [ -V | -X | -M ] [-v]
    hpvmstatus -m|-S|-s [ -M | -X ]

`-e` and `-r` take an optional selector (spec 05 §6.2). Every option may be given once; a
wrong option or combination is one line on stderr and exit 1.
"""
from __future__ import annotations

import sys

from agent.api import views as v
from agent.cli import status_text as text
from agent.cli.common import UsageError, open_agent, parse_options, run
from agent.errors import AgentError

PROG = "hpvmstatus"
_VIEWS = ("D", "e", "r", "d", "S", "s", "m")
_FORMS = ("V", "M", "X")
_NEEDS_GUEST = ("D", "d")
_HOST_ONLY = ("S", "s", "m")


def parse_args(argv: list[str]):
    """Options as {letter: value or True} plus 'view', 'form' and 'state_dir'.
    Raises UsageError (one line) for anything the man page does not allow."""
    parsed = parse_options(PROG, argv, "vVMXP:p:DerdSsm")
    opts: dict = dict(parsed.values)
    opts["state_dir"] = parsed.state_dir
    parsed.exclusive(*_FORMS)
    parsed.exclusive("P", "p")
    views = [x for x in _VIEWS if x in opts]
    if len(views) > 1:
        raise UsageError(f"Options -{views[0]} and -{views[1]} cannot be combined")
    view = views[0] if views else None
    if view in _NEEDS_GUEST and "P" not in opts and "p" not in opts:
        raise UsageError(f"Option -{view} requires -P vm-name or -p vm-number")
    if view in _HOST_ONLY:
        for bad in ("P", "p", "V", "v"):
            if bad in opts:
                raise UsageError(f"Option -{bad} cannot be used with -{view}")
    if "P" in opts and not opts["P"]:
        raise UsageError("Option -P requires a virtual machine name")
    if "p" in opts:
        opts["p"] = parsed.int("p", "VM number", lo=1)
    opts["view"] = view
    opts["form"] = next((f for f in _FORMS if f in opts), None)
    opts["_parsed"] = parsed
    return opts


def render(agent, opts: dict) -> list[str] | str:
    """The output of one invocation: text lines, or (for -M / -X) the document text."""
    name, number = opts.get("P"), opts.get("p")
    selected = name is not None or number is not None
    view, form = opts["view"], opts["form"]
    machine = form in ("M", "X")

    if view is None:
        if not selected and not agent.guests() and not agent.invalid_guests():
            raise AgentError("No guest information is available.", kind="not_found")
        if form is None and not selected:
            objs = agent.status_summary()
        else:
            objs = agent.status_details(name=name, number=number)
    elif view == "D":
        objs = [agent.status_deferred(name=name, number=number)]
    elif view == "d":
        objs = [agent.status_devices(name=name, number=number)]
    elif view == "s":
        objs = [agent.host_resources()]
    elif view == "r":
        objs = agent.resource_allocation(name=name, number=number)
    elif view == "e":
        objs = agent.event_log(name=name, number=number)
    elif view == "S":
        objs = [agent.scheduler_mode()]
    else:
        objs = [agent.multi_server()]

    if machine:
        from agent import formats
        if opts.get("v"):
            objs = [v.version_info()] + list(objs)
        if form == "M":
            return formats.write_machine(objs)
        return formats.write_xml(PROG, objs)

    lines: list[str] = []
    if opts.get("v"):
        ver = v.version_info()
        lines.append(f"{PROG}: Version {ver.release} ({ver.build})")
    verbose = form == "V"
    if view is None:
        if objs and isinstance(objs[0], v.SummaryRow):
            lines += text.summary(objs)
        else:
            lines += text.details(objs, verbose=verbose)
    elif view == "D":
        lines += text.details(objs, verbose=verbose)
    elif view == "d":
        lines += text.devices(objs[0])
    elif view == "s":
        lines += text.host_resources(objs[0])
    elif view == "r":
        lines += text.resources(objs, per_vcpu=selected or verbose)
    elif view == "e":
        lines += text.events(objs)
    elif view == "S":
        lines += text.scheduler(objs[0])
    else:
        lines += text.multi_server(objs[0])
    return lines


def _main(argv: list[str]) -> int:
    opts = parse_args(argv)
    agent = open_agent(opts["_parsed"], argv)
    try:
        out = render(agent, opts)
    except AgentError as exc:
        if exc.kind == "not_found" and ("P" in opts or "p" in opts):
            # An unknown guest is bad input: its one line, no "Unable to continue."
            raise AgentError(exc.lines, "invalid") from None
        raise
    if isinstance(out, str):
        sys.stdout.write(out)
    else:
        sys.stdout.write("".join(line + "\n" for line in out))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    sys.exit(main())
