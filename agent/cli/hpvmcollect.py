"""hpvmcollect(1M): collect a guest's and its VM Host's state into one archive.

    hpvmcollect {-P vm-name | -p vm-number} [-c [-n crash-dump]] [-f] [-g] [-l]
                [-b report-number] [-d directory] [-s host]          (VM Host)
    hpvmcollect [-c [-n crash-dump]] [-f] [-l] [-b report-number]
                [-d directory] [-s host]                             (guest)
    hpvmcollect -h

On the VM Host (its state folder has host.toml) the guest is required (DECISIONS §1.12):
`-P name`, `-p number`, or the name alone as the guide's chapter 12 example writes it.
Without a guest on a machine that is not a VM Host, the guest form collects this machine.
Each step prints as it runs; the guide's trailer and the archive path follow. Exit 0, or 1
with one message (and no archive left behind) for any error.
"""
from __future__ import annotations

import os
import sys

from agent.cli.common import UsageError, open_agent, parse_options, run
from agent.collect import (DISK_FULL_LINES, CollectError, CollectRequest, DiskFullError,
                           collect_guest, dotted, header_lines)
from agent.errors import AgentError

PROG = "hpvmcollect"
CRASH_DIR_ENV = "VMPROVIDER_CRASH_DIR"     # where -c looks for crash dumps (tests, odd hosts)

USAGE = f"""\
Usage (VM Host): {PROG} {{-P vm_name | -p vm_number}} [-c] [-f] [-g] [-h] [-l]
                   [-b bug-report-number] [-d directory] [-n crash-dump-number] [-s host]
Usage (guest):   {PROG} [-c] [-f] [-h] [-l] [-b bug-report-number] [-d directory]
                   [-n crash-dump-number] [-s host]
  -P vm_name    guest to collect, by name (VM Host only)
  -p vm_number  guest to collect, by VM number (VM Host only)
  -c            include the latest crash dump (the archive is then a .tar)
  -n number     the crash dump to include instead of the latest (only with -c)
  -b label      name the archive <label> instead of <name>_<date>
  -d directory  create hpvmcollect_archive in directory instead of the current directory
  -f            replace an archive of the same name (default: keep it, time-stamp the new one)
  -l            leave the collection as a directory instead of an archive
  -s host       copy the archive with scp to host, host:path, or to a local path
  -g            delete the guest's debug memory files once archived (VM Host only)
  -h            this help
"""


class _Printer:
    """Prints the guide's lines as the collection progresses (one line per step)."""

    def __init__(self, out):
        self.out = out
        self.open_line = False
        self.finished = False

    def __call__(self, ev) -> None:
        if ev.event == "begin":
            self.out.write("".join(line + "\n" for line in header_lines(ev.form, ev.subject)))
        elif ev.event == "step":
            if ev.trailer and not self.finished:
                self.out.write("Finished with the collection\n")
                self.finished = True
            self.out.write(dotted(ev.label))
            self.open_line = True
        else:
            self.out.write(f" {ev.status}\n")
            self.open_line = False
        self.out.flush()

    def break_line(self) -> None:
        if self.open_line:
            self.out.write("\n")
            self.out.flush()
            self.open_line = False


def parse_args(argv: list[str]):
    opts = parse_options(PROG, argv, "P:p:cn:lb:fd:s:gh", allow_args=True)
    if opts.has("h"):
        return opts, None
    name = opts.get("P")
    if opts.args:
        if opts.has("P") or opts.has("p"):
            raise UsageError(f"Unexpected argument '{opts.args[0]}': the guest is already "
                             "given with -P or -p")
        if len(opts.args) > 1:
            raise UsageError(f"Unexpected argument '{opts.args[1]}'")
        name = opts.args[0]
    opts.exclusive("P", "p")
    if name is not None and (not name or name.startswith("-")):
        raise UsageError(f"Invalid virtual machine name '{name}'")
    for letter, what in (("b", "report number"), ("d", "directory"), ("s", "host")):
        if opts.has(letter) and not opts.get(letter):
            raise UsageError(f"Option -{letter} requires a {what}")
    request = CollectRequest(
        guest_name=name,
        guest_number=opts.int("p", "VM number", lo=1) if opts.has("p") else None,
        crash=opts.has("c"),
        crash_number=opts.int("n", "crash dump number", lo=0) if opts.has("n") else None,
        label=opts.get("b"), force=opts.has("f"), directory=opts.get("d"),
        keep_directory=opts.has("l"), send_to=opts.get("s"), purge_debug=opts.has("g"))
    return opts, request


def _is_vm_host(opts) -> bool:
    from agent.hostfacts import HOST_FILE
    from agent.statedir import resolve_state_dir
    return (resolve_state_dir(opts.state_dir, create=False) / HOST_FILE).is_file()


def _main(argv: list[str]) -> int:
    opts, request = parse_args(argv)
    if request is None:
        sys.stdout.write(USAGE)
        return 0
    host_form = request.guest_name is not None or request.guest_number is not None
    if not host_form and _is_vm_host(opts):
        raise UsageError("On the VM Host, give the guest with -P vm-name or -p vm-number")
    crash_dir = os.environ.get(CRASH_DIR_ENV) or None
    printer = _Printer(sys.stdout)
    try:
        if host_form:
            agent = open_agent(opts, argv)
            result = agent.collect(request, progress=printer, crash_dir=crash_dir)
        else:
            result = collect_guest(request, progress=printer, crash_dir=crash_dir)
    except DiskFullError as exc:
        printer.break_line()
        for line in DISK_FULL_LINES:
            print(line, file=sys.stderr)
        print(f"{PROG}: {exc.lines[-1]}", file=sys.stderr)
        return 1
    except AgentError as exc:
        printer.break_line()
        if exc.kind == "not_found":
            # An unknown guest or crash dump is bad input: its one line.
            raise CollectError(exc.lines, "invalid") from None
        raise
    sys.stdout.write(f"The collection is\n\"{result.shown}\"\n")
    sys.stdout.flush()
    if result.remote_error:
        print(f"{PROG}: {result.remote_error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    sys.exit(main())
