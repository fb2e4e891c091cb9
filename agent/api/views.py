"""The read side of the agent API: `StatusViews`, and the typed view objects it returns.

The view objects are what `hpvmstatus` and `hpvminfo` show, as values rather than text.

The hpvm* CLI renders them as the guide's layouts, `agent.formats` writes and reads them as
`-M` and `-X`, and the CIM providers map them to properties. Sizes are whole MB unless the
field name says otherwise; percentages are floats; absent values are None.

Each field carries its `-V` label (`label`) and, where the guide shows one, its unit; each
record class carries the tag that names it in `-M` and `-X` (`TAG`). The field order is the
`-V` order, which both machine formats keep (DECISIONS §1.14).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar


def _f(label: str, *, unit: str | None = None, default=None, factory=None):
    meta = {"label": label, "unit": unit}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --- the summary table ---------------------------------------------------------------------

@dataclass
class SummaryRow:
    """One row of `[Virtual Machines]`. An invalid guest has state `Invalid` and may lack
    the numbers its broken configuration would have given."""

    TAG: ClassVar[str] = "summary"
    name: str = _f("Virtual Machine Name", default="")
    vm_number: int | None = _f("VM #")
    os_type: str = _f("OS Type", default="")
    state: str = _f("State", default="")
    vcpus: int | None = _f("#VCPUs")
    devices: int | None = _f("#Devs")
    nets: int | None = _f("#Nets")
    memory_mb: int | None = _f("Memory", unit="MB")
    runsysid: int = _f("Runsysid", default=0)


# --- the verbose (-V) sections ---------------------------------------------------------------

@dataclass
class MachineDetails:
    TAG: ClassVar[str] = "vm"
    SECTION: ClassVar[str] = "Virtual Machine Details"
    name: str = _f("Virtual Machine Name", default="")
    uuid: str = _f("Virtual Machine UUID", default="")
    vm_number: int = _f("Virtual Machine ID", default=0)
    label: str = _f("Virtual Machine Label", default="")
    model_name: str = _f("VM's Model Name", default="")
    serial: str = _f("VM's Serial Number", default="")
    config_version: str = _f("VM's Config Version", default="")
    config_label: str = _f("VM's Config Label", default="")
    os_type: str = _f("Operating System", default="")
    os_version: str = _f("OS Version Number", default="")
    state: str = _f("State", default="")
    start_type: str = _f("Start type", default="")
    console_type: str = _f("Console type", default="")
    guest_hostname: str = _f("Guest's hostname", default="")
    guest_ip: str = _f("Guest's IP address", default="")
    efi_location: str = _f("EFI location", default="")
    pattern_file: str = _f("Pattern File location", default="")
    guest_revision: int = _f("Guest revision", default=0)
    server_id: int = _f("Running on serverid", default=0)
    pid: int | None = _f("Running on pid")
    app_controller: str = _f("Application controllers", default="NONE")
    distributed: int = _f("Distributed", default=0)


@dataclass
class AdministratorDetails:
    TAG: ClassVar[str] = "admins"
    SECTION: ClassVar[str] = "Authorized Administrators"
    oper_groups: list[str] = _f("Oper Groups", factory=list)
    admin_groups: list[str] = _f("Admin Groups", factory=list)
    oper_users: list[str] = _f("Oper Users", factory=list)
    admin_users: list[str] = _f("Admin Users", factory=list)


@dataclass
class CpuDetails:
    TAG: ClassVar[str] = "vcpu"
    SECTION: ClassVar[str] = "Virtual CPU Details"
    vcpus: int = _f("Number Virtual CPUs", default=1)
    min_vcpus: int = _f("Minimum Virtual CPUs", default=1)
    max_vcpus: int = _f("Maximum Virtual CPUs", default=4)
    entitlement_percent: float = _f("Percent Entitlement", unit="%", default=10.0)
    max_entitlement_percent: float = _f("Maximum Entitlement", unit="%", default=100.0)
    # Set only when the entitlement was given in cycles (-E): the configured MHz.
    entitlement_mhz: int | None = _f("Entitlement cycles", unit="Mhz")


@dataclass
class MemoryDetails:
    TAG: ClassVar[str] = "memory"
    SECTION: ClassVar[str] = "Memory Details"
    total_mb: int = _f("Total memory", unit="MB", default=0)
    min_limit_mb: int = _f("Minimum memory limit", unit="MB", default=0)
    max_limit_mb: int = _f("Maximum memory limit", unit="MB", default=0)
    reserved_mb: int = _f("Reserved memory", unit="MB", default=0)
    min_reserved_mb: int = _f("Minimum reserved limit", unit="MB", default=0)
    max_reserved_mb: int = _f("Maximum reserved limit", unit="MB", default=0)
    vhpt_mb: int = _f("VHPT Size", unit="MB", default=0)


@dataclass
class DynamicMemoryDetails:
    """`[Dynamic Memory Information]`. With no driver reporting (`live` False) only the
    configured Type, Minimum, Target and Maximum are known (spec 03 §6.9)."""

    TAG: ClassVar[str] = "dynmem"
    SECTION: ClassVar[str] = "Dynamic Memory Information"
    live: bool = _f("Live", default=False)
    type: str = _f("Type", default="none")
    min_mb: int | None = _f("Minimum memory", unit="MB")
    target_mb: int | None = _f("Target memory", unit="MB")
    max_mb: int | None = _f("Maximum memory", unit="MB")
    current_mb: int | None = _f("Current memory", unit="MB")
    comfortable_min_mb: int | None = _f("Comfortable minimum", unit="MB")
    boot_mb: int | None = _f("Boot memory", unit="MB")
    free_mb: int | None = _f("Free memory", unit="MB")
    available_mb: int | None = _f("Available memory", unit="MB")
    pressure: int | None = _f("Memory pressure")
    chunk_kb: int | None = _f("Memory chunksize", unit="KB")
    driver_modes: list[str] = _f("Driver Mode(s)", factory=list)


@dataclass
class StorageDetails:
    TAG: ClassVar[str] = "storage"
    SECTION: ClassVar[str] = "Storage Interface Details"
    device: str = _f("Guest Device type", default="")
    adapter: str = _f("Guest Adaptor type", default="")
    ioscan: str = _f("Ioscan format", default="")
    bus: int | None = _f("Bus")
    slot: int | None = _f("Device")
    function: int | None = _f("Function")
    target: int | None = _f("Target")
    lun: int | None = _f("Lun")
    storage: str = _f("Physical Storage type", default="")
    location: str = _f("Physical Device", default="")


@dataclass
class NetworkDetails:
    TAG: ClassVar[str] = "network"
    SECTION: ClassVar[str] = "Network Interface Details"
    interface: str = _f("Physical Storage type", default="vswitch")  # sic, as the guide prints
    adapter: str = _f("Guest Adaptor type", default="lan")
    vswitch: str = _f("Backing", default="")
    port: int | None = _f("Vswitch Port")
    ioscan: str = _f("Ioscan format", default="")
    bus: int | None = _f("Bus")
    slot: int | None = _f("Device")
    function: int | None = _f("Function")
    mac: str = _f("Mac Address", default="")


@dataclass
class MiscDetails:
    TAG: ClassVar[str] = "misc"
    SECTION: ClassVar[str] = "Misc Interface Details"
    device: str = _f("Guest Device type", default="serial")
    adapter: str = _f("Guest Adaptor type", default="com1")
    storage: str = _f("Physical Storage type", default="tty")
    location: str = _f("Physical Device", default="console")


@dataclass
class GuestDetails:
    """Everything `hpvmstatus -V -P name` shows, section by section."""

    TAG: ClassVar[str] = "virtual_machine"
    machine: MachineDetails
    admins: AdministratorDetails
    cpu: CpuDetails
    memory: MemoryDetails
    dynmem: DynamicMemoryDetails | None
    storage: list[StorageDetails]
    network: list[NetworkDetails]
    misc: list[MiscDetails]


@dataclass
class InvalidGuestDetails:
    """A guest whose stored configuration cannot be read: where and why."""

    TAG: ClassVar[str] = "invalid"
    SECTION: ClassVar[str] = "Virtual Machine Details"
    name: str = _f("Virtual Machine Name", default="")
    state: str = _f("State", default="Invalid")
    file: str = _f("Configuration file", default="")
    line: int = _f("Configuration line", default=0)
    reason: str = _f("Configuration error", default="")


# --- -d: devices in resource-spec form -------------------------------------------------------

@dataclass
class DeviceSpecs:
    """`hpvmstatus -d`: each device as the hpvmresources(5) spec that would recreate it
    (typed `StorageResource` / `NetworkResource`; misc devices as their own type)."""

    TAG: ClassVar[str] = "devices"
    name: str
    storage: list  # list[agent.resources.StorageResource]
    network: list  # list[agent.resources.NetworkResource]
    misc: list     # list[agent.resources.MiscDevice]


# --- -s: host resources ----------------------------------------------------------------------

@dataclass
class HostResources:
    TAG: ClassVar[str] = "host_resources"
    SECTION: ClassVar[str] = "HPVM Server System Resources"
    cpu_mhz: int = _f("Processor speed", unit="Mhz", default=0)
    memory_mb: int = _f("Total physical memory", unit="Mbytes", default=0)
    cpus: int = _f("Total number of processors", default=0)
    available_memory_mb: int = _f("Available memory", unit="Mbytes", default=0)
    available_swap_mb: int = _f("Available swap space", unit="Mbytes", default=0)
    max_vcpus_hpux: int = _f("Maximum vcpus for an HP-UX virtual machine", default=0)
    max_vcpus_windows: int = _f("Maximum vcpus for a Windows virtual machine", default=0)
    max_vcpus_linux: int = _f("Maximum vcpus for a Linux virtual machine", default=0)
    # Item N-1 is the per-vCPU MHz still available to an N-way guest, N = 1..max.
    available_entitlement_mhz: list[int] = _f("Available entitlement", unit="Mhz",
                                              factory=list)


# --- -r: resource allocation and usage -------------------------------------------------------

@dataclass
class VcpuUsage:
    TAG: ClassVar[str] = "vcpu_usage"
    index: int = _f("vCPU", default=0)
    cumulative_mcycles: int = _f("Cumulative Usage", default=0)
    guest_percent: float = _f("Guest percent", unit="%", default=0.0)
    host_percent: float = _f("Host percent", unit="%", default=0.0)
    achieved_mhz: int = _f("Achieved", unit="Mhz", default=0)


@dataclass
class ResourceAllocation:
    """`hpvmstatus -r`: configured entitlement and what the guest uses now. Cumulative usage
    is in millions of host CPU cycles since the guest booted."""

    TAG: ClassVar[str] = "resources"
    name: str = _f("Virtual Machine Name", default="")
    vm_number: int = _f("VM #", default=0)
    state: str = _f("State", default="")
    vcpus: int = _f("#VCPUs", default=0)
    entitlement_percent: float = _f("Entitlement", unit="%", default=0.0)
    entitlement_mhz: int | None = _f("Entitlement cycles", unit="Mhz")
    max_entitlement_percent: float = _f("Maximum", unit="%", default=100.0)
    percent_usage: float = _f("Percent Usage", unit="%", default=0.0)
    cumulative_mcycles: int = _f("Cumulative Usage", default=0)
    memory_mb: int = _f("Memory", unit="MB", default=0)
    current_memory_mb: int | None = _f("Current Memory", unit="MB")
    sampling_interval_s: float = _f("Sampling Interval", unit="s", default=0.0)
    vcpu_usage: list[VcpuUsage] = field(default_factory=list)


# --- -e: events ------------------------------------------------------------------------------

@dataclass
class EventEntry:
    TAG: ClassVar[str] = "event"
    seq: int = _f("Seq", default=0)
    time: float = _f("Date/Time", default=0.0)
    actor: str = _f("User", default="")
    kind: str = _f("Event", default="")
    subject: str = _f("Guest", default="")
    # "key=value" pairs in key order, joined by ", "; free text, so always the last field.
    detail: str = _f("Details", default="")


# --- -S: scheduler ---------------------------------------------------------------------------

@dataclass
class SchedulerMode:
    """CAPPED when any guest is managed by gWLM (`-i GWLM`), else NORMAL."""

    TAG: ClassVar[str] = "scheduler"
    mode: str = _f("Mode", default="NORMAL")
    controlled: list[str] = _f("Controller managed virtual machines", factory=list)
    startable: list[str] = _f("Startable virtual machines", factory=list)


# --- -m: multi-server environment ------------------------------------------------------------

@dataclass
class ServerEntry:
    TAG: ClassVar[str] = "server"
    server_id: int | None = _f("Server_id")
    state: int = _f("Server_state", default=0)
    ipaddr: str = _f("Server_ipaddr", default="")
    hostname: str = _f("Server_hostname", default="")


@dataclass
class MultiServer:
    """`hpvmstatus -m`. `configured` is False when the device database has no `server`
    entries. A server's state is 1 for this host (it answers: it is us), 0 for the others,
    whose liveness this host cannot observe without a cluster manager."""

    TAG: ClassVar[str] = "multiserver"
    configured: bool = _f("Configured", default=False)
    this_server_id: int | None = _f("This servers identifier")
    servers: list[ServerEntry] = field(default_factory=list)


# --- -v ------------------------------------------------------------------------------------

@dataclass
class VersionInfo:
    """`-v`: the release the commands mirror, and this build."""

    TAG: ClassVar[str] = "version"
    release: str = _f("Release", default="")
    build: str = _f("Build", default="")


# --- hpvminfo --------------------------------------------------------------------------------

@dataclass
class HostInfo:
    """`hpvminfo`: where we run and what identifies the VM Host."""

    TAG: ClassVar[str] = "hpvminfo"
    environment: str = _f("Environment", default="host")   # host | guest
    model: str = _f("Host model string", default="")
    serial: str = _f("Host serial number", default="")
    partition_ident: str = _f("Host partition ident", default="")
    machine_ident: str = _f("Host machine ident", default="")
    hostname: str = _f("Hostname", default="")
    ipv4_addresses: list[str] = _f("IP Address", factory=list)
    cpus: int = _f("Number of processors", default=0)
    cpu_mhz: int = _f("Processor speed", unit="Mhz", default=0)
    memory_mb: int = _f("Total physical memory", unit="Mbytes", default=0)
    ipv6_addresses: list[str] = _f("IPv6 Address", factory=list)


# =============================================================================================
# StatusViews: building the views from the agent's state
# =============================================================================================

# Product constants the -V view shows (spec 03 §1.5): they describe Integrity VM A.03.00
# itself, not a guest.
MODEL_NAME = "server Integrity Virtual Machine"
CONSOLE_TYPE = "vt100-plus"
EFI_LOCATION = "/opt/hpvm/guest-images/common/efi"
PATTERN_FILE = "/opt/hpvm/guest-images/common/patterns.vmmpat"
PRODUCT_RELEASE = "A.03.00.00"
MIN_VCPUS = 1
MAX_ENTITLEMENT_PERCENT = 100.0
# [Memory Details] limits of the product (spec 03 §1.5).
MIN_MEMORY_MB = 512
MAX_MEMORY_MB = 64 * 1024
DEFAULT_RESERVED_MB = 64
MIN_RESERVED_MB = 32
MAX_RESERVED_MB = 64 * 1024
VHPT_MB = 1
CHUNK_KB = 64 * 1024
GWLM = "GWLM"
# Events that make a new revision of a guest's configuration (`Guest revision`).
REVISION_EVENTS = ("guest.create", "guest.modify", "guest.rename")


@functools.lru_cache(maxsize=1)
def product_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("vmprovider")
    except PackageNotFoundError:   # running from a source tree that is not installed
        return "0"


def version_info() -> VersionInfo:
    return VersionInfo(release=PRODUCT_RELEASE, build=f"vmprovider {product_version()}")


def config_label() -> str:
    """`VM's Config Label`: the release and build that wrote the configuration."""
    return f"HPVM {PRODUCT_RELEASE} vmprovider {product_version()}"


def summary_row(guest, runtime) -> SummaryRow:
    return SummaryRow(name=guest.name, vm_number=guest.vm_number, os_type=guest.os_type,
                      state=runtime.state, vcpus=guest.vcpus, devices=len(guest.storage),
                      nets=len(guest.nics), memory_mb=guest.memory_mb,
                      runsysid=runtime.run_server_id)


def invalid_row(bad) -> SummaryRow:
    """An unreadable guest: only its name (from its guests/ link) is known."""
    return SummaryRow(name=bad.name, state="Invalid")


def _admins(guest) -> AdministratorDetails:
    out = AdministratorDetails()
    for grant in guest.roles:
        getattr(out, f"{grant.role}_{grant.kind}s").append(grant.name)
    return out


def _cpu(guest, host) -> CpuDetails:
    from agent import rules
    ent = guest.entitlement
    return CpuDetails(vcpus=guest.vcpus, min_vcpus=MIN_VCPUS, max_vcpus=rules.MAX_VCPUS,
                      entitlement_percent=round(ent.as_percent(host.cpu_mhz), 1),
                      max_entitlement_percent=MAX_ENTITLEMENT_PERCENT,
                      entitlement_mhz=ent.mhz)


def _memory(guest) -> MemoryDetails:
    reserved = getattr(guest, "reserved_mb", None)
    return MemoryDetails(total_mb=guest.memory_mb, min_limit_mb=MIN_MEMORY_MB,
                         max_limit_mb=MAX_MEMORY_MB,
                         reserved_mb=DEFAULT_RESERVED_MB if reserved is None else reserved,
                         min_reserved_mb=MIN_RESERVED_MB, max_reserved_mb=MAX_RESERVED_MB,
                         vhpt_mb=VHPT_MB)


def _dynmem(guest, runtime) -> DynamicMemoryDetails | None:
    """Shown when dynamic memory is configured. Live figures come from a running guest's
    driver; otherwise only the configured values (spec 03 §6.9)."""
    dm = guest.dynmem
    if dm.type == "none":
        return None
    stats = runtime.memory
    if stats is not None and stats.driver and runtime.active:
        modes = ["STARTED", "ENABLED"] + (["GUESTCTL"] if dm.control else [])
        return DynamicMemoryDetails(
            live=True, type="driver",
            min_mb=dm.min_mb, target_mb=stats.target_mb,
            max_mb=dm.max_mb if dm.max_mb is not None else guest.memory_mb,
            current_mb=stats.current_mb, comfortable_min_mb=stats.comfortable_min_mb,
            boot_mb=stats.boot_mb, free_mb=stats.free_mb, available_mb=stats.available_mb,
            pressure=stats.pressure, chunk_kb=CHUNK_KB, driver_modes=modes)
    return DynamicMemoryDetails(
        live=False, type=dm.type, min_mb=dm.min_mb,
        target_mb=dm.target_start_mb if dm.target_start_mb is not None else guest.memory_mb,
        max_mb=dm.max_mb if dm.max_mb is not None else guest.memory_mb)


def _storage(res) -> StorageDetails:
    from agent.resources import ioscan_path
    return StorageDetails(device=res.device, adapter=res.adapter, ioscan=ioscan_path(res),
                          bus=res.bus, slot=res.slot, function=0, target=res.target, lun=0,
                          storage=res.storage, location=res.location)


def _network(res) -> NetworkDetails:
    from agent.resources import format_mac, ioscan_path
    return NetworkDetails(interface="vswitch", adapter=res.adapter, vswitch=res.vswitch,
                          port=res.port, ioscan=ioscan_path(res), bus=res.bus, slot=res.slot,
                          function=0, mac=format_mac(res.mac, "dash") if res.mac else "")


def _misc() -> list[MiscDetails]:
    from agent.resources import CONSOLE_DEVICE as c
    return [MiscDetails(device=c.device, adapter=c.adapter, storage=c.storage,
                        location=c.location)]


def guest_details(guest, runtime, host, *, revision: int) -> GuestDetails:
    facts = runtime.details or {}
    machine = MachineDetails(
        name=guest.name, uuid=guest.uuid, vm_number=guest.vm_number, label=guest.label,
        model_name=MODEL_NAME, serial=guest.serial, config_version=guest.config_version,
        config_label=config_label(), os_type=guest.os_type, os_version=guest.os_version,
        state=runtime.state, start_type=guest.start_attr.capitalize(),
        console_type=CONSOLE_TYPE,
        guest_hostname=str(facts.get("guest_hostname", "")) if runtime.active else "",
        guest_ip=str(facts.get("guest_ip", "")) if runtime.active else "",
        efi_location=EFI_LOCATION, pattern_file=PATTERN_FILE, guest_revision=revision,
        server_id=runtime.run_server_id, pid=runtime.pid,
        app_controller=guest.app_controller, distributed=1 if guest.distributed else 0)
    return GuestDetails(machine=machine, admins=_admins(guest), cpu=_cpu(guest, host),
                        memory=_memory(guest), dynmem=_dynmem(guest, runtime),
                        storage=[_storage(s) for s in guest.storage],
                        network=[_network(n) for n in guest.nics], misc=_misc())


def invalid_details(bad) -> InvalidGuestDetails:
    return InvalidGuestDetails(name=bad.name, state="Invalid", file=str(bad.file),
                        line=int(bad.line), reason=str(bad.reason))


def _event_detail(detail: dict) -> str:
    return ", ".join(f"{k}={detail[k]}" for k in sorted(detail))


class StatusViews:
    """The read API: every hpvmstatus / hpvminfo view, as typed values.

    Selection (`name` or `number`) follows hpvmstatus: one guest, or every guest when neither
    is given. An unknown guest raises the core's not-found error."""

    # -- selection
    def _sv_select(self, name=None, number=None):
        """(valid guests, invalid guests) chosen by name/number (both lists, in VM order)."""
        if name is None and number is None:
            return self.guests(), self.invalid_guests()
        if name is not None:
            for bad in self.invalid_guests():
                if bad.name == name:
                    return [], [bad]
        return [self.find_guest(name=name, number=number)], []

    def _sv_runtimes(self, guests) -> dict:
        return self.runtimes(guests)

    def _sv_revisions(self, guests) -> dict[str, int]:
        """`Guest revision`: how many configurations a guest has had (create = 1)."""
        counts = dict.fromkeys((g.uuid for g in guests), 0)
        if len(counts) == 1:
            (uuid,) = counts
            events = self.store.events(subject=uuid)
        else:
            events = self.store.events()
        for ev in events:
            if ev.subject in counts and ev.kind in REVISION_EVENTS:
                counts[ev.subject] += 1
        return counts

    # -- hpvmstatus [-P|-p]
    def status_summary(self, name=None, number=None) -> list[SummaryRow]:
        guests, bad = self._sv_select(name, number)
        rts = self._sv_runtimes(guests)
        rows = [summary_row(g, rts[g.uuid]) for g in guests]
        rows += [invalid_row(b) for b in bad]
        return rows

    # -- hpvmstatus -V / -M / -X [-P|-p]
    def status_details(self, name=None, number=None) -> list:
        guests, bad = self._sv_select(name, number)
        rts = self._sv_runtimes(guests)
        revs = self._sv_revisions(guests)
        out: list = [guest_details(g, rts[g.uuid], self.host, revision=revs[g.uuid])
                     for g in guests]
        out += [invalid_details(b) for b in bad]
        return out

    # -- hpvmstatus -D
    def status_deferred(self, name=None, number=None) -> GuestDetails:
        """The configuration the guest will boot with next (vmm_config.next when a change
        waits for the next boot, else the current one), shown as it will be: Off."""
        from agent.backends.base import GuestRuntime
        guest = self.find_guest(name=name, number=number)
        pending = self.next_config(guest)
        target = pending if pending is not None else guest
        revs = self._sv_revisions([guest])
        return guest_details(target, GuestRuntime(), self.host, revision=revs[guest.uuid])

    # -- hpvmstatus -d
    def status_devices(self, name=None, number=None) -> DeviceSpecs:
        from agent.resources import CONSOLE_DEVICE
        guest = self.find_guest(name=name, number=number)
        return DeviceSpecs(name=guest.name, storage=list(guest.storage),
                           network=list(guest.nics), misc=[CONSOLE_DEVICE])

    # -- hpvmstatus -s
    def host_resources(self) -> HostResources:
        from agent import rules
        host = self.host
        running = self._sv_running()
        top = rules.max_vcpus(host)
        return HostResources(
            cpu_mhz=host.cpu_mhz, memory_mb=host.memory_mb, cpus=host.cpus,
            available_memory_mb=rules.available_memory_mb(host, running,
                                                          self.resident_memory()),
            available_swap_mb=rules.available_swap_mb(host, running),
            max_vcpus_hpux=top, max_vcpus_windows=top, max_vcpus_linux=top,
            available_entitlement_mhz=[rules.available_entitlement_mhz(host, running, n)
                                       for n in range(1, top + 1)])

    def _sv_running(self) -> list:
        return list(self.running_guests().values())

    # -- hpvmstatus -r
    def resource_allocation(self, name=None, number=None, *,
                            usage: dict | None = None) -> list[ResourceAllocation]:
        """Entitlement and usage from the model's CPU accounting (agent.cpu): a running guest
        gets what its work asks while the host has room for all, and is held to its
        entitlement when the host is contended. Cumulative usage is in millions of host
        CPU cycles since the guest booted. `usage`: a `cpu_usage()` the caller already
        read (one read of the accounting serves several views)."""
        guests, _bad = self._sv_select(name, number)
        rts = self._sv_runtimes(guests)
        if usage is None:
            usage = self.cpu_usage()
        now = self.clock.now()
        host = self.host
        capacity = host.cpus * host.cpu_mhz
        out = []
        for g in guests:
            rt = rts[g.uuid]
            pct = g.entitlement.as_percent(host.cpu_mhz)
            up = max(0.0, now - rt.started_at) if rt.active and rt.started_at else 0.0
            per_vcpu_mhz, total_mcycles = usage.get(g.uuid, (0.0, 0.0))
            vcpus = []
            if rt.active:
                for i in range(g.vcpus):
                    vcpus.append(VcpuUsage(
                        index=i, cumulative_mcycles=int(total_mcycles / g.vcpus),
                        guest_percent=round(100.0 * per_vcpu_mhz / host.cpu_mhz, 1),
                        host_percent=0.0, achieved_mhz=int(round(per_vcpu_mhz))))
            out.append(ResourceAllocation(
                name=g.name, vm_number=g.vm_number, state=rt.state, vcpus=g.vcpus,
                entitlement_percent=round(pct, 1), entitlement_mhz=g.entitlement.mhz,
                max_entitlement_percent=MAX_ENTITLEMENT_PERCENT,
                percent_usage=round(100.0 * g.vcpus * per_vcpu_mhz / capacity, 1)
                if rt.active else 0.0,
                cumulative_mcycles=int(total_mcycles),
                memory_mb=g.memory_mb,
                current_memory_mb=(rt.memory.current_mb if rt.memory else
                                   (g.memory_mb if rt.active else None)),
                sampling_interval_s=round(up, 3),
                vcpu_usage=vcpus if (name is not None or number is not None) else []))
        return out

    # -- hpvmstatus -e
    def event_log(self, name=None, number=None, since_seq: int = 0) -> list[EventEntry]:
        names = {g.uuid: g.name for g in self.guests()}
        names.update((b.uuid, b.name) for b in self.invalid_guests())
        if name is None and number is None:
            events = self.store.events(since_seq=since_seq)
        else:
            guests, bad = self._sv_select(name, number)
            uuid = guests[0].uuid if guests else bad[0].uuid
            events = self.store.events(since_seq=since_seq, subject=uuid)
        return [EventEntry(seq=e.seq, time=e.time, actor=e.actor, kind=e.kind,
                           subject=names.get(e.subject, e.subject),
                           detail=_event_detail(e.detail)) for e in events]

    # -- hpvmstatus -S
    def scheduler_mode(self) -> SchedulerMode:
        from agent import rules
        guests = self.guests()
        rts = self._sv_runtimes(guests)
        controlled = [g.name for g in guests if g.app_controller.upper() == GWLM]
        env = self.environment()
        startable = [g.name for g in guests
                     if not rts[g.uuid].active and not g.distributed
                     and not rules.check_start(g, env)]
        return SchedulerMode(mode="CAPPED" if controlled else "NORMAL",
                             controlled=controlled, startable=startable)

    # -- hpvmstatus -m
    def multi_server(self) -> MultiServer:
        entries = self.device_db().entries("server")
        if not entries:
            return MultiServer(configured=False)
        me = self.host.hostname.split(".")[0]
        servers = []
        this_id = None
        for entry in entries:
            name, attrs = entry.name, entry.attrs
            sid = attrs.get("SERVERID")
            sid = int(sid) if sid not in (None, "") else None
            if name == me:
                this_id = sid
            servers.append(ServerEntry(server_id=sid, state=1 if name == me else 0,
                                       ipaddr=attrs.get("SERVERADDR", ""), hostname=name))
        return MultiServer(configured=True, this_server_id=this_id, servers=servers)

    # -- hpvminfo
    def host_info(self) -> HostInfo:
        host = self.host
        addrs = list(host.ip_addresses)
        return HostInfo(
            environment="host", model=host.model, serial=host.serial,
            partition_ident=host.host_uuid, machine_ident=host.host_uuid,
            hostname=host.hostname,
            ipv4_addresses=[a for a in addrs if ":" not in a],
            cpus=host.cpus, cpu_mhz=host.cpu_mhz, memory_mb=host.memory_mb,
            ipv6_addresses=[a for a in addrs if ":" in a])
