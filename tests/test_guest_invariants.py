"""Random command sequences never break the host's invariants: no two running guests on one
exclusive backing store, entitlement and memory within the host, at most one running guest
per vswitch port, and an event log that records every change (and nothing for a refusal)."""
from __future__ import annotations

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from agent import devicedb, rules
from agent.api.guests import GuestChanges
from agent.backends.base import ACTIVE_STATES
from agent.clock import ManualClock
from agent.errors import AgentError
from agent.guest import Entitlement
from agent.resources import parse_resource
from guest_support import guide_host, make_agent

DISKS = ["/dev/rdsk/c1t2d0", "/dev/dsk/c1t2d0", "/dev/rdsk/c2t1d0", "/dev/rdsk/c2t1d0s1",
         "/dev/rdsk/c2t1d0s2", "/dev/rdsk/c4t1d0"]
LVS = ["/dev/vg01/rlvol1", "/dev/vg01/lvol2"]
NAMES = [f"g{i}" for i in range(3)]


class HostMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="vmp-inv-")
        self.clock = ManualClock()
        self.agent = make_agent(f"{self.dir}/state", clock=self.clock,
                                host=guide_host(cpus=2, cpu_mhz=1000, memory_mb=8192,
                                                swap_mb=16384, efi_seconds=1.0,
                                                os_boot_seconds=2.0, stop_seconds=3.0))
        self.seq = self.agent.store.last_seq()

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _do(self, kind, fn, *args, **kw):
        """Run one operation; check the event log grew by the change (or not at all)."""
        before = self.agent.store.last_seq()
        generation = self.agent.store.generation()
        try:
            fn(*args, **kw)
        except AgentError:
            assert self.agent.store.last_seq() == before, "a refusal must not log events"
            return False
        events = self.agent.store.events(since_seq=before)
        assert [e.seq for e in events] == list(range(before + 1, before + 1 + len(events)))
        if not events:
            # a change that changes nothing writes nothing at all; anything written is logged
            assert kind == "guest.modify", kind
            assert self.agent.store.generation() == generation, "a write without an event"
            return True
        assert kind in [e.kind for e in events], (kind, [e.kind for e in events])
        return True

    def _guest(self, name):
        try:
            return self.agent.find_guest(name)
        except AgentError:
            return None

    @rule(name=st.sampled_from(NAMES), vcpus=st.sampled_from([1, 2, 2, 3]),
          mem=st.sampled_from([512, 2048, 4096]), pct=st.sampled_from([10, 100]), disk=st.one_of(st.none(), st.sampled_from(DISKS + LVS)),
          nic=st.booleans(), force=st.booleans())
    def create(self, name, vcpus, mem, pct, disk, nic, force):
        add = []
        if disk:
            add.append(parse_resource(f"disk:scsi::{'lv' if '/vg' in disk else 'disk'}:{disk}"))
        if nic:
            add.append(parse_resource("network:lan::vswitch:localnet"))
        self._do("guest.create", self.agent.create_guest, name, GuestChanges(
            vcpus=vcpus, memory_mb=mem, entitlement=Entitlement(percent=float(pct), mhz=None),
            add=add), force=force)

    @rule(name=st.sampled_from(NAMES), new=st.sampled_from(NAMES))
    def clone(self, name, new):
        g = self._guest(name)
        if g is not None:
            self._do("guest.create", self.agent.clone_guest, g, new, GuestChanges(), force=True)

    @rule(name=st.sampled_from(NAMES), mem=st.sampled_from([512, 2048, 6144]), vcpus=st.integers(1, 4))
    def modify(self, name, mem, vcpus):
        g = self._guest(name)
        if g is not None:
            self._do("guest.modify", self.agent.modify_guest, g,
                     GuestChanges(memory_mb=mem, vcpus=vcpus))

    @rule(name=st.sampled_from(NAMES), pct=st.sampled_from([10, 100]), active=st.booleans())
    def entitle(self, name, pct, active):
        g = self._guest(name)
        if g is not None:
            self._do("guest.modify", self.agent.modify_guest, g, GuestChanges(
                entitlement=Entitlement(percent=float(pct), mhz=None)), active_only=active)

    @rule(name=st.sampled_from(NAMES))
    def start(self, name):
        g = self._guest(name)
        if g is not None:
            self._do("guest.start", self.agent.start_guest, g)

    @rule(name=st.sampled_from(NAMES), hard=st.booleans())
    def stop(self, name, hard):
        g = self._guest(name)
        if g is not None:
            self._do("guest.stop", self.agent.stop_guest, g, hard=hard)

    @rule(name=st.sampled_from(NAMES))
    def remove(self, name):
        g = self._guest(name)
        if g is not None:
            self._do("guest.remove", self.agent.remove_guest, g)

    @rule()
    def boot_host(self):
        self.agent.boot_host()

    @rule(seconds=st.sampled_from([0.5, 2.0, 10.0]))
    def tick(self, seconds):
        self.clock.advance(seconds)

    @invariant()
    def resources_within_the_host(self):
        host = self.agent.host
        running = list(self.agent.running_guests().values())
        assert len(running) <= rules.MAX_BOOTED
        assert rules.used_mhz(host, running) <= rules.capacity_mhz(host) + 1e-6
        assert all(g.vcpus <= host.cpus for g in running)
        assert sum(rules.guest_cost_mb(g) for g in running) <= \
            host.memory_mb - rules.host_reserve_mb(host) + 1e-6

    @invariant()
    def no_two_running_guests_on_one_exclusive_store(self):
        running = list(self.agent.running_guests().values())
        host = self.agent.host
        for i, a in enumerate(running):
            for b in running[i + 1:]:
                for sa in a.storage:
                    for sb in b.storage:
                        assert not devicedb.overlaps(sa.location, sb.location, host), \
                            (a.name, sa.location, b.name, sb.location)
                ports_a = {(n.vswitch, n.port) for n in a.nics}
                assert not ports_a & {(n.vswitch, n.port) for n in b.nics}

    @invariant()
    def every_guest_readable_and_states_known(self):
        assert self.agent.invalid_guests() == []
        for g in self.agent.guests():
            assert self.agent.runtime(g).state in ACTIVE_STATES + ("Off",)


TestHostInvariants = HostMachine.TestCase
TestHostInvariants.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
