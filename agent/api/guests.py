"""GuestOps: the guest lifecycle (hpvmcreate, hpvmmodify, hpvmclone, hpvmremove, hpvmstart,
hpvmstop, reboot, host boot) with the guide's rules, for the CLI and the CIM providers alike.

Every change is one store transaction: the configuration files, the per-guest `log` and
`command.log`, the host `common/command.log`, the device database's dependencies and the
event all commit together or not at all. A refusal raises AgentError and changes nothing.

Configuration files (spec 03 §5): `vmm_config.current` is what the guest runs with; a change
to a running guest that cannot apply live (vCPUs, memory, OS type) goes to `vmm_config.next`,
which the next boot promotes (current -> prev, next -> current). `hpvmmodify -A` changes the
running guest only: the lasting configuration is kept in `.next`, so a reboot undoes it.
"""
from __future__ import annotations

import os
import random
import threading
import shutil
import uuid as uuidlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from agent import rules
from agent.api.core import GUESTS, UUIDS, VM_NUMBER_FILE, guest_dir
from agent.api.outcome import Outcome
from agent.backends.base import ACTIVE_STATES, OFF, STOPPING
from agent.errors import AgentError
from agent.events import format_time
from agent.guest import OS_TYPES, DynamicMemoryConfig, Entitlement, Guest
from agent.guestconfig import format_config
from agent.resources import (StorageResource, address_of, complete_network, complete_storage,
                             format_resource, selector_matches)

DM_KEYWORDS = ("dynamic_memory_control", "ram_dyn_type", "ram_dyn_min", "ram_dyn_max",
               "ram_dyn_target_start")
# What a running guest takes without a reboot; the rest waits in vmm_config.next.
STATIC_FIELDS = ("vcpus", "memory_mb", "reserved_mb", "os_type", "os_version")


@dataclass
class GuestChanges:
    """What hpvmcreate / hpvmmodify / hpvmclone options ask for (None = leave as it is)."""

    new_name: str | None = None               # -N (modify: rename; clone: the clone's name)
    label: str | None = None                  # -l
    start_attr: str | None = None             # -B / -b
    os_type: str | None = None                # -O type (HPUX, WINDOWS, LINUX)
    os_version: str | None = None             # -O type:version
    vcpus: int | None = None                  # -c
    entitlement: Entitlement | None = None    # -e / -E
    memory_mb: int | None = None              # -r
    reserved_mb: int | None = None            # -R
    add: list = field(default_factory=list)       # -a: StorageResource | NetworkResource
    delete: list = field(default_factory=list)    # -d: selectors
    modify: list = field(default_factory=list)    # -m: full address + new backing
    grant: list = field(default_factory=list)     # -u/-g [+]name[:role]: RoleGrant
    revoke: list = field(default_factory=list)    # -u/-g -name: (kind, name)
    dynmem: dict = field(default_factory=dict)    # -x DM keyword -> bool | str | int (MB)
    ram_target: str | int | None = None           # -x ram_target= 0 | start | MB (modify)
    app_controller: str | None = None         # -i
    distributed: bool | None = None           # -j
    # hpvmclone only
    boot_copies: list = field(default_factory=list)   # -b: storage to duplicate
    share_ports: bool = False                 # -S
    mac_address: str = "new"                  # -x mac_address=new|same
    serial_number: str = "new"                # -x serial_number=new|same

    def static_changes(self) -> list[str]:
        return [f for f in STATIC_FIELDS if getattr(self, f) is not None]


def _err(msg, kind="invalid"):
    return AgentError(msg, kind)


class GuestOps:
    """Mixed into `agent.api.Agent`; works on AgentCore's store, host, clock and driver."""

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _change(self, touched: set, *, cpu_checkpoint: bool = True):
        """One atomic change: settle what time decided, fold the CPU used so far into the
        accounting (the change may move the rates), stage, commit, refresh our cache."""
        with self.store.transaction(actor=self.actor) as txn:
            before = self.store.generation()
            self._cache.refresh()
            local = self._op_local()
            local.txn, local.settled = txn, set()
            try:
                self._settle(txn, local.settled)
                touched |= local.settled
                if cpu_checkpoint:
                    self._cpu_checkpoint(txn)
                yield txn
            finally:
                local.txn, local.settled = None, set()
        self._cache.note_commit(before, txn.generation, touched)

    def _op_local(self):
        """Per-thread state of the operation in progress (its transaction)."""
        local = self.__dict__.get("_guestops_local")
        if local is None:
            local = self.__dict__.setdefault("_guestops_local", threading.local())
        if not hasattr(local, "txn"):
            local.txn, local.settled = None, set()
        return local

    def _settle(self, txn, touched: set) -> None:
        """Persist the clock's verdicts: a finished graceful stop becomes Off; an OS the guest
        booted into is written to its configuration (spec 01 §12)."""
        for rec in list(self._cache.index()["started"]):
            if self.driver.settle(txn, rec):
                touched.add(rec.uuid)
                self._log(txn, rec.current, "Guest stopped.")
                txn.event("guest.state", rec.uuid, name=rec.current.name, state=OFF)
                continue
            rt = self.driver.runtime_of(rec)
            detected = rt.detected_os and rt.detected_os != rec.current.os_type
            # `any`: the boot decides; once the guest's driver runs the type becomes `driver`
            dm_loaded = (rt.memory is not None and rt.memory.driver
                         and rec.current.dynmem.type == "any")
            if not (detected or dm_loaded):
                continue
            version = rt.details.get("detected_version", "") or rec.current.os_version
            for fname, g in (("vmm_config.current", rec.current), ("vmm_config.next", rec.next)):
                if g is None:
                    continue
                if detected:
                    g = replace(g, os_type=rt.detected_os, os_version=version)
                if dm_loaded and g.dynmem.type == "any":
                    g = replace(g, dynmem=replace(g.dynmem, type="driver"))
                txn.write(f"{guest_dir(rec.uuid)}/{fname}", format_config(g))
            touched.add(rec.uuid)
            if detected:
                self._log(txn, rec.current, f"Guest OS detected: {rt.detected_os} {version}".rstrip())
                txn.event("guest.os_detected", rec.uuid, name=rec.current.name,
                          os_type=rt.detected_os, os_version=version)
            if dm_loaded:
                self._log(txn, rec.current, "Dynamic memory driver started: ram_dyn_type=driver.")
                txn.event("guest.dynamic_memory", rec.uuid, name=rec.current.name,
                          ram_dyn_type="driver")

    def _log(self, txn, guest: Guest, message: str) -> None:
        stamp = format_time(self.clock.now())
        txn.append(f"{guest_dir(guest.uuid)}/log", f"{stamp} {self.actor}: {message}\n")

    def _command_log(self, txn, guest: Guest | None) -> None:
        if not self.command:
            return
        line = f"{format_time(self.clock.now())} {self.actor}: {self.command}\n"
        if guest is not None:
            txn.append(f"{guest_dir(guest.uuid)}/command.log", line)
        from agent.store import COMMAND_LOG
        txn.append(COMMAND_LOG, line)

    def _fresh(self, guest: Guest):
        """The stored record of `guest`, read again under the transaction's lock."""
        rec = self._cache.records.get(guest.uuid)
        local = self._op_local()
        if rec is not None and guest.uuid in local.settled and local.txn is not None:
            from agent.api.core import _load_record
            rec = _load_record(local.txn, guest.uuid)    # sees what settling just staged
        if rec is None or rec.current is None:
            raise _err(f"Unable to find the guest '{guest.name}'.", "not_found")
        return rec

    def _state(self, rec) -> str:
        return self.driver.runtime_of(rec).state

    def _name_taken(self, name: str, besides: str | None = None) -> bool:
        """A valid guest has the name, or a guests/<name> link holds it (an Invalid guest)."""
        if any(u != besides for u in self._cache.index()["names"].get(name, ())):
            return True
        txn = self._op_local().txn
        target = txn.readlink(f"{GUESTS}/{name}") if txn is not None else None
        return target is not None and os.path.basename(target.rstrip("/")) != besides

    def _write_config(self, txn, uuid: str, which: str, guest: Guest) -> None:
        txn.write(f"{guest_dir(uuid)}/vmm_config.{which}", format_config(guest))

    # ------------------------------------------------------------------ building configs

    def _check_name(self, name: str, what: str = "name") -> None:
        problem = rules.name_problem(name, what)
        if problem:
            raise _err(problem)

    def _next_vm_number(self, txn) -> int:
        data = txn.read(VM_NUMBER_FILE)
        last = int(data.decode().strip() or 0) if data else 0
        highest = max([last] + [g.vm_number for r in self._cache.records.values()
                                for g in (r.current, r.next) if g is not None])
        number = highest + 1
        txn.write(VM_NUMBER_FILE, f"{number}\n")
        return number

    def _new_serial(self) -> str:
        taken = {g.serial for r in self._cache.records.values() for g in (r.current, r.next)
                 if g is not None}
        rng = random.SystemRandom()
        while True:
            serial = f"VM{rng.randrange(10 ** 8):08d}"
            if serial not in taken:
                return serial

    def _all_macs(self, besides: str | None = None) -> list[str]:
        return [n.mac for r in self._cache.records.values() if r.uuid != besides
                for g in (r.current, r.next) if g is not None for n in g.nics if n.mac]

    def _host_macs(self) -> dict[str, str]:
        return {n.name: n.mac.replace(":", "-") for n in getattr(self.host, "nics", ()) or ()}

    def _guest_ports(self, txn, besides: str | None = None):
        from agent.vswitch import guest_ports
        pairs = []
        for rec in self._cache.records.values():
            if rec.current is None or rec.uuid == besides:
                continue
            active = self._state(rec) in ACTIVE_STATES
            for g in {id(x): x for x in (rec.current, rec.next) if x is not None}.values():
                pairs.append((g, active))
        return guest_ports(pairs)

    def _apply(self, base: Guest, ch: GuestChanges, txn, *, force: bool,
               explicit: rules.Explicit, live_only: bool = False,
               resolved: list | None = None) -> Guest:
        """`base` with the changes applied. Device specs are resolved (addresses, MACs,
        ports) once into `resolved`, so the live and the next-boot copies agree."""
        g = replace(base, storage=list(base.storage), nics=list(base.nics),
                    roles=list(base.roles))
        if ch.label is not None:
            g.label = ch.label
        if ch.start_attr is not None:
            g.start_attr = ch.start_attr
        if ch.entitlement is not None:
            g.entitlement = ch.entitlement
        if ch.app_controller is not None:
            g.app_controller = ch.app_controller
        if ch.distributed is not None:
            g.distributed = ch.distributed
        if not live_only:
            if ch.os_type is not None:
                g.os_type = ch.os_type
                g.os_version = ch.os_version or ""
            if ch.vcpus is not None:
                g.vcpus = ch.vcpus
            if ch.memory_mb is not None:
                g.memory_mb = ch.memory_mb
            if ch.reserved_mb is not None:
                g.reserved_mb = ch.reserved_mb
        if ch.dynmem:
            g.dynmem = _apply_dynmem(g.dynmem, ch.dynmem)
        if ch.memory_mb is not None and not live_only and g.dynmem.type != "none":
            # a new -r revalidates the ranges: they are adjusted to fit the new size
            dm = g.dynmem
            if "ram_dyn_max" not in ch.dynmem and dm.max_mb is not None and dm.max_mb > g.memory_mb:
                dm = replace(dm, max_mb=g.memory_mb)
            if "ram_dyn_target_start" not in ch.dynmem and dm.target_start_mb is not None \
                    and dm.target_start_mb > g.memory_mb:
                dm = replace(dm, target_start_mb=g.memory_mb)
            g.dynmem = dm
        for kind, name in ch.revoke:
            before = len(g.roles)
            g.roles = [r for r in g.roles if not (r.kind == kind and r.name == name)]
            if len(g.roles) == before:
                raise _err(f"The {kind} '{name}' has no rights on guest '{base.name}'.")
        for grant in ch.grant:
            g.roles = [r for r in g.roles if not (r.kind == grant.kind and r.name == grant.name)]
            g.roles.append(grant)
        # devices: delete, then modify, then add (the guide's order of -d, -m, -a)
        if resolved is None:
            resolved = self._resolve_devices(g, ch, txn, force=force, explicit=explicit)
        for op, sel, res in resolved:
            if op == "delete":
                if isinstance(sel, StorageResource):
                    g.storage = [s for s in g.storage if not selector_matches(sel, s)]
                else:
                    g.nics = [n for n in g.nics if not selector_matches(sel, n)]
            elif op == "modify":
                if isinstance(res, StorageResource):
                    g.storage = [res if selector_matches(sel, s) else s for s in g.storage]
                else:
                    g.nics = [res if selector_matches(sel, n) else n for n in g.nics]
            elif op == "add":
                if isinstance(res, StorageResource):
                    g.storage.append(res)
                else:
                    g.nics.append(res)
        return g

    def _resolve_devices(self, g: Guest, ch: GuestChanges, txn, *, force: bool,
                         explicit: rules.Explicit) -> list:
        """Turn -d/-m/-a specs into concrete steps against configuration `g`."""
        from agent.vswitch import VswitchTable, allocate_port
        out = []
        storage, nics = list(g.storage), list(g.nics)
        for sel in ch.delete:
            pool = storage if isinstance(sel, StorageResource) else nics
            hits = [x for x in pool if selector_matches(sel, x)]
            if not hits:
                raise _err(f"The resource '{format_resource(sel)}' is not assigned to guest "
                           f"'{g.name}'.", "not_found")
            if len(hits) > 1:
                raise _err(f"The resource '{format_resource(sel)}' matches more than one device "
                           f"of guest '{g.name}'; give its hardware address.")
            if isinstance(sel, StorageResource):
                storage.remove(hits[0])
            else:
                nics.remove(hits[0])
            out.append(("delete", address_of(hits[0]) if isinstance(sel, StorageResource)
                        else replace(address_of(hits[0]), mac=hits[0].mac), None))
        table = VswitchTable.load(txn)
        ports = None
        for res in ch.modify:
            sel = address_of(res)
            if isinstance(res, StorageResource):
                hits = [s for s in storage if (s.bus, s.slot, s.target) == (res.bus, res.slot, res.target)]
            else:
                hits = [n for n in nics if (n.bus, n.slot) == (res.bus, res.slot)]
            if not hits:
                raise _err(f"The resource '{format_resource(res)}' is not assigned to guest "
                           f"'{g.name}'.", "not_found")
            old = hits[0]
            if isinstance(res, StorageResource):
                if res.device != old.device:
                    raise _err(f"The device at {res.bus},{res.slot},{res.target} is a "
                               f"{old.device}, not a {res.device}.")
                new = res
                explicit.locations.add(res.location)
                storage = [new if s is old else s for s in storage]
            else:
                mac = res.mac or old.mac
                if res.mac and res.mac != old.mac:
                    explicit.macs.add(res.mac)
                    if not force:
                        from agent.resources import check_mac
                        check_mac(res.mac, host_macs=self._host_macs(),
                                  taken=self._all_macs(g.uuid), resource=format_resource(res))
                port = res.port
                if port is None and res.vswitch == old.vswitch:
                    port = old.port
                if port is None:
                    ports = ports if ports is not None else self._guest_ports(txn, g.uuid)
                    port = allocate_port(res.vswitch, ports, table)
                new = replace(res, mac=mac, port=port)
                nics = [new if n is old else n for n in nics]
            out.append(("modify", sel, new))
        for res in ch.add:
            if isinstance(res, StorageResource):
                done = complete_storage(res, storage, nics=nics)
                storage.append(done)
                explicit.locations.add(done.location)
            else:
                taken = [] if force else self._all_macs(g.uuid)
                done = complete_network(res, nics, storage=storage, taken_macs=taken,
                                        host_macs={} if force else self._host_macs())
                if res.mac:
                    explicit.macs.add(done.mac)
                if done.port is None:
                    ports = ports if ports is not None else self._guest_ports(txn, g.uuid)
                    done = replace(done, port=allocate_port(done.vswitch, ports, table))
                from agent.vswitch import GuestPort
                if ports is not None:
                    ports.append(GuestPort(g.name, False, done.vswitch, done.port, done.mac))
                nics.append(done)
            out.append(("add", None, done))
        return out

    def _check(self, guest: Guest, txn, explicit: rules.Explicit, *, force: bool) -> list[str]:
        """Definition checks: errors refuse (unless -F), warnings are returned."""
        env = self.environment(txn)
        structural = rules.structure_errors(guest, env)
        if structural:
            raise _err(structural[0])
        if force:
            return []
        res = rules.check_definition(guest, env, explicit)
        if res.errors:
            raise _err(res.errors, "conflict")
        return res.warnings

    def _record_devices(self, txn, old: Guest | None, new: Guest | None) -> None:
        """Keep the device database's dependencies in step with the guest's devices."""
        from agent.devicedb import DeviceDatabase
        from agent.vswitch import VswitchTable
        db = DeviceDatabase.load(txn)
        table = VswitchTable.load(txn)
        before = _device_keys(old)
        after = _device_keys(new)
        if old is not None and new is not None and old.name != new.name:
            db.rename_dependent(old.name, new.name)
            before = {(new.name, k): v for (_, k), v in before.items()}
        for key, res in before.items():
            if key not in after:
                db.release(key[0], res, self.host)
        for key, res in after.items():
            if key not in before:
                db.record_use(key[0], res, self.host, table)
        db.save(txn)

    # ------------------------------------------------------------------ create

    def create_guest(self, name: str, changes: GuestChanges | None = None, *,
                     force: bool = False, check_only: bool = False) -> Outcome:
        """hpvmcreate. Warnings for what would stop the guest starting now; errors refuse."""
        ch = changes or GuestChanges()
        if force and check_only:
            raise _err("Options -F and -s are mutually exclusive")
        self._check_name(name)
        touched: set = set()
        with self._change(touched) as txn:
            if self._name_taken(name):
                raise _err([f"The guest '{name}' already exists.",
                            "Use the hpvmmodify command to modify an existing guest."], "exists")
            uuid = str(uuidlib.uuid1())
            base = Guest(uuid=uuid, name=name, vm_number=0, serial="VM00000000")
            explicit = rules.Explicit()
            guest = self._apply(base, ch, txn, force=force, explicit=explicit)
            warnings = self._check(guest, txn, explicit, force=force)
            if check_only:
                return Outcome(warnings=warnings, value=guest)
            guest = replace(guest, vm_number=self._next_vm_number(txn), serial=self._new_serial())
            touched.add(uuid)
            self._write_config(txn, uuid, "current", guest)
            txn.symlink(f"{GUESTS}/{name}", f"../{UUIDS}/{uuid}")
            self.driver.define(txn, guest)
            self._sync_credential(txn, uuid, guest)
            self._record_devices(txn, None, guest)
            self._log(txn, guest, f"Guest created (VM number {guest.vm_number}).")
            self._command_log(txn, guest)
            txn.event("guest.create", uuid, name=name, vm_number=guest.vm_number,
                      warnings=len(warnings))
        return Outcome(warnings=warnings, value=guest)

    # ------------------------------------------------------------------ modify

    def modify_guest(self, guest: Guest, changes: GuestChanges, *, force: bool = False,
                     check_only: bool = False, active_only: bool = False) -> Outcome:
        """hpvmmodify (incl. -N rename and -A). Returns the configuration for the next boot."""
        ch = changes
        if force and check_only:
            raise _err("Options -F and -s are mutually exclusive")
        if ch.new_name is not None:
            self._check_name(ch.new_name, "new name")
        if active_only:
            bad = [x for x in ("new_name", "os_type", "vcpus", "memory_mb", "reserved_mb",
                               "app_controller", "distributed") if getattr(ch, x) is not None]
            if bad or ch.grant or ch.revoke or check_only:
                raise _err("Only -l, -B, -e/-E, -a, -m, -d and -x can be used with -A.")
        info: list[str] = []
        touched: set = {guest.uuid}
        # the CPU checkpoint is taken below, once we know something changes
        with self._change(touched, cpu_checkpoint=False) as txn:
            rec = self._fresh(guest)
            state = self._state(rec)
            running = state in ACTIVE_STATES
            current, nxt = rec.current, rec.next
            if ch.new_name is not None and ch.new_name != current.name \
                    and self._name_taken(ch.new_name, besides=rec.uuid):
                raise _err(f"The guest '{ch.new_name}' already exists.", "exists")
            if active_only and not running:
                raise _err(f"The guest '{current.name}' is not running; -A changes a running "
                           "guest only.", "state")
            if running and ch.add and any(isinstance(r, StorageResource) for r in ch.add):
                _check_hot_adapter(current, ch)
            persistent = nxt or current
            explicit = rules.Explicit()
            resolved = self._resolve_devices(persistent if not active_only else current, ch,
                                             txn, force=force, explicit=explicit)
            if active_only:
                new_current = self._apply(current, ch, txn, force=force, explicit=explicit,
                                          resolved=resolved)
                new_next = persistent
            else:
                new_next = self._apply(persistent, ch, txn, force=force, explicit=explicit,
                                       resolved=resolved)
                if running:
                    new_current = self._apply(current, ch, txn, force=force,
                                              explicit=rules.Explicit(), live_only=True,
                                              resolved=resolved)
                else:
                    new_current = new_next
            if ch.new_name is not None:
                new_current = replace(new_current, name=ch.new_name)
                new_next = replace(new_next, name=ch.new_name)
            checked = new_current if active_only else new_next
            warnings = self._check(checked, txn, explicit, force=force)
            if running and not force and new_current.entitlement != current.entitlement:
                # a running guest's entitlement changes at once: the host must grant it now
                others = [x for u, x in self.running_guests().items() if u != rec.uuid]
                if not rules.entitlement_fits(new_current, self.host, others):
                    raise _err(rules.W_CPU, "capacity")
            if running and not active_only and ch.static_changes():
                info.append(f"The change to {', '.join(_option_of(f) for f in ch.static_changes())}"
                            f" takes effect when the guest '{current.name}' next boots.")
            if check_only:
                return Outcome(warnings=warnings, info=info, value=checked)
            if ch.ram_target is None and new_current == current and new_next == persistent \
                    and (ch.new_name is None or ch.new_name == current.name):
                # nothing changes (a client sending back what it read): nothing is written,
                # no log line, no event, no new revision
                return Outcome(warnings=warnings, info=info, value=new_next)
            self._cpu_checkpoint(txn)
            if ch.ram_target is not None:
                info += self._ram_target(txn, rec, new_current, ch.ram_target, running)
            # write: what runs now, and what the next boot uses
            if running:
                if new_current != current:
                    self._write_config(txn, rec.uuid, "current", new_current)
                    self.driver.apply_live(txn, current, new_current)
                if new_next != new_current:
                    self._write_config(txn, rec.uuid, "next", new_next)
                elif nxt is not None:
                    txn.delete(f"{guest_dir(rec.uuid)}/vmm_config.next")
            else:
                target = "next" if nxt is not None else "current"
                self._write_config(txn, rec.uuid, target, new_next)
            if ch.new_name is not None and ch.new_name != current.name:
                txn.delete(f"{GUESTS}/{current.name}")
                txn.symlink(f"{GUESTS}/{ch.new_name}", f"../{UUIDS}/{rec.uuid}")
                self._log(txn, new_next, f"Guest renamed from '{current.name}' to '{ch.new_name}'.")
                txn.event("guest.rename", rec.uuid, old_name=current.name, name=ch.new_name)
            self._record_devices(txn, persistent, new_next)
            # dynamic_memory_control takes effect at once on a running guest (spec 03 §6.2)
            self._sync_credential(txn, rec.uuid, new_current if running else new_next)
            self._log(txn, new_next, "Guest modified" + (" (active only)." if active_only else "."))
            self._command_log(txn, new_next)
            txn.event("guest.modify", rec.uuid, name=new_next.name, active_only=active_only,
                      deferred=bool(running and new_next != new_current))
        return Outcome(warnings=warnings, info=info, value=new_next)

    # ------------------------------------------------------------------ clone

    def clone_guest(self, source: Guest, new_name: str, changes: GuestChanges | None = None, *,
                    force: bool = False, check_only: bool = False) -> Outcome:
        """hpvmclone (DECISIONS §1.7): a copy of the source's configuration with a new UUID,
        VM number, serial and MACs (unless `same`), different vswitch ports unless -S."""
        ch = changes or GuestChanges()
        if force and check_only:
            raise _err("Options -F and -s are mutually exclusive")
        self._check_name(new_name, "clone name")
        touched: set = set()
        copies: list[tuple[str, str]] = []
        try:
            with self._change(touched) as txn:
                rec = self._fresh(source)
                if self._name_taken(new_name):
                    raise _err(f"The guest '{new_name}' already exists.", "exists")
                src = rec.next or rec.current
                uuid = str(uuidlib.uuid1())
                base = replace(src, uuid=uuid, name=new_name, vm_number=0,
                               serial=src.serial if ch.serial_number == "same" else "VM00000000",
                               storage=list(src.storage), nics=list(src.nics),
                               roles=list(src.roles))
                base = self._clone_nics(txn, base, ch, force=force)
                explicit = rules.Explicit()
                base, copies = self._clone_boot(base, src, ch, explicit)
                guest = self._apply(base, ch, txn, force=force, explicit=explicit)
                warnings = self._check(guest, txn, explicit, force=force)
                if check_only:
                    copies = []
                    return Outcome(warnings=warnings, value=guest)
                guest = replace(guest, vm_number=self._next_vm_number(txn),
                                serial=guest.serial if ch.serial_number == "same"
                                else self._new_serial())
                for src_path, dst_path in copies:
                    _copy_backing(src_path, dst_path)
                touched.add(uuid)
                self._write_config(txn, uuid, "current", guest)
                txn.symlink(f"{GUESTS}/{new_name}", f"../{UUIDS}/{uuid}")
                self.driver.define(txn, guest)
                self._sync_credential(txn, uuid, guest)
                self._record_devices(txn, None, guest)
                self._log(txn, guest, f"Guest cloned from '{src.name}' (VM number "
                                      f"{guest.vm_number}).")
                self._command_log(txn, guest)
                txn.event("guest.create", uuid, name=new_name, vm_number=guest.vm_number,
                          clone_of=src.uuid, warnings=len(warnings))
        except BaseException:
            for _, dst in copies:       # a refused clone leaves no copied backing file behind
                if os.path.exists(dst):
                    os.unlink(dst)
            raise
        return Outcome(warnings=warnings, value=guest)

    def _clone_nics(self, txn, g: Guest, ch: GuestChanges, *, force: bool) -> Guest:
        from agent.resources import generate_mac
        from agent.vswitch import VswitchTable, allocate_port
        table = VswitchTable.load(txn)
        ports = self._guest_ports(txn)
        taken = self._all_macs()
        nics = []
        for n in g.nics:
            mac = n.mac
            if ch.mac_address != "same":
                mac = generate_mac(None, taken, self._host_macs())
                taken.append(mac)
            port = n.port
            if not ch.share_ports:
                port = allocate_port(n.vswitch, ports, table)
            from agent.vswitch import GuestPort
            ports.append(GuestPort(g.name, False, n.vswitch, port, mac))
            nics.append(replace(n, mac=mac, port=port))
        return replace(g, nics=nics)

    def _clone_boot(self, g: Guest, src: Guest, ch: GuestChanges, explicit) -> tuple:
        """-b: the storage devices to duplicate. The selector names the source device (by
        its address); its location is the clone's copy (empty: a file beside the source's)."""
        copies = []
        storage = list(g.storage)
        for sel in ch.boot_copies:
            hits = [s for s in storage if selector_matches(
                StorageResource(sel.device, sel.adapter, sel.bus, sel.slot, sel.target), s)]
            if not hits:
                raise _err(f"The resource '{format_resource(sel)}' is not assigned to guest "
                           f"'{src.name}'.", "not_found")
            old = hits[0]
            if old.storage not in ("disk", "lv", "file"):
                raise _err(f"Only disk, lv and file backing stores can be duplicated "
                           f"('{old.location}' is {old.storage}).")
            kind = sel.storage or old.storage
            location = sel.location
            if not location:
                if old.storage != "file":
                    raise _err(f"-b needs the clone's physical device for the {old.storage} "
                               f"backing store '{old.location}'.")
                location = f"{old.location}.{g.name}"
            if location == old.location:
                raise _err(f"The copy of '{old.location}' needs a different location.")
            if kind == "file":
                if not os.path.isfile(old.location):
                    raise _err(f"The backing file '{old.location}' does not exist.", "not_found")
                if os.path.exists(location):
                    raise _err(f"The file '{location}' already exists.", "exists")
                copies.append((old.location, location))
                explicit.created.add(location)
            new = replace(old, storage=kind, location=location)
            explicit.locations.add(location)
            storage = [new if s is old else s for s in storage]
        return replace(g, storage=storage), copies

    # ------------------------------------------------------------------ remove

    def remove_guest(self, guest: Guest) -> Outcome:
        """hpvmremove: the guest must be Off; its configuration files go, its backing stores
        stay, its resources return to the host."""
        touched: set = {guest.uuid}
        with self._change(touched) as txn:
            rec = self._fresh(guest)
            state = self._state(rec)
            if state != OFF:
                raise _err("The guest is currently running, not able to remove.", "state")
            g = rec.current
            self.driver.undefine(txn, g)
            from agent.devicedb import DeviceDatabase
            db = DeviceDatabase.load(txn)
            db.release_guest(g.name)
            db.save(txn)
            for name in {x.name for x in (rec.current, rec.next) if x is not None}:
                target = txn.readlink(f"{GUESTS}/{name}")
                if target is not None and os.path.basename(target.rstrip("/")) == rec.uuid:
                    txn.delete(f"{GUESTS}/{name}")
            txn.remove_tree(guest_dir(rec.uuid))
            if self.command:
                from agent.store import COMMAND_LOG
                txn.append(COMMAND_LOG, f"{format_time(self.clock.now())} {self.actor}: "
                                        f"{self.command}\n")
            txn.event("guest.remove", rec.uuid, name=g.name, vm_number=g.vm_number)
        return Outcome(value=g)

    def remove_invalid_guest(self, name: str) -> Outcome:
        """hpvmremove -F of a guest whose configuration cannot be read (hpvmstatus shows it
        Invalid): its folder and link go, so a broken guest can always be cleared away."""
        touched: set = set()
        with self._change(touched) as txn:
            target = txn.readlink(f"{GUESTS}/{name}")
            uuid = os.path.basename(target.rstrip("/")) if target else None
            rec = self._cache.records.get(uuid) if uuid else None
            if rec is None or rec.invalid is None:
                raise _err(f"The guest '{name}' is not an invalid guest.", "not_found")
            from agent.backends.ivm import RuntimeFacts
            if RuntimeFacts.parse(rec.runtime_text).phase != "off":
                raise _err("The guest is currently running, not able to remove.", "state")
            touched.add(uuid)
            from agent.devicedb import DeviceDatabase
            db = DeviceDatabase.load(txn)
            db.release_guest(name)
            db.save(txn)
            txn.delete(f"{GUESTS}/{name}")
            txn.remove_tree(guest_dir(uuid))
            if self.command:
                from agent.store import COMMAND_LOG
                txn.append(COMMAND_LOG, f"{format_time(self.clock.now())} {self.actor}: "
                                        f"{self.command}\n")
            txn.event("guest.remove", uuid, name=name, invalid=True)
        return Outcome(value=rec.invalid)

    # ------------------------------------------------------------------ start / stop

    def start_guest(self, guest: Guest, *, force: bool = False, check_only: bool = False,
                    boot: bool = False) -> Outcome:
        """hpvmstart: every problem refuses the start (spec 01 §31). -F skips the checks,
        -s only checks. `value` is the GuestRuntime; `info` the start trace."""
        if force and check_only:
            raise _err("Options -F and -s are mutually exclusive")
        touched: set = {guest.uuid}
        with self._change(touched) as txn:
            rec = self._fresh(guest)
            state = self._state(rec)
            current = rec.current
            if state != OFF:
                raise _err(f"The guest '{current.name}' is {state}; it must be Off to start. "
                           "Use hpvmstop to stop it.", "state")
            if current.distributed and not boot:
                raise _err(f"The guest '{current.name}' is a distributed guest (a Serviceguard "
                           "package); start it through Serviceguard.", "state")
            config = rec.next or current
            problems = [] if force else rules.check_start(config, self.environment(txn))
            if problems and not check_only:
                raise ConfigProblems(config.name, problems)
            if check_only:
                return Outcome(warnings=problems, value=None)
            promoted = rec.next is not None
            if promoted:
                self._write_config(txn, rec.uuid, "prev", current)
                self._write_config(txn, rec.uuid, "current", config)
                txn.delete(f"{guest_dir(rec.uuid)}/vmm_config.next")
            rt = self.driver.start(txn, config, next_promoted=promoted)
            self._sync_credential(txn, rec.uuid, config)   # -A control ends at the boot
            note = getattr(self.driver, "note_kit_mismatch", None)
            if note is not None:
                note(txn, config, self.model_facts(config))
            self._log(txn, config, "Guest started" + (" at host boot." if boot else "."))
            self._command_log(txn, config if not boot else None)
            txn.event("guest.start", rec.uuid, name=config.name, promoted_next=promoted,
                      auto=boot)
        return Outcome(info=start_trace(config, rt, promoted, self.state_dir), value=rt)

    def stop_guest(self, guest: Guest, *, hard: bool = False, force: bool = False) -> Outcome:
        """hpvmstop: graceful (default; Stopping, then Off) or hard (Off at once). A
        distributed guest stops only with -F (spec 03 §10.4)."""
        touched: set = {guest.uuid}
        with self._change(touched) as txn:
            rec = self._fresh(guest)
            state = self._state(rec)
            g = rec.current
            if state == OFF:
                raise _err(f"The guest '{g.name}' is not running.", "state")
            if g.distributed and not force:
                raise _err(f"The guest '{g.name}' is a distributed guest (a Serviceguard "
                           "package); stop it through Serviceguard, or use -F.", "state")
            if state == STOPPING and not hard:
                raise _err(f"The guest '{g.name}' is already stopping.", "state")
            self.driver.stop(txn, g, hard=hard)
            self._log(txn, g, "Guest stopped (hard)." if hard else "Guest stop requested.")
            self._command_log(txn, g)
            txn.event("guest.stop", rec.uuid, name=g.name, hard=hard)
        return Outcome(value=g)

    def stop_all(self, *, hard: bool = False) -> Outcome:
        """hpvmstop -a -F: every running guest; `info` holds "Stopping virtual machine X"."""
        info, stopped = [], []
        for g in self.guests():
            if self.runtime(g).state in ACTIVE_STATES and self.runtime(g).state != STOPPING:
                self.stop_guest(g, hard=hard, force=True)
                info.append(f"Stopping virtual machine {g.name}")
                stopped.append(g)
        return Outcome(info=info, value=stopped)

    def reboot_guest(self, guest: Guest) -> Outcome:
        """Reset and boot again; a waiting vmm_config.next is promoted, -A changes end."""
        touched: set = {guest.uuid}
        with self._change(touched) as txn:
            rec = self._fresh(guest)
            state = self._state(rec)
            if state not in ACTIVE_STATES or state == STOPPING:
                raise _err(f"The guest '{rec.current.name}' is not running.", "state")
            config = rec.next or rec.current
            promoted = rec.next is not None
            if promoted:
                self._write_config(txn, rec.uuid, "prev", rec.current)
                self._write_config(txn, rec.uuid, "current", config)
                txn.delete(f"{guest_dir(rec.uuid)}/vmm_config.next")
            self.driver.reboot(txn, config, next_promoted=promoted)
            self._sync_credential(txn, rec.uuid, config)
            self._log(txn, config, "Guest rebooted.")
            self._command_log(txn, config)
            txn.event("guest.reboot", rec.uuid, name=config.name, promoted_next=promoted)
        return Outcome(value=self.runtime(config))

    def boot_host(self) -> Outcome:
        """Integrity VM starts on the host: try every `auto` guest that is Off, in VM number
        order, with the start checks; later guests may fail once earlier ones hold the
        resources (spec 01 §20)."""
        info, warnings, started = [], [], []
        for g in self.guests():
            if g.start_attr != "auto" or self.runtime(g).state != OFF:
                continue
            try:
                self.start_guest(g, boot=True)
            except ConfigProblems as exc:
                warnings.append(f"Guest {g.name} did not start: {'; '.join(exc.problems)}")
                continue
            except AgentError as exc:
                warnings.append(f"Guest {g.name} did not start: {' '.join(exc.lines)}")
                continue
            info.append(f"Starting virtual machine {g.name}")
            started.append(g)
        return Outcome(warnings=warnings, info=info, value=started)

    # ------------------------------------------------------------------ model control

    def set_guest_model(self, guest: Guest, *, os: str | None = None,
                        os_version: str | None = None, kit: str | None = None,
                        workload_mb: int | None = None, attention: bool | None = None,
                        cpu_percent: float | str | None = None) -> Outcome:
        """hpvmmodel: set what a real guest would hold (docs/model-control.md)."""
        from agent.backends.ivm import ModelFacts
        if not hasattr(self.driver, "set_model"):
            raise _err(f"The {self.driver.name} backend has no model to control.", "failed")
        if os is not None and os != "" and os not in OS_TYPES[:3]:
            raise _err(f"Unknown OS type '{os}': expected hpux, windows, linux or none.")
        touched: set = {guest.uuid}
        with self._change(touched) as txn:
            rec = self._fresh(guest)
            model = ModelFacts.parse(rec.model_text)
            if os is not None:
                model = replace(model, os=os, os_version=os_version or "" if os else "",
                                installed_at=self.clock.now() if os else 0.0)
            if kit is not None:
                model = replace(model, kit=kit)
            if workload_mb is not None:
                model = replace(model, workload_mb=workload_mb)
            if cpu_percent == "entitlement":          # back to running at its entitlement
                model = replace(model, cpu_percent=None)
            elif cpu_percent is not None:
                if isinstance(cpu_percent, bool) or not isinstance(cpu_percent, (int, float)) \
                        or not 0.0 <= cpu_percent <= 100.0:
                    raise _err(f"The CPU demand '{cpu_percent}' is not a percentage from 0 to "
                               "100.")
                model = replace(model, cpu_percent=float(cpu_percent))
            self.driver.set_model(txn, rec.current, model)
            if attention is not None:
                if self._state(rec) not in ACTIVE_STATES:
                    raise _err(f"The guest '{rec.current.name}' is not running.", "state")
                self.driver.set_attention(txn, rec.current, attention)
            self._log(txn, rec.current, "Model facts changed.")
            txn.event("guest.model", rec.uuid, name=rec.current.name, os=model.os,
                      kit=model.kit, workload_mb=model.workload_mb,
                      **({} if cpu_percent is None else {"cpu_percent": cpu_percent}),
                      **({} if attention is None else {"attention": attention}))
        return Outcome(value=model)


class ConfigProblems(AgentError):
    """hpvmstart refused: the guide's block of problems that prevent booting."""

    def __init__(self, name: str, problems: list[str]):
        self.name = name
        self.problems = problems
        super().__init__(rules.format_problem_block(name, problems, ending="booting"),
                         "capacity")


def start_trace(g: Guest, rt, promoted: bool, state_dir) -> list[str]:
    """The start trace hpvmstart prints (spec 01 §25), with this guest's numbers."""
    mem = g.memory_mb
    size = mem * 1024 * 1024
    low_end = f"{size:x}"
    fw_base = 0x6000000100000000 + max(size, 1 << 30)
    cfg = os.path.join(str(state_dir), UUIDS, g.uuid,
                       "vmm_config.next" if promoted else "vmm_config.current")
    lines = []
    if promoted:
        lines += ["Initializing System Event Log", "Initializing Forward Progress Log"]
    lines += [
        "(C) Copyright 2000 - 2007 Hewlett-Packard Development Company, L.P.",
        "Opening minor device and creating guest machine container",
        f"Creation of VM, minor device {rt.minor_device}",
        f"Allocating guest memory: {mem}MB",
        f"  allocating low RAM (0-{low_end}, {mem}MB)",
        f"/opt/hpvm/lbin/hpvmapp ({cfg}): Allocated {size} bytes at 0x6000000100000000",
        f"    locking memory: 0-{low_end}",
        "  allocating firmware RAM (ffaa0000-ffab5000, 84KB)",
        f"/opt/hpvm/lbin/hpvmapp ({cfg}): Allocated 86016 bytes at 0x{fw_base:016x}",
        "    locked SAL RAM: 00000000ffaa0000 (4KB)",
        "    locked ESI RAM: 00000000ffaa1000 (4KB)",
        "    locked PAL RAM: 00000000ffaa4000 (4KB)",
        "    locked Min Save State: 00000000ffaa5000 (1KB)",
        "RAM alignment: 40000000",
        "Memory base low : 6000000100000000",
        f"Memory base FW  : {fw_base:016x}",
        "Loading boot image",
        "Image initial IP=102000 GP=62C000",
        "Initialize guest memory mapping tables",
        "Starting event polling thread",
        "Starting thread initialization",
        "Daemonizing....",
    ]
    return lines


def _apply_dynmem(dm: DynamicMemoryConfig, kw: dict) -> DynamicMemoryConfig:
    out = dm
    if "ram_dyn_type" in kw and kw["ram_dyn_type"] == "none":
        # `none` removes the range and control information (spec 03 §6.2)
        out = DynamicMemoryConfig(control=None, type="none")
    for key, value in kw.items():
        if key == "dynamic_memory_control":
            out = replace(out, control=bool(value))
        elif key == "ram_dyn_type":
            out = replace(out, type=value)
        elif key == "ram_dyn_min":
            out = replace(out, min_mb=value)
        elif key == "ram_dyn_max":
            out = replace(out, max_mb=value)
        elif key == "ram_dyn_target_start":
            out = replace(out, target_start_mb=value)
    return out


def _device_keys(g: Guest | None) -> dict:
    if g is None:
        return {}
    out = {}
    for s in g.storage:
        if s.location:
            out[(g.name, ("s", s.location))] = s
    for n in g.nics:
        out[(g.name, ("n", n.vswitch))] = n
    return out


def _check_hot_adapter(current: Guest, ch: GuestChanges) -> None:
    """A running guest takes new storage only on an adapter it already has (spec 02 §10)."""
    adapters = {(s.bus, s.slot) for s in current.storage}
    for res in ch.add:
        if not isinstance(res, StorageResource):
            continue
        if res.bus is not None and res.slot is not None and (res.bus, res.slot) not in adapters:
            raise _err(f"Adding a virtual storage adapter ({res.bus},{res.slot}) needs the "
                       f"guest '{current.name}' to be off.", "state")
        if res.bus is None and not adapters:
            raise _err(f"The guest '{current.name}' has no virtual storage adapter; adding one "
                       "needs the guest to be off.", "state")


def _option_of(field_name: str) -> str:
    return {"vcpus": "-c", "memory_mb": "-r", "reserved_mb": "-R", "os_type": "-O",
            "os_version": "-O"}[field_name]


def _copy_backing(src: str, dst: str) -> None:
    """Physically duplicate a file backing store (hpvmclone -b), sparse-friendly."""
    shutil.copyfile(src, dst)
