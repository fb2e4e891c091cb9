"""The associations of the VM model (mof/cimv2/hpvm_10_associations.mof), built from the same
per-request snapshot as the instances. Each `links(ctx, snap, classname, source)` yields only
the instances touching the traversal's source (all of them for an enumeration): a traversal
from one guest reads that guest, not the host's every guest. Jobs' associations
(HPVM_AffectedJobElement, HPVM_OwningJobElement) live with the jobs (hpvm_jobs).
"""
from __future__ import annotations

from provider.providers.hpvm_common import (HpvmAssociation, Ref, alloc_caps_id, classify, misc_device_id, model_for,
                                            network_device_id, pool_id, rasd_id,
                                            storage_device_id)
from provider.providers.hpvm_capabilities import ENT_CAPS, HOST_CAPS, MIGRATION_CAPS, VSMC
from provider.providers.hpvm_devicedb import entry_id
from provider.providers.hpvm_pools import POOL_CLASSES, pool_kinds
from provider.providers.hpvm_settings import (MEM, MSD, MSD_DEFAULT, NET, PROC, STOR,
                                              TEMPLATE_ROLES, configurations, template_kinds)

# -- what a guest is made of ----------------------------------------------------------------


class Part:
    """One device of a guest: its class and DeviceID, its RASD and its pool."""

    __slots__ = ("classname", "device_id", "rasd_class", "resource", "pool")

    def __init__(self, classname, device_id, rasd_class=None, resource=None, pool=None):
        self.classname = classname
        self.device_id = device_id
        self.rasd_class = rasd_class      # None: no RASD (the serial console)
        self.resource = resource          # the RASD InstanceID suffix
        self.pool = pool                  # (kind, name) or None


def parts_of(details) -> list[Part]:
    out = []
    for s in details.storage:
        dev = storage_device_id(s)
        out.append(Part("HPVM_IODevice", dev, STOR, dev, ("storage", None)))
    for n in details.network:
        dev = network_device_id(n)
        out.append(Part("HPVM_IODevice", dev, NET, dev, ("network", n.vswitch)))
    for misc in details.misc:
        out.append(Part("HPVM_IODevice", misc_device_id(misc)))
    for i in range(details.cpu.vcpus):
        out.append(Part("HPVM_Processor", f"cpu:{i}", PROC, "cpu", ("processor", None)))
    out.append(Part("HPVM_Memory", "memory", MEM, "memory", ("memory", None)))
    return out


def rasds_of(details) -> list[tuple[str, str, tuple]]:
    """(RASD class, InstanceID suffix, pool) of one configuration."""
    out = [(PROC, "cpu", ("processor", None)), (MEM, "memory", ("memory", None))]
    out += [(STOR, storage_device_id(s), ("storage", None)) for s in details.storage]
    out += [(NET, network_device_id(n), ("network", n.vswitch)) for n in details.network]
    return out


def pool_ref(iid: str) -> tuple[str, str | None] | None:
    """(kind, vswitch) of a pool InstanceID."""
    if not iid.startswith("HPVM:pool:"):
        return None
    kind, _, name = iid[len("HPVM:pool:"):].partition(":")
    if kind not in POOL_CLASSES or bool(name) != (kind == "network"):
        return None
    return kind, name or None


class _Assoc(HpvmAssociation):
    def __init__(self, model, classname: str):
        super().__init__(model)
        self.classnames = (classname,)

    # shared helpers
    def entries_for(self, snap, ctx, source: Ref | None):
        """The guests a source narrows to: all visible ones (None) or the source's guest."""
        if source is None:
            return snap.visible_entries(ctx)
        entry = snap.guest(source.uuid)
        return [entry] if entry is not None else []

    def pool_path(self, snap, pool):
        kind, name = pool
        if kind == "network" and name not in snap.switch_names:
            return None     # a vNIC on a vswitch that no longer exists
        return self.m.iid_path(POOL_CLASSES[kind], pool_id(kind, name))


# -- host-guest, host-switch, host-service, host-pool -----------------------------------------

class HostedDependency(_Assoc):
    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("host", "guest"):
            return
        host = self.m.host_path()
        entries = snap.visible_entries(ctx) if source is None or source.kind == "host" \
            else self.entries_for(snap, ctx, source)
        for e in entries:
            yield {"Antecedent": host, "Dependent": self.m.guest_path(e.uuid)}


class HostedSwitch(_Assoc):
    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("host", "switch"):
            return
        host = self.m.host_path()
        for name in snap.switch_names:
            if source is None or source.kind == "host" or source.part == name:
                yield {"Antecedent": host, "Dependent": self.m.switch_path(name)}


class HostedService(_Assoc):
    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("host", "service"):
            return
        host = self.m.host_path()
        for path in (self.m.vsms_path(), self.m.migration_path()):
            if source is None or source.kind == "host" or \
                    source.part == path.keybindings["Name"]:
                yield {"Antecedent": host, "Dependent": path}


class HostedResourcePool(_Assoc):
    roles = ("GroupComponent", "PartComponent")

    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("host", "pool"):
            return
        host = self.m.host_path()
        for kind, name in pool_kinds(snap):
            iid = pool_id(kind, name)
            if source is None or source.kind == "host" or source.part == iid:
                yield {"GroupComponent": host,
                       "PartComponent": self.m.iid_path(POOL_CLASSES[kind], iid)}


# -- systems and their devices ------------------------------------------------------------------

class SystemDevice(_Assoc):
    roles = ("GroupComponent", "PartComponent")

    def links(self, ctx, snap, classname, source):
        kind = source.kind if source is not None else None
        m = self.m
        if kind in (None, "guest", "device"):
            for e in self.entries_for(snap, ctx, source):
                if e.details is None:
                    continue
                guest = m.guest_path(e.uuid)
                for p in parts_of(e.details):
                    if kind == "device" and p.device_id != source.part:
                        continue
                    yield {"GroupComponent": guest,
                           "PartComponent": m.device_path(p.classname, e.uuid, p.device_id)}
        if kind in (None, "host", "lan"):
            host = m.host_path()
            for nic in snap.host.nics:
                if kind == "lan" and nic.name != source.part:
                    continue
                yield {"GroupComponent": host, "PartComponent": m.lan_path(nic.name)}
        if kind in (None, "switch", "port"):
            for sw in snap.vswitches:
                name = sw.summary.name
                if kind == "switch" and source.part != name:
                    continue
                for port in sw.ports:
                    if kind == "port" and source.part != f"{name}\0port:{port.number}":
                        continue
                    yield {"GroupComponent": m.switch_path(name),
                           "PartComponent": m.port_path(name, port.number)}


# -- settings -------------------------------------------------------------------------------

class SettingsDefineState(_Assoc):
    """A guest and its VSSD; a device and its RASD (the -V configuration's)."""

    roles = ("ManagedElement", "SettingData")

    def links(self, ctx, snap, classname, source):
        if source is not None and (source.kind not in ("guest", "device", "vssd", "rasd")
                                   or source.next):
            return
        m = self.m
        for e in self.entries_for(snap, ctx, source):
            if e.details is None:
                continue
            if source is None or source.kind in ("guest", "vssd"):
                yield {"ManagedElement": m.guest_path(e.uuid),
                       "SettingData": m.vssd_path(e.uuid)}
                if source is not None:
                    continue
            for p in parts_of(e.details):
                if p.rasd_class is None:
                    continue
                if source is not None and source.kind == "device" and \
                        p.device_id != source.part:
                    continue
                if source is not None and source.kind == "rasd" and \
                        p.resource != source.part:
                    continue
                yield {"ManagedElement": m.device_path(p.classname, e.uuid, p.device_id),
                       "SettingData": m.iid_path(p.rasd_class, rasd_id(e.uuid, p.resource))}


class VSSDComponent(_Assoc):
    roles = ("GroupComponent", "PartComponent")

    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("vssd", "rasd"):
            return
        m = self.m
        for e in self.entries_for(snap, ctx, source):
            for d, nxt in configurations(e):
                if source is not None and source.next != nxt:
                    continue
                vssd = m.vssd_path(e.uuid, nxt)
                for cls, res, _pool in rasds_of(d):
                    if source is not None and source.kind == "rasd" and res != source.part:
                        continue
                    yield {"GroupComponent": vssd,
                           "PartComponent": m.iid_path(cls, rasd_id(e.uuid, res, nxt))}


class ElementSettingData(_Assoc):
    """IsDefault/IsCurrent: the -V configuration; IsNext: the one the next boot uses."""

    roles = ("ManagedElement", "SettingData")

    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("guest", "vssd"):
            return
        m = self.m
        for e in self.entries_for(snap, ctx, source):
            pending = e.pending is not None
            for _d, nxt in configurations(e):
                if source is not None and source.kind == "vssd" and source.next != nxt:
                    continue
                if nxt:
                    flags = {"IsDefault": 2, "IsCurrent": 2, "IsNext": 1}
                else:
                    flags = {"IsDefault": 1, "IsCurrent": 1, "IsNext": 2 if pending else 1}
                yield dict(flags, ManagedElement=m.guest_path(e.uuid),
                           SettingData=m.vssd_path(e.uuid, nxt))


# -- pools ------------------------------------------------------------------------------------

def _pool_scope(assoc, ctx, snap, source, other: str):
    """For links between a pool and an `other` ("device" or "rasd"): the pool asked for (None:
    every pool) and the guests to look at; None when `source` cannot be on such a link."""
    if source is None:
        return None, snap.visible_entries(ctx)
    if source.kind == "pool":
        want = pool_ref(source.part)
        return None if want is None else (want, snap.visible_entries(ctx))
    if source.kind == other:
        return None, assoc.entries_for(snap, ctx, source)
    return None


class ElementAllocatedFromPool(_Assoc):
    def links(self, ctx, snap, classname, source):
        scope = _pool_scope(self, ctx, snap, source, "device")
        if scope is None:
            return
        want, entries = scope
        m = self.m
        for e in entries:
            if e.details is None:
                continue
            for p in parts_of(e.details):
                if p.pool is None or (want is not None and p.pool != want):
                    continue
                if source is not None and source.kind == "device" and \
                        p.device_id != source.part:
                    continue
                pool = self.pool_path(snap, p.pool)
                if pool is not None:
                    yield {"Antecedent": pool,
                           "Dependent": m.device_path(p.classname, e.uuid, p.device_id)}


class ResourceAllocationFromPool(_Assoc):
    def links(self, ctx, snap, classname, source):
        scope = _pool_scope(self, ctx, snap, source, "rasd")
        if scope is None:
            return
        want, entries = scope
        m = self.m
        for e in entries:
            for d, nxt in configurations(e):
                if source is not None and source.kind == "rasd" and source.next != nxt:
                    continue
                for cls, res, pool in rasds_of(d):
                    if want is not None and pool != want:
                        continue
                    if source is not None and source.kind == "rasd" and res != source.part:
                        continue
                    path = self.pool_path(snap, pool)
                    if path is not None:
                        yield {"Antecedent": path,
                               "Dependent": m.iid_path(cls, rasd_id(e.uuid, res, nxt))}


# -- capabilities -----------------------------------------------------------------------------

class ElementCapabilities(_Assoc):
    """host -> host, entitlement and management capabilities; management service ->
    management capabilities; migration service -> migration capabilities; pool -> its
    allocation capabilities (Characteristics Default), processor pool -> entitlement
    capabilities; guest -> its capabilities and state capabilities."""

    roles = ("ManagedElement", "Capabilities")

    def links(self, ctx, snap, classname, source):
        m = self.m
        kind = source.kind if source is not None else None
        caps = lambda cls, iid: m.iid_path(cls, iid)  # noqa: E731
        host_links = []
        if kind in (None, "host", "service", "pool", "caps"):
            host = m.host_path()
            host_links = [
                (host, caps("HPVM_HostCapabilities", HOST_CAPS), None),
                (host, caps("HPVM_EntitlementCapabilities", ENT_CAPS), None),
                (host, caps("HPVM_VirtualSystemManagementCapabilities", VSMC), None),
                (m.vsms_path(), caps("HPVM_VirtualSystemManagementCapabilities", VSMC), None),
                (m.migration_path(),
                 caps("HPVM_VirtualSystemMigrationCapabilities", MIGRATION_CAPS), None),
                (m.iid_path("HPVM_ProcessorPool", pool_id("processor")),
                 caps("HPVM_EntitlementCapabilities", ENT_CAPS), None)]
            for pkind, name in pool_kinds(snap):
                host_links.append((m.iid_path(POOL_CLASSES[pkind], pool_id(pkind, name)),
                                   caps("HPVM_AllocationCapabilities",
                                        alloc_caps_id(pkind, name)), [2]))
        for element, capability, chars in host_links:
            if source is not None and source not in (classify(element), classify(capability)):
                continue
            v = {"ManagedElement": element, "Capabilities": capability}
            if chars:
                v["Characteristics"] = chars
            yield v
        if kind in (None, "guest", "gcaps"):
            for e in self.entries_for(snap, ctx, source):
                guest = m.guest_path(e.uuid)
                if e.details is not None and (kind != "gcaps" or source.part ==
                                              "GuestCapabilities"):
                    yield {"ManagedElement": guest,
                           "Capabilities": caps("HPVM_GuestCapabilities",
                                                f"HPVM:{e.uuid}:GuestCapabilities")}
                if kind != "gcaps" or source.part == "StateCapabilities":
                    yield {"ManagedElement": guest,
                           "Capabilities": caps("HPVM_EnabledLogicalElementCapabilities",
                                                f"HPVM:{e.uuid}:StateCapabilities"),
                           "Characteristics": [3]}


class SettingsDefineCapabilities(_Assoc):
    """Allocation capabilities -> their Default/Minimum/Maximum/Increment RASDs (ValueRole and
    ValueRange as Hyper-V and libvirt-cim pair them); migration capabilities -> the default
    migration settings."""

    roles = ("GroupComponent", "PartComponent")
    ROLE_VALUES = {"Default": (0, 0), "Minimum": (3, 1), "Maximum": (3, 2),
                   "Increment": (3, 3)}

    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("caps", "template", "msd"):
            return
        m = self.m
        for kind, name, cls in template_kinds(snap):
            base = alloc_caps_id(kind, name)
            if source is not None and source.kind == "caps" and source.part != base:
                continue
            group = m.iid_path("HPVM_AllocationCapabilities", base)
            for role in TEMPLATE_ROLES:
                iid = f"{base}:{role}"
                if source is not None and source.kind == "template" and source.part != iid:
                    continue
                vrole, vrange = self.ROLE_VALUES[role]
                yield {"GroupComponent": group, "PartComponent": m.iid_path(cls, iid),
                       "PropertyPolicy": 0, "ValueRole": vrole, "ValueRange": vrange}
        if source is None or source.part in (MIGRATION_CAPS, MSD_DEFAULT):
            yield {"GroupComponent": m.iid_path("HPVM_VirtualSystemMigrationCapabilities",
                                                MIGRATION_CAPS),
                   "PartComponent": m.iid_path(MSD, MSD_DEFAULT),
                   "PropertyPolicy": 0, "ValueRole": 0, "ValueRange": 0}


# -- services ---------------------------------------------------------------------------------

class ServiceAffectsElement(_Assoc):
    """The management service manages every guest and vswitch; the migration service moves
    guests."""

    roles = ("AffectedElement", "AffectingElement")

    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("service", "guest", "switch"):
            return
        m = self.m
        vsms, mig = m.vsms_path(), m.migration_path()
        services = (vsms, mig)
        if source is not None and source.kind == "service":
            services = tuple(s for s in services if s.keybindings["Name"] == source.part)
        if source is None or source.kind in ("service", "guest"):
            entries = snap.visible_entries(ctx) if source is None or source.kind == "service" \
                else self.entries_for(snap, ctx, source)
            for e in entries:
                for svc in services:
                    yield {"AffectedElement": m.guest_path(e.uuid), "AffectingElement": svc,
                           "ElementEffects": [5]}
        if (source is None or source.kind in ("service", "switch")) and vsms in services:
            for name in snap.switch_names:
                if source is not None and source.kind == "switch" and source.part != name:
                    continue
                yield {"AffectedElement": m.switch_path(name), "AffectingElement": vsms,
                       "ElementEffects": [5]}


# -- multi-server, vswitch wiring, device database ----------------------------------------------

class DistributedHost(_Assoc):
    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("mse", "guest"):
            return
        ms = snap.multi_server
        if not ms.servers:
            return
        me = snap.host.hostname.split(".")[0]
        entries = snap.visible_entries(ctx) if source is None or source.kind == "mse" \
            else self.entries_for(snap, ctx, source)
        for e in entries:
            d = e.details
            if d is None or not d.machine.distributed:
                continue
            for s in ms.servers:
                if source is not None and source.kind == "mse" and source.part != s.hostname:
                    continue
                runs_here = e.active and (
                    (d.machine.server_id == 0 and s.hostname == me)
                    or (d.machine.server_id and d.machine.server_id == s.server_id))
                yield {"Antecedent": self.m.mse_path(s.hostname),
                       "Dependent": self.m.guest_path(e.uuid),
                       "IsRunningHost": bool(runs_here)}


class SwitchUplink(_Assoc):
    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("lan", "switch"):
            return
        nics = {n.name for n in snap.host.nics}
        for s in snap.summaries:
            if s.nic is None or s.nic not in nics:
                continue
            if source is not None and source.part not in (s.name, s.nic):
                continue
            yield {"Antecedent": self.m.lan_path(s.nic),
                   "Dependent": self.m.switch_path(s.name)}


class SwitchPortConnection(_Assoc):
    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("port", "device"):
            return
        m = self.m
        entries = snap.visible_entries(ctx) if source is None or source.kind == "port" \
            else self.entries_for(snap, ctx, source)
        for e in entries:
            if e.details is None:
                continue
            for n in e.details.network:
                sw = snap.switch_by_name.get(n.vswitch)
                if sw is None or n.port is None or \
                        not any(p.number == n.port for p in sw.ports):
                    continue
                dev = network_device_id(n)
                if source is not None and source.kind == "device" and source.part != dev:
                    continue
                if source is not None and source.kind == "port" and \
                        source.part != f"{n.vswitch}\0port:{n.port}":
                    continue
                yield {"Antecedent": m.port_path(n.vswitch, n.port),
                       "Dependent": m.device_path("HPVM_IODevice", e.uuid, dev)}


class IODeviceDBDependency(_Assoc):
    def links(self, ctx, snap, classname, source):
        if source is not None and source.kind not in ("devdb", "guest"):
            return
        m = self.m
        want_guest = None
        if source is not None and source.kind == "guest":
            entry = snap.guest(source.uuid)
            if entry is None:
                return
            want_guest = entry.name
        for entry in snap.device_entries:
            if entry.kind != "gdev":
                continue
            iid = entry_id("gdev", entry.name)
            if source is not None and source.kind == "devdb" and source.part != iid:
                continue
            for name in entry.guests():
                if want_guest is not None and name != want_guest:
                    continue
                g = snap.by_name.get(name)
                if g is None:
                    continue
                yield {"Antecedent": m.iid_path("HPVM_GuestIODeviceDB", iid),
                       "Dependent": m.guest_path(g.uuid)}


ASSOCIATIONS = {
    "HPVM_HostedDependency": HostedDependency,
    "HPVM_HostedSwitch": HostedSwitch,
    "HPVM_HostedService": HostedService,
    "HPVM_HostedResourcePool": HostedResourcePool,
    "HPVM_SystemDevice": SystemDevice,
    "HPVM_SettingsDefineState": SettingsDefineState,
    "HPVM_VirtualSystemSettingDataComponent": VSSDComponent,
    "HPVM_ElementSettingData": ElementSettingData,
    "HPVM_ElementAllocatedFromPool": ElementAllocatedFromPool,
    "HPVM_ResourceAllocationFromPool": ResourceAllocationFromPool,
    "HPVM_ElementCapabilities": ElementCapabilities,
    "HPVM_SettingsDefineCapabilities": SettingsDefineCapabilities,
    "HPVM_ServiceAffectsElement": ServiceAffectsElement,
    "HPVM_DistributedHost": DistributedHost,
    "HPVM_SwitchUplink": SwitchUplink,
    "HPVM_SwitchPortConnection": SwitchPortConnection,
    "HPVM_IODeviceDBDependency": IODeviceDBDependency,
}


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    for classname, cls in ASSOCIATIONS.items():
        registry.register(cls(m, classname))
