"""The registered profiles of the VM model (DSP1033 registration through `env.profiles`):

| Profile | central / scoping instances |
|---|---|
| DMTF System Virtualization 1.0.0 (DSP1042) | the VM Host |
| DMTF Virtual System 1.0.0 (DSP1057) | each guest |
| DMTF Resource Allocation 1.1.0 (DSP1041) | each pool |
| DMTF Allocation Capabilities 1.0.0 (DSP1043) | each pool's allocation capabilities |
| DMTF Memory Resource Virtualization 1.0.0 (DSP1045) | the memory pool |
| HP Integrity VM Provider A.03.00 (vendor, the HPVM_ classes) | the VM Host |

System Virtualization references its component profiles and the vendor profile references
System Virtualization (CIM_ReferencedProfile); every profile references Profile Registration.
DSP1081 Virtual System Migration is not registered: the migration service is published
(with capabilities that list no method) but migration itself is not provided yet.
The central callables read the request's snapshot, so they honour the principal: a user who
sees one guest finds that guest under DSP1057 and no pool.
"""
from __future__ import annotations

from agent.api.views import PRODUCT_RELEASE
from provider.providers.hpvm_common import alloc_caps_id, host_wide, model_for, pool_id, snapshot
from provider.providers.hpvm_pools import POOL_CLASSES, pool_kinds
from provider.providers.profiles import PROFILE_REGISTRATION, Profile

SYSTEM_VIRTUALIZATION = "HPVM:DMTF+System Virtualization+1.0.0"


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    def guests(ctx):
        return [m.guest_path(e.uuid) for e in snapshot(ctx, m).visible_entries(ctx)]

    def pools(ctx):
        if not host_wide(ctx):
            return []
        return [m.iid_path(POOL_CLASSES[k], pool_id(k, n))
                for k, n in pool_kinds(snapshot(ctx, m))]

    def allocation_caps(ctx):
        if not host_wide(ctx):
            return []
        return [m.iid_path("HPVM_AllocationCapabilities", alloc_caps_id(k, n))
                for k, n in pool_kinds(snapshot(ctx, m))]

    def memory_pool(ctx):
        return [m.iid_path("HPVM_MemoryPool", pool_id("memory"))] if host_wide(ctx) else []

    def host(ctx):
        return [m.host_path()]

    reg = (PROFILE_REGISTRATION,)
    components = [
        env.profiles.add(Profile("DMTF", "Virtual System", "1.0.0", central=guests,
                                 central_classes=("HPVM_Guest",), references=reg,
                                 description="DSP1057 Virtual System")),
        env.profiles.add(Profile("DMTF", "Resource Allocation", "1.1.0", central=pools,
                                 central_classes=tuple(POOL_CLASSES.values()),
                                 references=reg, description="DSP1041 Resource Allocation")),
        env.profiles.add(Profile("DMTF", "Allocation Capabilities", "1.0.0",
                                 central=allocation_caps,
                                 central_classes=("HPVM_AllocationCapabilities",),
                                 references=reg, description="DSP1043 Allocation Capabilities")),
        env.profiles.add(Profile("DMTF", "Memory Resource Virtualization", "1.0.0",
                                 central=memory_pool, central_classes=("HPVM_MemoryPool",),
                                 references=reg,
                                 description="DSP1045 Memory Resource Virtualization")),
    ]
    sv = env.profiles.add(Profile(
        "DMTF", "System Virtualization", "1.0.0", instance_id=SYSTEM_VIRTUALIZATION,
        central=host, central_classes=("HPVM_Host",),
        references=reg + tuple(p.id for p in components),
        description="DSP1042 System Virtualization"))
    env.profiles.add(Profile(
        "HP", "Integrity VM Provider", PRODUCT_RELEASE, central=host,
        central_classes=("HPVM_Host",), references=reg + (sv.id,),
        description="VMProvider's HPVM_ classes (HP Integrity VM A.03.00)"))
