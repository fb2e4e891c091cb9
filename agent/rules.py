"""The guide's rules: names, limits, host accounting, backing-store and MAC conflicts.

Spec 01 §31 and DECISIONS §1 decide *when* each check bites:

* at hpvmcreate / hpvmmodify / hpvmclone a capacity shortfall (vCPUs, entitlement, memory,
  swap, a missing or halted vswitch, a missing backing store) is a **warning**; the guest is
  still defined "for a future configuration";
* a conflict over a resource named explicitly on the command line (a backing store another
  guest has, a restricted device, a duplicate MAC) is an **error** unless `-F`;
* at hpvmstart every problem is a **refusal**, judged against the guests running now.

Checks return the guide's texts. A warning about one device carries its item
("on item /dev/rdsk/c2t1d0: Device file '/dev/rdsk/c2t1d0' in use by another guest."); the
front end numbers them (`format_problem_block`).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterable

from agent.guest import Guest

MAX_VCPUS = 4                 # hpvmcreate(1M): "the maximum number of virtual CPUs ... is 4"
MAX_BOOTED = 256              # spec 01 §1: at most 256 guests booted at once
MAX_NAME = 256
CHUNK_MB = 64                 # dynamic memory chunk (DECISIONS §2)
MIN_ENTITLEMENT_PERCENT = 5.0  # hpvmmodify(1M): -e 5..100
HOST_RESERVE_BASE_MB = 750    # DECISIONS §1.5
HOST_RESERVE_RATE = 0.075
GUEST_OVERHEAD = 0.07

_NAME_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*\Z")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_. -]*\Z")
_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")

# The guide's warning texts (hpvmcreate/hpvmmodify/hpvmstart man pages, spec 01 §23/§25).
W_VCPUS = "Guest's vcpus exceeds server's physical cpus."
W_MEMORY = "Insufficient free memory for guest."
W_SWAP = "Insufficient swap resource for guest."
W_CPU = "Insufficient cpu resource for guest."
W_BOOTED = f"The maximum number of booted guests ({MAX_BOOTED}) is reached."


# ----------------------------------------------------------------------------- syntax

def shown(text: str) -> str:
    """`text` for an error line: control characters escaped, so a refusal stays one line."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return text.encode("unicode_escape").decode("ascii")
    return text


def name_problem(name: str, what: str = "name") -> str | None:
    """Why `name` is not a valid VM name (spec 01 §11), or None."""
    if name:
        name = shown(name)
    if not name:
        return f"The {what} is empty."
    if name.startswith("-"):
        return f"The {what} '{name}' must not begin with '-'."
    if len(name) > MAX_NAME:
        return f"The {what} is longer than {MAX_NAME} characters."
    if not _NAME_RE.match(name):
        return (f"The {what} '{name}' may contain only the characters A-Z a-z 0-9 - _ and .")
    return None


def label_problem(label: str, what: str = "label") -> str | None:
    """Labels (and OS versions) use the name characters plus spaces (DECISIONS §1.9)."""
    if len(label) > MAX_NAME:
        return f"The {what} is longer than {MAX_NAME} characters."
    if not _LABEL_RE.match(label):
        return f"The {what} '{shown(label)}' may contain only the characters A-Z a-z 0-9 - _ . and space."
    return None


def account_problem(name: str) -> str | None:
    """A user or group name for -u/-g."""
    if not name or not _ACCOUNT_RE.match(name) or len(name) > MAX_NAME:
        return f"'{shown(name or '')}' is not a valid user or group name."
    return None


# ----------------------------------------------------------------------------- accounting

def host_reserve_mb(host) -> float:
    """What the host keeps for itself: 750 MB + 7.5 % of (physical - 1 GB) (DECISIONS §1.5)."""
    return HOST_RESERVE_BASE_MB + HOST_RESERVE_RATE * max(0, host.memory_mb - 1024)


def guest_cost_mb(guest: Guest, resident: dict | None = None) -> float:
    """A running guest costs its memory + 7 %. With dynamic memory it holds only what its
    driver left it (`resident`: uuid -> MB the guest holds now, see `resident_mb`)."""
    mb = guest.memory_mb
    if resident and guest.uuid in resident:
        mb = resident[guest.uuid]
    return mb * (1.0 + GUEST_OVERHEAD)


def resident_mb(memory_mb: int, current_mb: int) -> int:
    """What a running guest holds of the host: its memory less what dynamic memory gave
    back (boot memory - current memory)."""
    return memory_mb - (boot_memory_mb(memory_mb) - current_mb)


def available_memory_mb(host, running: Iterable[Guest], resident: dict | None = None) -> int:
    """Memory still free for guests, as `hpvmstatus -s` shows it."""
    free = host.memory_mb - host_reserve_mb(host) - \
        sum(guest_cost_mb(g, resident) for g in running)
    return max(0, math.floor(free))


def growth_room_mb(host, running: Iterable[Guest], resident: dict) -> int:
    """How far a guest may grow from host free memory: whole chunks whose cost (+7 %) fits."""
    free = host.memory_mb - host_reserve_mb(host) - \
        sum(guest_cost_mb(g, resident) for g in running)
    return max(0, int(free / (1.0 + GUEST_OVERHEAD)) // CHUNK_MB * CHUNK_MB)


def available_swap_mb(host, running: Iterable[Guest]) -> int:
    """HP-UX reserves swap for the memory it locks for each running guest (spec 01 Table 2-1)."""
    return max(0, int(host.swap_mb - sum(g.memory_mb for g in running)))


def capacity_mhz(host) -> int:
    return host.cpus * host.cpu_mhz


def entitlement_mhz(guest: Guest, host) -> float:
    """What a guest promises its vCPUs in total (vcpus x per-vCPU entitlement)."""
    return guest.vcpus * guest.entitlement.as_mhz(host.cpu_mhz)


def used_mhz(host, running: Iterable[Guest]) -> float:
    return sum(entitlement_mhz(g, host) for g in running)


def max_vcpus(host) -> int:
    """`Maximum vcpus for ... = min(4, physical CPUs)` (DECISIONS §1.3)."""
    return min(MAX_VCPUS, host.cpus)


def available_entitlement_mhz(host, running: Iterable[Guest], nway: int) -> int:
    """Per-vCPU MHz an `nway` guest could still be guaranteed (DECISIONS §1.4).

    No vCPU is promised more than one physical CPU, and an n-way guest needs n physical CPUs.
    Reproduces the guide's `hpvmstatus -s`: 2 x 1400 MHz, two 1-vCPU guests at 10 % running ->
    1-way 1400 Mhz, 2-way 1260 Mhz."""
    if nway < 1 or nway > host.cpus:
        return 0
    left = capacity_mhz(host) - used_mhz(host, running)
    return max(0, int(min(host.cpu_mhz, left / nway)))


def entitlement_fits(guest: Guest, host, running: Iterable[Guest]) -> bool:
    if guest.vcpus > host.cpus:
        return False
    per_vcpu = guest.entitlement.as_mhz(host.cpu_mhz)
    if per_vcpu > host.cpu_mhz + 1e-9:
        return False
    return used_mhz(host, running) + guest.vcpus * per_vcpu <= capacity_mhz(host) + 1e-9


# ----------------------------------------------------------------------------- dynamic memory

def dynmem_problem(memory_mb: int, dm) -> str | None:
    """The keyword constraints of spec 03 §6.2: min < max, min < target_start <= max."""
    lo, hi, start = dm.min_mb, dm.max_mb, dm.target_start_mb
    if lo is not None and hi is not None and not lo < hi:
        return f"ram_dyn_min ({lo} MB) must be less than ram_dyn_max ({hi} MB)."
    if start is not None:
        if lo is not None and not lo < start:
            return f"ram_dyn_target_start ({start} MB) must be greater than ram_dyn_min ({lo} MB)."
        if hi is not None and not start <= hi:
            return f"ram_dyn_target_start ({start} MB) must not be greater than ram_dyn_max ({hi} MB)."
        if start > memory_mb:
            return (f"ram_dyn_target_start ({start} MB) must not be greater than the guest's "
                    f"memory ({memory_mb} MB).")
    if lo is not None and lo >= memory_mb:
        return f"ram_dyn_min ({lo} MB) must be less than the guest's memory ({memory_mb} MB)."
    return None


def dynmem_floor_mb(boot_mb: int, dm) -> int:
    """Where a shrink stops: ram_dyn_min rounded up to a whole chunk removed from boot."""
    floor = dm.min_mb if dm.min_mb is not None else 0
    return effective_target_mb(boot_mb, floor) if floor < boot_mb else boot_mb


def entitlement_problem(ent, host) -> str | None:
    """An entitlement a guest cannot have: outside 5-100 % of one physical CPU."""
    pct = ent.as_percent(host.cpu_mhz)
    if pct < MIN_ENTITLEMENT_PERCENT - 1e-9 or pct > 100.0 + 1e-9:
        shown = f"{ent.mhz} MHz" if ent.mhz is not None else f"{ent.percent:g}%"
        return (f"The entitlement {shown} is outside 5-100% of a processor "
                f"({host.cpu_mhz} MHz).")
    return None


def boot_memory_mb(memory_mb: int) -> int:
    """What the guest OS sees: configured memory - 9 MB (2 GB -> 2039 MB; DECISIONS §2)."""
    return max(CHUNK_MB, memory_mb - 9)


def effective_target_mb(boot_mb: int, requested_mb: int) -> int:
    """A shrink removes whole chunks: boot - floor((boot - requested) / 64) * 64."""
    if requested_mb >= boot_mb:
        return boot_mb
    return boot_mb - ((boot_mb - requested_mb) // CHUNK_MB) * CHUNK_MB


# ----------------------------------------------------------------------------- backing stores
# Device identity and overlap (dsk/rdsk aliases, slices of a disk, an LV on its volume group's
# disks, a file on its file system's device) are the device database's knowledge
# (agent.devicedb); the rules only ask it.

def backing_exists(storage_kind: str, location: str, host) -> bool:
    """Whether a backing store is there: devices from the host facts, files and directories
    from the real file system (file backing stores are real files, DECISIONS §3)."""
    from agent import devicedb
    if not location:
        return storage_kind == "null"
    if storage_kind == "file":
        return os.path.isfile(location) or (location.endswith("/") and os.path.isdir(location))
    if storage_kind == "null" and not location.startswith("/dev/"):
        return os.path.isdir(location) or os.path.isfile(location)
    return bool(devicedb.exists_on_host(location, host))


# ----------------------------------------------------------------------------- checks

class Environment:
    """What the checks need from the rest of the agent: the host, the guests and who runs,
    the vswitch table (agent.vswitch) and the device database (agent.devicedb). Built by
    `AgentCore.environment()`."""

    def __init__(self, host, guests, running: dict[str, Guest], vswitches=None,
                 devdb=None, host_macs=(), resident: dict | None = None):
        self.host = host
        self.resident = resident or {}     # uuid -> MB a dynamic memory guest holds now
        self._guests = guests          # a list, or a callable giving it when first needed
        self.running = running                       # uuid -> active configuration
        self.vswitches = vswitches
        self.devdb = devdb
        self.host_macs = {m.lower() for m in host_macs}
        self._overlap_cache: dict = {}

    @property
    def guests(self) -> list[Guest]:
        if callable(self._guests):
            self._guests = self._guests()
        return self._guests

    def vswitch_status(self, name: str) -> str:
        """'up', 'down' or 'missing'."""
        sw = self.vswitches.get(name) if self.vswitches is not None else None
        if sw is None:
            return "missing"
        return "up" if sw.up else "down"

    def restricted(self, path: str) -> bool:
        return self.devdb is not None and self.devdb.is_restricted(path, self.host)

    def vswitch_restricted(self, name: str) -> bool:
        sw = self.vswitches.get(name) if self.vswitches is not None else None
        return (sw is not None and self.devdb is not None
                and self.devdb.is_restricted_vswitch(sw, self.host))

    def shared(self, path: str) -> bool:
        if self.devdb is None:
            return False
        return self.devdb.is_shareable(path, self.host, vswitch=False)

    def overlaps(self, a: str, b: str) -> bool:
        from agent import devicedb
        key = (a, b)
        if key not in self._overlap_cache:
            self._overlap_cache[key] = devicedb.overlaps(a, b, self.host)
        return self._overlap_cache[key]

    def identity(self, path: str) -> str:
        from agent import devicedb
        return devicedb.identity(path, self.host)

    def others(self, guest: Guest, *, running_only: bool) -> list[Guest]:
        pool = self.running.values() if running_only else self.guests
        return [g for g in pool if g.uuid != guest.uuid]


@dataclass
class Explicit:
    """Resources named on this command line (-a/-m/-b): conflicts over them are errors."""

    locations: set = field(default_factory=set)
    macs: set = field(default_factory=set)
    created: set = field(default_factory=set)   # backing files this command will make (clone -b)


@dataclass
class CheckResult:
    errors: list[str] = field(default_factory=list)     # refuse the request
    warnings: list[str] = field(default_factory=list)   # numbered in the warning block


def _item(item: str, text: str) -> str:
    return f"on item {item}: {text}"


def structure_errors(guest: Guest, env: Environment | None = None) -> list[str]:
    """Faults of the configuration itself, whatever the host: always errors."""
    from agent import devicedb
    host = env.host if env is not None else None
    errs = []
    if not 1 <= guest.vcpus <= MAX_VCPUS:
        errs.append(f"The number of vcpus must be between 1 and {MAX_VCPUS}.")
    seen_loc, seen_addr = {}, set()
    for s in guest.storage:
        if s.location and s.storage != "null":
            loc = devicedb.identity(s.location, host)
            if loc in seen_loc:
                errs.append(f"The resource '{s.location}' is specified more than once.")
            seen_loc[loc] = True
        addr = (s.bus, s.slot, s.target)
        if addr in seen_addr:
            errs.append(f"The hardware address {s.bus},{s.slot},{s.target} is used by two devices.")
        seen_addr.add(addr)
    nic_addr, macs = set(), set()
    for n in guest.nics:
        if (n.bus, n.slot) in nic_addr:
            errs.append(f"The hardware address {n.bus},{n.slot} is used by two network devices.")
        nic_addr.add((n.bus, n.slot))
        if n.mac in macs:
            errs.append(f"The MAC address {n.mac} is specified more than once.")
        macs.add(n.mac)
    slots_storage = {(s.bus, s.slot) for s in guest.storage}
    for n in guest.nics:
        if (n.bus, n.slot) in slots_storage:
            errs.append(f"The PCI slot {n.bus},{n.slot} is used by both a storage and a network adapter.")
    if guest.reserved_mb is not None and guest.reserved_mb > guest.memory_mb:
        errs.append(f"The reserved memory ({guest.reserved_mb} MB) must not exceed the guest's "
                    f"memory ({guest.memory_mb} MB).")
    problem = dynmem_problem(guest.memory_mb, guest.dynmem)
    if problem:
        errs.append(problem)
    return errs


def _capacity(guest: Guest, env: Environment, running: list[Guest]) -> list[str]:
    host, out = env.host, []
    if guest.vcpus > host.cpus:
        out.append(W_VCPUS)
    if guest_cost_mb(guest) > host.memory_mb - host_reserve_mb(host) - \
            sum(guest_cost_mb(g, env.resident) for g in running):
        out.append(W_MEMORY)
    if guest.memory_mb > available_swap_mb(host, running):
        out.append(W_SWAP)
    if not entitlement_fits(guest, host, running):
        out.append(W_CPU)
    return out


def _conflict(text: str, loc: str, errors: list[str] | None, out: list[str]) -> None:
    """A device in use elsewhere: a refusal in `errors` when given, else a per-item problem."""
    if errors is not None:
        errors.append(text)
    else:
        out.append(_item(loc, text))


def _device_problems(guest: Guest, env: Environment, *, at_start: bool,
                     explicit: Explicit, errors: list[str]) -> list[str]:
    """Per-item problems. Conflicts over explicitly named resources go to `errors`."""
    out = []
    others = env.others(guest, running_only=at_start) if guest.storage else []
    for s in guest.storage:
        loc = s.location
        if not loc:
            continue
        # a device this command names itself is refused; one already configured is reported
        refusals = errors if loc in explicit.locations and not at_start else None
        if loc not in explicit.created and not backing_exists(s.storage, loc, env.host):
            out.append(f"on item {loc} backing device does not exist.")
            continue
        if env.restricted(loc):
            _conflict(f"Device file '{loc}' in use by server.", loc, refusals, out)
            continue
        if env.shared(loc) or (s.storage == "null" and not loc.startswith("/dev/")):
            continue
        for other in others:
            if any(o.location and not env.shared(o.location)
                   and env.overlaps(loc, o.location) for o in other.storage):
                _conflict(f"Device file '{loc}' in use by another guest.", loc, refusals, out)
                break
    mac_owner = {}
    if guest.nics:
        for other in env.others(guest, running_only=False):
            for n in other.nics:
                mac_owner.setdefault(n.mac, other)
    running_ids = set(env.running)
    for n in guest.nics:
        status = env.vswitch_status(n.vswitch)
        if env.vswitch_restricted(n.vswitch):
            out.append(_item(n.vswitch, f"Device file '{n.vswitch}' in use by server."))
        if status == "missing":
            out.append(_item(n.vswitch, f"'{n.vswitch}' backing device does not exist."))
        elif status != "up":
            out.append(_item(n.vswitch, f"Vswitch {n.vswitch} is not active."))
        if at_start and n.port is not None:
            holder = next((o for o in env.running.values() if o.uuid != guest.uuid and any(
                x.vswitch == n.vswitch and x.port == n.port for x in o.nics)), None)
            if holder is not None:
                out.append(_item(n.vswitch, f"Port {n.port} of vswitch {n.vswitch} is in use "
                                            f"by guest {holder.name}."))
        owner = mac_owner.get(n.mac)
        clash = n.mac in env.host_macs or (owner is not None and (not at_start or owner.uuid in running_ids))
        if clash:
            if n.mac in explicit.macs and not at_start:
                errors.append(f"MAC address {n.mac} is already in use.")
            else:
                out.append(_item(n.vswitch, f"MAC address in use for switch {n.vswitch}."))
    return out


def check_definition(guest: Guest, env: Environment, explicit: Explicit | None = None) -> CheckResult:
    """hpvmcreate / hpvmmodify / hpvmclone: could this guest start on its own, now?"""
    explicit = explicit or Explicit()
    res = CheckResult(errors=structure_errors(guest, env))
    running = [g for u, g in env.running.items() if u != guest.uuid]
    res.warnings.extend(_capacity(guest, env, running))
    res.warnings.extend(_device_problems(guest, env, at_start=False, explicit=explicit,
                                         errors=res.errors))
    return res


def check_start(guest: Guest, env: Environment) -> list[str]:
    """hpvmstart: every problem is a refusal, judged against the guests running now."""
    running = [g for u, g in env.running.items() if u != guest.uuid]
    problems = []
    if len(running) >= MAX_BOOTED:
        problems.append(W_BOOTED)
    problems.extend(_capacity(guest, env, running))
    errors: list[str] = []
    problems.extend(_device_problems(guest, env, at_start=True, explicit=Explicit(), errors=errors))
    return problems + errors


def format_warning(n: int, text: str) -> str:
    """`Warning 1: text` or `Warning 5 on item X: text` (the guide's two forms)."""
    if text.startswith("on item "):
        return f"Warning {n} {text}"
    return f"Warning {n}: {text}"


def format_problem_block(name: str, warnings: list[str], *, ending: str) -> list[str]:
    """The guide's configuration-problem block (spec 01 §23/§25):

        HPVM guest compass1 configuration problems:
            Warning 1: Guest's vcpus exceeds server's physical cpus.
            Warning 2: Insufficient cpu resource for guest.
        These problems may prevent HPVM guest compass1 from starting.

    `ending` is 'starting' (create, modify, clone) or 'booting' (start)."""
    lines = [f"HPVM guest {name} configuration problems:"]
    lines += [f"    {format_warning(i, w)}" for i, w in enumerate(warnings, 1)]
    lines.append(f"These problems may prevent HPVM guest {name} from {ending}.")
    return lines
