"""Devices: a guest's virtual I/O devices (HPVM_IODevice: the Storage, Network and Misc
Interface Details of hpvmstatus -V), its vCPUs (HPVM_Processor) and memory (HPVM_Memory,
with the live [Dynamic Memory Information]); the host's LAN cards (HPVM_HostLanDevice).
"""
from __future__ import annotations

from agent.resources import NetworkResource, StorageResource, format_resource, parse_mac
from provider.providers.hpvm_common import (HOST_CLASS, HpvmProvider, host_wide,
                                            misc_device_id, model_for, network_device_id,
                                            shared_values, storage_device_id)
from provider.providers.hpvm_workload import hundredths, vcpu_usage

MB = 1024 * 1024
# HPVM_Processor's figures from the CPU accounting (read only when asked for)
USAGE_PROPERTIES = ("CumulativeUsage", "GuestPercentUsage", "HostPercentUsage", "AchievedMHz",
                    "LoadPercentage")


def storage_resource(s) -> StorageResource:
    """The hpvmresources(5) resource a -V storage line stands for."""
    return StorageResource(device=s.device, adapter=s.adapter, bus=s.bus, slot=s.slot,
                           target=s.target, storage=s.storage, location=s.location)


def network_resource(n) -> NetworkResource:
    return NetworkResource(adapter=n.adapter, bus=n.bus, slot=n.slot,
                           mac=parse_mac(n.mac) if n.mac else None, vswitch=n.vswitch,
                           port=n.port)


def spec(res) -> str:
    """As hpvmstatus -d prints it."""
    return format_resource(res, mac_style="hex", show_port=False)


class IODeviceProvider(HpvmProvider):
    classnames = ("HPVM_IODevice",)
    guest_owned = True

    def for_guest(self, ctx, snap, entry, classname):
        if entry.details is None:
            return
        f = self.m.f("HPVM_IODevice")
        for v in shared_values(snap, ctx, ("HPVM_IODevice", entry.uuid),
                               lambda: self._values(ctx, snap, entry)):
            yield f.make(v, ctx)

    def _values(self, ctx, snap, entry):
        d = entry.details
        base = {"SystemCreationClassName": "HPVM_Guest", "SystemName": entry.uuid,
                "CreationClassName": "HPVM_IODevice"}
        keys_only = ctx.keys_only
        enabled = 2 if entry.active else 3
        for s in d.storage:
            v = dict(base, DeviceID=storage_device_id(s))
            if not keys_only:
                v.update(ElementName=f"{s.device} {s.location}".strip(), DeviceType=s.device,
                         AdapterType=s.adapter, IoscanPath=s.ioscan, Bus=s.bus,
                         DeviceNumber=s.slot, Function=s.function, Target=s.target, Lun=s.lun,
                         BackingType=s.storage, BackingDevice=s.location,
                         GuestName=entry.name, EnabledState=enabled,
                         ResourceSpecification=spec(storage_resource(s)))
            yield v
        for n in d.network:
            v = dict(base, DeviceID=network_device_id(n))
            if not keys_only:
                v.update(ElementName=f"vNIC {n.mac}".strip(), DeviceType="network",
                         AdapterType=n.adapter, IoscanPath=n.ioscan, Bus=n.bus,
                         DeviceNumber=n.slot, Function=n.function, BackingType=n.interface,
                         BackingDevice=n.vswitch, VswitchPort=n.port, MACAddress=n.mac,
                         GuestName=entry.name, EnabledState=enabled,
                         ResourceSpecification=spec(network_resource(n)))
                if ctx.wants("IPAddress"):
                    v["IPAddress"] = vnic_ip(snap, entry, n)
            yield v
        for misc in d.misc:
            v = dict(base, DeviceID=misc_device_id(misc))
            if not keys_only:
                from agent.resources import MiscDevice, format_misc
                v.update(ElementName=f"{misc.device} {misc.adapter}", DeviceType=misc.device,
                         AdapterType=misc.adapter, BackingType=misc.storage,
                         BackingDevice=misc.location, GuestName=entry.name,
                         EnabledState=enabled,
                         ResourceSpecification=format_misc(MiscDevice(
                             misc.device, misc.adapter, misc.storage, misc.location)))
            yield v


def vnic_ip(snap, entry, n) -> str | None:
    """hpvmnet -V's IP Address of this vNIC ("Guest halted" while the guest is off)."""
    sw = snap.switch_by_name.get(n.vswitch)
    if sw is None:
        return None
    want = n.mac.replace("-", "").upper()
    for vnic in sw.vnics:
        if vnic.guest == entry.name and vnic.mac[2:] == want:
            return vnic.ip
    return None


class ProcessorProvider(HpvmProvider):
    classnames = ("HPVM_Processor",)
    guest_owned = True

    def for_guest(self, ctx, snap, entry, classname):
        d = entry.details
        if d is None:
            return
        f = self.m.f("HPVM_Processor")
        mhz = snap.host.cpu_mhz
        enabled = 2 if entry.active else 3
        c = d.cpu
        per_vcpu = []
        if not ctx.keys_only and any(ctx.wants(n) for n in USAGE_PROPERTIES):
            per_vcpu = vcpu_usage(snap, entry)       # hpvmstatus -r -P (hpvm_workload)
        for i in range(c.vcpus):
            v = {"SystemCreationClassName": "HPVM_Guest", "SystemName": entry.uuid,
                 "CreationClassName": "HPVM_Processor", "DeviceID": f"cpu:{i}"}
            if not ctx.keys_only:
                v.update(ElementName=f"vCPU {i}", VirtualCPUIndex=i, Role="Central Processor",
                         CurrentClockSpeed=mhz, MaxClockSpeed=mhz, EnabledState=enabled,
                         CPUStatus=1 if entry.active else 0, NumberOfEnabledCores=1,
                         Entitlement=hundredths(c.entitlement_percent),
                         EntitlementMHz=c.entitlement_mhz,
                         MaximumEntitlement=hundredths(c.max_entitlement_percent))
                if i < len(per_vcpu):
                    cumulative, guest_pct, host_pct, achieved = per_vcpu[i]
                    v.update(CumulativeUsage=cumulative,
                             GuestPercentUsage=hundredths(guest_pct),
                             HostPercentUsage=hundredths(host_pct), AchievedMHz=achieved,
                             LoadPercentage=min(100, int(round(guest_pct))))
            yield f.make(v, ctx)


class MemoryProvider(HpvmProvider):
    classnames = ("HPVM_Memory",)
    guest_owned = True

    def for_guest(self, ctx, snap, entry, classname):
        d = entry.details
        if d is None:
            return
        v = {"SystemCreationClassName": "HPVM_Guest", "SystemName": entry.uuid,
             "CreationClassName": "HPVM_Memory", "DeviceID": "memory"}
        if not ctx.keys_only:
            dm = d.dynmem
            current = d.memory.total_mb
            v.update(ElementName="memory", Volatile=True, BlockSize=MB,
                     EnabledState=2 if entry.active else 3, DynamicMemoryType="none",
                     DynamicMemoryLive=False)
            if dm is not None:
                v.update(DynamicMemoryLive=dm.live, DynamicMemoryType=dm.type,
                         MinimumMemory=dm.min_mb, TargetMemory=dm.target_mb,
                         MaximumMemory=dm.max_mb, CurrentMemory=dm.current_mb,
                         ComfortableMinimum=dm.comfortable_min_mb, BootMemory=dm.boot_mb,
                         FreeMemory=dm.free_mb, AvailableMemory=dm.available_mb,
                         MemoryPressure=dm.pressure, ChunkSize=dm.chunk_kb,
                         DriverModes=list(dm.driver_modes) if dm.live else None)
                if dm.live and dm.current_mb is not None:
                    current = dm.current_mb
            # DSP1045 §9.2.1: BlockSize x NumberOfBlocks is the memory the guest has now.
            v.update(NumberOfBlocks=current, ConsumableBlocks=current)
        yield self.m.f("HPVM_Memory").make(v, ctx)


class HostLanProvider(HpvmProvider):
    classnames = ("HPVM_HostLanDevice",)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        f = self.m.f("HPVM_HostLanDevice")
        for nic in snap.host.nics:
            v = {"SystemCreationClassName": HOST_CLASS, "SystemName": self.m.host_uuid,
                 "CreationClassName": "HPVM_HostLanDevice", "DeviceID": nic.name}
            if not ctx.keys_only:
                v.update(lan_values(snap, nic))
            yield f.make(v, ctx)


def lan_values(snap, nic) -> dict:
    digits = nic.mac.replace(":", "").replace("-", "").upper()
    ppa = nic.name[3:] if nic.name.startswith("lan") else ""
    v = dict(ElementName=nic.name, PermanentAddress=digits, InterfaceName=nic.device or None,
             PPA=int(ppa) if ppa.isdigit() else None, Speed=nic.speed_mbps * 1_000_000,
             MaxSpeed=nic.speed_mbps * 1_000_000, LinkTechnology=2, PortType=0,
             EnabledState=2, OperationalStatus=[2])
    addrs = sorted({s.ip for s in snap.summaries
                    if s.nic == nic.name and s.ip and s.ip != "N/A"})
    v["NetworkAddresses"] = addrs
    v["Restricted"] = snap.device_db.is_restricted(nic.name, snap.host)
    return v


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    for p in (IODeviceProvider(m), ProcessorProvider(m), MemoryProvider(m), HostLanProvider(m)):
        registry.register(p)
