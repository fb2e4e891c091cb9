"""The resource grammar of hpvmresources(5): virtual storage and network device specs.

    storage:  devicetype:scsi:[bus,device,target]:storage:location
    network:  network:lan:[bus,device,mac]:vswitch:name[:portid:N]

CONTRACT (frame): the two dataclasses below are shared by the model, the rules, the CLI and
the CIM providers. The rest of this module is the grammar (parse, format, the valid
device x storage combinations, path and MAC rules), MAC generation, address allocation and
the per-VM / per-adapter limits (spec 02 §7, spec 05 §4, docs/resources.md).

The API, in one breath:
  parse_resource(text, purpose=...)       -> StorageResource | NetworkResource
  format_resource(res)                    -> canonical text (parse(format(x)) == x)
  selector_matches(selector, res)         -> does a -d/-m/-b selector pick this device?
  parse_mac / format_mac / check_mac / generate_mac
  next_storage_address / next_network_address, complete_storage / complete_network
  format_misc(CONSOLE_DEVICE)             -> "serial:com1::tty:console"
Every refusal is a ResourceError: one line naming the field that is wrong.
"""
from __future__ import annotations

import os
import random
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from agent.errors import AgentError

STORAGE_DEVICES = ("disk", "dvd", "tape", "changer", "burner")
STORAGE_KINDS = ("disk", "lv", "file", "null", "attach")


@dataclass(frozen=True)
class StorageResource:
    """A virtual storage device and its backing store. Address parts are None until assigned."""

    device: str              # disk | dvd | tape | changer | burner
    adapter: str = "scsi"
    bus: int | None = None   # virtual PCI bus
    slot: int | None = None  # virtual PCI slot ("device" in the guide)
    target: int | None = None  # SCSI target
    storage: str = ""        # disk | lv | file | null | attach ("" only in -d/-m selectors)
    location: str = ""       # host path ("" allowed where the guide allows it, e.g. clone -b)


@dataclass(frozen=True)
class NetworkResource:
    """A vNIC and the vswitch port it is plugged into."""

    adapter: str = "lan"
    bus: int | None = None
    slot: int | None = None
    mac: str | None = None   # canonical form: lowercase aa-bb-cc-dd-ee-ff
    vswitch: str = ""
    port: int | None = None  # vswitch port; None = assign automatically


# ---------------------------------------------------------------------------------------------
# Facts and limits (spec 02 §7.2, §7.4, §7.5, §15.4)

STORAGE_ADAPTERS = ("scsi",)
NETWORK_ADAPTERS = ("lan",)
NETWORK_BACKINGS = ("vswitch",)

#: Which backing stores each virtual device type takes (spec 02 §7.4).
VALID_STORAGE: dict[str, tuple[str, ...]] = {
    "disk": ("disk", "lv", "file"),
    "dvd": ("disk", "file", "null"),
    "tape": ("attach",),
    "changer": ("attach",),
    "burner": ("attach",),
}
#: Backing types hpvmclone -b can physically duplicate (spec 01 §27).
CLONE_BOOT_STORAGE = ("disk", "lv", "file")

MAX_BUS = 6                      # buses 0..6; bus 7 is reserved
MAX_SLOT = 7                     # 8 slots per bus
MAX_TARGET = 14                  # the MPT adapter itself is target 15
MAX_STORAGE_PER_VM = 30          # virtual plus attached
MAX_DEVICES_PER_ADAPTER = 15
MAX_VSWITCH_PORT = 100           # "Max Number of Ports : 100"
MAX_VSWITCH_NAME = 8
MAX_LOCATION = 1023              # PATH_MAX - 1
FORBIDDEN_IN_LOCATION = ":;,"    # the -M output delimiters (hpvmresources(5))

PURPOSES = ("add", "delete", "modify", "clone_boot", "config")
_OPTION = {"add": "-a", "delete": "-d", "modify": "-m", "clone_boot": "-b", "config": "config"}

_STORAGE_SHAPE = "devicetype:scsi:[bus,device,target]:storage:device"
_NETWORK_SHAPE = "network:lan:[bus,device,mac-addr]:vswitch:vswitch-name[:portid:portnumber]"


class ResourceError(AgentError):
    """A refused resource spec, MAC or address: one line that names the wrong field.

    `field` is the name of the part at fault ("device type", "PCI slot", "MAC address"...),
    `value` what was given for it, `resource` the whole spec when there was one.
    """

    def __init__(self, message: str, *, field: str, value: str = "", resource: str = "",
                 kind: str = "invalid", command: str | None = None):
        message = _printable(message)       # one line, whatever the user typed
        self.message = message
        self.field = field
        self.value = value
        self.resource = resource
        self.command = command
        super().__init__(f"{command}: {message}" if command else message, kind)

    def for_command(self, command: str) -> "ResourceError":
        """The same error, its line prefixed with the command name (`hpvmcreate: ...`)."""
        return ResourceError(self.message, field=self.field, value=self.value,
                             resource=self.resource, kind=self.kind, command=command)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _invalid(field: str, value: str, resource: str, reason: str = "") -> ResourceError:
    where = f" in resource '{resource}'" if resource else ""
    tail = f": {reason}" if reason else ""
    return ResourceError(f"Invalid {field} '{value}'{where}{tail}", field=field, value=value,
                         resource=resource)


def _missing(field: str, resource: str, reason: str) -> ResourceError:
    return ResourceError(f"Missing {field} in resource '{resource}': {reason}", field=field,
                         resource=resource)


# ---------------------------------------------------------------------------------------------
# MAC addresses

_MAC_DASH = re.compile(r"[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}")
_MAC_HEX = re.compile(r"0[xX][0-9A-Fa-f]{12}")
MAC_STYLES = ("dash", "hex", "hexlower")


def parse_mac(text: str, *, resource: str = "") -> str:
    """`aa-bb-cc-dd-ee-ff` or `0xAABBCCDDEEFF` (any case) -> canonical `aa-bb-cc-dd-ee-ff`."""
    if _MAC_DASH.fullmatch(text):
        return text.lower()
    if _MAC_HEX.fullmatch(text):
        digits = text[2:].lower()
        return "-".join(digits[i:i + 2] for i in range(0, 12, 2))
    raise _invalid("MAC address", text, resource,
                   "use the form 0xaabbcc001122 or aa-bb-cc-00-11-22")


def format_mac(mac: str, style: str = "dash") -> str:
    """`dash`: aa-bb-cc-dd-ee-ff (hpvmstatus -P); `hex`: 0xAABBCCDDEEFF (hpvmstatus -d, the
    guest config); `hexlower`: 0xaabbccddeeff (hpvmnet's host MAC column)."""
    canonical = parse_mac(mac)
    if style == "dash":
        return canonical
    digits = canonical.replace("-", "")
    if style == "hex":
        return "0x" + digits.upper()
    if style == "hexlower":
        return "0x" + digits
    raise ValueError(f"unknown MAC style {style!r}; expected one of {MAC_STYLES}")


def _mac_int(mac: str) -> int:
    return int(parse_mac(mac).replace("-", ""), 16)


def mac_bits_problem(mac: str) -> str | None:
    """Why this MAC cannot be a vNIC's, or None. A vNIC MAC must be a unicast station address
    (the I/G bit clear, not all zeros). The locally-administered bit is not required of a MAC
    the administrator types (the guide's own example 0x00306E39F70B is a universal one);
    generated MACs always have it set."""
    value = _mac_int(mac)
    first = value >> 40
    if value == 0:
        return "the all-zero address is not a station address"
    if first & 0x01:
        return "a multicast or broadcast address cannot be a vNIC's address"
    return None


def check_mac(mac: str, *, host_macs: Iterable[str] | Mapping[str, str] = (),
              taken: Iterable[str] = (), resource: str = "") -> str:
    """Check a vNIC MAC: correct bits (unicast), not a VM Host NIC's MAC, not already in use
    (`taken`: the MACs of every other vNIC on the host). Returns the canonical form."""
    canonical = parse_mac(mac, resource=resource)
    problem = mac_bits_problem(canonical)
    if problem:
        raise _invalid("MAC address", mac, resource, problem)
    nics = host_macs.items() if isinstance(host_macs, Mapping) else ((None, m) for m in host_macs)
    for name, host_mac in nics:
        if _mac_int(host_mac) == _mac_int(canonical):
            owner = f"the VM Host's network adapter {name}" if name else "a VM Host network adapter"
            raise ResourceError(f"MAC address '{mac}' conflicts with {owner}",
                                field="MAC address", value=mac, resource=resource, kind="conflict")
    if any(_mac_int(other) == _mac_int(canonical) for other in taken):
        raise ResourceError(f"MAC address '{mac}' is already in use by another virtual network "
                            "device", field="MAC address", value=mac, resource=resource,
                            kind="conflict")
    return canonical


_MAC_TRIES = 1000


def generate_mac(rng: random.Random | None = None, taken: Iterable[str] = (),
                 host_macs: Iterable[str] | Mapping[str, str] = ()) -> str:
    """A random locally administered unicast MAC (like the guide's de-19-57-23-74-bd) that is
    neither in `taken` nor a host NIC's. `rng` is injectable (default: the OS's randomness)."""
    rng = rng or random.SystemRandom()
    hosts = host_macs.values() if isinstance(host_macs, Mapping) else host_macs
    avoid = {_mac_int(m) for m in taken} | {_mac_int(m) for m in hosts}
    for _ in range(_MAC_TRIES):
        value = rng.getrandbits(48)
        value = (value | (0x02 << 40)) & ~(0x01 << 40)   # locally administered, unicast
        if value not in avoid:
            digits = f"{value:012x}"
            return "-".join(digits[i:i + 2] for i in range(0, 12, 2))
    raise AgentError("Unable to generate a unique MAC address", kind="failed")


# ---------------------------------------------------------------------------------------------
# Paths

def default_world_writable_dir(path: str) -> bool:
    """True when `path` is a directory any user may write to (such as /tmp)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_IWOTH)


def _check_location(loc: str, text: str, *, allow_empty: bool) -> None:
    if loc == "":
        if allow_empty:
            return
        raise _missing("physical device", text, "give the host device file, volume, file or "
                       "directory after the storage type")
    bad = next((c for c in loc if c in FORBIDDEN_IN_LOCATION), None)
    if bad is not None:
        raise _invalid("physical device", loc, text, "a physical device name must not contain "
                       "':', ';' or ','")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in loc):
        raise _invalid("physical device", loc, text,
                       "control characters are not allowed")
    if not loc.startswith("/"):
        raise _invalid("physical device", loc, text, "an absolute path is required")
    if len(loc) > MAX_LOCATION:
        raise _invalid("physical device", loc[:40] + "...", text,
                       f"longer than {MAX_LOCATION} characters")


def is_directory_location(res: StorageResource) -> bool:
    """A NullDVD over a directory: `null:/dir` or the guide's `file:/dir/` form (spec 02 §7.4)."""
    return res.device == "dvd" and (
        (res.storage == "file" and res.location.endswith("/"))
        or (res.storage == "null" and not res.location.startswith("/dev/")))


def media_name(res: StorageResource) -> str:
    """What the guest sees: Virtual Disk / LvDisk / FileDisk / DVD / FileDVD / NullDVD, or the
    attached device kind (spec 02 §12)."""
    if res.device == "disk":
        return {"disk": "Virtual Disk", "lv": "Virtual LvDisk", "file": "Virtual FileDisk"}.get(
            res.storage, "Virtual Disk")
    if res.device == "dvd":
        if res.storage == "null" or is_directory_location(res):
            return "Virtual NullDVD"
        return "Virtual FileDVD" if res.storage == "file" else "Virtual DVD"
    return {"tape": "Attached Tape", "changer": "Attached Media Changer",
            "burner": "Attached CD/DVD Burner"}[res.device]


# ---------------------------------------------------------------------------------------------
# Parsing

_NUMBER = re.compile(r"[0-9]{1,4}")
_VSWITCH_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _number(part: str, field: str, hi: int, text: str, note: str = "", lo: int = 0) -> int:
    if not _NUMBER.fullmatch(part) or not lo <= int(part) <= hi:
        raise _invalid(field, part, text, f"must be a number from {lo} to {hi}{note}")
    return int(part)


def _storage_address(part: str, text: str) -> tuple[int | None, int | None, int | None]:
    if part == "":
        return None, None, None
    pieces = part.split(",")
    if len(pieces) != 3:
        raise _invalid("hardware address", part, text, "expected bus,device,target "
                       "(keep the commas when leaving parts out, e.g. ,,2)")
    bus, slot, tgt = pieces
    return (None if bus == "" else _number(bus, "PCI bus", MAX_BUS, text, "; bus 7 is reserved"),
            None if slot == "" else _number(slot, "PCI slot", MAX_SLOT, text),
            None if tgt == "" else _number(tgt, "SCSI target", MAX_TARGET, text,
                                           "; 15 is the adapter's own ID"))


def _network_address(part: str, text: str) -> tuple[int | None, int | None, str | None]:
    if part == "":
        return None, None, None
    pieces = part.split(",")
    if len(pieces) not in (2, 3):
        raise _invalid("hardware address", part, text, "expected bus,device,mac-addr "
                       "(keep the commas when leaving parts out, e.g. ,,aa-bb-cc-00-11-22)")
    bus, slot = pieces[0], pieces[1]
    mac = pieces[2] if len(pieces) == 3 else ""
    return (None if bus == "" else _number(bus, "PCI bus", MAX_BUS, text, "; bus 7 is reserved"),
            None if slot == "" else _number(slot, "PCI slot", MAX_SLOT, text),
            None if mac == "" else parse_mac(mac, resource=text))


def check_vswitch_name(name: str, *, resource: str = "") -> str:
    """A vswitch name: 1..8 characters from A-Z a-z 0-9 _ . - (spec 02 §13.4)."""
    if name == "":
        raise _missing("vswitch name", resource, "give the name after 'vswitch:'")
    if len(name) > MAX_VSWITCH_NAME or not _VSWITCH_NAME.fullmatch(name):
        raise _invalid("vswitch name", name, resource, f"use at most {MAX_VSWITCH_NAME} "
                       "characters from A-Z a-z 0-9 _ . -")
    return name


def parse_resource(text: str, *, purpose: str = "add", command: str | None = None,
                   world_writable: Callable[[str], bool] | None = None,
                   ) -> StorageResource | NetworkResource:
    """Parse one rsrc argument.

    purpose: `add` (-a: address optional or partial), `delete` (-d: a selector; the backing
    part may be left out), `modify` (-m: the full hardware address plus the new backing),
    `clone_boot` (hpvmclone -b: a disk whose location may be empty), `config` (a stored
    device: full address, no host checks). `command` prefixes the error line
    (`hpvmmodify: Invalid ...`). `world_writable(path) -> bool` is the host check for `null`
    directories (default: the real filesystem).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    try:
        if not isinstance(text, str) or text == "":
            raise ResourceError("Missing resource: expected " + _STORAGE_SHAPE + " or "
                                + _NETWORK_SHAPE, field="resource")
        head = text.split(":", 1)[0]
        if head.lower() == "network":
            return _parse_network(text, purpose)
        return _parse_storage(text, purpose, world_writable or default_world_writable_dir)
    except ResourceError as err:
        raise (err.for_command(command) if command else err) from None


def _parse_storage(text: str, purpose: str, world_writable: Callable[[str], bool]
                   ) -> StorageResource:
    fields = text.split(":", 4)      # the location keeps any ':' so we can name it
    device = fields[0].lower()
    if device not in STORAGE_DEVICES:
        raise _invalid("device type", fields[0], text,
                       "expected disk, dvd, tape, changer, burner or network")
    if len(fields) not in (3, 5):
        raise ResourceError(f"Invalid resource '{text}': expected {_STORAGE_SHAPE}",
                            field="resource", value=text, resource=text)
    adapter = fields[1].lower()
    if adapter not in STORAGE_ADAPTERS:
        raise _invalid("adapter type", fields[1], text, "storage devices use adapter type scsi")
    bus, slot, target = _storage_address(fields[2], text)
    option = _OPTION[purpose]
    complete = None not in (bus, slot, target)
    storage, location = "", ""
    if len(fields) == 5:
        storage, location = fields[3].lower(), fields[4]
        if storage == "" and location == "" and purpose == "delete":
            pass                            # "disk:scsi:0,0,2::" is the bare selector
        elif storage == "":
            raise _missing("storage type", text, "expected disk, lv, file, null or attach "
                           "before the physical device")
        elif storage not in STORAGE_KINDS:
            raise _invalid("storage type", fields[3], text,
                           "expected disk, lv, file, null or attach")
        elif storage not in VALID_STORAGE[device]:
            raise _invalid("storage type", fields[3], text,
                           f"a {device} takes {_or(VALID_STORAGE[device])}")
    elif purpose != "delete":
        raise ResourceError(f"Invalid resource '{text}': expected {_STORAGE_SHAPE}",
                            field="resource", value=text, resource=text)

    if purpose == "delete":
        if storage:
            _check_location(location, text, allow_empty=False)
        elif not complete:
            raise _missing("hardware address", text, "-d needs bus,device,target or the "
                           "physical storage:device to pick the device")
    elif purpose == "clone_boot":
        if device != "disk":
            raise _invalid("device type", fields[0], text, "-b duplicates disks only")
        _check_location(location, text, allow_empty=True)
        if location == "" and not complete:
            raise _missing("hardware address", text, "-b needs bus,device,target or the "
                           "physical device to pick the disk")
    else:
        _check_location(location, text, allow_empty=False)
        if purpose in ("modify", "config") and not complete:
            raise _missing("hardware address", text, f"{option} needs the full hardware "
                           "address bus,device,target")
        if device == "disk" and location.endswith("/"):
            raise _invalid("physical device", location, text,
                           "a virtual disk needs a file or device, not a directory")
        res = StorageResource(device, adapter, bus, slot, target, storage, location)
        if purpose != "config" and (storage == "null" or is_directory_location(res)) \
                and world_writable(location):
            raise _invalid("physical device", location, text,
                           "an empty (null) storage unit must not be a world-writable directory")
        return res
    return StorageResource(device, adapter, bus, slot, target, storage, location)


def _parse_network(text: str, purpose: str) -> NetworkResource:
    fields = text.split(":")
    if len(fields) not in (3, 5, 7):
        raise ResourceError(f"Invalid resource '{text}': expected {_NETWORK_SHAPE}",
                            field="resource", value=text, resource=text)
    adapter = fields[1].lower()
    if adapter not in NETWORK_ADAPTERS:
        raise _invalid("adapter type", fields[1], text, "network devices use adapter type lan")
    bus, slot, mac = _network_address(fields[2], text)
    option = _OPTION[purpose]
    if purpose == "clone_boot":
        raise _invalid("device type", fields[0], text, "-b duplicates storage, not network "
                       "devices")
    vswitch, port = "", None
    if len(fields) >= 5:
        if fields[3].lower() not in NETWORK_BACKINGS:
            raise _invalid("network backing type", fields[3], text, "expected vswitch")
        vswitch = check_vswitch_name(fields[4], resource=text)
        if len(fields) == 7:
            if fields[5].lower() != "portid":
                raise _invalid("port keyword", fields[5], text, "expected portid:portnumber")
            port = _number(fields[6], "port number", MAX_VSWITCH_PORT, text, lo=1)
    elif purpose != "delete":
        raise _missing("vswitch", text, f"{option} needs vswitch:vswitch-name")
    if purpose == "delete" and not vswitch and (bus is None or slot is None) and mac is None:
        raise _missing("hardware address", text, "-d needs bus,device, a MAC or "
                       "vswitch:vswitch-name to pick the device")
    if purpose in ("modify", "config") and (bus is None or slot is None):
        raise _missing("hardware address", text, f"{option} needs the hardware address "
                       "bus,device")
    if purpose == "config" and mac is None:
        raise _missing("MAC address", text, "a stored network device has its MAC")
    if mac is not None and purpose in ("add", "modify", "config"):
        problem = mac_bits_problem(mac)
        if problem:
            raise _invalid("MAC address", fields[2].split(",")[-1], text, problem)
    return NetworkResource(adapter, bus, slot, mac, vswitch, port)


def _or(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


# ---------------------------------------------------------------------------------------------
# Formatting

def _num(value: int | None) -> str:
    return "" if value is None else str(value)


def format_resource(res: StorageResource | NetworkResource, *, mac_style: str = "hex",
                    show_port: bool = True) -> str:
    """The canonical text of a resource, as hpvmstatus -d prints it
    (`disk:scsi:0,0,1:lv:/dev/vg01/rlv2`, `network:lan:0,1,0x56A3E9D74099:vswitch:myswitch`).
    Unknown address parts are left empty (`,,2`); `parse_resource(format_resource(x)) == x`."""
    if isinstance(res, StorageResource):
        addr = "" if (res.bus, res.slot, res.target) == (None, None, None) else \
            f"{_num(res.bus)},{_num(res.slot)},{_num(res.target)}"
        head = f"{res.device}:{res.adapter}:{addr}"
        if res.storage == "" and res.location == "":
            return head
        return f"{head}:{res.storage}:{res.location}"
    if res.mac is not None:
        addr = f"{_num(res.bus)},{_num(res.slot)},{format_mac(res.mac, mac_style)}"
    elif (res.bus, res.slot) == (None, None):
        addr = ""
    else:
        addr = f"{_num(res.bus)},{_num(res.slot)}"
    text = f"network:{res.adapter}:{addr}"
    if res.vswitch:
        text += f":vswitch:{res.vswitch}"
        if show_port and res.port is not None:
            text += f":portid:{res.port}"
    return text


@dataclass(frozen=True)
class MiscDevice:
    """A fixed system device shown under [Misc Interface Details] (hpvmstatus -P / -d)."""

    device: str
    adapter: str
    storage: str
    location: str


#: The guest's serial console: `serial:com1::tty:console` (spec 05 §4.5).
CONSOLE_DEVICE = MiscDevice("serial", "com1", "tty", "console")


def format_misc(dev: MiscDevice = CONSOLE_DEVICE) -> str:
    return f"{dev.device}:{dev.adapter}::{dev.storage}:{dev.location}"


def ioscan_path(res: StorageResource | NetworkResource) -> str:
    """The guest's ioscan hardware path: `0/<bus>/<slot>/0.<tgt>.0` or `0/<bus>/<slot>/0`."""
    if isinstance(res, StorageResource):
        return f"0/{res.bus}/{res.slot}/0.{res.target}.0"
    return f"0/{res.bus}/{res.slot}/0"


# ---------------------------------------------------------------------------------------------
# Selectors (-d, -m, hpvmclone -b)

def selector_matches(selector: StorageResource | NetworkResource,
                     res: StorageResource | NetworkResource) -> bool:
    """Whether a parsed -d/-m/-b selector picks this configured device: every part the
    selector gives must match (for -m, give `StorageResource` with only the address: use
    `address_of(sel)`; the backing part there is the new one)."""
    if isinstance(selector, StorageResource) != isinstance(res, StorageResource):
        return False
    if isinstance(selector, StorageResource):
        pairs = [(selector.device, res.device), (selector.bus, res.bus),
                 (selector.slot, res.slot), (selector.target, res.target),
                 (selector.storage or None, res.storage), (selector.location or None,
                                                           res.location)]
    else:
        pairs = [(selector.bus, res.bus), (selector.slot, res.slot), (selector.mac, res.mac),
                 (selector.vswitch or None, res.vswitch), (selector.port, res.port)]
    return all(want is None or want == have for want, have in pairs)


def address_of(res: StorageResource | NetworkResource) -> StorageResource | NetworkResource:
    """The selector made of a resource's device type and hardware address only (for -m)."""
    if isinstance(res, StorageResource):
        return StorageResource(res.device, res.adapter, res.bus, res.slot, res.target)
    return NetworkResource(res.adapter, res.bus, res.slot)


# ---------------------------------------------------------------------------------------------
# Address allocation and limits

def storage_adapters(storage: Iterable[StorageResource]) -> dict[tuple[int, int], set[int]]:
    """The guest's virtual SCSI adapters, (bus, slot) -> the targets in use on each."""
    adapters: dict[tuple[int, int], set[int]] = {}
    for dev in storage:
        if dev.bus is not None and dev.slot is not None:
            targets = adapters.setdefault((dev.bus, dev.slot), set())
            if dev.target is not None:
                targets.add(dev.target)
    return adapters


def _nic_slots(nics: Iterable[NetworkResource]) -> set[tuple[int, int]]:
    return {(n.bus, n.slot) for n in nics if n.bus is not None and n.slot is not None}


def _addr(*parts: int | None) -> str:
    return ",".join(_num(p) for p in parts)


def _capacity(message: str, field: str, value: str = "") -> ResourceError:
    return ResourceError(message, field=field, value=value, kind="capacity")


def _conflict(message: str, field: str, value: str) -> ResourceError:
    return ResourceError(message, field=field, value=value, kind="conflict")


def check_storage_limits(existing: Iterable[StorageResource], adding: int = 1) -> None:
    """At most 30 storage devices per VM (virtual and attached together)."""
    count = sum(1 for _ in existing)
    if count + adding > MAX_STORAGE_PER_VM:
        raise _capacity(f"Too many storage devices: a guest can have at most "
                        f"{MAX_STORAGE_PER_VM} (it has {count})", "storage devices", str(count))


def next_storage_address(existing: Iterable[StorageResource], *,
                         nics: Iterable[NetworkResource] = (), bus: int | None = None,
                         slot: int | None = None, target: int | None = None
                         ) -> tuple[int, int, int]:
    """The first available (bus, slot, target) for a new storage device, honouring any parts
    the spec gave. An existing adapter with a free target is filled first (the guide's
    0,1,0 -> 0,1,1); otherwise a new adapter takes the lowest PCI slot that no storage adapter
    and no vNIC uses. Raises ResourceError ('conflict' or 'capacity') when it cannot."""
    existing = list(existing)
    check_storage_limits(existing)
    adapters = storage_adapters(existing)
    nic_slots = _nic_slots(nics)
    if bus is not None and slot is not None:
        if (bus, slot) in nic_slots:
            raise _conflict(f"PCI slot {bus},{slot} is already used by a virtual network "
                            "device", "PCI slot", f"{bus},{slot}")
        used = adapters.get((bus, slot), set())
        if target is not None:
            if target in used:
                raise _conflict(f"Hardware address {bus},{slot},{target} is already in use",
                                "hardware address", _addr(bus, slot, target))
            return bus, slot, target
        if len(used) >= MAX_DEVICES_PER_ADAPTER:
            raise _capacity(f"Virtual SCSI adapter {bus},{slot} already has "
                            f"{MAX_DEVICES_PER_ADAPTER} devices", "PCI slot", f"{bus},{slot}")
        return bus, slot, min(t for t in range(MAX_TARGET + 1) if t not in used)
    for (b, s) in sorted(adapters):
        if (bus is None or b == bus) and (slot is None or s == slot):
            free = [t for t in range(MAX_TARGET + 1)
                    if t not in adapters[(b, s)] and (target is None or t == target)]
            if free:
                return b, s, free[0]
    for b in range(MAX_BUS + 1):
        for s in range(MAX_SLOT + 1):
            if (bus is None or b == bus) and (slot is None or s == slot) \
                    and (b, s) not in adapters and (b, s) not in nic_slots:
                return b, s, 0 if target is None else target
    raise _capacity(f"No free hardware address for a storage device at "
                    f"{_addr(bus, slot, target)}", "hardware address", _addr(bus, slot, target))


def next_network_address(existing: Iterable[NetworkResource], *,
                         storage: Iterable[StorageResource] = (), bus: int | None = None,
                         slot: int | None = None) -> tuple[int, int]:
    """The first PCI (bus, slot) that no vNIC and no storage adapter uses (each vNIC takes a
    slot of its own), honouring any part the spec gave."""
    taken = _nic_slots(existing) | set(storage_adapters(storage))
    if bus is not None and slot is not None:
        if (bus, slot) in taken:
            raise _conflict(f"PCI slot {bus},{slot} is already in use", "PCI slot",
                            f"{bus},{slot}")
        return bus, slot
    for b in range(MAX_BUS + 1):
        for s in range(MAX_SLOT + 1):
            if (bus is None or b == bus) and (slot is None or s == slot) and (b, s) not in taken:
                return b, s
    raise _capacity(f"No free PCI slot for a virtual network device at {_addr(bus, slot)}",
                    "PCI slot", _addr(bus, slot))


def complete_storage(res: StorageResource, existing: Iterable[StorageResource], *,
                     nics: Iterable[NetworkResource] = ()) -> StorageResource:
    """`res` with its hardware address filled in (see next_storage_address)."""
    b, s, t = next_storage_address(existing, nics=nics, bus=res.bus, slot=res.slot,
                                   target=res.target)
    return replace(res, bus=b, slot=s, target=t)


def complete_network(res: NetworkResource, existing: Iterable[NetworkResource], *,
                     storage: Iterable[StorageResource] = (), rng: random.Random | None = None,
                     taken_macs: Iterable[str] = (),
                     host_macs: Iterable[str] | Mapping[str, str] = ()) -> NetworkResource:
    """`res` with its PCI address and (when none was given) a generated MAC filled in.
    A MAC the administrator gave is checked against the host NICs and `taken_macs`.
    The vswitch port is left to the vswitch code."""
    existing = list(existing)
    b, s = next_network_address(existing, storage=storage, bus=res.bus, slot=res.slot)
    taken = list(taken_macs) + [n.mac for n in existing if n.mac]
    if res.mac is None:
        mac = generate_mac(rng, taken, host_macs)
    else:
        mac = check_mac(res.mac, host_macs=host_macs, taken=taken,
                        resource=format_resource(res))
    return replace(res, bus=b, slot=s, mac=mac)
