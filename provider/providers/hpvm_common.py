"""What every HPVM_ family shares: the per-request agent snapshot, the key and InstanceID
formats of docs/cim-classes.md, and who may see what.

* `snapshot(ctx, model)`: the agent as one request sees it (``ctx.memo``), whatever number
  of classes or association targets the request touches. Each part (guests, vswitches,
  device database, CPU usage...) is computed on first use only, and shared with the next
  requests while the store generation is the same and the backend says the clock has not
  moved the derived state (`SharedViews`): one store check per request when nothing
  changed. Nothing is copied at start: a change made by an hpvm command moves the
  generation, so it is visible to the next request; a time-driven change (boot phases,
  memory moves) ends the sharing when it is due.
* `Model`: instance factories of every class (built once at install) and the path builders.
* `classify(path)`: which object a path names (host, guest, device, setting...) and the
  guest it belongs to, for targeted association lookups and visibility.
* Visibility: host roles (admin, oper, readonly) see everything; a principal without a host
  role (`none`) who is on a guest's own admin/oper lists (-u/-g) sees that guest and its
  parts, and the host instance, nothing else.
"""
from __future__ import annotations

import abc
import functools
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator

from pywbem import CIMInstance, CIMInstanceName

from provider.providers.base import (ROLES, AssociationProvider, Context, InstanceFactory,
                                     InstanceProvider, path_key, same_path)

NS = "root/cimv2"
HOST_ROLES = frozenset(ROLES)
GUEST_CLASS = "HPVM_Guest"
HOST_CLASS = "HPVM_Host"
SWITCH_CLASS = "HPVM_Switch"
VSMS_NAME = "HPVM:VirtualSystemManagementService"
MIGRATION_NAME = "HPVM:VirtualSystemMigrationService"


RASD_CLASSES = ("HPVM_ProcessorAllocationSettingData", "HPVM_MemoryAllocationSettingData",
                "HPVM_StorageAllocationSettingData", "HPVM_EthernetPortAllocationSettingData")
DEVICE_CLASSES = ("HPVM_IODevice", "HPVM_Processor", "HPVM_Memory")
TEMPLATE_PREFIX = "HPVM:AllocationCapabilities:"
POOL_PREFIX = "HPVM:pool:"


# -- keys -----------------------------------------------------------------------------------

def key(path: CIMInstanceName, name: str):
    """Key `name` of `path` (any case), or None."""
    kb = path.keybindings
    value = kb.get(name)
    if value is None:
        for k, v in kb.items():
            if k.lower() == name.lower():
                return v
    return value


def storage_device_id(dev) -> str:
    """`disk:0,1,0`: kind:bus,device,target (a StorageDetails or StorageResource)."""
    kind = getattr(dev, "device")
    slot = getattr(dev, "slot")
    return f"{kind}:{_n(dev.bus)},{_n(slot)},{_n(dev.target)}"


def network_device_id(dev) -> str:
    return f"network:{_n(dev.bus)},{_n(dev.slot)}"


def misc_device_id(dev) -> str:
    return f"{dev.device}:{dev.adapter}"


def _n(v) -> str:
    return "" if v is None else str(v)


def vssd_id(uuid: str, nxt: bool = False) -> str:
    return f"HPVM:{uuid}:next" if nxt else f"HPVM:{uuid}"


def rasd_id(uuid: str, resource: str, nxt: bool = False) -> str:
    """`HPVM:<uuid>:cpu`, `HPVM:<uuid>:memory`, `HPVM:<uuid>:disk:0,1,0`; the pending
    configuration's RASDs have `:next` after the UUID."""
    return f"{vssd_id(uuid, nxt)}:{resource}"


def pool_id(kind: str, name: str | None = None) -> str:
    return f"{POOL_PREFIX}{kind}" + (f":{name}" if name else "")


def alloc_caps_id(kind: str, name: str | None = None) -> str:
    return f"{TEMPLATE_PREFIX}{kind}" + (f":{name}" if name else "")


# -- what a path names ----------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """What a path names. `kind` is host, guest, device, vssd, rasd, gcaps (a guest's
    capabilities), lan, switch, port, pool, template, caps, service, devdb, mse or other;
    `uuid` the owning guest for guest-owned kinds; `part` the rest (DeviceID, resource...);
    `next` for the pending configuration's settings."""

    kind: str
    uuid: str | None = None
    part: str | None = None
    next: bool = False

    @property
    def guest_owned(self) -> bool:
        return self.uuid is not None


def classify(path: CIMInstanceName) -> Ref:
    cls = path.classname.lower()
    if cls == "hpvm_host":
        return Ref("host")
    if cls == "hpvm_guest":
        return Ref("guest", _s(key(path, "Name")))
    if cls in ("hpvm_iodevice", "hpvm_processor", "hpvm_memory"):
        if _s(key(path, "SystemCreationClassName")).lower() != "hpvm_guest":
            return Ref("other")
        return Ref("device", _s(key(path, "SystemName")), _s(key(path, "DeviceID")))
    if cls == "hpvm_hostlandevice":
        return Ref("lan", None, _s(key(path, "DeviceID")))
    if cls == "hpvm_switch":
        return Ref("switch", None, _s(key(path, "Name")))
    if cls == "hpvm_switchport":
        return Ref("port", None, _s(key(path, "SystemName")) + "\0" + _s(key(path, "DeviceID")))
    iid = _s(key(path, "InstanceID"))
    if cls == "hpvm_virtualsystemsettingdata":
        parts = iid.split(":")
        if len(parts) == 2 and parts[0] == "HPVM":
            return Ref("vssd", parts[1])
        if len(parts) == 3 and parts[0] == "HPVM" and parts[2] == "next":
            return Ref("vssd", parts[1], None, True)
        return Ref("other")
    if cls in _RASD_LOWER:
        if iid.startswith(TEMPLATE_PREFIX):
            return Ref("template", None, iid)
        parts = iid.split(":", 2)
        if len(parts) != 3 or parts[0] != "HPVM" or not parts[1]:
            return Ref("other")
        rest = parts[2]
        nxt = rest.startswith("next:")
        return Ref("rasd", parts[1], rest[5:] if nxt else rest, nxt)
    if cls in ("hpvm_guestcapabilities", "hpvm_enabledlogicalelementcapabilities"):
        parts = iid.split(":")
        if len(parts) == 3 and parts[0] == "HPVM":
            return Ref("gcaps", parts[1], parts[2])
        return Ref("other")
    if cls in ("hpvm_processorpool", "hpvm_memorypool", "hpvm_storagepool", "hpvm_networkpool"):
        return Ref("pool", None, iid)
    if cls in ("hpvm_hostcapabilities", "hpvm_entitlementcapabilities",
               "hpvm_virtualsystemmigrationcapabilities",
               "hpvm_virtualsystemmanagementcapabilities", "hpvm_allocationcapabilities"):
        return Ref("caps", None, iid)
    if cls in ("hpvm_virtualsystemmanagementservice", "hpvm_virtualsystemmigrationservice"):
        return Ref("service", None, _s(key(path, "Name")))
    if cls in ("hpvm_guestiodevicedb", "hpvm_serveriodevicedb", "hpvm_restrictediodevicedb"):
        return Ref("devdb", None, iid)
    if cls == "hpvm_virtualsystemmigrationsettingdata":
        return Ref("msd", None, iid)
    if cls == "hpvm_mseserver":
        return Ref("mse", None, _s(key(path, "Name")))
    return Ref("other")


_RASD_LOWER = frozenset(c.lower() for c in RASD_CLASSES)


def _s(v) -> str:
    return v if isinstance(v, str) else ""


# -- the snapshot ---------------------------------------------------------------------------

@dataclass
class GuestEntry:
    """One guest as this request sees it. `details` is the hpvmstatus -V view (None for an
    invalid guest, then `invalid` says why); `config` the stored configuration behind it;
    `pending` the -V view of the configuration waiting for the next boot, if any."""

    uuid: str
    name: str
    details: object = None          # agent.api.views.GuestDetails
    config: object = None           # agent.guest.Guest
    invalid: object = None          # agent.api.core.InvalidGuest
    pending: object = None          # GuestDetails of vmm_config.next while running

    @property
    def state(self) -> str:
        return self.details.machine.state if self.details is not None else "Invalid"

    @property
    def active(self) -> bool:
        from agent.backends.base import ACTIVE_STATES
        return self.state in ACTIVE_STATES


class SharedViews:
    """The agent's derived views, shared by every request while the data they show cannot
    have changed: one `Epoch` per (store generation, validity time). A commit by anyone
    (this server or an hpvm command in another process) moves the generation; the backend
    says until when the views derived from the stored facts and the clock stay as they are
    (`Agent.views_valid_until`: the next phase transition or memory step of a started
    guest; now, i.e. no sharing, when it cannot tell). A console's sweep over unchanged
    data computes each view once; the next request after a change computes it again."""

    def __init__(self, agent, lock):
        self.agent = agent
        self.lock = lock
        self.epoch: Epoch | None = None

    def current(self) -> tuple["Epoch", float]:
        """(the epoch of the store and clock as they are now, now)."""
        agent = self.agent
        with self.lock:
            generation = agent.store.generation()       # the one store check of a request
            now = agent.clock.now()
            ep = self.epoch
            if ep is not None and ep.generation == generation and now < ep.valid_until:
                return ep, now
            with agent.reads_at(generation):
                ep = Epoch(generation, agent.views_valid_until(now),
                           agent.usage_valid_until(now))
            self.epoch = ep
            return ep, now


class Epoch:
    """The views of one store generation, valid until `valid_until` (wall clock); the
    CPU usage figures (which advance with the clock while a guest runs) until
    `usage_until`. `parts` holds what was computed so far."""

    __slots__ = ("generation", "valid_until", "usage_until", "parts")

    def __init__(self, generation: int, valid_until: float, usage_until: float):
        self.generation = generation
        self.valid_until = valid_until
        self.usage_until = usage_until
        self.parts: dict = {}


class Snapshot:
    """The agent as one request sees it. Each part is computed on first use, once, and
    shared with later requests of the same `Epoch` (see `SharedViews`); parts that the
    clock moves while guests run (`ticking`) are shared only while no guest runs."""

    def __init__(self, agent, lock, shared: SharedViews | None = None):
        self.agent = agent
        self.lock = lock          # the one lock around the shared Agent (reads and changes)
        if shared is None:
            shared = SharedViews(agent, lock)
        self.epoch, self._now = shared.current()
        self._local: dict = {}

    def part(self, name: str, compute, *, ticking: bool = False):
        """The view `name`, computed by `compute()` (under the agent lock) when this epoch
        has not computed it yet."""
        ep = self.epoch
        parts = self._local if ticking and self._now >= ep.usage_until else ep.parts
        try:
            return parts[name]
        except KeyError:
            pass
        with self.lock, self.agent.reads_at(ep.generation):
            if name not in parts:
                parts[name] = compute()
            return parts[name]

    def has(self, name: str) -> bool:
        return name in self.epoch.parts

    # -- guests
    @property
    def entries(self) -> list[GuestEntry]:
        """Every guest, valid ones in VM number order, then the invalid ones."""
        return self.part("entries", self._entries)

    def _entries(self) -> list[GuestEntry]:
        from agent.api.views import GuestDetails
        details = [d for d in self.agent.status_details() if isinstance(d, GuestDetails)]
        invalid = self.agent.invalid_guests()
        out = [self._entry(d, None) for d in details]
        out += [GuestEntry(b.uuid, b.name, invalid=b) for b in invalid]
        return out

    @property
    def configs(self) -> dict:
        """uuid -> stored configuration (agent.guest.Guest) of the -V views, read only
        when a value needs more than the views show."""
        return self.part("configs", lambda: {g.uuid: g for g in self.agent.guests()})

    def config_of(self, entry: GuestEntry):
        if entry.config is None and entry.details is not None:
            entry.config = self.configs.get(entry.uuid)
        return entry.config

    @property
    def by_uuid(self) -> dict[str, GuestEntry]:
        return self.part("by_uuid", lambda: {e.uuid: e for e in self.entries})

    @property
    def by_name(self) -> dict[str, GuestEntry]:
        return self.part("by_name", lambda: {e.name: e for e in self.entries})

    def _entry(self, d, config) -> GuestEntry:
        e = GuestEntry(d.machine.uuid, d.machine.name, details=d, config=config)
        if e.active:
            config = self.config_of(e)
        if config is not None and e.active:
            nxt = self.agent.next_config(config)
            if nxt is not None:
                from agent.api.views import guest_details
                from agent.backends.base import GuestRuntime
                e.pending = guest_details(nxt, GuestRuntime(), self.agent.host,
                                          revision=d.machine.guest_revision)
        return e

    def guest(self, uuid: str | None) -> GuestEntry | None:
        """One guest, without reading the others when the whole list is not loaded yet."""
        if not uuid:
            return None
        if self.has("entries"):
            return self.by_uuid.get(uuid)
        return self.part(("guest", uuid), lambda: self._one(uuid))

    def _one(self, uuid: str) -> GuestEntry | None:
        from agent.api.views import GuestDetails
        from agent.errors import AgentError
        try:
            config = self.agent.find_by_uuid(uuid)
            details = self.agent.status_details(name=config.name)
            if details and isinstance(details[0], GuestDetails) \
                    and details[0].machine.uuid == uuid:
                return self._entry(details[0], config)
        except AgentError:
            bad = [b for b in self.agent.invalid_guests() if b.uuid == uuid]
            return GuestEntry(uuid, bad[0].name, invalid=bad[0]) if bad else None
        return None

    # -- the host
    @property
    def host(self):
        return self.agent.host

    @property
    def host_info(self):
        return self.part("host_info", self.agent.host_info)

    @property
    def resources(self):
        return self.part("resources", self.agent.host_resources)

    @property
    def scheduler(self):
        return self.part("scheduler", self.agent.scheduler_mode)

    @property
    def multi_server(self):
        return self.part("multi_server", self.agent.multi_server)

    # -- CPU accounting (hpvmstatus -r): moves with the clock while a guest runs
    @property
    def cpu_usage(self) -> dict:
        """uuid -> (per-vCPU MHz, million cycles since boot): one read per request."""
        return self.part("cpu_usage", self.agent.cpu_usage, ticking=True)

    @property
    def allocations(self) -> dict:
        """name -> the guest's `hpvmstatus -r` row, from this request's CPU usage read."""
        usage = self.cpu_usage
        return self.part("allocations", lambda: {
            r.name: r for r in self.agent.resource_allocation(usage=usage)}, ticking=True)

    # -- vswitches and the device database
    @property
    def vswitches(self) -> list:
        return self.part("vswitches", self.agent.vswitch_details)

    @property
    def switch_by_name(self) -> dict:
        return self.part("switch_by_name", lambda: {d.summary.name: d for d in self.vswitches})

    @property
    def summaries(self) -> list:
        """The vswitches as hpvmnet lists them (one read of the vswitch table, without the
        guests' vNICs that `vswitches` adds)."""
        if self.has("vswitches"):
            return [d.summary for d in self.vswitches]
        return self.part("summaries", self.agent.vswitch_summaries)

    @property
    def switch_names(self) -> list[str]:
        return self.part("switch_names", lambda: [s.name for s in self.summaries])

    @property
    def device_entries(self) -> list:
        return self.part("device_entries", lambda: self.agent.list_devices("all"))

    @property
    def device_db(self):
        return self.part("device_db", self.agent.device_db)

    # -- visibility
    def visible_uuids(self, ctx: Context) -> frozenset[str] | None:
        """None when the principal sees every guest; else the guests it may see."""
        p = ctx.principal
        if p.role in HOST_ROLES:
            return None
        return self.part(("visible", p.user, p.groups), lambda: frozenset(
            e.uuid for e in self.entries if guest_rights(p, e)))

    def visible_entries(self, ctx: Context) -> list[GuestEntry]:
        allowed = self.visible_uuids(ctx)
        if allowed is None:
            return self.entries
        return [e for e in self.entries if e.uuid in allowed]

    def may_see_guest(self, ctx: Context, entry: GuestEntry | None) -> bool:
        if entry is None:
            return False
        return ctx.principal.role in HOST_ROLES or bool(guest_rights(ctx.principal, entry))

    def may_see(self, ctx: Context, path: CIMInstanceName) -> bool:
        """Whether the principal may see the object at `path` (existence not checked)."""
        if ctx.principal.role in HOST_ROLES:
            return True
        ref = classify(path)
        if ref.kind == "host":
            return True
        if ref.uuid is None:
            return False
        return self.may_see_guest(ctx, self.guest(ref.uuid))


def shared_values(snap: Snapshot, ctx: Context, key, compute) -> Iterable[dict]:
    """The property value dicts `compute()` yields (made from the snapshot's views only),
    shared by the requests of one epoch when the client asks for every property: a
    console's repeated sweep then only builds the instances. Never for values that move
    with the clock (CPU usage)."""
    if ctx.property_list is not None:
        return compute()
    return snap.part(("values",) + key, lambda: list(compute()))


def guest_rights(principal, entry_or_guest) -> frozenset[str]:
    """The roles ('admin', 'oper') `principal` holds on a guest through its own -u/-g lists
    (a GuestEntry: its -V [Authorized Administrators]; or an agent.guest.Guest)."""
    groups = set(principal.groups or ())
    out = set()
    details = getattr(entry_or_guest, "details", None)
    if details is not None:
        a = details.admins
        for role, users, grps in (("admin", a.admin_users, a.admin_groups),
                                  ("oper", a.oper_users, a.oper_groups)):
            if principal.user in users or groups.intersection(grps):
                out.add(role)
        return frozenset(out)
    for grant in getattr(entry_or_guest, "roles", None) or ():
        if (grant.kind == "user" and grant.name == principal.user) or \
                (grant.kind == "group" and grant.name in groups):
            out.add(grant.role)
    return frozenset(out)


def host_wide(ctx: Context) -> bool:
    """The principal holds a host role, so host-wide objects are visible."""
    return ctx.principal.role in HOST_ROLES


def model_for(env) -> "Model | None":
    """The Model all HPVM families of one registry share; None when the environment has no
    agent (a server built without one serves interop only)."""
    if env.agent is None:
        return None
    m = env.options.get("hpvm_model")
    if m is None or m.agent is not env.agent:
        m = env.options["hpvm_model"] = Model(env)
    return m


def snapshot(ctx: Context, model: "Model") -> Snapshot:
    return ctx.memo(("hpvm-snapshot", id(model.agent)),
                    lambda: Snapshot(model.agent, model.lock, model.views))


# -- the model: factories and paths ---------------------------------------------------------

class Model:
    """Built once at install: the factories of the HPVM classes and the agent."""

    def __init__(self, env):
        self.env = env
        self.schema = env.schema
        self.agent = env.agent
        from provider.providers.hpvm_jobs import agent_lock
        # The Agent object keeps per-call state: reads take the lock the changes take.
        self.lock = agent_lock(env)
        self.views = SharedViews(self.agent, self.lock)
        self._factories: dict[str, InstanceFactory] = {}
        self._lock = threading.Lock()

    def f(self, classname: str) -> InstanceFactory:
        fac = self._factories.get(classname)
        if fac is None:
            with self._lock:
                fac = self._factories.get(classname)
                if fac is None:
                    fac = InstanceFactory.for_class(self.schema, NS, classname)
                    self._factories[classname] = fac
        return fac

    def path(self, classname: str, **keys) -> CIMInstanceName:
        return self.f(classname).path(keys)

    # systems
    @functools.cached_property
    def host_uuid(self) -> str:
        return self.agent.host.host_uuid

    def host_path(self) -> CIMInstanceName:
        return self.path(HOST_CLASS, CreationClassName=HOST_CLASS, Name=self.host_uuid)

    def guest_path(self, uuid: str) -> CIMInstanceName:
        return self.path(GUEST_CLASS, CreationClassName=GUEST_CLASS, Name=uuid)

    def switch_path(self, name: str) -> CIMInstanceName:
        return self.path(SWITCH_CLASS, CreationClassName=SWITCH_CLASS, Name=name)

    def mse_path(self, name: str) -> CIMInstanceName:
        return self.path("HPVM_MSEServer", CreationClassName="HPVM_MSEServer", Name=name)

    # devices
    def device_path(self, classname: str, uuid: str, device_id: str) -> CIMInstanceName:
        return self.path(classname, SystemCreationClassName=GUEST_CLASS, SystemName=uuid,
                         CreationClassName=classname, DeviceID=device_id)

    def lan_path(self, nic: str) -> CIMInstanceName:
        return self.path("HPVM_HostLanDevice", SystemCreationClassName=HOST_CLASS,
                         SystemName=self.host_uuid, CreationClassName="HPVM_HostLanDevice",
                         DeviceID=nic)

    def port_path(self, switch: str, number: int) -> CIMInstanceName:
        return self.path("HPVM_SwitchPort", SystemCreationClassName=SWITCH_CLASS,
                         SystemName=switch, CreationClassName="HPVM_SwitchPort",
                         DeviceID=f"port:{number}")

    # settings, pools, capabilities, services
    def iid_path(self, classname: str, instance_id: str) -> CIMInstanceName:
        return self.path(classname, InstanceID=instance_id)

    def vssd_path(self, uuid: str, nxt: bool = False) -> CIMInstanceName:
        return self.iid_path("HPVM_VirtualSystemSettingData", vssd_id(uuid, nxt))

    def service_path(self, classname: str, name: str) -> CIMInstanceName:
        return self.path(classname, SystemCreationClassName=HOST_CLASS,
                         SystemName=self.host_uuid, CreationClassName=classname, Name=name)

    def vsms_path(self) -> CIMInstanceName:
        return self.service_path("HPVM_VirtualSystemManagementService", VSMS_NAME)

    def migration_path(self) -> CIMInstanceName:
        return self.service_path("HPVM_VirtualSystemMigrationService", MIGRATION_NAME)


# -- provider bases -------------------------------------------------------------------------

class HpvmProvider(InstanceProvider):
    """A provider of HPVM_ classes. Subclasses implement `instances(ctx, snap, classname)`
    (what the principal may see) and, for guest-owned classes, `for_guest`, which also gives
    cheap `get` and `get_many` (only the guests named are read)."""

    namespaces = (NS,)
    guest_owned = False

    def __init__(self, model: Model):
        self.m = model
        self.env = model.env      # what the write-side mixins (hpvm_lifecycle...) use

    def snap(self, ctx: Context) -> Snapshot:
        return snapshot(ctx, self.m)

    # subclasses: guest-owned classes implement `for_guest` (and `host_instances` for the
    # host-wide instances they also serve); host-wide ones override `instances`
    def instances(self, ctx: Context, snap: Snapshot, classname: str) -> Iterator[CIMInstance]:
        for entry in snap.visible_entries(ctx):
            yield from self.for_guest(ctx, snap, entry, classname)
        if host_wide(ctx):
            yield from self.host_instances(ctx, snap, classname)

    def host_instances(self, ctx, snap, classname) -> Iterator[CIMInstance]:
        return iter(())

    def for_guest(self, ctx, snap, entry: GuestEntry, classname: str) -> Iterator[CIMInstance]:
        return iter(())

    # InstanceProvider
    def enumerate(self, ctx, classname):
        return self.instances(ctx, self.snap(ctx), classname)

    def get(self, ctx, path):
        snap = self.snap(ctx)
        if self.guest_owned:
            ref = classify(path)
            if ref.uuid is None:
                candidates = self.host_instances(ctx, snap, path.classname) \
                    if host_wide(ctx) else ()
            else:
                entry = snap.guest(ref.uuid)
                if entry is None or not snap.may_see_guest(ctx, entry):
                    return None
                candidates = self.for_guest(ctx, snap, entry, path.classname)
        else:
            candidates = self.instances(ctx, snap, path.classname)
        for inst in candidates:
            if same_path(inst.path, path, NS):
                return inst
        return None

    def get_many(self, ctx, paths):
        if not self.guest_owned:
            wanted = {path_key(p, "")[1:] for p in paths}
            for inst in self.instances(ctx, self.snap(ctx), paths[0].classname):
                if path_key(inst.path, "")[1:] in wanted:
                    yield inst
            return
        snap = self.snap(ctx)
        by_guest: dict[str, set] = {}
        for p in paths:
            by_guest.setdefault(classify(p).uuid or "", set()).add(path_key(p, "")[1:])
        for uuid, wanted in by_guest.items():
            if not uuid:
                found = self.host_instances(ctx, snap, paths[0].classname) \
                    if host_wide(ctx) else ()
            else:
                entry = snap.guest(uuid)
                if entry is None or not snap.may_see_guest(ctx, entry):
                    continue
                found = self.for_guest(ctx, snap, entry, paths[0].classname)
            for inst in found:
                if path_key(inst.path, "")[1:] in wanted:
                    yield inst


class HpvmAssociation(AssociationProvider):
    """An association of the VM model. Subclasses implement `links(ctx, snap, classname,
    source)`: the (values) dicts of the instances touching `source` (every instance when
    `source` is None), using the snapshot and `classify(source)` so a traversal builds only
    what touches its source. Instances whose ends the principal may not see are dropped."""

    namespaces = (NS,)
    # the reference property names, in MOF order
    roles: tuple[str, str] = ("Antecedent", "Dependent")

    def __init__(self, model: Model):
        self.m = model
        self.env = model.env

    @abc.abstractmethod
    def links(self, ctx, snap: Snapshot, classname: str,
              source: Ref | None) -> Iterable[dict]:
        """Value dicts of the instances touching `source` (all of them when None)."""

    def _make(self, ctx, snap, classname, values_iter):
        f = self.m.f(classname)
        scoped = not host_wide(ctx)
        for values in values_iter:
            if scoped and not all(snap.may_see(ctx, values[r]) for r in self.roles):
                continue
            yield f.make(values, ctx)

    def enumerate(self, ctx, classname):
        snap = snapshot(ctx, self.m)
        return self._make(ctx, snap, classname, self.links(ctx, snap, classname, None))

    def references(self, ctx, classname, source, role):
        snap = snapshot(ctx, self.m)
        ref = classify(source)
        if ref.kind == "other":
            return iter(())
        return self._make(ctx, snap, classname, self.links(ctx, snap, classname, ref))

    def get(self, ctx, path):
        refs = [key(path, r) for r in self.roles]
        if not all(isinstance(r, CIMInstanceName) for r in refs):
            return None
        for inst in self.references(ctx, path.classname, refs[0], self.roles[0]):
            if same_path(inst.path, path, NS):
                return inst
        return None

