"""hpvminfo(1M): whether this is an HPVM host or guest, and what identifies the host.

    hpvminfo [ -V | -M | -X ] [-v]

vmprovider always runs on the VM Host side, so the answer is the guide's
`hpvminfo: Running on an HPVM host.`; `-V` adds the host's identity in the layout the guide
shows from inside a guest (spec 04 §7), `-M` / `-X` give the same values machine-readably.
"""
from __future__ import annotations

import sys

from agent.api import views as v
from agent.cli.common import open_agent, parse_options, run

PROG = "hpvminfo"
RUNNING_ON_HOST = f"{PROG}: Running on an HPVM host."
_INDENT = "    "
_WIDTH = 33          # "Host model string                : ..."


def _line(label: str, value) -> str:
    return f"{_INDENT}{label.ljust(_WIDTH)}: {value}".rstrip()


def verbose(info: v.HostInfo) -> list[str]:
    out = ["Host chassis information",
           _line("Host model string", info.model),
           _line("Host serial number", info.serial),
           _line("Host partition ident", info.partition_ident),
           _line("Host machine ident", info.machine_ident),
           "Host Inet information",
           _line("Hostname", info.hostname),
           _line("Number of host IPv6 Addresses", len(info.ipv6_addresses)),
           _line("Number of host IPv4 Addresses", len(info.ipv4_addresses))]
    out += [_line("IP Address", a) for a in info.ipv4_addresses]
    out += [_line("IPv6 Address", a) for a in info.ipv6_addresses]
    out += ["Host processor and memory information",
            _line("Number of processors", info.cpus),
            _line("Processor speed", f"{info.cpu_mhz} Mhz"),
            _line("Total physical memory", f"{info.memory_mb} Mbytes")]
    return out


def _main(argv: list[str]) -> int:
    opts = parse_options(PROG, argv, "vVMX")
    opts.exclusive("V", "M", "X")
    agent = open_agent(opts, argv)
    info = agent.host_info()
    if opts.has("M") or opts.has("X"):
        from agent import formats
        objs = ([v.version_info()] if opts.has("v") else []) + [info]
        if opts.has("M"):
            sys.stdout.write(formats.write_machine(objs))
        else:
            sys.stdout.write(formats.write_xml(PROG, objs))
        return 0
    lines = []
    if opts.has("v"):
        ver = v.version_info()
        lines.append(f"{PROG}: Version {ver.release} ({ver.build})")
    lines.append(RUNNING_ON_HOST)
    if opts.has("V"):
        lines += verbose(info)
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(PROG, argv, _main)


if __name__ == "__main__":
    sys.exit(main())
