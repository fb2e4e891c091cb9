"""hpvmmodel: control the embedded Integrity VM model (docs/model-control.md).

A real guest holds facts no host command sets: whether an OS is installed, which guest kit
runs in it, how much memory its work needs, whether it hangs. The `ivm` model keeps them per
guest; this command sets them, for demonstrations and tests.

    hpvmmodel set  {-P vm-name | -p vm-number} [-O os[:version] | -O none] [-K kit | -K none]
                   [-W workload-size] [-U cpu-percent | -U entitlement]
    hpvmmodel attn {-P vm-name | -p vm-number}        the guest stops answering: On (ATTN!)
    hpvmmodel recover {-P vm-name | -p vm-number}     it answers again
    hpvmmodel show {-P vm-name | -p vm-number}        the model facts and the derived state
    hpvmmodel boot                                    the host boots: start every auto guest
"""
from __future__ import annotations

import sys

from agent.cli.common import (UsageError, open_agent, parse_guest_options, parse_options, run,
                              select_guest)
from agent.cli.guestargs import OS_NAMES, _size
from agent.errors import AgentError
from agent.rules import label_problem

PROG = "hpvmmodel"
ACTIONS = ("set", "attn", "recover", "show", "boot")
_KIT_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in ACTIONS:
        given = f" '{argv[0]}'" if argv else ""
        raise UsageError(f"Unknown action{given}: expected one of {', '.join(ACTIONS)}")
    action, rest = argv[0], argv[1:]
    if action == "boot":
        opts = parse_options(PROG, rest, "")
        agent = open_agent(opts, argv)
        out = agent.boot_host()
        for line in out.info:
            print(line)
        for line in out.warnings:
            print(f"{PROG}: {line}", file=sys.stderr)
        return 0
    spec = "P:p:O:K:W:U:" if action == "set" else "P:p:"
    opts = parse_guest_options(PROG, rest, spec)
    os_type = version = kit = workload = cpu_percent = None
    if action == "set":
        if not any(opts.has(x) for x in "OKWU"):
            raise UsageError("Give at least one of -O, -K, -W or -U")
        if opts.has("O"):
            kind, _, version = opts.get("O").partition(":")
            if kind.lower() == "none":
                os_type, version = "", ""
            else:
                os_type = OS_NAMES.get(kind.lower())
                if os_type is None:
                    raise UsageError(f"Invalid OS type '{kind}' for option -O: expected hpux, "
                                     "windows, linux or none")
                problem = label_problem(version, "OS version")
                if problem:
                    raise UsageError(f"Invalid value for option -O: {problem}")
        if opts.has("K"):
            kit = opts.get("K")
            if kit.lower() == "none":
                kit = ""
            elif not kit or not set(kit) <= _KIT_CHARS or len(kit) > 64:
                raise UsageError(f"Invalid guest kit version '{kit}' for option -K")
        if opts.has("W"):
            workload = _size(opts.get("W"), "-W")
        if opts.has("U"):
            cpu_percent = _cpu_percent(opts.get("U"))
    agent = open_agent(opts, argv)
    guest = select_guest(agent, opts)
    if action == "show":
        facts = agent.model_facts(guest)
        rt = agent.runtime(guest)
        print(f"Guest               : {guest.name}")
        print(f"State               : {rt.state}")
        print(f"Installed OS        : {(facts.os + ' ' + facts.os_version).strip() or 'none'}")
        print(f"Guest kit           : {facts.kit or 'none'}")
        print(f"Workload            : {facts.workload_mb} MB")
        cpu_text = "entitlement" if facts.cpu_percent is None else f"{facts.cpu_percent:g}%"
        print(f"CPU demand per vCPU : {cpu_text}")
        try:
            print(f"Guest credential    : {agent.guest_credential_file(guest)}")
        except AgentError:
            print("Guest credential    : none (dynamic_memory_control=0)")
        return 0
    attention = {"attn": True, "recover": False}.get(action)
    agent.set_guest_model(guest, os=os_type, os_version=version, kit=kit,
                          workload_mb=workload, attention=attention, cpu_percent=cpu_percent)
    return 0


def _cpu_percent(text: str):
    """-U: percent of one physical CPU each vCPU's work asks (0-100), or `entitlement`."""
    if text.lower() == "entitlement":
        return "entitlement"
    raw = text[:-1] if text.endswith("%") else text
    try:
        value = float(raw)
    except ValueError:
        value = -2.0
    if not 0.0 <= value <= 100.0 or raw.strip() != raw or raw.lower() in ("nan", "inf"):
        raise UsageError(f"Invalid CPU demand '{text}' for option -U: expected a percentage "
                         "from 0 to 100, or entitlement")
    return value


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    raise SystemExit(main())
