"""The consistent capture: everything the host form takes from the state folder, under one
store snapshot."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from agent.collect.model import CollectError, CollectRequest, text_block
from agent.collect.secret_rules import is_secret
from agent.errors import AgentError

DEBUG_DIR = "debug"             # uuids/<uuid>/debug/: guest debug memory dumps a backend saves


@dataclass
class Pinned:
    """One store file pinned at capture: an open descriptor and the length it had."""

    rel: str
    fd: int
    size: int
    ino: int

    def reader(self):
        return BoundedReader(self.fd, self.size)

    def read(self) -> bytes:
        return self.reader().read(self.size)


class BoundedReader:
    def __init__(self, fd: int, size: int):
        self.fd, self.size, self.pos = fd, size, 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.pos
        if n is None or n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        data = os.pread(self.fd, n, self.pos)
        self.pos += len(data)
        return data


@dataclass
class Capture:
    """Everything the host form takes from the state folder, at one instant."""

    guest_name: str = ""
    uuid: str = ""
    guest = None                         # agent.guest.Guest, None for an invalid guest
    files: dict = field(default_factory=dict)      # store rel -> Pinned
    guest_files: dict = field(default_factory=dict)  # name inside the guest dir -> Pinned
    views: dict = field(default_factory=dict)        # name -> text (None: not available)
    notes: dict = field(default_factory=dict)        # view name -> why it is missing
    device_users: dict = field(default_factory=dict)  # host device path -> [guest names]
    generation: int = 0

    def close(self) -> None:
        for p in list(self.files.values()) + list(self.guest_files.values()):
            try:
                os.close(p.fd)
            except OSError:
                pass
        self.files.clear()
        self.guest_files.clear()


def pin(snap, root: str, rel: str) -> Pinned | None:
    """Open one store file under the snapshot (None when absent, not a file, or secret)."""
    try:
        canon = snap.resolve(rel)
    except AgentError:
        return None
    path = os.path.join(root, canon)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or is_secret(rel, os.pread(fd, 4096, 0)):
        os.close(fd)
        return None
    return Pinned(rel, fd, st.st_size, st.st_ino)


def capture(agent, request: CollectRequest) -> Capture:
    """Under one store snapshot: find the guest, pin its files and the host's, render views."""
    from agent.api.core import GUESTS, UUIDS
    from agent.cli import hpvmnet as net_text
    from agent.cli import status_text as text

    cap = Capture()
    root = str(agent.store.root)
    with agent.store.snapshot() as snap:
        cap.generation = snap.generation
        try:
            locate_guest(agent, snap, request, cap)
            base = f"{UUIDS}/{cap.uuid}"
            for name in snap.listdir(base):
                rel = f"{base}/{name}"
                if snap.is_dir(rel):
                    if name == DEBUG_DIR:
                        for sub in snap.listdir(rel):
                            p = pin(snap, root, f"{rel}/{sub}")
                            if p is not None:
                                cap.guest_files[f"{DEBUG_DIR}/{sub}"] = p
                    continue
                p = pin(snap, root, rel)
                if p is not None:
                    cap.guest_files[name] = p
            for name in snap.listdir(""):
                if name in (UUIDS, GUESTS) or snap.is_dir(name):
                    continue
                p = pin(snap, root, name)
                if p is not None:
                    cap.files[name] = p
            for name in snap.listdir("common"):
                rel = f"common/{name}"
                if not snap.is_dir(rel):
                    p = pin(snap, root, rel)
                    if p is not None:
                        cap.files[rel] = p

            sel = {"name": cap.guest_name}

            def view(key, fn):
                try:
                    cap.views[key] = fn()
                except AgentError as exc:
                    cap.views[key] = None
                    cap.notes[key] = " ".join(exc.lines)

            view("summary", lambda: text_block(text.summary(agent.status_summary())))
            view("status", lambda: text_block(text.details(agent.status_details(**sel),
                                                      verbose=False)))
            view("verbose", lambda: text_block(text.details(agent.status_details(**sel),
                                                       verbose=True)))
            if cap.guest is not None and agent.next_config(cap.guest) is not None:
                view("deferred", lambda: text_block(text.details([agent.status_deferred(**sel)],
                                                            verbose=True)))
            def entitlement():
                rows = agent.resource_allocation(**sel)
                return text_block(text.resources(rows, per_vcpu=True)) if rows else None

            view("entitlement", entitlement)
            view("host_resources", lambda: text_block(text.host_resources(agent.host_resources())))
            view("events", lambda: text_block(text.events(agent.event_log(**sel))))
            view("vswitches", lambda: net_text.render_summary(agent.vswitch_summaries()) + "\n"
                 + "\n" + net_text.render_verbose(agent.vswitch_details()) + "\n")
            for item in list(agent.host.disks) + list(agent.host.logical_volumes):
                try:
                    cap.device_users[item.path] = list(agent.device_users(item.path))
                except AgentError:
                    cap.device_users[item.path] = []
        except BaseException:
            cap.close()
            raise
    return cap


def locate_guest(agent, snap, request: CollectRequest, cap: Capture) -> None:
    """The guest to collect, valid or not (an invalid guest is when collection matters most)."""
    if request.guest_name is not None:
        for bad in agent.invalid_guests():
            if bad.name == request.guest_name:
                cap.guest_name, cap.uuid = bad.name, bad.uuid
                return
        try:
            g = agent.find_guest(name=request.guest_name)
        except AgentError as exc:
            raise CollectError(exc.lines, exc.kind) from None
    else:
        try:
            g = agent.find_guest(number=request.guest_number)
        except AgentError as exc:
            raise CollectError(exc.lines, exc.kind) from None
    cap.guest, cap.guest_name, cap.uuid = g, g.name, g.uuid
