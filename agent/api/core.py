"""AgentCore: the state every agent mixin works on, and the reads of guests and their runtime.

Layout on disk (the guide's `/var/opt/hpvm`):

    uuids/<uuid>/vmm_config.current|prev|next   the guest's configuration (agent.guestconfig)
    uuids/<uuid>/log, command.log                per-guest log and command history
    uuids/<uuid>/runtime                         ivm runtime facts (phase, start time...)
    uuids/<uuid>/model                           model-control facts (installed OS, kit...)
    guests/<name> -> ../uuids/<uuid>             so a rename is a symlink swap
    common/vm_number                             the last VM number given (monotonic)

Parsed guests are cached per process and revalidated when `store.generation()` moves: only
the files whose (inode, size, mtime) changed are read again, so an operation does not re-read
every guest (1000 guests cost about what 10 do).
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from agent.backends.base import ACTIVE_STATES, INVALID, GuestRuntime
from agent.clock import Clock, SystemClock
from agent.errors import AgentError, ConfigError
from agent.guest import Guest
from agent.guestconfig import parse_config

UUIDS = "uuids"
GUESTS = "guests"
VM_NUMBER_FILE = "common/vm_number"
CONFIG_NAMES = ("vmm_config.current", "vmm_config.next", "vmm_config.prev")


def guest_dir(uuid: str) -> str:
    return f"{UUIDS}/{uuid}"


@dataclass(frozen=True)
class InvalidGuest:
    """A guest whose configuration cannot be read: hpvmstatus shows it `Invalid`."""

    uuid: str
    name: str          # from the guests/<name> link, or the UUID when no link names it
    file: str          # store-relative path of the broken file
    line: int
    reason: str

    @property
    def message(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class GuestRecord:
    """Everything the store holds about one guest, parsed."""

    uuid: str
    current: Guest | None = None
    next: Guest | None = None
    invalid: InvalidGuest | None = None
    runtime_text: str | None = None     # ivm runtime facts (None: never started / off)
    model_text: str | None = None       # model-control facts
    memo: dict = field(default_factory=dict)   # parsed forms of the texts, for the driver


def _stat_key(path: str):
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class _GuestCache:
    """Per-process cache of parsed guest records, revalidated by generation and file stats."""

    FILES = ("vmm_config.current", "vmm_config.next", "runtime", "model")

    def __init__(self, core: "AgentCore"):
        self.core = core
        self.lock = threading.RLock()     # one refresh at a time (the CIM server is threaded)
        self.generation: int | None = None
        self.records: dict[str, GuestRecord] = {}
        self.keys: dict[str, tuple] = {}
        self._links: dict[str, str] | None = None     # name -> uuid (from guests/), lazily
        self._index: dict | None = None               # derived lookups, rebuilt per generation
        self.seq: int | None = None                   # event log position of the last refresh

    def _key(self, uuid: str) -> tuple:
        base = os.path.join(str(self.core.store.root), UUIDS, uuid)
        return tuple(_stat_key(os.path.join(base, f)) for f in self.FILES)

    def refresh(self) -> None:
        store = self.core.store
        if self.generation is not None and \
                self.generation == getattr(self.core._reads_at, "generation", None):
            return        # the caller checked the store at this generation a moment ago
        if store.generation() == self.generation:
            return
        with store.snapshot() as snap, self.lock:   # lock order: store, then cache
            # Guests named by the events since our last look are read again whatever their
            # file stats say (a coarse mtime cannot hide a change); the rest by stats.
            try:
                last = snap.last_seq()
                changed = set()
                if self.seq is not None and last > self.seq:
                    changed = {e.subject for e in snap.events(since_seq=self.seq)}
            except AgentError:
                # an unreadable event log must not stop guest reads: trust nothing cached
                last, changed, self.keys = None, set(), {}
            self.seq = last
            records, keys = {}, {}
            for uuid in snap.listdir(UUIDS):
                key = self._key(uuid)
                if uuid not in changed and self.keys.get(uuid) == key and uuid in self.records:
                    records[uuid], keys[uuid] = self.records[uuid], key
                    continue
                records[uuid] = _load_record(snap, uuid)
                keys[uuid] = key
            self.records, self.keys, self._links = records, keys, None
            self._index = None
            self.generation = snap.generation

    def note_commit(self, before: int, after: int | None, touched) -> None:
        """Our own transaction committed: reload only the guests it touched, unless someone
        else committed in between (then the next refresh revalidates everything)."""
        if after is None or self.generation != before:
            return
        with self.core.store.snapshot() as snap, self.lock:
            if snap.generation != after:
                return
            # copy on write: other threads may be iterating the current dicts
            records, keys = dict(self.records), dict(self.keys)
            for uuid in touched:
                if snap.is_dir(f"{UUIDS}/{uuid}"):
                    records[uuid] = _load_record(snap, uuid)
                    keys[uuid] = self._key(uuid)
                else:
                    records.pop(uuid, None)
                    keys.pop(uuid, None)
            self.records, self.keys = records, keys
            self._links = None
            self._index = None
            self.generation = after
            try:
                self.seq = snap.last_seq()
            except AgentError:
                self.seq = None

    def index(self) -> dict:
        """name -> uuids, VM number -> uuid, and the records in VM number order."""
        index = self._index
        if index is None:
            records = self.records
            names: dict[str, set] = {}
            numbers: dict[int, str] = {}
            order = []
            for uuid, rec in records.items():
                for g in (rec.current, rec.next):
                    if g is not None:
                        names.setdefault(g.name, set()).add(uuid)
                        numbers[g.vm_number] = uuid
                if rec.current is not None:
                    order.append(((rec.next or rec.current).vm_number, uuid))
            order.sort()
            index = {"names": names, "numbers": numbers, "records": records,
                     "order": [records[u] for _, u in order],
                     # only a guest that was ever started can be running
                     "started": [r for r in records.values()
                                 if r.runtime_text is not None and r.current is not None]}
            self._index = index
        return index

    def links(self) -> dict[str, str]:
        if self._links is None:
            links = {}
            with self.core.store.snapshot() as snap:
                for name in snap.listdir(GUESTS):
                    target = snap.readlink(f"{GUESTS}/{name}")
                    if target:
                        links[name] = os.path.basename(target.rstrip("/"))
            self._links = links
        return self._links


def _load_record(snap, uuid: str) -> GuestRecord:
    rec = GuestRecord(uuid)
    d = guest_dir(uuid)
    for attr, fname in (("current", "vmm_config.current"), ("next", "vmm_config.next")):
        rel = f"{d}/{fname}"
        data = snap.read(rel)
        if data is None:
            if attr == "current":
                rec.invalid = InvalidGuest(uuid, uuid, rel, 0, "the configuration file is missing")
            continue
        try:
            g = parse_config(data, rel)
        except ConfigError as exc:
            rec.invalid = InvalidGuest(uuid, uuid, exc.path, exc.line, exc.reason)
            continue
        if g.uuid != uuid:
            rec.invalid = InvalidGuest(uuid, uuid, rel, _line_of(data, "uuid"),
                                       f"uuid {g.uuid} does not match its folder")
            continue
        setattr(rec, attr, g)
    if rec.invalid is not None:
        rec.current = rec.next = None
    for attr, fname in (("runtime_text", "runtime"), ("model_text", "model")):
        data = snap.read(f"{d}/{fname}")
        if data is not None:
            setattr(rec, attr, data.decode("utf-8", "replace"))
    return rec


def _name_for(uuid: str, links: dict[str, str]) -> str:
    for name, target in links.items():
        if target == uuid:
            return name
    return uuid


def _line_of(data: bytes, key: str) -> int:
    for i, line in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
        if line.startswith(key + " "):
            return i
    return 0


class AgentCore:
    """Shared state of the agent: store, host facts, clock, backend driver, actor."""

    def __init__(self, state_dir=None, *, backend: str = "ivm", clock: Clock | None = None,
                 actor: str | None = None, host=None):
        from agent.statedir import resolve_state_dir
        from agent.store import Store, default_actor

        self.state_dir = resolve_state_dir(state_dir)
        self.clock: Clock = clock or SystemClock()
        self._actor_local = threading.local()
        self._reads_at = threading.local()
        self.actor = actor or default_actor()
        self.store = Store(self.state_dir, clock=self.clock, actor=self.actor)
        if host is None:
            from agent.hostfacts import load_host
            host = load_host(self.state_dir, self.clock, store=self.store)
        self.host = host
        self.command: str | None = None    # the command line a CLI runs, for command.log
        self._cache = _GuestCache(self)
        self.driver = self._make_driver(backend)

    # The actor a change is recorded under: the agent's own, or, for the calls made inside
    # `acting_as` on this thread, the one named there (a guest's hpvmmgmt, a CIM user).
    @property
    def actor(self) -> str:
        return getattr(self._actor_local, "actor", None) or self._actor_default

    @actor.setter
    def actor(self, value: str) -> None:
        self._actor_default = value

    @contextmanager
    def acting_as(self, actor: str | None):
        if not actor:
            yield self
            return
        before = getattr(self._actor_local, "actor", None)
        self._actor_local.actor = actor
        try:
            yield self
        finally:
            self._actor_local.actor = before

    def _make_driver(self, backend: str):
        if backend == "ivm":
            from agent.backends.ivm import IvmDriver
            return IvmDriver(self)
        if backend == "libvirt":
            try:
                from agent.backends.libvirt import LibvirtDriver
            except ImportError as exc:
                raise AgentError(f"The libvirt backend is not available: {exc}", "failed") from None
            return LibvirtDriver(self)
        raise AgentError(f"Unknown backend '{backend}': expected ivm or libvirt", "invalid")

    # ------------------------------------------------------------------ records

    def _records(self) -> dict[str, GuestRecord]:
        self._cache.refresh()
        return self._cache.records

    def _record(self, uuid: str) -> GuestRecord | None:
        return self._records().get(uuid)

    def _view(self, rec: GuestRecord) -> Guest | None:
        """The configuration hpvmstatus shows: the active one while the guest runs, the one
        for the next boot while it is off (spec 05 §6.3)."""
        if rec.current is None:
            return None
        rt = self.driver.runtime_of(rec)
        if rt.state in ACTIVE_STATES:
            g = rec.current
            if rt.detected_os and rt.detected_os != g.os_type:
                g = replace(g, os_type=rt.detected_os,
                            os_version=rt.details.get("detected_version", g.os_version))
            return g
        return rec.next or rec.current

    # ------------------------------------------------------------------ reads

    def guests(self) -> list[Guest]:
        """Every valid guest, by VM number."""
        self._cache.refresh()
        return [g for g in (self._view(r) for r in self._cache.index()["order"]) if g is not None]

    def invalid_guests(self) -> list[InvalidGuest]:
        """Guests whose configuration cannot be read, named by their guests/<name> link."""
        invalid = [r.invalid for r in self._records().values() if r.invalid is not None]
        if not invalid:
            return []
        links = self._cache.links()
        out = [replace(i, name=_name_for(i.uuid, links)) for i in invalid]
        out.sort(key=lambda i: i.name)
        return out

    def find_guest(self, name: str | None = None, number: int | None = None) -> Guest:
        """The guest named `name` (-P) or numbered `number` (-p); AgentError 'not_found'."""
        if (name is None) == (number is None):
            raise AgentError("Specify the guest by name (-P) or by number (-p).", "invalid")
        self._cache.refresh()
        idx = self._cache.index()
        uuids = idx["names"].get(name, ()) if name is not None else \
            [idx["numbers"][number]] if number in idx["numbers"] else []
        for uuid in uuids:
            g = self._view(idx["records"][uuid])
            if g is not None and (g.name == name if name is not None else g.vm_number == number):
                return g
        if name is not None:
            for inv in self.invalid_guests():
                if inv.name == name:
                    raise AgentError(f"The guest '{name}' has an invalid configuration: "
                                     f"{inv.message}", "failed")
            raise AgentError(f"Unable to find the guest '{name}'.", "not_found")
        raise AgentError(f"Unable to find the guest numbered {number}.", "not_found")

    def find_by_uuid(self, uuid: str) -> Guest:
        rec = self._record(uuid)
        if rec is None or rec.current is None:
            raise AgentError(f"Unable to find the guest with UUID {uuid}.", "not_found")
        return self._view(rec)

    def next_config(self, guest: Guest) -> Guest | None:
        """The deferred configuration (`vmm_config.next`) of a guest, if one waits (-D)."""
        rec = self._record(guest.uuid)
        return rec.next if rec is not None else None

    def runtime(self, guest: Guest | InvalidGuest) -> GuestRuntime:
        """The guest's runtime state (hpvmstatus State column and -V runtime facts)."""
        if isinstance(guest, InvalidGuest):
            return GuestRuntime(state=INVALID)
        rec = self._record(guest.uuid)
        if rec is None:
            raise AgentError(f"Unable to find the guest '{guest.name}'.", "not_found")
        if rec.invalid is not None:
            return GuestRuntime(state=INVALID)
        return self.driver.runtime_of(rec)

    def runtimes(self, guests) -> dict[str, GuestRuntime]:
        """UUID -> runtime of each guest, from one look at the store (views of many guests
        must not check the store once per guest)."""
        records = self._records()
        out = {}
        for g in guests:
            rec = records.get(g.uuid)
            if isinstance(g, InvalidGuest) or rec is None or rec.invalid is not None:
                out[g.uuid] = GuestRuntime(state=INVALID)
            else:
                out[g.uuid] = self.driver.runtime_of(rec)
        return out

    def running_guests(self) -> dict[str, Guest]:
        """UUID -> active configuration of every guest that holds host resources now."""
        self._cache.refresh()
        out = {}
        for rec in self._cache.index()["started"]:
            if self.driver.runtime_of(rec).state in ACTIVE_STATES:
                out[rec.uuid] = self._view(rec)
        return out

    def resident_memory(self) -> dict[str, int]:
        """UUID -> MB the host gives each running guest whose dynamic memory driver runs
        (its memory less what the driver gave back); other running guests hold all of it."""
        from agent.rules import resident_mb
        self._cache.refresh()
        out = {}
        for rec in self._cache.index()["started"]:
            rt = self.driver.runtime_of(rec)
            if rt.state in ACTIVE_STATES and rt.memory is not None and rt.memory.driver:
                out[rec.uuid] = resident_mb(rec.current.memory_mb, rt.memory.current_mb)
        return out

    @contextmanager
    def reads_at(self, generation: int):
        """Reads made inside (on this thread) trust the cached guests when they hold the
        store at `generation`, which the caller has just read: one store check serves a
        view made of many reads, each of which would check again. A change committed
        meanwhile is seen by the caller's next check."""
        before = getattr(self._reads_at, "generation", None)
        self._reads_at.generation = generation
        try:
            yield self
        finally:
            self._reads_at.generation = before

    def views_valid_until(self, now: float) -> float:
        """Until when (wall clock) every view derived from the store as it is now stays as
        it is at `now`, unless someone commits: the next instant the clock alone changes a
        guest's derived state (a phase transition, a memory move step), math.inf when none
        can; `now` (nothing may be kept) when the backend cannot tell. With the store
        generation it keys the caches of views shared between requests."""
        self._cache.refresh()
        return self.driver.valid_until(self._cache.index()["started"], now)

    def usage_valid_until(self, now: float) -> float:
        """The same for the CPU usage figures (hpvmstatus -r): they advance with the clock
        while any guest runs (`now`); with none running they stay as they are as long as the
        other views do."""
        self._cache.refresh()
        for rec in self._cache.index()["started"]:
            if self.driver.runtime_of(rec).state in ACTIVE_STATES:
                return now
        return self.views_valid_until(now)

    def model_facts(self, guest: Guest):
        """What hpvmmodel set for the guest (installed OS, guest kit, workload)."""
        from agent.backends.ivm import ModelFacts
        rec = self._record(guest.uuid)
        return ModelFacts.parse(rec.model_text if rec else None)

    # ------------------------------------------------------------------ A4's tables

    def vswitch_table(self):
        from agent.vswitch import VswitchTable
        with self.store.snapshot() as snap:
            return VswitchTable.load(snap)

    def device_db(self):
        from agent.devicedb import DeviceDatabase
        with self.store.snapshot() as snap:
            return DeviceDatabase.load(snap)

    # ------------------------------------------------------------------ rules context

    def environment(self, reader=None):
        """The rules' view of the host: guests, running set, vswitches, device database.
        `reader` is an open snapshot or transaction (default: a fresh snapshot)."""
        from agent.devicedb import DeviceDatabase
        from agent.rules import Environment
        from agent.vswitch import VswitchTable

        if reader is None:
            with self.store.snapshot() as snap:
                return self.environment(snap)
        host_macs = [getattr(n, "mac", "").replace(":", "-")
                     for n in getattr(self.host, "nics", []) or []]
        return Environment(self.host, self.guests, self.running_guests(),
                           vswitches=VswitchTable.load(reader),
                           devdb=DeviceDatabase.load(reader),
                           host_macs=[m for m in host_macs if m],
                           resident=self.resident_memory())
