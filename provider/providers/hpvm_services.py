"""The host's services: HPVM_VirtualSystemManagementService (DSP1042; its methods come from
`ManagementServiceMethods`) and HPVM_VirtualSystemMigrationService (DSP1081; its methods
from `MigrationServiceMethods` when the write side provides them). Host-wide.
"""
from __future__ import annotations

from provider.providers.hpvm_common import (MIGRATION_NAME, VSMS_NAME, HOST_CLASS, HpvmProvider,
                                            host_wide, model_for)
from provider.providers import hpvm_management

VSMS_CLASS = "HPVM_VirtualSystemManagementService"
MIGRATION_CLASS = "HPVM_VirtualSystemMigrationService"


def service_values(m, classname: str, name: str, ctx, **extra) -> dict:
    v = {"SystemCreationClassName": HOST_CLASS, "SystemName": m.host_uuid,
         "CreationClassName": classname, "Name": name}
    if not ctx.keys_only:
        v.update(EnabledState=2, RequestedState=12, EnabledDefault=2, OperationalStatus=[2],
                 HealthState=5, Started=True, StartMode="Automatic", **extra)
    return v


class ManagementServiceProvider(hpvm_management.ManagementServiceMethods, HpvmProvider):
    classnames = (VSMS_CLASS,)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        yield self.m.f(VSMS_CLASS).make(service_values(
            self.m, VSMS_CLASS, VSMS_NAME, ctx, ElementName="Integrity VM management",
            Caption="hpvmcreate, hpvmmodify, hpvmclone, hpvmremove, hpvmnet, hpvmcollect"),
            ctx)


class MigrationServiceProvider(HpvmProvider):
    """The migration service instance (DSP1081 shape). hpvmmigrate is not provided yet: the
    service has no methods (its capabilities list none, calls answer METHOD_NOT_AVAILABLE)
    and the DSP1081 profile is not registered."""
    classnames = (MIGRATION_CLASS,)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        yield self.m.f(MIGRATION_CLASS).make(service_values(
            self.m, MIGRATION_CLASS, MIGRATION_NAME, ctx, ElementName="Integrity VM migration",
            Caption="hpvmmigrate"), ctx)


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    registry.register(ManagementServiceProvider(m))
    registry.register(MigrationServiceProvider(m))
