"""The host's primordial resource pools (DSP1041/1045): processors, memory, backing stores, and
one network pool per vswitch. Host-wide: principals without a host role do not see them.
"""
from __future__ import annotations

from agent.vswitch import MAX_PORTS
from provider.providers.hpvm_common import HpvmProvider, host_wide, model_for, pool_id

POOL_CLASSES = {"processor": "HPVM_ProcessorPool", "memory": "HPVM_MemoryPool",
                "storage": "HPVM_StoragePool", "network": "HPVM_NetworkPool"}


def pool_kinds(snap):
    """(kind, vswitch name or None) of every pool of the host."""
    yield "processor", None
    yield "memory", None
    yield "storage", None
    for name in snap.switch_names:
        yield "network", name


def active_details(snap):
    return [e.details for e in snap.entries if e.details is not None and e.active]


class PoolProvider(HpvmProvider):
    """One provider per pool class (the registry serves one class per provider entry)."""

    def __init__(self, model, kind: str):
        super().__init__(model)
        self.kind = kind
        self.classnames = (POOL_CLASSES[kind],)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        f = self.m.f(classname)
        if self.kind == "network":
            for sw in snap.vswitches:
                yield f.make(self.values(ctx, snap, sw), ctx)
        else:
            yield f.make(self.values(ctx, snap, None), ctx)

    def values(self, ctx, snap, sw) -> dict:
        name = sw.summary.name if sw is not None else None
        iid = pool_id(self.kind, name)
        v = {"InstanceID": iid}
        if ctx.keys_only:
            return v
        v.update(PoolID=iid[5:], Primordial=True, ConsumedResourceUnits="count")
        host = snap.host
        if self.kind == "processor":
            used = sum(d.cpu.vcpus for d in active_details(snap))
            v.update(ElementName="Processors", ResourceType=3, AllocationUnits="count",
                     Capacity=host.cpus, Reserved=used, CurrentlyConsumedResource=used,
                     MaxConsumableResource=host.cpus, ProcessorSpeed=host.cpu_mhz)
        elif self.kind == "memory":
            used = sum(_memory_now(d) for d in active_details(snap))
            v.update(ElementName="Memory", ResourceType=4, AllocationUnits="byte*2^20",
                     ConsumedResourceUnits="byte*2^20", Capacity=host.memory_mb,
                     Reserved=used, CurrentlyConsumedResource=used,
                     MaxConsumableResource=host.memory_mb)
            if ctx.wants("AvailableMemory"):
                v["AvailableMemory"] = snap.resources.available_memory_mb
        elif self.kind == "storage":
            stores = len(host.disks) + len(host.logical_volumes)
            used = len({s.location for d in active_details(snap) for s in d.storage
                        if s.location})
            v.update(ElementName="Backing stores", ResourceType=17, AllocationUnits="count",
                     Capacity=stores, Reserved=used, CurrentlyConsumedResource=used)
        else:
            reserved = sum(1 for p in sw.ports if p.reserved)
            active = sum(1 for p in sw.ports if p.active)
            v.update(ElementName=f"vswitch {name}", ResourceType=10, AllocationUnits="count",
                     Capacity=MAX_PORTS, Reserved=reserved, CurrentlyConsumedResource=active,
                     MaxConsumableResource=MAX_PORTS, SwitchName=name)
        return v


def _memory_now(d) -> int:
    dm = d.dynmem
    if dm is not None and dm.live and dm.current_mb is not None:
        return dm.current_mb
    return d.memory.total_mb


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    for kind in POOL_CLASSES:
        registry.register(PoolProvider(m, kind))
