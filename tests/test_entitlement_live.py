"""CPU entitlement on running guests (spec 01 §14, DECISIONS §1.4): live changes, refusals at
capacity, the model's CPU accounting behind `hpvmstatus -r`, and `hpvmstatus -S`."""
from __future__ import annotations

import pytest

from agent.api.guests import GuestChanges
from agent.cli import hpvmmodify, hpvmstatus
from agent.clock import ManualClock
from agent.errors import AgentError
from agent.guest import Entitlement
from guest_support import fingerprint, make_agent, run_cli


@pytest.fixture
def env(tmp_path, monkeypatch):
    clock = ManualClock()
    agent = make_agent(tmp_path / "state", clock=clock)      # 2 x 1400 MHz

    def opened(opts, argv):
        agent.command = " ".join(argv)
        return agent
    monkeypatch.setattr(hpvmmodify, "open_agent", opened)
    monkeypatch.setattr(hpvmstatus, "open_agent", opened)
    return agent, clock, tmp_path / "state"


def start(agent, clock, name, *, vcpus=1, percent=10.0, memory_mb=1024, demand=None):
    agent.create_guest(name, GuestChanges(vcpus=vcpus, memory_mb=memory_mb,
                                          entitlement=Entitlement(percent=percent)))
    g = agent.find_guest(name)
    agent.set_guest_model(g, os="HPUX", cpu_percent=demand)
    agent.start_guest(g)
    clock.advance(40)
    return agent.find_guest(name)


def test_a_running_guest_takes_a_new_entitlement_at_once(env):
    a, clock, state = env
    start(a, clock, "vm1")
    code, out, err = run_cli(hpvmmodify.main, ["-P", "vm1", "-e", "50"], state)
    assert code == 0, err
    assert a.find_guest("vm1").entitlement == Entitlement(percent=50.0)
    assert a.next_config(a.find_guest("vm1")) is None        # nothing waits for a reboot
    row = a.resource_allocation(name="vm1")[0]
    assert (row.entitlement_percent, row.percent_usage) == (50.0, 25.0)
    # -A: until the next boot only
    a.set_entitlement(a.find_guest("vm1"), Entitlement(percent=None, mhz=1400), active_only=True)
    assert a.find_guest("vm1").entitlement.mhz == 1400
    assert a.next_config(a.find_guest("vm1")).entitlement == Entitlement(percent=50.0)


def test_an_entitlement_beyond_capacity_is_refused_and_changes_nothing(env):
    a, clock, state = env
    start(a, clock, "big", vcpus=2, percent=90.0)              # 2 x 1260 MHz
    start(a, clock, "small")                                  # 140 MHz: 2660 of 2800
    assert run_cli(hpvmmodify.main, ["-P", "small", "-e", "20"], state)[0] == 0   # 2800: fits
    before = fingerprint(state)
    code, out, err = run_cli(hpvmmodify.main, ["-P", "small", "-e", "25"], state)
    assert (code, out) == (1, "")
    assert err.splitlines() == ["hpvmmodify: Insufficient cpu resource for guest.",
                                "hpvmmodify: Unable to continue."]
    assert fingerprint(state) == before
    with pytest.raises(AgentError) as exc:
        a.set_entitlement(a.find_guest("small"), Entitlement(percent=None, mhz=400))
    assert exc.value.kind == "capacity" and fingerprint(state) == before


@pytest.mark.parametrize("ent", [Entitlement(percent=4.0), Entitlement(percent=100.5),
                                 Entitlement(percent=None, mhz=1500),
                                 Entitlement(percent=None, mhz=69)])
def test_entitlement_outside_5_to_100_percent_is_refused(env, ent):
    a, clock, state = env
    start(a, clock, "vm1")
    before = fingerprint(state)
    with pytest.raises(AgentError) as exc:
        a.set_entitlement(a.find_guest("vm1"), ent)
    assert exc.value.kind == "invalid" and "outside 5-100%" in exc.value.lines[0]
    assert fingerprint(state) == before


def test_usage_is_uncapped_on_a_quiet_host_and_held_to_entitlement_when_contended(env):
    a, clock, state = env
    busy = start(a, clock, "busy", vcpus=2, percent=20.0, demand=100.0)
    other = start(a, clock, "other", percent=10.0, demand=100.0)
    t0 = clock.now()
    # 3 vCPUs want 1400 MHz each of a 2800 MHz host: contended, each held to its entitlement
    clock.advance(100)
    rows = {r.name: r for r in a.resource_allocation()}
    assert (rows["busy"].percent_usage, rows["other"].percent_usage) == (20.0, 5.0)
    # 40 s alone (uncapped), 40 s while `other` booted and 100 s since: contended
    before = 2 * 1400 * 40 + 2 * 280 * 40
    assert rows["busy"].cumulative_mcycles == before + 2 * 280 * 100
    a.stop_guest(other, hard=True)
    clock.advance(10)
    row = a.resource_allocation(name="busy")[0]
    # alone it gets what it asks (uncapped): 2 x 1400 MHz
    assert row.percent_usage == 100.0
    assert row.cumulative_mcycles == before + 2 * 280 * 100 + 2 * 1400 * 10
    assert [u.achieved_mhz for u in row.vcpu_usage] == [1400, 1400]
    assert [u.guest_percent for u in row.vcpu_usage] == [100.0, 100.0]
    assert row.sampling_interval_s == pytest.approx(clock.now() - t0 + 80)
    a.set_guest_model(busy, cpu_percent="entitlement")
    assert a.resource_allocation(name="busy")[0].percent_usage == 20.0


def test_resource_view_layout_per_guest_and_per_vcpu(env):
    a, clock, state = env
    start(a, clock, "vm1", vcpus=2, percent=25.0, demand=50.0)
    clock.advance(10)
    code, out, _ = run_cli(hpvmstatus.main, ["-r", "-P", "vm1"], state)
    lines = out.splitlines()
    assert lines[0] == "[Virtual Machine Resource Allocation]"
    assert lines[2].split() == ["Virtual", "Machine", "Name", "VM", "#", "#VCPUs", "Entitlement",
                                "Maximum", "Usage", "Usage", "Memory", "Memory"]
    row = lines[4].split()
    assert row[:6] == ["vm1", "1", "2", "25.0%", "100.0%", "50.0%"]
    assert row[6] == str(2 * 700 * 50)
    i = lines.index("[Virtual CPU Usage]")
    assert [r.split()[:5] for r in lines[i + 4:i + 6]] == [
        ["0", str(700 * 50), "50.0%", "0.0%", "700"], ["1", str(700 * 50), "50.0%", "0.0%", "700"]]
    assert lines[i + 6] == "Sampling Interval = 50 seconds"


def test_scheduler_mode_follows_gwlm_management(env):
    a, clock, state = env
    start(a, clock, "vm1")
    a.create_guest("vm2")
    code, out, _ = run_cli(hpvmstatus.main, ["-S"], state)
    assert out.splitlines() == ["HPVM scheduler is running in NORMAL mode.",
                                "Startable virtual machines:", "vm2"]
    assert run_cli(hpvmmodify.main, ["-P", "vm1", "-i", "GWLM"], state)[0] == 0
    code, out, _ = run_cli(hpvmstatus.main, ["-S"], state)
    assert out.splitlines() == ["HPVM scheduler is running in CAPPED mode.",
                                "Controller process information:", "NAME=gWLM,GUEST=vm1",
                                "Startable virtual machines:", "vm2"]
