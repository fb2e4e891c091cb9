"""The device database hpvm_mgmtdb (hpvmdevmgmt -l): one HPVM_IODeviceDB subclass instance per
entry, EXIST and WWIDs as the host has them now. Writes (hpvmdevmgmt -a/-m/-d through
CreateInstance/ModifyInstance/DeleteInstance) come from `DeviceDbWrites`. Host-wide.
"""
from __future__ import annotations

from provider.providers.hpvm_common import HpvmProvider, host_wide, model_for
from provider.providers.hpvm_devicedb_writes import DeviceDbWrites

DB_CLASSES = {"gdev": "HPVM_GuestIODeviceDB", "rdev": "HPVM_RestrictedIODeviceDB",
              "server": "HPVM_ServerIODeviceDB"}


def entry_id(kind: str, name: str) -> str:
    return f"HPVM:{kind}:{name}"


def entry_values(entry, ctx) -> dict:
    v = {"InstanceID": entry_id(entry.kind, entry.name)}
    if ctx.keys_only:
        return v
    a = entry.attrs
    v.update(ElementName=entry.name, EntryName=entry.name,
             EntryClass=a.get("CONFIG", entry.kind), Exists=a.get("EXIST") == "YES",
             DeviceType=a.get("DEVTYPE"), Shared=entry.shared,
             Attributes=[f"{k}={val}" for k, val in a.items()],
             Dependents=list(entry.dependents), WWID=entry.wwid)
    if entry.kind == "server":
        sid = a.get("SERVERID")
        v.update(ServerID=int(sid) if sid and sid.isdigit() else None,
                 ServerAddress=a.get("SERVERADDR"))
    return v


class DeviceDbProvider(DeviceDbWrites, HpvmProvider):
    """One class of entries (gdev, rdev or server)."""

    def __init__(self, model, kind: str):
        super().__init__(model)
        self.kind = kind
        self.classnames = (DB_CLASSES[kind],)

    def instances(self, ctx, snap, classname):
        if not host_wide(ctx):
            return
        f = self.m.f(classname)
        for entry in snap.device_entries:
            if entry.kind == self.kind:
                yield f.make(entry_values(entry, ctx), ctx)


def install(registry, env):
    m = model_for(env)
    if m is None:
        return
    for kind in DB_CLASSES:
        registry.register(DeviceDbProvider(m, kind))
