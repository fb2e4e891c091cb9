"""Device database operations (hpvmdevmgmt): list, add, modify, delete, replace, create a file
backing store, report pass-through devices; and the questions the guest rules ask.

Changes run in one store transaction (database and, for a replace, the guests' configurations
together) and record an event. A refusal raises `AgentError` before anything is written.
"""
from __future__ import annotations

import os
import re
from dataclasses import replace as dc_replace

from agent.api.core import guest_dir
from agent.api.outcome import Outcome
from agent.backends.base import ACTIVE_STATES
from agent.devicedb import (DeviceDatabase, DeviceEntry, ListQuery, identity, parse_list_arg)
from agent.errors import AgentError
from agent.events import format_time
from agent.vswitch import VswitchTable

_SIZE_RE = re.compile(r"^(\d+)([MmGg])\Z")
MAX_FILE_MB = 2 * 1024 * 1024          # a FileDisk is at most 2 TB (spec 02 §9)
_ATTACHABLE = ("tape", "changer", "burner", "dvd")
_CTD_RE = re.compile(r"(c\d+t\d+d\d+)")


def parse_file_size(text: str) -> int:
    """`-S size`: a whole number ending in M or G (1 G = 1024 M) -> MB."""
    m = _SIZE_RE.match(text or "")
    if not m:
        raise AgentError(f"Invalid size '{text}': expected a number followed by "
                         "M or G", "invalid")
    mb = int(m.group(1)) * (1024 if m.group(2) in "Gg" else 1)
    if mb < 1 or mb > MAX_FILE_MB:
        raise AgentError(f"Invalid size '{text}': a file backing store holds "
                         "1M to 2048G", "invalid")
    return mb


class DeviceOps:
    """Mixin of `Agent`: uses `self.store`, `self.host`, `self.actor`, `self.guests()` and
    `self.runtime(guest)`."""

    # --- questions the rules and views ask ----------------------------------------------

    def device_restricted(self, path: str) -> bool:
        return DeviceDatabase.load(self.store).is_restricted(path, self.host)

    def device_shareable(self, path: str) -> bool:
        return DeviceDatabase.load(self.store).is_shareable(path, self.host)

    def device_users(self, path: str) -> list[str]:
        return DeviceDatabase.load(self.store).users(path, self.host)

    # --- listing ------------------------------------------------------------------------

    def list_devices(self, query: ListQuery | str = "all") -> list[DeviceEntry]:
        """`-l`: the matching entries, with EXIST and WWIDs as the host has them now.
        Naming one entry that is not there is an error; a filter may match nothing."""
        if isinstance(query, str):
            query = parse_list_arg(query)
        with self.store.snapshot() as snap:
            db = DeviceDatabase.load(snap)
            table = VswitchTable.load(snap)
        db.refresh(self.host, table)
        found = db.select(query, self.host)
        if query.entry is not None and not found:
            kind = "" if query.kind == "all" else f"{query.kind} "
            raise AgentError(f"No {kind}entry named '{query.entry}'", "not_found")
        return found

    def device_identity(self, name: str) -> str:
        return identity(name, self.host)

    # --- changes ------------------------------------------------------------------------

    def add_device_entry(self, kind: str, name: str, attr: tuple[str, str] | None = None, *,
                         force: bool = False) -> Outcome:
        """`-a kind:name[:attr:NAME=VALUE]`. Restricting a device a guest uses needs `force`
        and warns: that guest will not start while the restriction stands."""
        with self.store.transaction(actor=self.actor) as txn:
            db = DeviceDatabase.load(txn)
            entry, warnings = db.add(kind, name, attr, self.host, VswitchTable.load(txn),
                                     force=force)
            db.save(txn)
            txn.event("device.add", entry.name, entry_type=kind, attrs=dict(entry.attrs))
        return Outcome(warnings=warnings, value=entry)

    def modify_device_entry(self, kind: str, name: str, attr_name: str,
                            attr_value: str) -> Outcome:
        """`-m kind:name:attr:NAME=VALUE` (creates a gdev entry that is not there yet)."""
        with self.store.transaction(actor=self.actor) as txn:
            db = DeviceDatabase.load(txn)
            entry = db.modify(kind, name, (attr_name, attr_value), self.host,
                              VswitchTable.load(txn))
            db.save(txn)
            txn.event("device.modify", entry.name, entry_type=kind,
                      attr=attr_name.upper(), value=entry.attrs.get(attr_name.upper(), ""))
        return Outcome(value=entry)

    def delete_device_entry(self, kind: str, name: str) -> Outcome:
        """`-d kind:name`: only an entry nothing depends on."""
        with self.store.transaction(actor=self.actor) as txn:
            db = DeviceDatabase.load(txn)
            entry = db.delete_entry(kind, name, self.host)
            db.save(txn)
            txn.event("device.delete", entry.name, entry_type=kind)
        return Outcome(value=entry)

    def delete_device_attr(self, kind: str, name: str, attr_name: str) -> Outcome:
        """`-d kind:name:attr:NAME`."""
        with self.store.transaction(actor=self.actor) as txn:
            db = DeviceDatabase.load(txn)
            entry = db.delete_attr(kind, name, attr_name, self.host)
            db.save(txn)
            txn.event("device.attr_delete", entry.name, entry_type=kind, attr=attr_name.upper())
        return Outcome(value=entry)

    def delete_device_dependent(self, kind: str, name: str, dependent: str) -> Outcome:
        """`-d gdev:{all|name}:depend:dependent`: the database forgets the dependency; the
        guest's configuration is not changed (for a guest hpvmmodify cannot change)."""
        with self.store.transaction(actor=self.actor) as txn:
            db = DeviceDatabase.load(txn)
            hit = db.delete_dependent(kind, name, dependent, self.host)
            db.save(txn)
            txn.event("device.depend_delete", dependent, entry_type=kind,
                      entries=[e.name for e in hit])
        return Outcome(value=hit)

    def replace_device(self, old: str, new0: str, new1: str | None = None) -> Outcome:
        """`-n gdev:old:new0[,new1]`: a failed backing device is replaced. The entry and all
        its dependencies move to `new0`, and every guest configured with `old` is switched
        to `new0` in the same step. The guests must be off (no I/O may be active on a device
        that is changed under a guest)."""
        users = []
        for g in self.guests():
            if any(s.location and identity(s.location, self.host) == identity(old, self.host)
                   for s in g.storage):
                users.append(g)
        running = [g.name for g in users if self.runtime(g).state in ACTIVE_STATES]
        if running:
            raise AgentError(f"The device '{old}' is in use by running guest(s) "
                             f"{', '.join(running)}; stop them first", "state")
        with self.store.transaction(actor=self.actor) as txn:
            db = DeviceDatabase.load(txn)
            entry = db.replace(old, new0, new1, self.host, VswitchTable.load(txn))
            for g in users:
                self._dev_retarget_guest(txn, g, old, new0)
            db.save(txn)
            txn.event("device.replace", new0, old=old, alias=new1 or "",
                      guests=[g.name for g in users])
        return Outcome(value=entry)

    def _dev_retarget_guest(self, txn, guest, old: str, new: str) -> None:
        """Point the guest's devices backed by `old` (under any of its names) at `new`, in
        its configuration and in one waiting for the next boot."""
        from agent.guestconfig import format_config, parse_config
        want = identity(old, self.host)
        changed = False
        for fname in ("vmm_config.current", "vmm_config.next"):
            rel = f"uuids/{guest.uuid}/{fname}"
            data = txn.read(rel)
            if data is None:
                continue
            g = parse_config(data, rel)
            storage = [dc_replace(s, location=new)
                       if s.location and identity(s.location, self.host) == want else s
                       for s in g.storage]
            if storage != g.storage:
                txn.write(rel, format_config(dc_replace(g, storage=storage)))
                changed = True
        if changed:
            # the guest's own history records the change, as for any hpvmmodify
            self._log(txn, guest, f"backing store {old} replaced by {new} (hpvmdevmgmt -n)")
            if self.command:
                line = f"{format_time(self.clock.now())} {self.actor}: {self.command}\n"
                txn.append(f"{guest_dir(guest.uuid)}/command.log", line)

    def create_backing_file(self, size: str, path: str) -> Outcome:
        """`-S size path`: a new file of that size (sparse) to back a virtual disk, and its
        gdev entry. An existing file is never overwritten."""
        mb = parse_file_size(size)
        if not path.startswith("/"):
            raise AgentError(f"Invalid file name '{path}': an absolute path is "
                             "required", "invalid")
        parent = os.path.dirname(path.rstrip("/")) or "/"
        if not os.path.isdir(parent):
            raise AgentError(f"The directory '{parent}' does not exist",
                             "not_found")
        if os.path.lexists(path):
            raise AgentError(f"The file '{path}' already exists; it is not "
                             "overwritten", "exists")
        created = False
        try:
            with self.store.transaction(actor=self.actor) as txn:
                db = DeviceDatabase.load(txn)
                if db.is_restricted(path, self.host):
                    raise AgentError(f"The device '{path}' is restricted (rdev)",
                                     "conflict")
                fd = _create_exclusive(path)
                created = True
                try:
                    os.ftruncate(fd, mb * 1024 * 1024)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                entry = db.find("gdev", path, self.host)
                if entry is None:
                    entry, _ = db.add("gdev", path, None, self.host, VswitchTable.load(txn))
                else:
                    db.refresh(self.host)
                db.save(txn)
                txn.event("device.file_create", path, size_mb=mb)
        except BaseException:
            if created:
                _unlink_quietly(path)
            raise
        return Outcome(info=[], value=entry)

    def passthrough_devices(self) -> list[str]:
        """`-I`: the pass-through (sctl) device files `/dev/rscsi/cXtYdZ` of the host's
        attachable devices (tape drives; DVD drives, which attach as burners), as the host
        file describes them. The embedded model names them; it makes no device nodes on the
        real machine."""
        out = set()
        for item in getattr(self.host, "disks", None) or []:
            if str(getattr(item, "kind", "")).lower() not in _ATTACHABLE:
                continue
            m = _CTD_RE.search(str(getattr(item, "path", "") or ""))
            if m:
                out.add(f"/dev/rscsi/{m.group(1)}")
        return sorted(out)


def _create_exclusive(path: str) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise AgentError(f"The file '{path}' already exists; it is not "
                         "overwritten", "exists") from None
    except OSError as exc:
        raise AgentError(f"Cannot create '{path}': {exc.strerror}",
                         "failed") from None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
