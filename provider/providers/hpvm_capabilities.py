"""Capabilities: VMProvider's HPVM_HostCapabilities (hpvmstatus -s limits),
HPVM_EntitlementCapabilities (entitlement range, what is left per N-way guest, gWLM),
HPVM_GuestCapabilities and the DSP1057 HPVM_EnabledLogicalElementCapabilities of each
guest, the DSP1042 management capabilities, the DSP1081 migration capabilities and the
DSP1043 allocation capabilities of every pool.
"""
from __future__ import annotations

from agent.api.views import PRODUCT_RELEASE
from agent.resources import MAX_STORAGE_PER_VM, MAX_VSWITCH_NAME
from agent.rules import MAX_NAME
from agent.sizes import MAX_PERCENT, MIN_PERCENT
from agent.vswitch import MAX_PORTS
from provider.providers.hpvm_common import (HpvmProvider, alloc_caps_id, host_wide,
                                            model_for)
from provider.providers.hpvm_lifecycle import allowed_requests
from provider.providers.hpvm_pools import pool_kinds

HOST_CAPS = "HPVM:HostCapabilities"
ENT_CAPS = "HPVM:EntitlementCapabilities"
VSMC = "HPVM:ManagementCapabilities"
MIGRATION_CAPS = "HPVM:MigrationCapabilities"
# CIM 2.22+ VirtualSystemManagementCapabilities.*MethodsSupported values
VSMS_METHODS = {"definesystem": 2, "destroysystem": 3, "modifyresourcesettings": 5,
                "modifysystemsettings": 6, "removeresourcesettings": 7,
                "addresourcesettings": 10}
# HPVM_VirtualSystemManagementCapabilities.VendorMethodsSupported values
VENDOR_METHODS = {"clonesystem": 2, "collectsystemdata": 3, "createvirtualswitch": 4,
                  "changevirtualswitch": 5, "deletevirtualswitch": 6, "startvirtualswitch": 7,
                  "haltvirtualswitch": 8, "rebootvirtualswitch": 9,
                  "setvirtualswitchportvlan": 10, "setmemorytarget": 11, "setentitlement": 12}
# HPVM_VirtualSystemMigrationCapabilities: the moves run as jobs, the checks answer at once
MIGRATION_ASYNC = {"migratevirtualsystemtohost": 2, "migratevirtualsystemtosystem": 3}
MIGRATION_SYNC = {"checkvirtualsystemismigratabletohost": 4,
                  "checkvirtualsystemismigratabletosystem": 5}


def supported(provider_class, table: dict) -> list[int]:
    """The values of `table` for the methods the service's provider really implements, so
    the capabilities never advertise a method that would answer METHOD_NOT_AVAILABLE."""
    return sorted(v for name, v in table.items() if name in provider_class._cim_methods)
ALLOCATION = {  # kind -> (ResourceType, SharingMode: 2 Dedicated, 3 Shared)
    "processor": (3, 3), "memory": (4, 2), "storage": (17, 2), "network": (10, 3)}


class HostCapabilitiesProvider(HpvmProvider):
    classnames = ("HPVM_HostCapabilities",)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        v = {"InstanceID": HOST_CAPS}
        if not ctx.keys_only:
            r = snap.resources
            v.update(ElementName="VM Host capabilities", ProductVersion=PRODUCT_RELEASE,
                     MaximumVirtualCPUsHPUX=r.max_vcpus_hpux,
                     MaximumVirtualCPUsWindows=r.max_vcpus_windows,
                     MaximumVirtualCPUsLinux=r.max_vcpus_linux,
                     MaximumStorageDevicesPerGuest=MAX_STORAGE_PER_VM,
                     MaximumSwitchPorts=MAX_PORTS, MaximumSwitchNameLength=MAX_VSWITCH_NAME)
        yield self.m.f(classname).make(v, ctx)


class EntitlementCapabilitiesProvider(HpvmProvider):
    classnames = ("HPVM_EntitlementCapabilities",)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        v = {"InstanceID": ENT_CAPS}
        if not ctx.keys_only:
            v.update(ElementName="Entitlement capabilities", ProductVersion=PRODUCT_RELEASE,
                     MinimumEntitlement=int(MIN_PERCENT * 100),
                     MaximumEntitlement=int(MAX_PERCENT * 100),
                     ProcessorSpeed=snap.host.cpu_mhz)
            if ctx.wants("AvailableEntitlement"):
                v["AvailableEntitlement"] = list(snap.resources.available_entitlement_mhz)
            if ctx.wants("ExternallyManaged"):
                v["ExternallyManaged"] = snap.scheduler.mode == "CAPPED"
        yield self.m.f(classname).make(v, ctx)


class ManagementCapabilitiesProvider(HpvmProvider):
    classnames = ("HPVM_VirtualSystemManagementCapabilities",)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        from provider.providers.hpvm_services import ManagementServiceProvider as svc
        # the service's methods answer when done (0); none returns a job
        yield self.m.f(classname).make({
            "InstanceID": VSMC, "ElementName": "Management service capabilities",
            "VirtualSystemTypesSupported": ["Integrity VM"],
            "SynchronousMethodsSupported": supported(svc, VSMS_METHODS),
            "AsynchronousMethodsSupported": [],
            "VendorMethodsSupported": supported(svc, VENDOR_METHODS)}, ctx)


class MigrationCapabilitiesProvider(HpvmProvider):
    classnames = ("HPVM_VirtualSystemMigrationCapabilities",)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        from provider.providers.hpvm_services import MigrationServiceProvider as svc
        yield self.m.f(classname).make({
            "InstanceID": MIGRATION_CAPS, "ElementName": "Migration service capabilities",
            "ProductVersion": PRODUCT_RELEASE,
            "SynchronousMethodsSupported": supported(svc, MIGRATION_SYNC),
            "AsynchronousMethodsSupported": supported(svc, MIGRATION_ASYNC),
            "DestinationHostFormatsSupported": [2, 3], "MaximumConcurrentMigrations": 1},
            ctx)


class AllocationCapabilitiesProvider(HpvmProvider):
    classnames = ("HPVM_AllocationCapabilities",)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        f = self.m.f(classname)
        for kind, name in pool_kinds(snap):
            rtype, sharing = ALLOCATION[kind]
            yield f.make({"InstanceID": alloc_caps_id(kind, name),
                          "ElementName": f"{kind} allocation" + (f" on {name}" if name else ""),
                          "ResourceType": rtype, "RequestTypesSupported": 3,
                          "SharingMode": sharing}, ctx)


class GuestCapabilitiesProvider(HpvmProvider):
    classnames = ("HPVM_GuestCapabilities",)
    guest_owned = True

    def for_guest(self, ctx, snap, entry, classname):
        d = entry.details
        if d is None:
            return
        v = {"InstanceID": f"HPVM:{entry.uuid}:GuestCapabilities"}
        if not ctx.keys_only:
            c, mem = d.cpu, d.memory
            v.update(ElementName=f"{entry.name} capabilities", ProductVersion=PRODUCT_RELEASE,
                     MinimumVirtualCPUs=c.min_vcpus, MaximumVirtualCPUs=c.max_vcpus,
                     MinimumMemory=mem.min_limit_mb, MaximumMemory=mem.max_limit_mb,
                     MinimumReservedMemory=mem.min_reserved_mb,
                     MaximumReservedMemory=mem.max_reserved_mb,
                     DynamicMemorySupported=d.machine.os_type == "HPUX")
        yield self.m.f(classname).make(v, ctx)


class StateCapabilitiesProvider(HpvmProvider):
    classnames = ("HPVM_EnabledLogicalElementCapabilities",)
    guest_owned = True

    def for_guest(self, ctx, snap, entry, classname):
        v = {"InstanceID": f"HPVM:{entry.uuid}:StateCapabilities"}
        if not ctx.keys_only:
            v.update(ElementName=f"{entry.name} state capabilities",
                     RequestedStatesSupported=list(allowed_requests(entry.state)),
                     ElementNameEditSupported=True, MaxElementNameLen=MAX_NAME)
        yield self.m.f(classname).make(v, ctx)


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    for p in (HostCapabilitiesProvider(m), EntitlementCapabilitiesProvider(m),
              ManagementCapabilitiesProvider(m), MigrationCapabilitiesProvider(m),
              AllocationCapabilitiesProvider(m), GuestCapabilitiesProvider(m),
              StateCapabilitiesProvider(m)):
        registry.register(p)
