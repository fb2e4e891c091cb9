"""CreateInstance / ModifyInstance / DeleteInstance on the device database classes
(HPVM_GuestIODeviceDB gdev, HPVM_RestrictedIODeviceDB rdev, HPVM_ServerIODeviceDB server):
hpvmdevmgmt -a, -m and -d through CIM.

InstanceID = ``HPVM:<gdev|rdev|server>:<entry name>``; on create it may be left out when
EntryName is given. Settable: Shared (SHARE=YES|NO), ServerID (SERVERID), ServerAddress
(SERVERADDR) and the user attributes in Attributes[] as ``NAME=VALUE``. CONFIG, EXIST and
DEVTYPE are the host's (refused on create, ignored on modify: a client may send back an
instance it read); Exists, DeviceType, Dependents and WWID are read-only (refused on create,
ignored on modify). Several attributes change in one store
transaction, through the same DeviceDatabase operations and events as hpvmdevmgmt, so a
refusal changes nothing. Writes need the host admin role.
"""
from __future__ import annotations

import pywbem
from pywbem import CIMError, CIMInstanceName

from agent.devicedb import SYSTEM_ATTRS, DeviceDatabase
from agent.errors import AgentError
from agent.vswitch import VswitchTable
from provider.providers.hpvm_jobs import agent_lock

KIND_OF_CLASS = {"hpvm_guestiodevicedb": "gdev", "hpvm_restrictediodevicedb": "rdev",
                 "hpvm_serveriodevicedb": "server"}
_READ_ONLY = ("Exists", "DeviceType", "Dependents", "WWID", "EntryClass")


def _bad(message: str, code: int = pywbem.CIM_ERR_INVALID_PARAMETER) -> CIMError:
    return CIMError(code, message)


def _kind(classname: str) -> str:
    kind = KIND_OF_CLASS.get(classname.lower())
    if kind is None:
        raise _bad(f"{classname} is not a device database class")
    return kind


def entry_path(kind: str, name: str, classname: str) -> CIMInstanceName:
    return CIMInstanceName(classname, keybindings={"InstanceID": f"HPVM:{kind}:{name}"},
                           namespace="root/cimv2")


def _name_from_id(kind: str, iid, classname: str) -> str:
    prefix = f"HPVM:{kind}:"
    if not isinstance(iid, str) or not iid.startswith(prefix) or len(iid) == len(prefix):
        raise _bad(f"{classname}.InstanceID {iid!r} must be {prefix}<entry name>")
    return iid[len(prefix):]


def _prop(instance, name):
    for n, p in instance.properties.items():
        if n.lower() == name.lower():
            return p.value
    return None


def wanted_attrs(instance, kind: str, *, creating: bool, current=None) -> list[tuple[str, str]]:
    """The (NAME, VALUE) attributes the instance asks for, in order."""
    cls = instance.classname
    attrs: list[tuple[str, str]] = []
    for raw in _prop(instance, "Attributes") or []:
        name, sep, value = str(raw).partition("=")
        name = name.strip().upper()
        if not sep or not name:
            raise _bad(f"{cls}.Attributes: {raw!r} is not NAME=VALUE")
        if name in SYSTEM_ATTRS:
            if creating:
                raise _bad(f"{cls}.Attributes: {name} is set by the VM Host, not by clients")
            continue          # an instance read back: the host's own values are not compared
        if current is not None and current.attrs.get(name) == value:
            continue
        attrs.append((name, value))
    shared = _prop(instance, "Shared")
    if shared is not None:
        value = "YES" if shared else "NO"
        if current is None or current.attrs.get("SHARE") != value:
            attrs = [a for a in attrs if a[0] != "SHARE"] + [("SHARE", value)]
    for prop, attr in (("ServerID", "SERVERID"), ("ServerAddress", "SERVERADDR")):
        value = _prop(instance, prop)
        if value is None:
            continue
        if kind != "server":
            raise _bad(f"{cls}.{prop} belongs to server entries only")
        value = str(value)
        if current is None or current.attrs.get(attr) != value:
            attrs = [a for a in attrs if a[0] != attr] + [(attr, value)]
    names = [a[0] for a in attrs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise _bad(f"{cls}.Attributes: {dup} is given more than once")
    return attrs


class DeviceDbWrites:
    """Mixin for the providers of the three device database classes (``self.env`` set)."""

    def _db_change(self, ctx, event: str, change):
        """One store transaction over the device database, as DeviceOps makes them."""
        agent = self.env.agent
        with agent_lock(self.env):
            with agent.store.transaction(actor=f"cim:{ctx.principal.user}") as txn:
                db = DeviceDatabase.load(txn)
                entry = change(db, VswitchTable.load(txn))
                db.save(txn)
                txn.event(event, entry.name, entry_type=entry.kind, attrs=dict(entry.attrs),
                          via="cim")
        return entry

    def create(self, ctx, instance):
        with agent_lock(self.env):
            return self._create(ctx, instance)

    def _create(self, ctx, instance):
        kind = _kind(instance.classname)
        iid = _prop(instance, "InstanceID")
        name = _prop(instance, "EntryName")
        if iid is not None:
            from_id = _name_from_id(kind, iid, instance.classname)
            if name is not None and name != from_id:
                raise _bad(f"{instance.classname}.EntryName '{name}' differs from the entry "
                           f"named by InstanceID ('{from_id}')")
            name = from_id
        if not name:
            raise _bad(f"{instance.classname}: give EntryName (or InstanceID "
                       f"HPVM:{kind}:<entry name>)")
        for prop in _READ_ONLY:
            if _prop(instance, prop) is not None and prop != "EntryClass":
                raise _bad(f"{instance.classname}.{prop} is read-only")
        ec = _prop(instance, "EntryClass")
        if ec is not None and ec != kind:
            raise _bad(f"{instance.classname}.EntryClass is {kind}, not {ec}")
        attrs = wanted_attrs(instance, kind, creating=True)
        host = self.env.agent.host

        def change(db, table):
            entry, _ = db.add(kind, name, attrs[0] if attrs else None, host, table)
            for attr in attrs[1:]:
                db.modify(kind, entry.name, attr, host, table)
            return entry
        entry = self._db_change(ctx, "device.add", change)
        return entry_path(kind, entry.name, instance.classname)

    def modify(self, ctx, instance, properties):
        with agent_lock(self.env):
            self._modify(ctx, instance, properties)

    def _modify(self, ctx, instance, properties):
        kind = _kind(instance.classname)
        name = _name_from_id(kind, instance.path.keybindings.get("InstanceID"),
                             instance.classname)
        agent = self.env.agent
        current = agent.device_db().find(kind, name, agent.host)
        if current is None:
            raise _bad(f"No {kind} entry named '{name}'", pywbem.CIM_ERR_NOT_FOUND)
        wanted = {p.lower() for p in properties}
        # read-only properties of an instance read back are not compared (EXIST, WWID and
        # the dependents move with the host); only the name may not change
        entry_name = _prop(instance, "EntryName")
        if "entryname" in wanted and entry_name is not None and entry_name != current.name:
            raise _bad(f"{instance.classname}.EntryName is the entry's name and cannot change "
                       "(delete the entry and create another)")
        trimmed = pywbem.CIMInstance(instance.classname)
        for p in ("Attributes", "Shared", "ServerID", "ServerAddress"):
            if p.lower() in wanted and _prop(instance, p) is not None:
                trimmed.properties[p] = instance.properties[p]
        attrs = wanted_attrs(trimmed, kind, creating=False, current=current)
        if not attrs:
            return
        host = agent.host

        def change(db, table):
            entry = None
            for attr in attrs:
                entry = db.modify(kind, name, attr, host, table)
            return entry
        self._db_change(ctx, "device.modify", change)

    def delete(self, ctx, path):
        kind = _kind(path.classname)
        name = _name_from_id(kind, path.keybindings.get("InstanceID"), path.classname)
        try:
            with agent_lock(self.env):
                self.env.agent.delete_device_entry(kind, name)
        except AgentError as exc:
            if exc.kind == "not_found":
                raise _bad("\n".join(exc.lines), pywbem.CIM_ERR_NOT_FOUND) from None
            raise
