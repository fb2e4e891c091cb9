"""What every hpvm* command shares: options, guest selection, messages, prompts, exit codes.

Options follow HP-UX getopt conventions, as the guide writes them: `-P compass1` or
`-Pcompass1`, a value may begin with `-` (`-u -user` removes a user), and only the options a
command declares repeatable may be given twice (hpvmcreate(1M) DIAGNOSTICS). A malformed
command line is one line on stderr and exit 1; nothing is changed.

Messages: `<command>: <text>` on stderr. An operational refusal ends with the guide's
`<command>: Unable to continue.`; bad input is the single line that says what is wrong.

    def main(argv=None):
        return run("hpvmstart", argv, _main)
"""
from __future__ import annotations

import getopt
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Callable

from agent.errors import AgentError
from agent.rules import format_problem_block, name_problem, shown

EXIT_OK = 0
EXIT_ERROR = 1


class UsageError(AgentError):
    """A malformed command line: one line, exit 1."""

    def __init__(self, message: str):
        super().__init__(message, "invalid")


class Declined(Exception):
    """The user answered no (or nothing) to a confirmation prompt."""


@dataclass
class Options:
    """Parsed options: `values[letter]` is the value (a list for repeatable options, True for
    flags); `state_dir` is `--state-dir`."""

    prog: str
    values: dict = field(default_factory=dict)
    state_dir: str | None = None
    args: list = field(default_factory=list)

    def has(self, letter: str) -> bool:
        return letter in self.values

    def get(self, letter: str, default=None):
        return self.values.get(letter, default)

    def all(self, letter: str) -> list:
        v = self.values.get(letter, [])
        return v if isinstance(v, list) else [v]

    def int(self, letter: str, what: str, *, lo: int | None = None, hi: int | None = None) -> int:
        raw = self.values[letter]
        text = raw.strip()
        if not text.isdigit():
            raise UsageError(f"Invalid {what} '{raw}' for option -{letter}: expected a whole number")
        n = int(text)
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            bounds = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise UsageError(f"Invalid {what} '{raw}' for option -{letter}: must be {bounds}")
        return n

    def exclusive(self, *letters: str) -> None:
        given = [f"-{x}" for x in letters if x in self.values]
        if len(given) > 1:
            raise UsageError(f"Options {' and '.join(given)} are mutually exclusive")

    def require_one(self, *letters: str) -> None:
        given = [x for x in letters if x in self.values]
        names = " or ".join(f"-{x}" for x in letters)
        if not given:
            raise UsageError(f"One of {names} is required")
        self.exclusive(*letters)


def parse_options(prog: str, argv: list[str], spec: str, *, repeatable: str = "",
                  allow_args: bool = False) -> Options:
    """Parse `argv` with getopt `spec` (e.g. "P:p:FsQ"); letters in `repeatable` may repeat."""
    try:
        pairs, rest = getopt.getopt(argv, spec, ["state-dir="])
    except getopt.GetoptError as exc:
        opt = exc.opt
        dash = "--" if len(opt) > 1 else "-"
        if "requires argument" in exc.msg:
            raise UsageError(f"Option {dash}{opt} requires a value") from None
        if "must not have an argument" in exc.msg:
            raise UsageError(f"Option {dash}{opt} takes no value") from None
        if opt.startswith("-") or len(opt) > 1:
            raise UsageError(f"Invalid option --{opt.lstrip('-')}") from None
        raise UsageError(f"Invalid option -{opt}") from None
    opts = Options(prog)
    for flag, value in pairs:
        if flag == "--state-dir":
            if opts.state_dir is not None:
                raise UsageError("Option --state-dir was given more than once")
            if not value:
                raise UsageError("Option --state-dir requires a value")
            opts.state_dir = value
            continue
        letter = flag[1:]
        takes_value = f"{letter}:" in spec
        if letter in repeatable:
            opts.values.setdefault(letter, []).append(value)
            continue
        if letter in opts.values:
            raise UsageError(f"Option -{letter} was given more than once")
        opts.values[letter] = value if takes_value else True
    if rest and not allow_args:
        raise UsageError(f"Unexpected argument '{rest[0]}'")
    opts.args = rest
    return opts


def open_agent(opts: Options, argv: list[str]):
    """The Agent on `--state-dir` (else VMPROVIDER_STATE_DIR, else the default), with the
    command line recorded for the per-guest command.log."""
    from agent.api import Agent
    backend = os.environ.get("VMPROVIDER_BACKEND", "ivm")
    agent = Agent(opts.state_dir, backend=backend)
    agent.command = " ".join(shlex.quote(a) for a in [opts.prog] + list(argv))
    return agent


def check_vm_name(name: str, option: str = "-P") -> str:
    """`name` when it is a valid VM name, else the one line saying why (for `option`)."""
    problem = name_problem(name)
    if problem:
        raise UsageError(f"Invalid value for option {option}: {problem}")
    return name


def check_guest_selector(opts: Options) -> None:
    """A given -P must be a valid name and -p a VM number: checked before the agent opens."""
    if opts.has("P"):
        check_vm_name(opts.get("P"))
    if opts.has("p"):
        opts.int("p", "VM number", lo=1)


def parse_guest_options(prog: str, argv: list[str], spec: str, *,
                        repeatable: str = "") -> Options:
    """The opening of a command on one guest: its options, exactly one of -P/-p, both
    well formed. The command's own checks follow, then `open_agent` and `select_guest`
    (which the commands call through their own module, where tests replace `open_agent`)."""
    opts = parse_options(prog, argv, spec, repeatable=repeatable)
    opts.require_one("P", "p")
    check_guest_selector(opts)
    return opts


def select_guest(agent, opts: Options, *, required: bool = True):
    """The guest named by -P or numbered by -p (exactly one), or None when neither was
    given and `required` is False."""
    if not required and not opts.has("P") and not opts.has("p"):
        return None
    opts.require_one("P", "p")
    if opts.has("P"):
        return agent.find_guest(name=opts.get("P"))
    return agent.find_guest(number=opts.int("p", "VM number", lo=1))


def check_force_and_check_only(opts: Options) -> None:
    """-F (skip checks) and -s (check only) exclude each other (DECISIONS §1.6)."""
    opts.exclusive("F", "s")


def err(prog: str, line: str) -> None:
    print(f"{prog}: {shown(line)}", file=sys.stderr)


def print_error(prog: str, exc: AgentError) -> None:
    """Bad input: its one line. A refusal: its lines, then `<prog>: Unable to continue.`"""
    for line in exc.lines:
        if line.startswith(f"{prog}: ") or line.startswith("HPVM guest ") \
                or line.startswith("    Warning") or line.startswith("These problems"):
            print(shown(line), file=sys.stderr)
        else:
            err(prog, line)
    if exc.kind != "invalid":
        err(prog, "Unable to continue.")


def print_problems(prog: str, name: str, warnings: list[str], *, ending: str,
                   tail: str | None) -> None:
    """The guide's warning block, then the command's closing line (if any)."""
    if not warnings:
        return
    for line in format_problem_block(name, warnings, ending=ending):
        print(line, file=sys.stderr)
    if tail:
        err(prog, tail)


def confirm(prog: str, question: str) -> bool:
    """`<prog>: <question>? [n/y]: ` on stdout; only y/yes proceeds (the default is n)."""
    sys.stdout.write(f"{prog}: {question}? [n/y]: ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    if not sys.stdin.isatty():
        sys.stdout.write(answer if answer.endswith("\n") else answer + "\n")
    return answer.strip().lower() in ("y", "yes")


def run(prog: str, argv: list[str] | None, body: Callable[[list[str]], int | None]) -> int:
    """Run a command body; AgentError -> its message and exit 1; a declined prompt -> 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = body(argv)
        return EXIT_OK if code is None else code
    except Declined:
        return EXIT_OK
    except AgentError as exc:
        print_error(prog, exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        err(prog, "Interrupted.")
        return EXIT_ERROR
