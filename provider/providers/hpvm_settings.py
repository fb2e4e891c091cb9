"""Settings: a guest's configuration (HPVM_VirtualSystemSettingData) and its resource
settings (processor, memory, storage and Ethernet port RASDs), for the configuration
hpvmstatus -V shows (`HPVM:<uuid>...`) and, while a running guest has changes waiting for
its next boot, for that one too (`HPVM:<uuid>:next...`, what hpvmstatus -D shows). The
RASD providers also serve the allocation templates (Default, Minimum, Maximum, Increment)
of each pool's allocation capabilities, and the migration setting data serves the default
hpvmmigrate settings.
"""
from __future__ import annotations

from agent.api.views import (DEFAULT_RESERVED_MB, MAX_MEMORY_MB, MAX_RESERVED_MB,
                             MIN_MEMORY_MB, MIN_RESERVED_MB)
from agent.resources import MAX_BUS, MAX_SLOT, MAX_TARGET
from agent.sizes import MAX_PERCENT, MIN_PERCENT
from agent.vswitch import MAX_PORTS
from provider.providers.hpvm_common import (HpvmProvider, alloc_caps_id, host_wide,
                                            model_for, network_device_id, pool_id, rasd_id,
                                            shared_values, storage_device_id, vssd_id)
from provider.providers.hpvm_devices import network_resource, spec, storage_resource
from provider.providers.hpvm_workload import guest_usage

VSSD = "HPVM_VirtualSystemSettingData"
PROC = "HPVM_ProcessorAllocationSettingData"
MEM = "HPVM_MemoryAllocationSettingData"
STOR = "HPVM_StorageAllocationSettingData"
NET = "HPVM_EthernetPortAllocationSettingData"
MSD = "HPVM_VirtualSystemMigrationSettingData"

VIRTUAL_SYSTEM_TYPE = "Integrity VM"
MB_UNITS = "byte*2^20"
ENT_UNITS = "percent*10^-2"
# ResourceType per guest device type (CIM_ResourceAllocationSettingData ValueMap)
STORAGE_TYPES = {"disk": 17, "dvd": 16, "tape": 18, "changer": 1, "burner": 1}
TEMPLATE_ROLES = ("Default", "Minimum", "Maximum", "Increment")
DEFAULT_MEMORY_MB = 2048


def hundredths(percent) -> int | None:
    return None if percent is None else int(round(percent * 100))


def configurations(entry):
    """(details, is_next) for the guest's configurations: the -V one, then the pending one."""
    if entry.details is not None:
        yield entry.details, False
        if entry.pending is not None:
            yield entry.pending, True


class VSSDProvider(HpvmProvider):
    classnames = (VSSD,)
    guest_owned = True

    def for_guest(self, ctx, snap, entry, classname):
        f = self.m.f(VSSD)
        for d, nxt in configurations(entry):
            yield f.make(vssd_values(entry, d, nxt, ctx), ctx)


def vssd_values(entry, d, nxt: bool, ctx) -> dict:
    v = {"InstanceID": vssd_id(entry.uuid, nxt)}
    if ctx.keys_only:
        return v
    m, a = d.machine, d.admins
    v.update(ElementName=m.name, VirtualSystemIdentifier=m.uuid,
             VirtualSystemType=VIRTUAL_SYSTEM_TYPE,
             Caption="Configuration for the next boot" if nxt else "Configuration",
             VMNumber=m.vm_number, VMLabel=m.label, OSType=m.os_type, OSVersion=m.os_version,
             SerialNumber=m.serial, ConfigVersion=m.config_version,
             AdminUsers=list(a.admin_users), AdminGroups=list(a.admin_groups),
             OperUsers=list(a.oper_users), OperGroups=list(a.oper_groups),
             ApplicationController=m.app_controller, Distributed=bool(m.distributed),
             AutomaticStartupAction=4 if m.start_type == "Auto" else 2)
    return v


class ProcessorRASDProvider(HpvmProvider):
    classnames = (PROC,)
    guest_owned = True

    def host_instances(self, ctx, snap, classname):
        return templates(self.m, ctx, snap, PROC)

    def for_guest(self, ctx, snap, entry, classname):
        f = self.m.f(PROC)
        for d, nxt in configurations(entry):
            v = {"InstanceID": rasd_id(entry.uuid, "cpu", nxt)}
            if not ctx.keys_only:
                c = d.cpu
                v.update(ElementName="Virtual CPUs", ResourceType=3, PoolID=pool_id("processor")[5:],
                         ConsumerVisibility=3, AutomaticAllocation=True,
                         AllocationUnits=ENT_UNITS, VirtualQuantity=c.vcpus,
                         VirtualQuantityUnits="count",
                         Reservation=hundredths(c.entitlement_percent),
                         Limit=hundredths(c.max_entitlement_percent),
                         EntitlementMHz=c.entitlement_mhz)
                if not nxt and (ctx.wants("PercentUsage") or ctx.wants("CumulativeUsage")):
                    # hpvmstatus -r of the running configuration (hpvm_workload)
                    row = guest_usage(snap, entry)
                    if row is not None:
                        v.update(PercentUsage=hundredths(row.percent_usage),
                                 CumulativeUsage=row.cumulative_mcycles)
            yield f.make(v, ctx)


class MemoryRASDProvider(HpvmProvider):
    classnames = (MEM,)
    guest_owned = True

    def host_instances(self, ctx, snap, classname):
        return templates(self.m, ctx, snap, MEM)

    def for_guest(self, ctx, snap, entry, classname):
        f = self.m.f(MEM)
        for d, nxt in configurations(entry):
            v = {"InstanceID": rasd_id(entry.uuid, "memory", nxt)}
            if not ctx.keys_only:
                v.update(memory_values(snap, entry, d, nxt, ctx))
            yield f.make(v, ctx)


def memory_values(snap, entry, d, nxt: bool, ctx) -> dict:
    mem, dm = d.memory, d.dynmem
    v = dict(ElementName="Memory", ResourceType=4, PoolID=pool_id("memory")[5:],
             ConsumerVisibility=3, AutomaticAllocation=True, AllocationUnits=MB_UNITS,
             VirtualQuantityUnits=MB_UNITS, VirtualQuantity=mem.total_mb,
             ReservedMemory=mem.reserved_mb, VHPTSize=mem.vhpt_mb, DynamicMemoryType="none")
    if dm is not None:
        v.update(DynamicMemoryType=dm.type, Reservation=dm.min_mb, Limit=dm.max_mb,
                 TargetMemory=dm.target_mb)
    # dynamic_memory_control and ram_dyn_target_start are configuration the -V view does
    # not show: read from the stored configuration, when asked for
    config = None
    if ctx.wants("DynamicMemoryControl") or ctx.wants("DynamicMemoryTargetStart"):
        config = snap.config_of(entry)
        if nxt and config is not None:
            with snap.lock:
                config = snap.agent.next_config(config)
    if config is not None and config.uuid == entry.uuid:
        v.update(DynamicMemoryControl=config.dynmem.control,
                 DynamicMemoryTargetStart=config.dynmem.target_start_mb)
    return v


class StorageRASDProvider(HpvmProvider):
    classnames = (STOR,)
    guest_owned = True

    def host_instances(self, ctx, snap, classname):
        return templates(self.m, ctx, snap, STOR)

    def for_guest(self, ctx, snap, entry, classname):
        f = self.m.f(STOR)
        for v in shared_values(snap, ctx, (STOR, entry.uuid),
                               lambda: self._values(ctx, entry)):
            yield f.make(v, ctx)

    def _values(self, ctx, entry):
        for d, nxt in configurations(entry):
            for s in d.storage:
                dev_id = storage_device_id(s)
                v = {"InstanceID": rasd_id(entry.uuid, dev_id, nxt)}
                if not ctx.keys_only:
                    rtype = STORAGE_TYPES.get(s.device, 1)
                    v.update(ElementName=f"{s.device} {s.location}".strip(), ResourceType=rtype,
                             OtherResourceType=s.device if rtype == 1 else None,
                             PoolID=pool_id("storage")[5:], ConsumerVisibility=3,
                             HostResource=[s.location] if s.location else [],
                             Address=f"{s.bus},{s.slot},{s.target}", DeviceType=s.device,
                             AdapterType=s.adapter, Bus=s.bus, DeviceNumber=s.slot,
                             Target=s.target, BackingType=s.storage, VirtualQuantity=1,
                             VirtualQuantityUnits="count",
                             ResourceSpecification=spec(storage_resource(s)))
                yield v


class EthernetRASDProvider(HpvmProvider):
    classnames = (NET,)
    guest_owned = True

    def host_instances(self, ctx, snap, classname):
        return templates(self.m, ctx, snap, NET)

    def for_guest(self, ctx, snap, entry, classname):
        f = self.m.f(NET)
        for v in shared_values(snap, ctx, (NET, entry.uuid),
                               lambda: self._values(ctx, entry)):
            yield f.make(v, ctx)

    def _values(self, ctx, entry):
        for d, nxt in configurations(entry):
            for n in d.network:
                v = {"InstanceID": rasd_id(entry.uuid, network_device_id(n), nxt)}
                if not ctx.keys_only:
                    v.update(ElementName=f"vNIC {n.mac}".strip(), ResourceType=10,
                             PoolID=pool_id("network", n.vswitch)[5:], ConsumerVisibility=3,
                             Address=n.mac or None, Connection=[n.vswitch] if n.vswitch else [],
                             AdapterType=n.adapter, Bus=n.bus, DeviceNumber=n.slot,
                             VswitchPort=n.port, VirtualQuantity=1, VirtualQuantityUnits="count",
                             ResourceSpecification=spec(network_resource(n)))
                yield v


# -- allocation templates (DSP1043), host-wide ------------------------------------------------

def template_kinds(snap):
    """(kind, vswitch or None, RASD class) of every pool's allocation capabilities."""
    yield "processor", None, PROC
    yield "memory", None, MEM
    yield "storage", None, STOR
    for name in snap.switch_names:
        yield "network", name, NET


def templates(m, ctx, snap, classname):
    f = m.f(classname)
    for kind, name, cls in template_kinds(snap):
        if cls != classname:
            continue
        base = alloc_caps_id(kind, name)
        for role in TEMPLATE_ROLES:
            v = {"InstanceID": f"{base}:{role}"}
            if not ctx.keys_only:
                v.update(template_values(snap, kind, name, role))
            yield f.make(v, ctx)


def template_values(snap, kind: str, name: str | None, role: str) -> dict:
    pick = {"Default": 0, "Minimum": 1, "Maximum": 2, "Increment": 3}[role]
    v = {"ElementName": f"{kind} {role}".replace("  ", " "), "Caption": role}
    if kind == "processor":
        top = snap.resources.max_vcpus_hpux
        v.update(ResourceType=3, AllocationUnits=ENT_UNITS, VirtualQuantityUnits="count",
                 PoolID=pool_id("processor")[5:],
                 VirtualQuantity=(1, 1, top, 1)[pick],
                 Reservation=(1000, hundredths(MIN_PERCENT), hundredths(MAX_PERCENT), 10)[pick],
                 Limit=(hundredths(MAX_PERCENT), hundredths(MAX_PERCENT),
                        hundredths(MAX_PERCENT), 10)[pick])
    elif kind == "memory":
        v.update(ResourceType=4, AllocationUnits=MB_UNITS, VirtualQuantityUnits=MB_UNITS,
                 PoolID=pool_id("memory")[5:],
                 VirtualQuantity=(DEFAULT_MEMORY_MB, MIN_MEMORY_MB, MAX_MEMORY_MB, 1)[pick],
                 ReservedMemory=(DEFAULT_RESERVED_MB, MIN_RESERVED_MB, MAX_RESERVED_MB, 1)[pick],
                 DynamicMemoryType="none" if pick == 0 else None)
    elif kind == "storage":
        v.update(ResourceType=17, PoolID=pool_id("storage")[5:], VirtualQuantityUnits="count",
                 VirtualQuantity=1, Bus=(None, 0, MAX_BUS, 1)[pick],
                 DeviceNumber=(None, 0, MAX_SLOT, 1)[pick],
                 Target=(None, 0, MAX_TARGET, 1)[pick],
                 DeviceType="disk" if pick == 0 else None,
                 AdapterType="scsi" if pick == 0 else None)
    else:
        v.update(ResourceType=10, PoolID=pool_id("network", name)[5:],
                 VirtualQuantityUnits="count", VirtualQuantity=1,
                 Connection=[name] if pick == 0 else None,
                 Bus=(None, 0, MAX_BUS, 1)[pick], DeviceNumber=(None, 0, MAX_SLOT, 1)[pick],
                 VswitchPort=(None, 1, MAX_PORTS, 1)[pick],
                 AdapterType="lan" if pick == 0 else None)
    return v


# -- migration settings ------------------------------------------------------------------------

MSD_DEFAULT = "HPVM:MigrationSettingData:Default"


class MigrationSettingDataProvider(HpvmProvider):
    """The settings hpvmmigrate uses when none are given: offline (the guest is Off), no
    storage copy, no -F."""

    classnames = (MSD,)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        yield self.m.f(MSD).make({
            "InstanceID": MSD_DEFAULT, "ElementName": "hpvmmigrate defaults",
            "MigrationType": 1, "TransportType": 2, "CopyStorage": False, "Force": False},
            ctx)


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    for p in (VSSDProvider(m), ProcessorRASDProvider(m), MemoryRASDProvider(m),
              StorageRASDProvider(m), EthernetRASDProvider(m),
              MigrationSettingDataProvider(m)):
        registry.register(p)

