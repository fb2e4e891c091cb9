"""The text format of `vmm_config.current|prev|next`: one `key = value` per line.

A person can read it (`cat /var/opt/hpvm/guests/compass1/vmm_config.current`); the guide says not
to edit it by hand, and when someone does and breaks it, `parse_config` names the file and the
line, and only that guest becomes `Invalid`.

    # HPVM guest configuration (vmprovider). Change it with hpvmmodify, not by hand.
    config_version = 3.0.0
    uuid = 8ba249f2-3399-11db-aacc-00306ef392e0
    name = compass1
    vm_number = 12
    serial = VM00530001
    os_type = HPUX
    os_version = 11.23
    vcpus = 1
    entitlement = 10.0%            (or 1400MHz)
    memory = 2048M
    label = test guest
    start_attr = auto
    ram_dyn_type = any
    ram_dyn_min = 1222M
    role = user:testme1:admin      (repeatable)
    app_controller = NONE
    distributed = 0
    storage = disk:scsi:0,1,0:disk:/dev/rdsk/c3t2d0        (repeatable, in device order)
    network = network:lan:0,0,f6-92-cf-35-86-78:vswitch:vswitch1:portid:1
"""
from __future__ import annotations

import re

from agent.errors import ConfigError
from agent.guest import (OS_TYPES, ROLES, START_ATTRS, DynamicMemoryConfig, Entitlement, Guest,
                         RoleGrant)
from agent.resources import STORAGE_DEVICES, STORAGE_KINDS, NetworkResource, StorageResource

HEADER = "# HPVM guest configuration (vmprovider). Change it with hpvmmodify, not by hand.\n"

_SINGLE = ("config_version", "uuid", "name", "vm_number", "serial", "os_type", "os_version",
           "vcpus", "entitlement", "memory", "reserved_memory", "label", "start_attr",
           "dynamic_memory_control", "ram_dyn_type", "ram_dyn_min", "ram_dyn_max",
           "ram_dyn_target_start", "app_controller", "distributed")
_MULTI = ("role", "storage", "network")
_REQUIRED = ("uuid", "name", "vm_number", "serial")

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_SERIAL_RE = re.compile(r"^VM\d{8}\Z")
_MB_RE = re.compile(r"^(\d+)M\Z")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(-[0-9a-f]{2}){5}\Z")
_ENT_PCT_RE = re.compile(r"^(\d+(?:\.\d+)?)%\Z")
_ENT_MHZ_RE = re.compile(r"^(\d+)MHz\Z")


def _mb(v: int | None) -> str:
    return f"{v}M"


def format_entitlement(e: Entitlement) -> str:
    if e.mhz is not None:
        return f"{e.mhz}MHz"
    return f"{e.percent:.1f}%"


def format_storage(s: StorageResource) -> str:
    return f"{s.device}:{s.adapter}:{s.bus},{s.slot},{s.target}:{s.storage}:{s.location}"


def format_network(n: NetworkResource) -> str:
    text = f"network:{n.adapter}:{n.bus},{n.slot},{n.mac}:vswitch:{n.vswitch}"
    if n.port is not None:
        text += f":portid:{n.port}"
    return text


def format_config(g: Guest) -> bytes:
    """The file text of one guest configuration."""
    lines = [HEADER.rstrip("\n")]

    def put(key, value):
        lines.append(f"{key} = {value}")

    put("config_version", g.config_version)
    put("uuid", g.uuid)
    put("name", g.name)
    put("vm_number", g.vm_number)
    put("serial", g.serial)
    put("os_type", g.os_type)
    put("os_version", g.os_version)
    put("vcpus", g.vcpus)
    put("entitlement", format_entitlement(g.entitlement))
    put("memory", _mb(g.memory_mb))
    if g.reserved_mb is not None:
        put("reserved_memory", _mb(g.reserved_mb))
    put("label", g.label)
    put("start_attr", g.start_attr)
    dm = g.dynmem
    if dm.control is not None:
        put("dynamic_memory_control", 1 if dm.control else 0)
    put("ram_dyn_type", dm.type)
    for key, value in (("ram_dyn_min", dm.min_mb), ("ram_dyn_max", dm.max_mb),
                       ("ram_dyn_target_start", dm.target_start_mb)):
        if value is not None:
            put(key, _mb(value))
    for r in g.roles:
        put("role", f"{r.kind}:{r.name}:{r.role}")
    put("app_controller", g.app_controller)
    put("distributed", 1 if g.distributed else 0)
    for s in g.storage:
        put("storage", format_storage(s))
    for n in g.nics:
        put("network", format_network(n))
    return ("\n".join(lines) + "\n").encode("utf-8")


class _Reader:
    """Parses one file; every failure names the file and the line."""

    def __init__(self, path: str):
        self.path = path
        self.line = 0

    def fail(self, reason: str):
        raise ConfigError(self.path, self.line, reason)

    def int_(self, key, v, lo=None, hi=None):
        if not re.fullmatch(r"\d+", v):
            self.fail(f"{key}: '{v}' is not a whole number")
        n = int(v)
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            self.fail(f"{key}: {n} is out of range")
        return n

    def mb(self, key, v):
        m = _MB_RE.match(v)
        if not m or int(m.group(1)) <= 0:
            self.fail(f"{key}: '{v}' is not a size in MB (like 2048M)")
        return int(m.group(1))

    def storage(self, v) -> StorageResource:
        parts = v.split(":", 4)
        if len(parts) != 5:
            self.fail(f"storage: '{v}' does not have the form device:scsi:bus,slot,target:storage:path")
        device, adapter, addr, kind, location = parts
        if device not in STORAGE_DEVICES:
            self.fail(f"storage: unknown device type '{device}'")
        if adapter != "scsi":
            self.fail(f"storage: unknown adapter '{adapter}'")
        if kind not in STORAGE_KINDS:
            self.fail(f"storage: unknown storage type '{kind}'")
        nums = addr.split(",")
        if len(nums) != 3 or not all(re.fullmatch(r"\d+", x) for x in nums):
            self.fail(f"storage: address '{addr}' is not bus,slot,target")
        bus, slot, target = (int(x) for x in nums)
        return StorageResource(device=device, adapter=adapter, bus=bus, slot=slot, target=target,
                               storage=kind, location=location)

    def network(self, v) -> NetworkResource:
        parts = v.split(":")
        if len(parts) not in (5, 7) or parts[0] != "network" or parts[3] != "vswitch":
            self.fail(f"network: '{v}' does not have the form network:lan:bus,slot,mac:vswitch:name[:portid:N]")
        if parts[1] != "lan":
            self.fail(f"network: unknown adapter '{parts[1]}'")
        addr = parts[2].split(",")
        if len(addr) != 3 or not all(re.fullmatch(r"\d+", x) for x in addr[:2]):
            self.fail(f"network: address '{parts[2]}' is not bus,slot,mac")
        if not _MAC_RE.match(addr[2]):
            self.fail(f"network: '{addr[2]}' is not a MAC address like aa-bb-cc-dd-ee-ff")
        if not parts[4]:
            self.fail("network: the vswitch name is empty")
        port = None
        if len(parts) == 7:
            if parts[5] != "portid":
                self.fail(f"network: expected 'portid', found '{parts[5]}'")
            port = self.int_("network portid", parts[6])
        return NetworkResource(adapter="lan", bus=int(addr[0]), slot=int(addr[1]), mac=addr[2],
                               vswitch=parts[4], port=port)


def parse_config(data: bytes | str, path: str) -> Guest:
    """Read a `vmm_config.*` file back into a Guest; raises ConfigError(path, line, reason)."""
    from agent import rules   # rules imports this module's formatters; import late

    r = _Reader(path)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            r.line = data[:exc.start].count(b"\n") + 1
            r.fail("not valid UTF-8 text")
    else:
        text = data
    seen: dict[str, str] = {}
    multi: dict[str, list[tuple[int, str]]] = {k: [] for k in _MULTI}
    lines = text.split("\n")
    for i, raw in enumerate(lines, 1):
        r.line = i
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if " = " not in line and not line.rstrip().endswith(" ="):
            r.fail("expected 'key = value'")
        key, _, value = line.partition(" =")
        key = key.strip()
        value = value[1:] if value.startswith(" ") else value
        if key in _MULTI:
            multi[key].append((i, value))
        elif key in _SINGLE:
            if key in seen:
                r.fail(f"'{key}' is given twice")
            seen[key] = (i, value)
        else:
            r.fail(f"unknown key '{key}'")
    r.line = len(lines)
    for key in _REQUIRED:
        if key not in seen:
            r.fail(f"missing key '{key}'")

    def get(key, default=None):
        if key not in seen:
            return default
        r.line, value = seen[key]
        return value

    uuid = get("uuid")
    if not _UUID_RE.match(uuid):
        r.fail(f"uuid: '{uuid}' is not a UUID")
    name = get("name")
    problem = rules.name_problem(name)
    if problem:
        r.fail(f"name: {problem}")
    vm_number = r.int_("vm_number", get("vm_number"), lo=1)
    serial = get("serial")
    if not _SERIAL_RE.match(serial):
        r.fail(f"serial: '{serial}' is not VM followed by 8 digits")
    os_type = get("os_type", "UNKNOWN")
    if os_type not in OS_TYPES:
        r.fail(f"os_type: unknown OS type '{os_type}'")
    os_version = get("os_version", "")
    vcpus = r.int_("vcpus", get("vcpus", "1"), lo=1, hi=rules.MAX_VCPUS)
    ent_text = get("entitlement", "10.0%")
    m_pct, m_mhz = _ENT_PCT_RE.match(ent_text), _ENT_MHZ_RE.match(ent_text)
    if m_pct and 5 <= float(m_pct.group(1)) <= 100:
        ent = Entitlement(percent=float(m_pct.group(1)), mhz=None)
    elif m_mhz and int(m_mhz.group(1)) > 0:
        ent = Entitlement(percent=None, mhz=int(m_mhz.group(1)))
    else:
        r.fail(f"entitlement: '{ent_text}' is not 5..100% or a MHz value like 1400MHz")
    memory = r.mb("memory", get("memory", "2048M"))
    reserved = get("reserved_memory")
    reserved = r.mb("reserved_memory", reserved) if reserved is not None else None
    label = get("label", "")
    problem = rules.label_problem(label)
    if problem:
        r.fail(f"label: {problem}")
    start_attr = get("start_attr", "auto")
    if start_attr not in START_ATTRS:
        r.fail(f"start_attr: '{start_attr}' is not auto or manual")
    control = get("dynamic_memory_control")
    if control is not None and control not in ("0", "1"):
        r.fail(f"dynamic_memory_control: '{control}' is not 0 or 1")
    dm_type = get("ram_dyn_type", "none")
    if dm_type not in ("none", "any", "driver"):
        r.fail(f"ram_dyn_type: '{dm_type}' is not none, any or driver")
    dm_vals = {}
    for key in ("ram_dyn_min", "ram_dyn_max", "ram_dyn_target_start"):
        v = get(key)
        dm_vals[key] = r.mb(key, v) if v is not None else None
    dynmem = DynamicMemoryConfig(control=None if control is None else control == "1",
                                 type=dm_type, min_mb=dm_vals["ram_dyn_min"],
                                 max_mb=dm_vals["ram_dyn_max"],
                                 target_start_mb=dm_vals["ram_dyn_target_start"])
    app = get("app_controller", "NONE")
    if not app or not re.fullmatch(r"[A-Za-z0-9_.,-]+", app):
        r.fail(f"app_controller: '{app}' is not a controller list")
    dist = get("distributed", "0")
    if dist not in ("0", "1"):
        r.fail(f"distributed: '{dist}' is not 0 or 1")
    config_version = get("config_version", "3.0.0")

    roles = []
    for r.line, v in multi["role"]:
        parts = v.split(":")
        if len(parts) != 3 or parts[0] not in ("user", "group") or parts[2] not in ROLES \
                or rules.account_problem(parts[1]):
            r.fail(f"role: '{v}' is not user|group:name:admin|oper")
        roles.append(RoleGrant(kind=parts[0], name=parts[1], role=parts[2]))
    storage = []
    for r.line, v in multi["storage"]:
        storage.append(r.storage(v))
    nics = []
    for r.line, v in multi["network"]:
        nics.append(r.network(v))

    return Guest(uuid=uuid, name=name, vm_number=vm_number, serial=serial, os_type=os_type,
                 os_version=os_version, vcpus=vcpus, entitlement=ent, memory_mb=memory,
                 storage=storage, nics=nics, label=label, start_attr=start_attr, dynmem=dynmem,
                 roles=roles, app_controller=app, distributed=dist == "1",
                 config_version=config_version, reserved_mb=reserved)
