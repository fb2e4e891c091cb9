"""hpvmnet(1M): create and control vswitches.

    hpvmnet [ -S vswitch-name | -s vswitch-number ] [ -X | -M | -V ] [-v]
    hpvmnet -c -S vswitch-name [-n nic-id]
    hpvmnet -C [ -S vswitch-name | -s vswitch-number ] -n nic-id [-N new-vswitch-name]
    hpvmnet -d [ -S vswitch-name | -s vswitch-number ] [-F] [-Q]
    hpvmnet -b [ -S vswitch-name | -s vswitch-number ]
    hpvmnet -h [ -S vswitch-name | -s vswitch-number ] [-F] [-Q]
    hpvmnet -r [ -S vswitch-name | -s vswitch-number ] [-F] [-Q]
    hpvmnet [ -S vswitch-name | -s vswitch-number ] -u portid:N:vlanid:{vlan-id|none}
    hpvmnet [ -S vswitch-name | -s vswitch-number ] -p {all|N} [ -M | -X ]

No option may be given twice. A wrong option or combination is one line on stderr, exit 1,
and nothing changes.
"""
from __future__ import annotations

import sys

from lxml import etree

from agent.cli.common import Options, UsageError, confirm, open_agent, parse_options
from agent.errors import AgentError

PROG = "hpvmnet"
FORMAT_VERSION = "1"
_ACTIONS = ("c", "C", "d", "b", "h", "r", "u")
_CONFIRMED = {"d": ("Remove", "delete"), "h": ("Halt", "halt"), "r": ("Reboot", "reboot")}
_FORMS = ("V", "M", "X")


def parse_args(argv: list[str]) -> dict:
    """Options as {letter: value or True}, plus 'state_dir'. Raises UsageError."""
    parsed = parse_options(PROG, argv, "S:s:XMVvcCdbhrn:N:u:p:FQ")
    opts = dict(parsed.values)
    for key in ("S", "s", "n", "N", "u", "p"):
        if key in opts and opts[key] == "":
            raise UsageError(f"Option -{key} requires a value")
    if parsed.state_dir is not None:
        opts["state_dir"] = parsed.state_dir
    _check_combination(opts)
    return opts


def _check_combination(opts: dict) -> None:
    actions = [a for a in _ACTIONS if a in opts]
    if len(actions) > 1:
        raise UsageError(f"Options -{actions[0]} and -{actions[1]} cannot be combined")
    action = actions[0] if actions else None
    forms = [f for f in _FORMS if f in opts]
    if len(forms) > 1:
        raise UsageError("The -V, -M and -X options are mutually exclusive")
    if "S" in opts and "s" in opts:
        raise UsageError("The -S and -s options are mutually exclusive")
    selected = "S" in opts or "s" in opts
    if action is not None and not selected:
        raise UsageError(f"Option -{action} requires -S vswitch-name"
                         + ("" if action == "c" else " or -s vswitch-number"))
    if action == "c" and "s" in opts:
        raise UsageError("Option -c takes -S vswitch-name only: the number does not exist yet")
    if action == "C" and "n" not in opts:
        raise UsageError("Option -C requires -n nic-id")
    if "n" in opts and action not in ("c", "C"):
        raise UsageError("Option -n is valid only with -c or -C")
    if "N" in opts and action != "C":
        raise UsageError("Option -N is valid only with -C")
    for flag in ("F", "Q"):
        if flag in opts and action not in _CONFIRMED:
            raise UsageError(f"Option -{flag} is valid only with -d, -h or -r")
    if action is not None and (forms or "p" in opts or "v" in opts):
        extra = forms[0] if forms else ("p" if "p" in opts else "v")
        raise UsageError(f"Option -{extra} cannot be combined with -{action}")
    if "p" in opts:
        if not selected:
            raise UsageError("Option -p requires -S vswitch-name or -s vswitch-number")
        if "V" in opts:
            raise UsageError("Options -p and -V cannot be combined")


def parse_vlan_arg(text: str) -> tuple[str, str]:
    """`portid:N:vlanid:{id|none}` -> (N, id-or-none); values are checked by the agent."""
    parts = text.split(":")
    if len(parts) != 4 or parts[0] != "portid" or parts[2] != "vlanid" or not parts[1] \
            or not parts[3]:
        raise UsageError(f"Invalid value '{text}' for -u: expected "
                         "portid:port-number:vlanid:{vlan-id|none}")
    return parts[1], parts[3]


# --- rendering ------------------------------------------------------------------------------

SUMMARY_HEADER = ("Name     Number State   Mode      NamePPA  MAC Address    IP Address\n"
                  "======== ====== ======= ========= ======== ============== ===============")
PORTS_HEADER = ("[Port Configuration Details]\n"
                "Port    Port         Untagged Number of    Active VM\n"
                "Number  state        VLANID   Reserved VMs\n"
                "======= ============ ======== ============ ============")


def summary_row(s) -> str:
    return (f"{s.name:<8} {s.number:>6} {s.state:<7} {s.mode:<9} {s.nic or '':<8} "
            f"{s.mac or '':<14} {s.ip or ''}").rstrip()


def port_row(p) -> str:
    vlan = "none" if p.vlan is None else str(p.vlan)
    return (f"{p.number:<7} {p.state:<12} {vlan:<8} {len(p.reserved):<12} "
            f"{p.active or ''}").rstrip()


def render_summary(summaries, ports=None) -> str:
    lines = [SUMMARY_HEADER] + [summary_row(s) for s in summaries]
    if ports:
        lines += ["", PORTS_HEADER] + [port_row(p) for p in ports]
    return "\n".join(lines)


def _kv(label: str, value, width: int) -> str:
    return f"{label:<{width}} : {'' if value is None else value}".rstrip()


def render_port_report(report) -> str:
    w = 19
    lines = [_kv("Vswitch Name", report.vswitch, w),
             _kv("Max Number of Ports", report.max_ports, w)]
    if report.all:
        lines.append(_kv("Configured Ports", len(report.ports), w))
    for i, p in enumerate(report.ports):
        if report.all:
            lines.append("")
        lines += [_kv("Port Number", p.number, w), _kv("Port State", p.state, w),
                  _kv("Active VM", p.active or "", w),
                  _kv("Untagged VlanId", "none" if p.vlan is None else p.vlan, w),
                  _kv("Reserved VMs", ",".join(p.reserved), w)]
    return "\n".join(lines)


def render_verbose(details) -> str:
    w = 21
    blocks = []
    for d in details:
        s = d.summary
        lines = [_kv("Name", s.name, w), _kv("number", s.number, w), _kv("PID", d.pid, w),
                 _kv("State", s.state, w), _kv("Mode", s.mode, w), _kv("NamePPA", s.nic, w),
                 _kv("Host MAC Address", s.mac, w), _kv("Host IP Address", s.ip, w),
                 _kv("Number of guests", len(d.vnics), w)]
        for v in d.vnics:
            lines += [_kv("Guest's Name", v.guest, w), _kv("MAC Address", v.mac, w),
                      _kv("IP Address", v.ip, w), _kv("Vswitch Port", v.port, w)]
        if d.counters is not None:
            lines += [_kv(k, v, w) for k, v in d.counters.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _m(*fields) -> str:
    return ":".join("" if f is None else str(f) for f in fields)


def render_machine(details=None, report=None, version: bool = False) -> str:
    """-M: one record per line, the record's tag first (see docs/user-guide/network.md)."""
    lines = [_m("version", FORMAT_VERSION)] if version else []
    for d in details or []:
        s = d.summary
        lines.append(_m("vswitch", s.name, s.number, s.state, s.mode, s.nic, s.mac, s.ip,
                        d.pid, len(d.vnics)))
        for v in d.vnics:
            lines.append(_m("vnic", s.name, v.guest, v.mac, v.port, v.ip))
        for p in d.ports:
            lines.append(_port_m(s.name, p))
    if report is not None:
        lines.append(_m("ports", report.vswitch, report.max_ports, len(report.ports)))
        for p in report.ports:
            lines.append(_port_m(report.vswitch, p))
    return "\n".join(lines)


def _port_m(vswitch, p) -> str:
    return _m("port", vswitch, p.number, p.state, "none" if p.vlan is None else p.vlan,
              ",".join(p.reserved), p.active)


def render_xml(details=None, report=None) -> str:
    root = etree.Element(PROG, format_version=FORMAT_VERSION)

    def put(parent, tag, value):
        if value is not None and value != "":
            etree.SubElement(parent, tag).text = str(value)

    def port_el(parent, p):
        el = etree.SubElement(parent, "port")
        put(el, "number", p.number)
        put(el, "state", p.state)
        put(el, "vlan", "none" if p.vlan is None else p.vlan)
        res = etree.SubElement(el, "reserved")
        for name in p.reserved:
            etree.SubElement(res, "item").text = name
        put(el, "active", p.active)

    for d in details or []:
        s = d.summary
        sw = etree.SubElement(root, "vswitch")
        for tag, value in (("name", s.name), ("number", s.number), ("pid", d.pid),
                           ("state", s.state), ("mode", s.mode), ("nic", s.nic),
                           ("mac", s.mac), ("ip", s.ip)):
            put(sw, tag, value)
        for v in d.vnics:
            el = etree.SubElement(sw, "vnic")
            for tag, value in (("guest", v.guest), ("mac", v.mac), ("ip", v.ip),
                               ("port", v.port)):
                put(el, tag, value)
        for p in d.ports:
            port_el(sw, p)
        if d.counters is not None:
            c = etree.SubElement(sw, "counters")
            for label, value in d.counters.items():
                etree.SubElement(c, "counter", name=label).text = str(value)
    if report is not None:
        rep = etree.SubElement(root, "ports", vswitch=report.vswitch,
                               max=str(report.max_ports))
        for p in report.ports:
            port_el(rep, p)
    return etree.tostring(root, pretty_print=True, xml_declaration=True,
                          encoding="UTF-8").decode("utf-8").rstrip("\n")


# --- running ----------------------------------------------------------------------------------

def run(agent, opts: dict, out=None) -> int:
    out = out or sys.stdout
    name = opts.get("S")
    number = opts.get("s")
    if "c" in opts:
        agent.create_vswitch(name, opts.get("n"))
        return 0
    if "C" in opts:
        agent.change_vswitch(name, number, nic_id=opts["n"], new_name=opts.get("N"))
        return 0
    if "b" in opts:
        agent.boot_vswitch(name, number)
        return 0
    if "u" in opts:
        port, vlan = parse_vlan_arg(opts["u"])
        agent.set_vswitch_port_vlan(name, number, port=port, vlan=vlan)
        return 0
    for flag, (verb, action) in _CONFIRMED.items():
        if flag in opts:
            sw = agent.check_vswitch_action(action, name, number)
            if not ("F" in opts or "Q" in opts):
                if not confirm(PROG, f"{verb} the vswitch '{sw.name}'"):
                    return 0
            op = {"delete": agent.delete_vswitch, "halt": agent.halt_vswitch,
                  "reboot": agent.reboot_vswitch}[action]
            op(sw.name)
            return 0
    return show(agent, opts, out)


def show(agent, opts: dict, out) -> int:
    name, number = opts.get("S"), opts.get("s")
    selected = name is not None or number is not None
    if "p" in opts:
        report = agent.vswitch_ports(name, number, opts["p"])
        return _write(out, opts, lambda: render_port_report(report), report=report)
    if "V" in opts or "M" in opts or "X" in opts:
        details = agent.vswitch_details(name, number)
        return _write(out, opts, lambda: render_verbose(details), details=details)
    summaries = agent.vswitch_summaries(name, number)
    ports = agent.vswitch_ports(name, number, "all").ports if selected else None
    return _write(out, opts, lambda: render_summary(summaries, ports))


def _write(out, opts: dict, plain, **data) -> int:
    """One listing in the form asked: -M, -X, or the `plain()` text (-v: its version first).
    `data` is the report or the details for the machine forms."""
    version = "v" in opts
    if "M" in opts:
        text = render_machine(version=version, **data)
    elif "X" in opts:
        text = render_xml(**data)
    else:
        text = plain()
        if version:
            text = f"Version {FORMAT_VERSION}\n" + text
    out.write(text + "\n")
    return 0


def main(argv: list[str] | None = None, *, agent=None, stdout=None, stderr=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        opts = parse_args(argv)
        _precheck(opts)
        if agent is None:
            agent = open_agent(Options(PROG, state_dir=opts.get("state_dir")), argv)
        return run(agent, opts, stdout)
    except AgentError as exc:
        for line in exc.lines:
            stderr.write(_prefixed(line) + "\n")
        if exc.kind != "invalid":         # a refusal ends as the guide prints it
            stderr.write(f"{PROG}: Unable to continue\n")
        return 1
    except KeyboardInterrupt:
        stderr.write(f"{PROG}: Interrupted.\n")
        return 1


def _precheck(opts: dict) -> None:
    """Check every value before touching the state, so a malformed one changes nothing."""
    from agent.vswitch import check_name, check_port, check_vlan, nic_name
    if "S" in opts:
        check_name(opts["S"])
    if "N" in opts:
        check_name(opts["N"])
    if "s" in opts and not str(opts["s"]).isdigit():
        raise UsageError(f"Invalid value '{opts['s']}' for -s: expected a vswitch number")
    if "n" in opts:
        nic_name(opts["n"])
    if "u" in opts:
        port, vlan = parse_vlan_arg(opts["u"])
        check_port(port)
        check_vlan(vlan)
    if "p" in opts and opts["p"] != "all":
        check_port(opts["p"])


def _prefixed(line: str) -> str:
    return line if line.startswith(f"{PROG}:") else f"{PROG}: {line}"


if __name__ == "__main__":
    sys.exit(main())
