"""hpvmdevmgmt(1M): the device database of the VM Host and its guests.

    hpvmdevmgmt -l {all|server|rdev|gdev}[:entry-name | :depend:name | :attr=value] [-V] [-v]
    hpvmdevmgmt -a {server|rdev|gdev}:entry-name[:attr:name=value] [-F] [-V]
    hpvmdevmgmt -m {server|rdev|gdev}:entry-name:attr:name=value [-V]
    hpvmdevmgmt -d {server|rdev|gdev}:entry-name [-V]
    hpvmdevmgmt -d gdev:{all|entry-name}:depend:dependent-name [-V]
    hpvmdevmgmt -d {server|rdev|gdev}:entry-name:attr:attr-name [-V]
    hpvmdevmgmt -n gdev:oldentry-name:newentry-name0[,newentry-name1] [-V]
    hpvmdevmgmt -S size file-name [-V]
    hpvmdevmgmt -I [-V]
    hpvmdevmgmt -v

No option may be given twice. A wrong option, value or combination is one line on stderr,
exit 1, and nothing changes. `-F` (restrict a device a guest uses) is this product's addition.
"""
from __future__ import annotations

import sys

from agent.cli.common import Options, UsageError, open_agent, parse_options, run as run_command
from agent.devicedb import parse_entry_arg, parse_list_arg, parse_replace_arg

PROG = "hpvmdevmgmt"
FORMAT_VERSION = "1"
_ACTIONS = ("l", "a", "m", "d", "n", "S", "I")


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    """Options as {letter: value or True} plus 'state_dir', and the operands (the file name
    of -S). Raises UsageError."""
    parsed = parse_options(PROG, argv, "l:a:m:d:n:S:IvVF", allow_args=True)
    opts, rest = dict(parsed.values), list(parsed.args)
    for key in ("l", "a", "m", "d", "n", "S"):
        if key in opts and opts[key] == "":
            raise UsageError(f"Option -{key} requires a value")
    if parsed.state_dir is not None:
        opts["state_dir"] = parsed.state_dir
    actions = [a for a in _ACTIONS if a in opts]
    if len(actions) > 1:
        raise UsageError(f"Options -{actions[0]} and -{actions[1]} cannot be combined")
    action = actions[0] if actions else None
    if action is None and "v" not in opts:
        raise UsageError("Specify one of -l, -a, -m, -d, -n, -S, -I or -v")
    if action == "S":
        if len(rest) != 1:
            raise UsageError("Option -S requires a size and a file name: -S size file-name"
                             if not rest else f"Unexpected argument '{rest[1]}'")
    elif rest:
        raise UsageError(f"Unexpected argument '{rest[0]}'")
    if "F" in opts and action != "a":
        raise UsageError("Option -F is valid only with -a")
    return opts, rest


# --- rendering ------------------------------------------------------------------------------

def _kv(label: str, value) -> str:
    return f"{label:<17} : {value}".rstrip()


def render_entries(entries, verbose: bool, identity_of=None) -> str:
    if not verbose:
        return "\n".join(e.line() for e in entries)
    blocks = []
    for e in entries:
        attrs = ",".join(f"{k}={v}" for k, v in e.attrs.items())
        lines = [_kv("Entry name", e.name), _kv("Entry type", e.kind), _kv("Attributes", attrs),
                 _kv("Dependents", ", ".join(e.dependents)), _kv("Unique identifier", e.wwid)]
        if identity_of is not None and e.kind != "server":
            lines.append(_kv("Device identity", identity_of(e.name)))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# --- running ----------------------------------------------------------------------------------

def run(agent, opts: dict, rest: list[str], out, err) -> int:
    verbose = "V" in opts
    if "v" in opts:
        out.write(f"Version {FORMAT_VERSION}\n")
    if "l" in opts:
        query = parse_list_arg(opts["l"])
        entries = agent.list_devices(query)
        text = render_entries(entries, verbose, agent.device_identity)
        if text:
            out.write(text + "\n")
        return 0
    if "a" in opts:
        arg = parse_entry_arg(opts["a"], option="a")
        attr = (arg.attr_name, arg.attr_value) if arg.attr_name else None
        outcome = agent.add_device_entry(arg.kind, arg.name, attr, force="F" in opts)
        for w in outcome.warnings:
            err.write(f"{PROG}: Warning: {w}\n")
        return _done(outcome.value, verbose, out)
    if "m" in opts:
        arg = parse_entry_arg(opts["m"], option="m")
        return _done(agent.modify_device_entry(arg.kind, arg.name, arg.attr_name,
                                               arg.attr_value).value, verbose, out)
    if "d" in opts:
        arg = parse_entry_arg(opts["d"], option="d")
        if arg.depend is not None:
            hit = agent.delete_device_dependent(arg.kind, arg.name, arg.depend).value
            if verbose:
                out.write(render_entries(hit, False) + "\n")
            return 0
        if arg.attr_name is not None:
            return _done(agent.delete_device_attr(arg.kind, arg.name, arg.attr_name).value,
                         verbose, out)
        agent.delete_device_entry(arg.kind, arg.name)
        return 0
    if "n" in opts:
        old, new0, new1 = parse_replace_arg(opts["n"])
        return _done(agent.replace_device(old, new0, new1).value, verbose, out)
    if "S" in opts:
        entry = agent.create_backing_file(opts["S"], rest[0]).value
        return _done(entry, verbose, out)
    if "I" in opts:
        for path in agent.passthrough_devices():
            out.write(path + "\n")
        return 0
    return 0


def _done(entry, verbose: bool, out) -> int:
    if verbose and entry is not None:
        out.write(entry.line() + "\n")
    return 0


def main(argv: list[str] | None = None, *, agent=None, stdout=None, stderr=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)

    def body(args: list[str]) -> int:
        opts, rest = parse_args(args)
        _precheck(opts)
        if not any(a in opts for a in _ACTIONS):        # -v alone needs no state
            (stdout or sys.stdout).write(f"Version {FORMAT_VERSION}\n")
            return 0
        ag = agent or open_agent(Options(PROG, state_dir=opts.get("state_dir")), args)
        return run(ag, opts, rest, stdout or sys.stdout, stderr or sys.stderr)

    return run_command(PROG, argv, body)


def _precheck(opts: dict) -> None:
    """Parse the action's argument before touching the state, so a malformed one is refused
    without opening (or creating) anything."""
    if "l" in opts:
        parse_list_arg(opts["l"])
    for flag in ("a", "m", "d"):
        if flag in opts:
            parse_entry_arg(opts[flag], option=flag)
    if "n" in opts:
        parse_replace_arg(opts["n"])
    if "S" in opts:
        from agent.api.devices import parse_file_size
        parse_file_size(opts["S"])


if __name__ == "__main__":
    sys.exit(main())
