"""hpvmmgmt(1M): dynamic data of the guest it runs in (spec 03 §6.4, spec 04 §9).

    hpvmmgmt [-l type] [ -V | -M | -X ] [-v]
    hpvmmgmt [-l type] [-t interval] [-V] [-v]          type = ram
    hpvmmgmt [-v] -x ram_target={0 | start | amount}

The real command talks to the dynamic memory driver of its own guest. Here it talks to the
agent for one guest and proves which one with that guest's credential, which the host makes
when it sets `dynamic_memory_control=1` (docs/user-guide/dynamic-memory.md):

    --credential FILE   the credential (else $HPVMMGMT_CREDENTIAL); must not be readable
                        by group or others
    --guest NAME|UUID   the guest this hpvmmgmt runs in (else $HPVMMGMT_GUEST, else the
                        guest the credential names); a credential of another guest is refused
    --count N           with -t: stop after N samples (default: until interrupted)
    --state-dir DIR     the host's state folder, as for the hpvm* commands

Without the driver in the guest it answers with the guide's lines, verbatim.
"""
from __future__ import annotations

import getopt
import os
import stat
import sys
import time

from agent.cli.common import UsageError, err, run
from agent.errors import AgentError

PROG = "hpvmmgmt"
MAX_INTERVAL = 3600        # -t is clamped to one sample an hour at the slowest (AMBIG-26)
RULE = "=" * 39
LABEL = 22
ENV_CREDENTIAL = "HPVMMGMT_CREDENTIAL"
ENV_GUEST = "HPVMMGMT_GUEST"


class _Stop(Exception):
    """Lines to print as they are, then `hpvmmgmt: Unable to continue.` (exit 1)."""

    def __init__(self, lines: list[str]):
        self.lines = lines


def parse_args(argv: list[str]) -> dict:
    try:
        pairs, rest = getopt.getopt(argv, "l:t:vVMXx:",
                                    ["credential=", "guest=", "count=", "state-dir="])
    except getopt.GetoptError as exc:
        opt = exc.opt
        dash = "--" if len(opt) > 1 else "-"
        if "requires argument" in exc.msg:
            raise UsageError(f"Option {dash}{opt} requires a value") from None
        raise UsageError(f"Invalid option {dash}{opt}") from None
    if rest:
        raise UsageError(f"Unexpected argument '{rest[0]}'")
    opts: dict = {"x": []}
    for flag, value in pairs:
        key = flag.lstrip("-")
        if key == "x":                       # only -x may repeat (hpvmmgmt(1M) OPTIONS)
            opts["x"] += [v for v in value.split(":")]
            continue
        if key in opts:
            raise UsageError(f"Option {flag} was given more than once")
        opts[key] = value if flag in ("-l", "-t", "--credential", "--guest", "--count",
                                      "--state-dir") else True
    forms = [f"-{f}" for f in "VMX" if f in opts]
    if len(forms) > 1:
        raise UsageError(f"Options {' and '.join(forms)} are mutually exclusive")
    if "l" in opts and opts["l"] != "ram":
        raise UsageError(f"Invalid type '{opts['l']}' for option -l: expected ram")
    if "t" in opts:
        if "l" not in opts:
            raise UsageError("Option -t requires -l type")
        if not opts["t"].isdigit() or int(opts["t"]) < 1:
            raise UsageError(f"Invalid interval '{opts['t']}' for option -t: expected a whole "
                             "number of seconds, at least 1")
        opts["t"] = min(int(opts["t"]), MAX_INTERVAL)
    if "count" in opts:
        if "t" not in opts:
            raise UsageError("Option --count requires -t interval")
        if not opts["count"].isdigit() or int(opts["count"]) < 1:
            raise UsageError(f"Invalid count '{opts['count']}' for option --count")
        opts["count"] = int(opts["count"])
    target = None
    for item in opts["x"]:
        key, sep, value = item.partition("=")
        if key != "ram_target" or not sep:
            raise UsageError(f"Invalid keyword '{item}' for option -x: expected "
                             "ram_target={0|start|amount}")
        if target is not None:
            raise UsageError("The -x keyword 'ram_target' is given more than once")
        target = value
    if target is not None:
        from agent.api.workload import _ram_target_value
        try:
            target = _ram_target_value(target)
        except AgentError as exc:
            raise UsageError(exc.lines[0]) from None
        if "l" in opts or any(f in opts for f in "VMX"):
            raise UsageError("Option -x cannot be combined with -l, -V, -M or -X")
    opts["target"] = target
    return opts


def read_credential(path: str) -> tuple[str, str]:
    """(guest uuid, token) from the credential file, which only its owner may read."""
    from agent.api.workload import parse_credential
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise AgentError(f"Cannot open the credential file {path}: {exc.strerror}.",
                         "denied") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AgentError(f"The credential file {path} is not a regular file.", "denied")
        if st.st_mode & 0o077:
            raise AgentError(f"The credential file {path} must not be readable by group or "
                             "others (chmod 600).", "denied")
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    return parse_credential(data)


def _session(agent, opts):
    path = opts.get("credential") or os.environ.get(ENV_CREDENTIAL)
    if not path:
        raise AgentError("No guest credential: give --credential FILE or set "
                         f"{ENV_CREDENTIAL}.", "denied")
    named, token = read_credential(path)
    who = opts.get("guest") or os.environ.get(ENV_GUEST)
    uuid = named
    if who:
        try:
            uuid = agent.find_by_uuid(who).uuid
        except AgentError:
            uuid = agent.find_guest(name=who).uuid
    return agent.guest_session(uuid, token)


def _check_kit(agent, session) -> str:
    """The guest kit is hpvmmgmt itself: of another release it does not work (spec 04 §9
    DIAGNOSTICS)."""
    from agent.api.views import PRODUCT_RELEASE
    from agent.backends.ivm import HOST_DM_VERSION, kit_matches
    kit = agent.guest_kit_version(session)
    if kit and not kit_matches(kit):
        raise AgentError(f"hpvmmgmt ({kit}) and Integrity VM ({HOST_DM_VERSION}) are at "
                         "different revision levels.", "failed")
    return kit or PRODUCT_RELEASE


def _line(label: str, value) -> str:
    return f"{label.ljust(LABEL)}: {value}"


def listing(dm, *, verbose: bool) -> list[str]:
    """The guide's `hpvmmgmt -l ram` (and `-V -l ram`) layout."""
    mb = lambda v: f"{v} MB"          # noqa: E731
    out = ["[Dynamic Memory Information]", RULE,
           _line("Type", dm.type), _line("Current memory", mb(dm.current_mb)),
           _line("Target memory", mb(dm.target_mb)),
           _line("Comfortable minimum", mb(dm.comfortable_min_mb))]
    if verbose:
        out += [_line("Minimum memory", mb(dm.min_mb) if dm.min_mb is not None else ""),
                _line("Maximum memory", mb(dm.max_mb)),
                _line("Boot memory", mb(dm.boot_mb)), _line("Free memory", mb(dm.free_mb)),
                _line("Available memory", mb(dm.available_mb)),
                _line("Memory pressure", dm.pressure),
                _line("Memory chunksize", f"{dm.chunk_kb} KB"),
                "Driver Mode(s): " + " ".join(dm.driver_modes)]
    return [line.rstrip() for line in out]


def summary() -> list[str]:
    """`hpvmmgmt` alone: the kinds of data this guest may see and change."""
    return ["Type    Guest Control", "======  =============", "ram     yes"]


def _memory(agent, session):
    try:
        return agent.guest_view(session)
    except AgentError as exc:
        if exc.kind == "failed":
            raise _Stop(exc.lines) from None
        raise


def _main(argv: list[str], *, sleep=time.sleep, agent=None) -> int:
    opts = parse_args(argv)
    if agent is None:
        from agent.api import Agent
        agent = Agent(opts.get("state-dir"), backend=os.environ.get("VMPROVIDER_BACKEND", "ivm"))
        agent.command = " ".join([PROG] + list(argv))
    session = _session(agent, opts)
    version = _check_kit(agent, session)
    out = sys.stdout
    if opts.get("v"):
        out.write(f"{PROG}: Version {version}\n")
    if opts["target"] is not None:
        try:
            res = agent.guest_set_memory_target(session, opts["target"])
        except AgentError as exc:
            if exc.kind == "failed":
                raise _Stop(exc.lines) from None
            raise
        out.write("".join(line + "\n" for line in res.info))
        return 0
    if "l" not in opts:
        if opts.get("v") and not any(f in opts for f in "VMX"):
            return 0
        out.write("".join(line + "\n" for line in summary()))
        if opts.get("V"):
            out.write("\nram_target={0 | start | amount}\n")
        return 0
    samples = 0
    while True:
        view = _memory(agent, session)
        dm = view.dynmem
        if opts.get("M") or opts.get("X"):
            # the guest's detailed attributes and resources, in hpvmstatus' formats
            from agent import formats
            text = formats.write_machine([view]) if opts.get("M") else \
                formats.write_xml(PROG, [view])
            out.write(text)
        else:
            out.write("".join(line + "\n" for line in listing(dm, verbose=bool(opts.get("V")))))
        out.flush()
        samples += 1
        if "t" not in opts or samples >= opts.get("count", float("inf")):
            return 0
        sleep(opts["t"])
        out.write("\n")


def main(argv: list[str] | None = None, *, sleep=time.sleep, agent=None) -> int:
    def body(args):
        try:
            return _main(args, sleep=sleep, agent=agent)
        except _Stop as stop:
            for line in stop.lines:
                print(line, file=sys.stderr)
            err(PROG, "Unable to continue.")
            return 1
    return run(PROG, argv, body)


if __name__ == "__main__":
    raise SystemExit(main())
