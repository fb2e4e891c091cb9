"""The views the VM providers share between requests (provider/providers/hpvm_common.py
`SharedViews`) never hide a change: through the Dispatcher, on a ManualClock, with a second
Agent on the same state folder standing for an hpvm command in another process (its own
object, its own caches: it only meets the server's agent in the store).

* a change the other agent commits is in the very next CIM request;
* a change the clock alone makes (Booting -> On (EFI) -> On (OS), Stopping -> Off, dynamic
  memory moving chunk by chunk, CPU usage advancing) shows when it is due: at every instant
  a request sees what a fresh agent derives at that instant;
* while nothing changes, a sweep of many classes computes each view once and checks the
  store once per request.
"""
from __future__ import annotations

import math

import pytest
from pywbem import CIMInstanceName, NocaseDict

from agent.api import Agent
from agent.api.guests import GuestChanges
from agent.backends.base import Driver
from agent.clock import ManualClock
from agent.guest import Entitlement
from agent.resources import parse_resource
from guest_support import make_agent
from provider.messages import CIMRequest, Principal
from provider.operations import Dispatcher
from provider.providers import ProviderEnvironment, ProviderRegistry, install_all
from provider.schema import Schema

NS = "root/cimv2"
ADMIN = Principal("root", "admin")
DM = {"ram_dyn_type": "any", "ram_dyn_min": 1222, "ram_dyn_max": 6144}
SWEEP = ("HPVM_Host", "HPVM_Guest", "HPVM_IODevice", "HPVM_Processor", "HPVM_Memory",
         "HPVM_VirtualSystemSettingData", "HPVM_ProcessorAllocationSettingData",
         "HPVM_MemoryAllocationSettingData", "HPVM_StorageAllocationSettingData",
         "HPVM_EthernetPortAllocationSettingData", "HPVM_Switch", "HPVM_SwitchPort",
         "HPVM_ProcessorPool", "HPVM_MemoryPool", "HPVM_StoragePool", "HPVM_NetworkPool")


@pytest.fixture(scope="module")
def schema():
    return Schema.load()


class Host:
    """The server's agent behind a Dispatcher, and `other`: a separate Agent on the same
    state folder and clock (an hpvm command of another process)."""

    def __init__(self, schema, tmp_path):
        self.clock = ManualClock()
        self.state = tmp_path / "state"
        self.agent = make_agent(self.state, clock=self.clock)
        env = ProviderEnvironment(schema=schema, host_name="vmhost", clock=self.clock,
                                  state_dir=self.state, agent=self.agent, version="1.0.0")
        registry = ProviderRegistry(schema)
        install_all(registry, env)
        self.dispatcher = Dispatcher(schema, registry, clock=self.clock, host_name="vmhost")
        self.other = Agent(self.state, clock=self.clock, host=self.agent.host)

    def fresh(self) -> Agent:
        """An agent that has cached nothing: what the state is now, derived from scratch."""
        return Agent(self.state, clock=self.clock, host=self.agent.host)

    def op(self, name, **params):
        return self.dispatcher.handle(CIMRequest("imethod", name, NS, NocaseDict(params)),
                                      ADMIN)

    def enum(self, classname, **params):
        return self.op("EnumerateInstances", ClassName=classname, **params)

    def guest(self, name):
        uuid = self.fresh().find_guest(name).uuid
        return self.op("GetInstance", InstanceName=CIMInstanceName(
            "HPVM_Guest", {"CreationClassName": "HPVM_Guest", "Name": uuid}, namespace=NS))

    def state_of(self, name) -> str:
        (g,) = [g for g in self.enum("HPVM_Guest") if g["ElementName"] == name]
        return g["VMState"]

    def memory(self, name):
        uuid = self.fresh().find_guest(name).uuid
        (m,) = [m for m in self.enum("HPVM_Memory") if m.path.keybindings["SystemName"] == uuid]
        return m


@pytest.fixture
def host(schema, tmp_path):
    return Host(schema, tmp_path)


def _fresh_state(host, name) -> str:
    a = host.fresh()
    return a.runtime(a.find_guest(name)).state


# -- changes by another process -------------------------------------------------------------

def test_a_change_committed_by_another_agent_is_in_the_next_request(host):
    other = host.other
    other.create_guest("g1", GuestChanges(memory_mb=1024, label="first"))
    assert [g["ElementName"] for g in host.enum("HPVM_Guest")] == ["g1"]
    (vssd,) = host.enum("HPVM_VirtualSystemSettingData")
    assert vssd["VMLabel"] == "first"
    # nothing moved the clock: only the store generation tells the views are stale
    other.create_guest("g2", GuestChanges(memory_mb=2048))
    assert sorted(g["ElementName"] for g in host.enum("HPVM_Guest")) == ["g1", "g2"]
    other.modify_guest(other.find_guest("g1"), GuestChanges(label="second"))
    labels = {v["ElementName"]: v["VMLabel"] for v in
              host.enum("HPVM_VirtualSystemSettingData")}
    assert labels == {"g1": "second", "g2": ""}
    other.start_guest(other.find_guest("g2"))
    assert host.state_of("g2") == "Booting"
    assert host.guest("g2")["VMState"] == "Booting"
    other.create_vswitch("vswA", 0)
    assert "vswA" in [s["Name"] for s in host.enum("HPVM_Switch")]
    # devices and their settings (value dicts shared between requests) follow a change too
    before = len(host.enum("HPVM_IODevice")), len(host.enum("HPVM_StorageAllocationSettingData"))
    other.modify_guest(other.find_guest("g1"), GuestChanges(add=[
        parse_resource("disk:scsi::file:/vmstore/g1/extra.img", purpose="add")]))
    disks = [i for i in host.enum("HPVM_IODevice") if i.get("BackingDevice") ==
             "/vmstore/g1/extra.img"]
    rasds = [r for r in host.enum("HPVM_StorageAllocationSettingData")
             if r.get("HostResource") == ["/vmstore/g1/extra.img"]]
    assert len(disks) == 1 and len(rasds) == 1
    assert (len(host.enum("HPVM_IODevice")),
            len(host.enum("HPVM_StorageAllocationSettingData"))) == (before[0] + 1,
                                                                     before[1] + 1)
    other.remove_guest(other.find_guest("g1"))
    assert [g["ElementName"] for g in host.enum("HPVM_Guest")] == ["g2"]


# -- changes the clock makes ------------------------------------------------------------------

def test_boot_phases_and_a_graceful_stop_show_when_due(host):
    other = host.other
    other.create_guest("g1", GuestChanges(memory_mb=1024))
    other.set_guest_model(other.find_guest("g1"), os="HPUX", os_version="11.23")
    other.start_guest(other.find_guest("g1"))
    # efi 5 s, then the OS boots in 30 s (guest_support.guide_host)
    seen = []
    for step in [0.0, 4.9, 0.1, 10.0, 19.9, 0.1, 5.0]:
        host.clock.advance(step)
        state = host.state_of("g1")
        assert state == _fresh_state(host, "g1")
        seen.append(state)
    assert seen == ["Booting", "Booting", "On (EFI)", "On (EFI)", "On (EFI)", "On (OS)",
                    "On (OS)"]
    other.stop_guest(other.find_guest("g1"))          # graceful: Stopping for 10 s
    assert host.state_of("g1") == "Stopping"
    host.clock.advance(9.99)
    assert host.state_of("g1") == "Stopping"
    host.clock.advance(0.01)                          # due, and nobody settled the store
    assert host.state_of("g1") == "Off" == _fresh_state(host, "g1")


def test_memory_moving_shows_every_step_when_due(host):
    other = host.other
    other.create_guest("guest1", GuestChanges(memory_mb=6144, dynmem=DM))
    other.set_guest_model(other.find_guest("guest1"), os="HPUX", os_version="11.23",
                          kit="A.03.00", workload_mb=1655)
    other.start_guest(other.find_guest("guest1"))
    host.clock.advance(40)
    other.set_memory_target(other.find_guest("guest1"), 2048)
    seen = set()
    # 0.05 s steps over a move of several chunks (256 MB/s: one 64 MB chunk every 0.25 s)
    for _ in range(400):
        m = host.memory("guest1")
        a = host.fresh()
        dm = a.status_details(name="guest1")[0].dynmem
        assert m["CurrentMemory"] == dm.current_mb
        seen.add(dm.current_mb)
        if dm.current_mb == dm.target_mb:
            break
        host.clock.advance(0.05)
    # the whole move, chunk by chunk, to the chunk-rounded target
    assert dm.current_mb == dm.target_mb < 2200 and len(seen) > 10


def test_cpu_usage_advances_with_the_clock_while_a_guest_runs(host):
    other = host.other
    other.create_guest("g1", GuestChanges(vcpus=2, memory_mb=1024,
                                          entitlement=Entitlement(percent=20.0)))
    other.set_guest_model(other.find_guest("g1"), os="HPUX", cpu_percent=50.0)
    other.start_guest(other.find_guest("g1"))
    used = []
    for _ in range(3):
        host.clock.advance(1.0)
        (rasd,) = [r for r in host.enum("HPVM_ProcessorAllocationSettingData")
                   if r["InstanceID"].endswith(":cpu") and "Capabilities" not in
                   r["InstanceID"]]
        (row,) = host.fresh().resource_allocation(name="g1")
        assert rasd["CumulativeUsage"] == row.cumulative_mcycles
        used.append(rasd["CumulativeUsage"])
    assert used[0] < used[1] < used[2]


# -- sharing while nothing changes -------------------------------------------------------------

def test_an_unchanged_sweep_computes_each_view_once(host, monkeypatch):
    other = host.other
    for i in range(3):
        other.create_guest(f"g{i}", GuestChanges(memory_mb=1024))
    other.create_vswitch("vswA", 0)
    counts = {"status_details": 0, "cpu_usage": 0, "vswitch_details": 0}
    for name in counts:
        real = getattr(host.agent, name)

        def counted(*a, real=real, name=name, **k):
            counts[name] += 1
            return real(*a, **k)
        monkeypatch.setattr(host.agent, name, counted)
    store = host.agent.store
    trips = {"generation": 0, "snapshot": 0}
    for name in trips:
        real = getattr(store, name)

        def tripped(*a, real=real, name=name, **k):
            trips[name] += 1
            return real(*a, **k)
        monkeypatch.setattr(store, name, tripped)
    for cls in SWEEP:
        host.enum(cls)
    assert counts["status_details"] == 1 and counts["cpu_usage"] == 1
    # a second sweep a minute later: no guest runs, so nothing the clock drives can move
    host.clock.advance(60)
    before = dict(counts)
    trips.update(generation=0, snapshot=0)
    for cls in SWEEP:
        host.enum(cls)
    assert counts == before
    assert trips == {"generation": len(SWEEP), "snapshot": 0}
    # a change, and the views are computed again, once
    other.modify_guest(other.find_guest("g0"), GuestChanges(label="changed"))
    for cls in SWEEP:
        host.enum(cls)
    assert counts["status_details"] == before["status_details"] + 1


def test_running_guests_keep_views_only_until_their_next_transition(host):
    other = host.other
    other.create_guest("g1", GuestChanges(memory_mb=1024))
    other.set_guest_model(other.find_guest("g1"), os="HPUX")
    other.start_guest(other.find_guest("g1"))
    a = host.fresh()
    now = host.clock.now()
    assert a.views_valid_until(now) == pytest.approx(now + 5.0)      # On (EFI) at 5 s
    assert a.usage_valid_until(now) == now                          # usage ticks
    host.clock.advance(5.0)
    assert a.views_valid_until(host.clock.now()) == pytest.approx(now + 35.0)  # On (OS)
    host.clock.advance(30.0)
    assert a.views_valid_until(host.clock.now()) == math.inf
    other.stop_guest(other.find_guest("g1"), hard=True)
    assert host.fresh().usage_valid_until(host.clock.now()) == math.inf


def test_a_backend_that_cannot_tell_shares_nothing():
    class Opaque(Driver):
        host_facts = define = undefine = start = stop = reboot = apply_live = \
            set_memory_target = runtime = lambda *a, **k: None
    assert Opaque().valid_until([], 123.0) == 123.0
