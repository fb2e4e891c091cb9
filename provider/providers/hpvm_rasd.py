"""CIM settings in, agent changes out: embedded VSSD/RASD instances and RASD references turned
into the agent's `GuestChanges` and resource dataclasses, with one precise error per problem.

Every refusal is CIM_ERR_INVALID_PARAMETER (CIM_ERR_NOT_FOUND for a well-formed key that
names no guest or device) whose text names the parameter, its index and the property, e.g.
``ResourceSettings[1] (HPVM_MemoryAllocationSettingData).AllocationUnits: unknown unit
'furlongs' ...``. Nothing here touches the store: the methods call the agent only once the
whole input converted.

What each property means is in docs/cim-classes.md; in short:

* VSSD: ElementName (name; -N), VMLabel (-l), OSType/OSVersion (-O), AutomaticStartupAction
  (2 None = manual, 4 Always = auto; -B), AdminUsers/AdminGroups/OperUsers/OperGroups (-u, -g),
  ApplicationController (-i), Distributed (-j).
* Processor RASD: VirtualQuantity = vCPUs (-c); Reservation = entitlement per vCPU in
  AllocationUnits ``percent*10^-2`` (1000 = 10.0 %; -e), or EntitlementMHz (-E) or a
  Reservation in ``hertz*10^6``; 5-100 % of a processor; Limit only 10000 (100 %); Weight is
  refused (Integrity VM has none).
* Memory RASD: VirtualQuantity (-r), Reservation (ram_dyn_min), Limit (ram_dyn_max),
  DynamicMemoryTargetStart, DynamicMemoryType, DynamicMemoryControl (-x), TargetMemory
  (ram_target, running guests), ReservedMemory (-R, modify only); amounts in AllocationUnits
  ``byte*2^20`` (also ``MegaBytes``, ``byte*2^10``/``KiloBytes``, ``byte*2^30``/``GigaBytes``
  and ``byte``/``Bytes`` when the amount is a whole number of MB).
* Storage RASD: DeviceType or ResourceType (17 disk, 16/15 dvd, 18 tape, 1 with DeviceType
  changer/burner), AdapterType scsi, Address ``bus,device,target`` (or Bus/DeviceNumber/
  Target), BackingType, HostResource[0]; or ResourceSpecification (an hpvmresources(5) spec).
* Ethernet RASD: ResourceType 10 (or 33), Address = MAC, Connection[0] = vswitch,
  Bus/DeviceNumber, VswitchPort; or ResourceSpecification.

In ModifySystemSettings and ModifyResourceSettings only the values that differ from the
guest's configuration become changes, so a client may send back an instance it read with one
property changed. Read-only properties (VMNumber, SerialNumber, PoolID, VHPTSize, Caption...)
are not compared and never change anything.
"""
from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass
from types import SimpleNamespace

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from agent.api.guests import GuestChanges
from agent.errors import AgentError
from agent.guest import Guest, RoleGrant
from agent.resources import (NetworkResource, StorageResource, format_resource, parse_mac,
                             parse_resource)
from agent.rules import (MAX_VCPUS, account_problem, entitlement_problem, label_problem,
                         name_problem)
from agent.sizes import parse_entitlement

NS = "root/cimv2"
VSSD = "HPVM_VirtualSystemSettingData"
PROC = "HPVM_ProcessorAllocationSettingData"
MEM = "HPVM_MemoryAllocationSettingData"
STORAGE = "HPVM_StorageAllocationSettingData"
ETHERNET = "HPVM_EthernetPortAllocationSettingData"
RASD_CLASSES = (PROC, MEM, STORAGE, ETHERNET)
# a generic class a client may send instead, and which of ours it may stand for
_GENERIC = {
    "cim_virtualsystemsettingdata": (VSSD,),
    "cim_resourceallocationsettingdata": RASD_CLASSES,
    "cim_processorallocationsettingdata": (PROC,),
    "cim_memoryallocationsettingdata": (MEM,),
    "cim_storageallocationsettingdata": (STORAGE,),
    "cim_ethernetportallocationsettingdata": (ETHERNET,),
}
_KIND_OF_TYPE = {3: PROC, 4: MEM, 17: STORAGE, 16: STORAGE, 15: STORAGE, 18: STORAGE,
                 10: ETHERNET, 33: ETHERNET}
_DEVICE_OF_TYPE = {17: "disk", 16: "dvd", 15: "dvd", 18: "tape"}
_TYPE_OF_DEVICE = {"disk": 17, "dvd": 16, "tape": 18, "changer": 1, "burner": 1}

_UNITS = {"byte*2^20": 1, "megabytes": 1, "megabyte": 1, "mb": 1,
          "byte*2^30": 1024, "gigabytes": 1024, "gigabyte": 1024,
          "byte*2^10": 1 / 1024, "kilobytes": 1 / 1024, "kilobyte": 1 / 1024,
          "byte": 1 / 2 ** 20, "bytes": 1 / 2 ** 20}
ENTITLEMENT_UNITS = "percent*10^-2"
_MHZ_UNITS = ("hertz*10^6", "mhz", "megahertz")
START_ACTIONS = {2: "manual", 4: "auto"}
_CONTROLLER_RE = re.compile(r"^(NONE|SG|SG[_-][A-Za-z0-9_.-]+|GWLM)$", re.IGNORECASE)
_ROLE_PROPS = (("AdminUsers", "user", "admin"), ("AdminGroups", "group", "admin"),
               ("OperUsers", "user", "oper"), ("OperGroups", "group", "oper"))


def bad(where: str, message: str, code: int = pywbem.CIM_ERR_INVALID_PARAMETER) -> CIMError:
    return CIMError(code, f"{where}: {message}")


# -- keys --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SettingKey:
    """A parsed VSSD or RASD InstanceID: ``HPVM:<uuid>[:<part>]``."""

    uuid: str
    part: str | None       # None/"next" (VSSD), "cpu", "memory", or a DeviceID

    @property
    def is_device(self) -> bool:
        return self.part not in (None, "next", "cpu", "memory")


def parse_key(iid, where: str) -> SettingKey:
    if not isinstance(iid, str) or not iid.startswith("HPVM:"):
        raise bad(where, f"InstanceID {iid!r} is not one of this host's settings "
                         "(HPVM:<uuid>[:part])")
    body = iid[len("HPVM:"):]
    uuid, sep, part = body.partition(":")
    try:
        uuidlib.UUID(uuid)
    except ValueError:
        raise bad(where, f"InstanceID {iid!r} does not name a guest UUID") from None
    if part.startswith("next:"):
        # a setting of the configuration waiting for the next boot: changes go there anyway
        part = part[len("next:"):]
    if sep and not part:
        raise bad(where, f"InstanceID {iid!r} names no setting after the UUID")
    return SettingKey(uuid.lower(), part if sep else None)


def device_id(res) -> str:
    """The DeviceID (and RASD InstanceID suffix) of a configured device."""
    if isinstance(res, StorageResource):
        return f"{res.device}:{res.bus},{res.slot},{res.target}"
    return f"network:{res.bus},{res.slot}"


def rasd_instance_id(uuid: str, res) -> str:
    return f"HPVM:{uuid}:{device_id(res)}"


def rasd_path(uuid: str, res) -> CIMInstanceName:
    cls = STORAGE if isinstance(res, StorageResource) else ETHERNET
    return CIMInstanceName(cls, keybindings={"InstanceID": rasd_instance_id(uuid, res)},
                           namespace=NS)


_DEVICE_ID = re.compile(r"^(disk|dvd|tape|changer|burner):(\d+),(\d+),(\d+)\Z|^network:(\d+),(\d+)\Z")


def device_address(part: str, where: str):
    """The address-only selector a DeviceID (`dvd:0,0,5`, `network:0,2`) stands for."""
    m = _DEVICE_ID.match(part or "")
    if m is None:
        raise bad(where, f"'{part}' is not a device of a guest (disk:bus,device,target or "
                         "network:bus,device)")
    if m.group(1):
        return StorageResource(m.group(1), "scsi", int(m.group(2)), int(m.group(3)),
                               int(m.group(4)))
    return NetworkResource("lan", int(m.group(5)), int(m.group(6)))


def lookup_device(guest: Guest, part: str, where: str):
    """The device of `guest` the DeviceID `part` names, or None when it has none there."""
    device_address(part, where)
    for res in list(guest.storage) + list(guest.nics):
        if device_id(res) == part:
            return res
    return None


def not_assigned(guest: Guest, res) -> CIMError:
    """hpvmmodify's refusal for a device the guest lacks (CIM_ERR_NOT_FOUND)."""
    return CIMError(pywbem.CIM_ERR_NOT_FOUND, f"The resource '{format_resource(res)}' is not "
                                              f"assigned to guest '{guest.name}'.")


def find_device(guest: Guest, part: str, where: str):
    """The device of `guest` the DeviceID `part` names; a well-formed DeviceID the guest
    lacks is hpvmmodify's refusal for that address (-d)."""
    res = lookup_device(guest, part, where)
    if res is None:
        raise not_assigned(guest, device_address(part, where))
    return res


# -- embedded instances ------------------------------------------------------------------------

class Props:
    """The properties of one embedded instance, checked against the class it stands for and
    typed from that class's declarations; names are case-insensitive."""

    def __init__(self, inst: CIMInstance, cim_class: pywbem.CIMClass, where: str):
        self.where = f"{where} ({cim_class.classname})"
        self.classname = cim_class.classname
        decls = {n.lower(): p for n, p in cim_class.properties.items()}
        self.values: dict[str, object] = {}
        for name, prop in inst.properties.items():
            decl = decls.get(name.lower())
            if decl is None:
                raise bad(self.where, f"{cim_class.classname} has no property {name}")
            self.values[name.lower()] = _typed(prop.value, decl, self.where)

    def get(self, name: str):
        return self.values.get(name.lower())

    def has(self, name: str) -> bool:
        return self.values.get(name.lower()) is not None

    def err(self, name: str, message: str, code: int = pywbem.CIM_ERR_INVALID_PARAMETER):
        return bad(f"{self.where}.{name}", message, code)


def _typed(value, decl: pywbem.CIMProperty, where: str):
    if value is None:
        return None
    try:
        if decl.type == "reference" or decl.embedded_object:
            return value
        if decl.is_array:
            if not isinstance(value, (list, tuple)):
                raise ValueError("an array is expected")
            return [None if v is None else pywbem.cimvalue(v, decl.type) for v in value]
        if isinstance(value, (list, tuple)):
            raise ValueError("a single value is expected, not an array")
        if decl.type == "boolean" and isinstance(value, str):
            if value.strip().lower() not in ("true", "false"):
                raise ValueError(f"{value!r} is not a boolean")
            return value.strip().lower() == "true"
        return pywbem.cimvalue(value, decl.type)
    except (ValueError, TypeError) as exc:
        raise bad(f"{where}.{decl.name}", f"not a valid {decl.type}: {exc}") from None


def resolve_class(schema, inst, expected: tuple[str, ...], where: str) -> str:
    """The HPVM class an embedded instance stands for (one of `expected`, or a generic
    DMTF class that stands for exactly one of them); a wrong class is refused."""
    if not isinstance(inst, CIMInstance):
        raise bad(where, "an embedded instance is required")
    name = inst.classname.lower()
    for cls in expected:
        if cls.lower() == name:
            return cls
    candidates = [c for c in _GENERIC.get(name, ()) if c in expected]
    if candidates:
        if len(candidates) == 1:
            return candidates[0]
        prop = next((p for n, p in inst.properties.items() if n.lower() == "resourcetype"),
                    None)
        try:
            rtype = None if prop is None or prop.value is None else int(prop.value)
        except (TypeError, ValueError):
            raise bad(f"{where}.ResourceType", f"{prop.value!r} is not a number") from None
        # 1 (Other) is a changer or burner: a storage setting whose DeviceType says which
        cls = STORAGE if rtype == 1 else _KIND_OF_TYPE.get(rtype)
        if cls is None or cls not in candidates:
            raise bad(f"{where}.ResourceType", f"{rtype} is not a resource this host "
                      "allocates (3 processor, 4 memory, 15/16 DVD, 17 disk, 18 tape, "
                      "1 changer/burner, 10 Ethernet)")
        return cls
    want = " or ".join(expected)
    raise bad(where, f"the embedded instance is a {inst.classname}, expected {want}")


def props_of(schema, inst, expected, where: str) -> Props:
    cls = resolve_class(schema, inst, expected, where)
    return Props(inst, schema.get_class(NS, cls), where)


def _check_resource_type(p: Props, allowed: tuple[int, ...]) -> None:
    rtype = p.get("ResourceType")
    if rtype is not None and int(rtype) not in allowed:
        raise p.err("ResourceType", f"{int(rtype)} does not fit a {p.classname} "
                                    f"(expected {' or '.join(map(str, allowed))})")


# -- amounts -------------------------------------------------------------------------------------

def memory_mb(p: Props, name: str) -> int | None:
    """An amount in MB from property `name` in the instance's AllocationUnits."""
    value = p.get(name)
    if value is None:
        return None
    units = p.get("AllocationUnits")
    if units is None:
        raise p.err("AllocationUnits", f"is required with {name} (byte*2^20 for MB)")
    factor = _UNITS.get(re.sub(r"\s+", "", str(units)).lower())
    if factor is None:
        raise p.err("AllocationUnits", f"unknown unit '{units}': use byte*2^20 (MB), "
                                       "MegaBytes, byte*2^10, byte*2^30 or byte")
    mb = int(value) * factor
    if mb != int(mb):
        raise p.err(name, f"{int(value)} {units} is not a whole number of MB")
    return int(mb)


def entitlement_of(p: Props, current=None, cpu_mhz: int | None = None):
    """The Entitlement the processor RASD asks for (None: unchanged), refused when outside
    5-100 % of a processor of `cpu_mhz`. As read, a RASD carries both Reservation (in
    hundredths of a percent) and, for an entitlement given in cycles, EntitlementMHz: an
    unchanged EntitlementMHz leaves the derived Reservation alone. A Reservation with
    AllocationUnits ``hertz*10^6`` (MHz) is an entitlement in cycles (-E)."""
    ent = _entitlement_of(p, current, cpu_mhz)
    if ent is not None and cpu_mhz:
        # entitlement_problem reads the host's processor speed only
        problem = entitlement_problem(ent, SimpleNamespace(cpu_mhz=cpu_mhz))
        if problem:
            raise p.err("EntitlementMHz" if p.get("EntitlementMHz") is not None
                        else "Reservation", problem)
    return ent


def _entitlement_of(p: Props, current, cpu_mhz):
    mhz, res = p.get("EntitlementMHz"), p.get("Reservation")
    cur_mhz = current.mhz if current is not None else None
    units = p.get("AllocationUnits")
    unit = None if units is None else re.sub(r"\s+", "", str(units)).lower()
    if mhz is None and res is not None and unit in _MHZ_UNITS:
        mhz, res = res, None
    try:
        if mhz is not None:
            if current is None or int(mhz) != cur_mhz:
                return parse_entitlement(None, str(int(mhz)))
            return None
        if res is not None:
            if unit is not None and unit != ENTITLEMENT_UNITS:
                raise p.err("AllocationUnits", f"'{units}' is not an entitlement unit: "
                                               f"{ENTITLEMENT_UNITS} (1000 = 10.0 %) or "
                                               "hertz*10^6 (MHz)")
            if current is not None:
                have = current.percent if current.percent is not None or not cpu_mhz \
                    else current.as_percent(cpu_mhz)
                if have is not None and abs(int(res) - have * 100) < 1:
                    return None
            return parse_entitlement(f"{int(res) / 100:g}", None)
    except AgentError as exc:
        field_name = "EntitlementMHz" if p.get("EntitlementMHz") is not None else "Reservation"
        raise p.err(field_name, exc.lines[0]) from None
    return None


# -- VSSD --------------------------------------------------------------------------------------

def _text(p: Props, name: str, check=None) -> str | None:
    value = p.get(name)
    if value is None:
        return None
    value = str(value)
    if check is not None:
        problem = check(value)
        if problem:
            raise p.err(name, problem)
    return value


def system_changes(p: Props, ch: GuestChanges, current: Guest | None, *,
                   purpose: str) -> str | None:
    """Fill `ch` from a VSSD (purpose define, modify or clone). Returns the ElementName."""
    name = _text(p, "ElementName", name_problem)
    label = _text(p, "VMLabel", label_problem)
    if label is not None and (current is None or label != current.label):
        ch.label = label
    os_type = p.get("OSType")
    os_version = _text(p, "OSVersion", lambda v: label_problem(v, "OS version"))
    if os_type is not None:
        os_type = str(os_type).upper()
        if os_type not in ("HPUX", "WINDOWS", "LINUX"):
            if not (current is not None and os_type == current.os_type):
                raise p.err("OSType", f"'{p.get('OSType')}' cannot be set: expected HPUX, "
                                      "WINDOWS or LINUX")
        elif current is None or os_type != current.os_type or \
                (os_version is not None and os_version != current.os_version):
            ch.os_type = os_type
            ch.os_version = os_version if os_version is not None else ""
    elif os_version is not None and (current is None or os_version != current.os_version):
        raise p.err("OSVersion", "is set together with OSType (-O type:version)")
    action = p.get("AutomaticStartupAction")
    if action is not None:
        start = START_ACTIONS.get(int(action))
        if start is None:
            raise p.err("AutomaticStartupAction", f"{int(action)} is not supported: use 2 "
                                                  "(None, manual start) or 4 (Always, auto)")
        if current is None or start != current.start_attr:
            ch.start_attr = start
    _roles(p, ch, current, purpose)
    ctl = p.get("ApplicationController")
    if ctl is not None:
        tokens = [t.strip() for t in str(ctl).split(",")]
        if not tokens or any(not _CONTROLLER_RE.match(t) for t in tokens):
            raise p.err("ApplicationController", f"'{ctl}': expected SG, SG_pkgname, GWLM or "
                                                 "NONE")
        value = ",".join(t.upper() if t.upper() in ("NONE", "SG", "GWLM") else t
                         for t in tokens)
        if current is None or value != current.app_controller:
            ch.app_controller = value
    dist = p.get("Distributed")
    if dist is not None and (current is None or bool(dist) != current.distributed):
        ch.distributed = bool(dist)
    return name


def _roles(p: Props, ch: GuestChanges, current: Guest | None, purpose: str) -> None:
    wanted: dict[tuple[str, str], str] = {}
    given_kinds = set()
    for prop, kind, role in _ROLE_PROPS:
        names = p.get(prop)
        if names is None:
            continue
        given_kinds.add((kind, role))
        for n in names:
            if n is None or account_problem(str(n)):
                raise p.err(prop, f"invalid {kind} name {n!r}")
            if (kind, str(n)) in wanted and wanted[(kind, str(n))] != role:
                raise p.err(prop, f"the {kind} '{n}' is listed as both admin and oper")
            wanted[(kind, str(n))] = role
    have = {(r.kind, r.name): r.role for r in (current.roles if current else [])}
    for (kind, n), role in wanted.items():
        if have.get((kind, n)) != role:
            ch.grant.append(RoleGrant(kind=kind, name=n, role=role))
    for (kind, n), role in have.items():
        if (kind, role) in given_kinds and (kind, n) not in wanted:
            ch.revoke.append((kind, n))


# -- processor and memory ----------------------------------------------------------------------

def processor_changes(p: Props, ch: GuestChanges, current: Guest | None,
                      cpu_mhz: int | None = None) -> None:
    _check_resource_type(p, (3,))
    vq = p.get("VirtualQuantity")
    if vq is not None:
        n = int(vq)
        if not 1 <= n <= MAX_VCPUS:
            raise p.err("VirtualQuantity", f"invalid number of vcpus '{n}': must be from 1 "
                                           f"to {MAX_VCPUS}")
        if current is None or n != current.vcpus:
            ch.vcpus = n
    ent = entitlement_of(p, current.entitlement if current is not None else None, cpu_mhz)
    if ent is not None:
        ch.entitlement = ent
    limit = p.get("Limit")
    if limit is not None and int(limit) != 10000:
        raise p.err("Limit", f"{int(limit)}: the maximum entitlement of a vCPU is 10000 "
                             "(100 %) and cannot be changed")
    if p.get("Weight") is not None:
        raise p.err("Weight", "Integrity VM guests have no CPU weight: the entitlement "
                              "(Reservation or EntitlementMHz) is what a guest is guaranteed")


def memory_changes(p: Props, ch: GuestChanges, current: Guest | None, *, purpose: str,
                   runtime_target: int | None = None) -> None:
    """`runtime_target`: the TargetMemory the guest shows now (its live target while the
    DM driver runs, else ram_dyn_target_start or its memory); a different value is a
    ram_target change."""
    _check_resource_type(p, (4,))
    mb = memory_mb(p, "VirtualQuantity")
    if mb is not None and (current is None or mb != current.memory_mb):
        ch.memory_mb = mb
    dm = current.dynmem if current is not None else None
    # what a guest shows when ram_dyn_max is not set: its memory (hpvmstatus, the RASD)
    shown_max = None if dm is None else (dm.max_mb if dm.max_mb is not None or
                                         dm.type == "none" else current.memory_mb)
    pairs = (("Reservation", "ram_dyn_min", dm.min_mb if dm else None),
             ("Limit", "ram_dyn_max", shown_max),
             ("DynamicMemoryTargetStart", "ram_dyn_target_start",
              dm.target_start_mb if dm else None))
    for prop, key, have in pairs:
        value = memory_mb(p, prop)
        if value is not None and (current is None or value != have):
            ch.dynmem[key] = value
    dtype = p.get("DynamicMemoryType")
    if dtype is not None:
        dtype = str(dtype).lower()
        if dtype not in ("none", "any", "driver"):
            raise p.err("DynamicMemoryType", f"'{p.get('DynamicMemoryType')}': expected none, "
                                             "any or driver")
        if current is None or dtype != dm.type:
            ch.dynmem["ram_dyn_type"] = dtype
    ctl = p.get("DynamicMemoryControl")
    if ctl is not None and (current is None or bool(ctl) != bool(dm.control)):
        ch.dynmem["dynamic_memory_control"] = bool(ctl)
    target = memory_mb(p, "TargetMemory") if p.has("TargetMemory") else None
    if target is not None and target != runtime_target:
        if purpose != "modify":
            raise p.err("TargetMemory", "ram_target changes a running guest: use "
                                        "ModifyResourceSettings")
        ch.ram_target = target
    reserved = memory_mb(p, "ReservedMemory") if p.has("ReservedMemory") else None
    shown_reserved = None
    if current is not None:
        from agent.api.views import DEFAULT_RESERVED_MB
        shown_reserved = DEFAULT_RESERVED_MB if current.reserved_mb is None \
            else current.reserved_mb
    if reserved is not None and (current is None or reserved != shown_reserved):
        if purpose != "modify":
            raise p.err("ReservedMemory", "reserved memory (-R) is set with "
                                          "ModifyResourceSettings")
        ch.reserved_mb = reserved


# -- devices -----------------------------------------------------------------------------------

def _address(p: Props, names: tuple[str, ...]) -> str:
    """`bus,device[,target]` from Address (storage) or the Bus/DeviceNumber/Target props."""
    parts = ["" if p.get(n) is None else str(int(p.get(n))) for n in names]
    return ",".join(parts) if any(parts) else ""


# the part of an hpvmresources(5) spec a ResourceError names -> the RASD property it came from
_FIELD_PROPERTY = {"device type": "DeviceType", "adapter type": "AdapterType",
                   "storage type": "BackingType", "physical device": "HostResource",
                   "hardware address": "Address", "PCI bus": "Address", "PCI slot": "Address",
                   "SCSI target": "Address", "MAC address": "Address",
                   "vswitch name": "Connection", "vswitch": "Connection",
                   "network backing type": "Connection", "port number": "VswitchPort",
                   "port keyword": "VswitchPort"}


def _resource(p: Props, text: str, purpose: str, *, from_spec: bool = False):
    """Parse the spec the properties make, with the resource grammar's own checks; its
    error names the property at fault."""
    try:
        return parse_resource(text, purpose=purpose)
    except AgentError as exc:
        field_name = getattr(exc, "field", None)
        prop = "ResourceSpecification" if from_spec else _FIELD_PROPERTY.get(field_name or "")
        where = f"{p.where}.{prop}" if prop else p.where
        raise bad(where, exc.lines[0]) from None


def storage_resource(p: Props, purpose: str) -> StorageResource:
    spec = p.get("ResourceSpecification")
    hosts = p.get("HostResource") or []
    if spec is not None and not hosts and p.get("BackingType") is None:
        res = _resource(p, str(spec), purpose, from_spec=True)
        if not isinstance(res, StorageResource):
            raise p.err("ResourceSpecification", f"'{spec}' is not a storage device")
        return res
    rtype = p.get("ResourceType")
    device = p.get("DeviceType")
    if device is None:
        if rtype is None:
            raise p.err("DeviceType", "give DeviceType or ResourceType (17 disk, 16 DVD, "
                                      "18 tape)")
        device = _DEVICE_OF_TYPE.get(int(rtype))
        if device is None:
            raise p.err("ResourceType", f"{int(rtype)} needs DeviceType changer or burner")
    device = str(device).lower()
    if device not in _TYPE_OF_DEVICE:
        raise p.err("DeviceType", f"'{device}': expected disk, dvd, tape, changer or burner")
    if rtype is not None and int(rtype) != _TYPE_OF_DEVICE[device] and \
            not (device == "dvd" and int(rtype) == 15):
        raise p.err("ResourceType", f"{int(rtype)} does not fit DeviceType {device}")
    adapter = str(p.get("AdapterType") or "scsi").lower()
    address = _storage_address(p)
    backing = p.get("BackingType")
    if backing is None:
        raise p.err("BackingType", "is required: disk, lv, file, null or attach")
    if len(hosts) > 1:
        raise p.err("HostResource", "names one backing store only")
    location = str(hosts[0]) if hosts and hosts[0] is not None else ""
    return _resource(p, f"{device}:{adapter}:{address}:{str(backing).lower()}:{location}",
                     purpose)


def _storage_address(p: Props) -> str:
    parts = _address(p, ("Bus", "DeviceNumber", "Target"))
    addr = p.get("Address")
    if addr is None:
        return parts
    addr = str(addr).replace(" ", "")
    if parts and parts != addr:
        raise p.err("Address", f"'{addr}' disagrees with Bus/DeviceNumber/Target ({parts})")
    return addr


def network_resource(p: Props, purpose: str) -> NetworkResource:
    spec = p.get("ResourceSpecification")
    conn = p.get("Connection") or []
    if spec is not None and not conn:
        res = _resource(p, str(spec), purpose, from_spec=True)
        if not isinstance(res, NetworkResource):
            raise p.err("ResourceSpecification", f"'{spec}' is not a network device")
        return res
    _check_resource_type(p, (10, 33))
    adapter = str(p.get("AdapterType") or "lan").lower()
    if len(conn) != 1 or not conn[0]:
        raise p.err("Connection", "names the one vswitch the vNIC plugs into")
    mac = p.get("Address")
    if mac is not None:
        try:
            mac = parse_mac(str(mac))
        except AgentError as exc:
            raise p.err("Address", exc.lines[0]) from None
    bus_slot = _address(p, ("Bus", "DeviceNumber"))
    if not bus_slot:
        bus_slot = ","
    text = f"network:{adapter}:{bus_slot},{mac or ''}:vswitch:{conn[0]}"
    if p.get("VswitchPort") is not None:
        text += f":portid:{int(p.get('VswitchPort'))}"
    return _resource(p, text, purpose)


def same_device(a, b) -> bool:
    """Equal configuration of one device (ignoring what the host fills in when not given)."""
    if isinstance(a, StorageResource) != isinstance(b, StorageResource):
        return False
    if isinstance(a, StorageResource):
        return (a.device, a.storage, a.location) == (b.device, b.storage, b.location)
    return (a.vswitch == b.vswitch and (a.mac is None or a.mac == b.mac)
            and (a.port is None or a.port == b.port))


def check_address_kept(p: Props, new, old) -> None:
    """ModifyResourceSettings keeps a device where it is (-m)."""
    for part in ("bus", "slot") + (("target",) if isinstance(old, StorageResource) else ()):
        want = getattr(new, part)
        if want is not None and want != getattr(old, part):
            raise p.err("Address", f"the device {device_id(old)} cannot move; remove it and "
                                   "add it at the new address")


# -- parameters as a whole -------------------------------------------------------------------

def embedded_list(params, name: str) -> list:
    p = params.get(name)
    value = None if p is None else p.value
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def convert_new_resources(schema, items: list, ch: GuestChanges, *, param: str,
                          guest_uuid: str | None, allow_cpu_memory: bool,
                          current: Guest | None = None) -> None:
    """RASDs for DefineSystem / AddResourceSettings / CloneSystem (-a, and -c -e -r -x)."""
    seen: set[str] = set()
    for i, inst in enumerate(items):
        where = f"{param}[{i}]"
        p = props_of(schema, inst, RASD_CLASSES, where)
        iid = p.get("InstanceID")
        if iid and guest_uuid is not None and current is not None:
            key = parse_key(iid, f"{p.where}.InstanceID")
            if key.uuid != guest_uuid:
                raise p.err("InstanceID", f"{iid} names a setting of another guest, not of "
                                          f"'{current.name}'")
        if p.classname in (PROC, MEM):
            if not allow_cpu_memory:
                raise bad(p.where, "vCPUs and memory are changed with ModifyResourceSettings")
            if p.classname in seen:
                raise bad(p.where, f"a second {p.classname}: give vCPUs and memory once")
            seen.add(p.classname)
            if p.classname == PROC:
                processor_changes(p, ch, current)
            else:
                memory_changes(p, ch, current, purpose="define")
        elif p.classname == STORAGE:
            ch.add.append(storage_resource(p, "add"))
        else:
            ch.add.append(network_resource(p, "add"))
    _no_duplicates(ch.add, param)


def _no_duplicates(resources, param: str) -> None:
    seen = set()
    for res in resources:
        key = res.location if isinstance(res, StorageResource) else res.mac
        if key:
            if key in seen:
                raise bad(param, f"the resource '{key}' is specified more than once")
            seen.add(key)
