"""The systems of the VM model: HPVM_Host (hpvminfo, hpvmstatus -s/-S/-m), HPVM_Guest
(hpvmstatus -V per guest, its state as DMTF properties) and HPVM_MSEServer (hpvmstatus -m).

HP_SoftPartitionCS has no instances of its own: guests are HPVM_Guest, its subclass.
"""
from __future__ import annotations

from agent.backends.base import BOOTING, INVALID, OFF, ON_ATTN, ON_EFI, ON_OS, STOPPING
from provider.providers.hpvm_common import (GUEST_CLASS, HOST_CLASS, HpvmProvider, Model,
                                            guest_rights, host_wide)
from provider.providers.hpvm_lifecycle import GuestLifecycleMethods, allowed_requests

# hpvmstatus State -> (EnabledState, OperationalStatus, HealthState)  (docs/cim-classes.md)
STATE_MAP = {
    OFF: (3, [2], 5),
    BOOTING: (10, [8], 5),
    ON_EFI: (2, [2, 8], 5),
    ON_OS: (2, [2], 5),
    "On": (2, [2], 5),
    ON_ATTN: (2, [6], 20),
    STOPPING: (4, [9], 5),
    INVALID: (0, [6], 20),
}

def state_of(text: str):
    return STATE_MAP.get(text, (0, [0], 0))


class HostProvider(HpvmProvider):
    classnames = (HOST_CLASS,)

    def instances(self, ctx, snap, classname):
        host = snap.host
        v = {"CreationClassName": HOST_CLASS, "Name": self.m.host_uuid,
             "NameFormat": "Other", "Dedicated": [0]}
        if not ctx.keys_only:
            info = snap.host_info
            v.update(ElementName=info.hostname, Caption="Integrity VM Host",
                     Description="HP Integrity VM Host",
                     EnabledState=2, RequestedState=12, EnabledDefault=2,
                     OperationalStatus=[2], HealthState=5,
                     OtherIdentifyingInfo=[info.hostname], IdentifyingDescriptions=["Hostname"],
                     ModelName=info.model, SerialNumber=info.serial,
                     ProcessorSpeed=info.cpu_mhz, NumberOfProcessors=info.cpus,
                     TotalPhysicalMemory=info.memory_mb, TotalSwapSpace=host.swap_mb,
                     IPAddresses=list(info.ipv4_addresses) + list(info.ipv6_addresses))
            from agent.api.views import PRODUCT_RELEASE
            v["ProductVersion"] = PRODUCT_RELEASE
            if ctx.wants("AvailableMemory") or ctx.wants("AvailableSwapSpace"):
                res = snap.resources
                v.update(AvailableMemory=res.available_memory_mb,
                         AvailableSwapSpace=res.available_swap_mb)
            if ctx.wants("SchedulerMode"):
                v["SchedulerMode"] = snap.scheduler.mode
            if ctx.wants("MultiServerID"):
                v["MultiServerID"] = snap.multi_server.this_server_id
        yield self.m.f(HOST_CLASS).make(v, ctx)


class GuestProvider(GuestLifecycleMethods, HpvmProvider):
    """HPVM_Guest: one per guest, invalid ones included (EnabledState 0, why in
    ConfigurationFile/Line/Error). Its RequestStateChange comes from GuestLifecycleMethods."""

    classnames = (GUEST_CLASS,)
    guest_owned = True

    def for_guest(self, ctx, snap, entry, classname):
        yield self.m.f(GUEST_CLASS).make(guest_values(entry, ctx), ctx)

    def authorize(self, ctx, action, target):
        """A guest's own admin/oper lists grant its state changes (hpvmstart, hpvmstop,
        hpvmconsole) on that guest only."""
        if action != "method:RequestStateChange" or not hasattr(target, "keybindings"):
            return False
        from provider.providers.hpvm_common import classify, snapshot
        snap = snapshot(ctx, self.m)
        entry = snap.guest(classify(target).uuid)
        return entry is not None and bool(guest_rights(ctx.principal, entry) & {"admin", "oper"})


def guest_values(entry, ctx) -> dict:
    v = {"CreationClassName": GUEST_CLASS, "Name": entry.uuid}
    if ctx is not None and ctx.keys_only:
        return v
    enabled, opstatus, health = state_of(entry.state)
    v.update(ElementName=entry.name, VMState=entry.state, EnabledState=enabled,
             OperationalStatus=opstatus, HealthState=health, RequestedState=12,
             AvailableRequestedStates=list(allowed_requests(entry.state)),
             PartitionType=2, NameFormat="Other", Dedicated=[0],
             Caption="Integrity VM guest")
    if entry.details is None:
        bad = entry.invalid
        v.update(ConfigurationFile=str(bad.file), ConfigurationLine=int(bad.line),
                 ConfigurationError=str(bad.reason), EnabledDefault=5)
        return v
    d = entry.details
    m = d.machine
    v.update(PartitionNumber=m.vm_number, VMNumber=m.vm_number, VMLabel=m.label,
             ModelName=m.model_name, SerialNumber=m.serial, ConfigVersion=m.config_version,
             ConfigLabel=m.config_label, OSType=m.os_type, OSVersion=m.os_version,
             StartType=m.start_type, EnabledDefault=2 if m.start_type == "Auto" else 3,
             ConsoleType=m.console_type, GuestHostname=m.guest_hostname,
             GuestIPAddress=m.guest_ip, EFILocation=m.efi_location,
             PatternFileLocation=m.pattern_file, GuestRevision=m.guest_revision,
             RunningOnServerID=m.server_id, ProcessID=m.pid,
             ApplicationController=m.app_controller, Distributed=bool(m.distributed),
             NumberOfStorageDevices=len(d.storage), NumberOfNetworkDevices=len(d.network),
             NextConfigurationPending=entry.pending is not None,
             OtherIdentifyingInfo=[m.name, m.serial],
             IdentifyingDescriptions=["Virtual Machine Name", "VM's Serial Number"])
    return v


class MSEServerProvider(HpvmProvider):
    """The multi-server environment members (hpvmstatus -m), from the device database's
    server entries."""

    classnames = ("HPVM_MSEServer",)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        ms = snap.multi_server
        me = snap.host.hostname.split(".")[0]
        f = self.m.f("HPVM_MSEServer")
        for s in ms.servers:
            this = s.hostname == me
            yield f.make({"CreationClassName": "HPVM_MSEServer", "Name": s.hostname,
                          "ElementName": s.hostname, "ServerID": s.server_id,
                          "ServerState": s.state, "ServerAddress": s.ipaddr,
                          "Hostname": s.hostname, "IsThisHost": this,
                          "NameFormat": "Other", "Dedicated": [0],
                          "EnabledState": 2 if s.state else 0}, ctx)


def install(registry, env) -> Model | None:
    from provider.providers.hpvm_common import model_for
    m = model_for(env)
    if m is None:
        return None
    for p in (HostProvider(m), GuestProvider(m), MSEServerProvider(m)):
        registry.register(p)
    return m
