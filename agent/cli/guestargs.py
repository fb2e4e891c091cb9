"""The characteristic options hpvmcreate, hpvmmodify and hpvmclone share (spec 01 Table 3-1),
parsed into `GuestChanges`. Every malformed value is one UsageError line naming the option."""
from __future__ import annotations

import re

from agent.api.guests import DM_KEYWORDS, GuestChanges
from agent.cli.common import Options, UsageError, check_vm_name
from agent.errors import AgentError
from agent.guest import RoleGrant
from agent.resources import NetworkResource, StorageResource, parse_resource
from agent.rules import MAX_VCPUS, account_problem, label_problem
from agent.sizes import parse_entitlement, parse_size

OS_NAMES = {"hpux": "HPUX", "hp-ux": "HPUX", "windows": "WINDOWS", "linux": "LINUX"}
_CONTROLLER_RE = re.compile(r"^(NONE|SG|SG[_-][A-Za-z0-9_.-]+|GWLM)$", re.IGNORECASE)

X_KEYWORDS = {
    "create": DM_KEYWORDS,
    "modify": DM_KEYWORDS + ("ram_target",),
    "clone": DM_KEYWORDS + ("mac_address", "serial_number"),
}


def parse_os(text: str) -> tuple[str, str]:
    """`-O os_type[:version]` -> (HPUX|WINDOWS|LINUX, version)."""
    kind, _, version = text.partition(":")
    os_type = OS_NAMES.get(kind.strip().lower())
    if os_type is None:
        raise UsageError(f"Invalid OS type '{kind}' for option -O: expected hpux, windows or linux")
    problem = label_problem(version, "OS version")
    if problem:
        raise UsageError(f"Invalid value for option -O: {problem}")
    return os_type, version


def parse_start_attr(text: str, option: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "manual"):
        raise UsageError(f"Invalid start attribute '{text}' for option {option}: "
                         "expected auto or manual")
    return value


def parse_role(text: str, kind: str, *, allow_remove: bool):
    """`[+]name[:admin|oper]` grants (default oper); `-name` revokes (DECISIONS §1.9)."""
    option = "-u" if kind == "user" else "-g"
    if text.startswith("-"):
        if not allow_remove:
            raise UsageError(f"Invalid value '{text}' for option {option}: a new guest has no "
                             f"{kind} rights to remove")
        name = text[1:]
        if ":" in name:
            raise UsageError(f"Invalid value '{text}' for option {option}: give no role when "
                             "removing rights")
        if account_problem(name):
            raise UsageError(f"Invalid {kind} name '{name}' for option {option}")
        return ("revoke", (kind, name))
    body = text[1:] if text.startswith("+") else text
    name, sep, role = body.partition(":")
    role = role.strip().lower() if sep else "oper"
    if role not in ("admin", "oper"):
        raise UsageError(f"Invalid role '{role}' for option {option}: expected admin or oper")
    if account_problem(name):
        raise UsageError(f"Invalid {kind} name '{name}' for option {option}")
    return ("grant", RoleGrant(kind=kind, name=name, role=role))


def parse_x(values: list[str], purpose: str) -> tuple[dict, dict]:
    """-x keyword=value ... -> (DM keywords, other keywords). A keyword twice is an error."""
    allowed = X_KEYWORDS[purpose]
    dm, other, seen = {}, {}, set()
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise UsageError(f"Invalid keyword '{item}' for option -x: expected one of "
                             f"{', '.join(k + '=' for k in allowed)}")
        if key in seen:
            raise UsageError(f"The -x keyword '{key}' is given more than once")
        seen.add(key)
        value = value.strip()
        if key == "dynamic_memory_control":
            if value not in ("0", "1"):
                raise UsageError(f"Invalid value '{value}' for -x {key}: expected 0 or 1")
            dm[key] = value == "1"
        elif key == "ram_dyn_type":
            if value.lower() not in ("none", "any", "driver"):
                raise UsageError(f"Invalid value '{value}' for -x {key}: expected none, any or "
                                 "driver")
            dm[key] = value.lower()
        elif key in ("ram_dyn_min", "ram_dyn_max", "ram_dyn_target_start"):
            dm[key] = _size(value, f"-x {key}")
        elif key == "ram_target":
            if value.lower() == "start":
                other[key] = "start"
            elif value == "0":
                other[key] = 0
            else:
                other[key] = _size(value, "-x ram_target")
        else:                                          # mac_address, serial_number
            if value.lower() not in ("new", "same"):
                raise UsageError(f"Invalid value '{value}' for -x {key}: expected new or same")
            other[key] = value.lower()
    return dm, other


def _size(text: str, what: str) -> int:
    try:
        return parse_size(text, what=f"size for {what}")
    except AgentError as exc:
        raise UsageError(exc.lines[0]) from None


def _resource(text: str, purpose: str):
    try:
        return parse_resource(text, purpose=purpose)
    except AgentError as exc:
        raise UsageError(exc.lines[0]) from None


def build_changes(opts: Options, purpose: str) -> GuestChanges:
    """The GuestChanges of one command line (purpose: create, modify, clone)."""
    ch = GuestChanges()
    if opts.has("l"):
        problem = label_problem(opts.get("l"))
        if problem:
            raise UsageError(f"Invalid value for option -l: {problem}")
        ch.label = opts.get("l")
    for letter in ("B", "b") if purpose == "create" else ("B",):
        if opts.has(letter):
            ch.start_attr = parse_start_attr(opts.get(letter), f"-{letter}")
    if opts.has("O"):
        ch.os_type, ch.os_version = parse_os(opts.get("O"))
    if opts.has("c"):
        ch.vcpus = opts.int("c", "number of vcpus", lo=1, hi=MAX_VCPUS)
    if opts.has("e") or opts.has("E"):
        opts.exclusive("e", "E")
        try:
            ch.entitlement = parse_entitlement(opts.get("e"), opts.get("E"))
        except AgentError as exc:
            raise UsageError(exc.lines[0]) from None
    if opts.has("r"):
        ch.memory_mb = _size(opts.get("r"), "-r")
    if opts.has("R"):
        ch.reserved_mb = _size(opts.get("R"), "-R")
    for letter, kind in (("u", "user"), ("g", "group")):
        for text in opts.all(letter):
            op, value = parse_role(text, kind, allow_remove=purpose != "create")
            (ch.revoke if op == "revoke" else ch.grant).append(value)
    for text in opts.all("a"):
        ch.add.append(_resource(text, "add"))
    for text in opts.all("d"):
        ch.delete.append(_resource(text, "delete"))
    for text in opts.all("m"):
        ch.modify.append(_resource(text, "modify"))
    if purpose == "clone":
        for text in opts.all("b"):
            ch.boot_copies.append(_resource(text, "clone_boot"))
        ch.share_ports = opts.has("S")
    seen = set()
    for res in ch.add + ch.modify + ch.boot_copies:
        key = res.location if isinstance(res, StorageResource) else None
        if isinstance(res, NetworkResource) and res.mac:
            key = res.mac
        if key:
            if key in seen:
                raise UsageError(f"The resource '{key}' is specified more than once")
            seen.add(key)
    dm, other = parse_x(opts.all("x"), purpose)
    ch.dynmem = dm
    if "ram_target" in other:
        ch.ram_target = other["ram_target"]
    ch.mac_address = other.get("mac_address", "new")
    ch.serial_number = other.get("serial_number", "new")
    if opts.has("i"):
        tokens = [t.strip() for t in opts.get("i").split(",")]
        if not tokens or any(not _CONTROLLER_RE.match(t) for t in tokens):
            raise UsageError(f"Invalid value '{opts.get('i')}' for option -i: expected SG, "
                             "SG_pkgname, GWLM or NONE")
        ch.app_controller = ",".join(t.upper() if t.upper() in ("NONE", "SG", "GWLM") else t
                                     for t in tokens)
    if opts.has("j"):
        if opts.get("j") not in ("0", "1"):
            raise UsageError(f"Invalid value '{opts.get('j')}' for option -j: expected 0 or 1")
        ch.distributed = opts.get("j") == "1"
    if purpose == "modify" and opts.has("N"):
        ch.new_name = check_vm_name(opts.get("N"), "-N")
    return ch
