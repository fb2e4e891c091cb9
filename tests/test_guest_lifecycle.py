"""The ivm state machine on a ManualClock: Off -> Booting -> On (EFI) -> On (OS), ATTN!,
Stopping, the vmm_config.current/next/prev rotation, -A until reboot, OS detection, dynamic
memory movement, and state seen from another process."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agent.api import Agent
from agent.api.guests import GuestChanges
from agent.clock import ManualClock
from agent.errors import AgentError
from agent.guest import Entitlement
from guest_support import guide_host, make_agent


@pytest.fixture
def env(tmp_path):
    clock = ManualClock()
    agent = make_agent(tmp_path / "state", clock=clock)
    return agent, clock, tmp_path / "state"


def state_of(agent, name):
    return agent.runtime(agent.find_guest(name)).state


def test_guest_without_os_stays_in_efi(env):
    a, clock, _ = env
    a.create_guest("compass1")
    a.start_guest(a.find_guest("compass1"))
    assert state_of(a, "compass1") == "Booting"
    clock.advance(5)
    assert state_of(a, "compass1") == "On (EFI)"
    clock.advance(3600)
    assert state_of(a, "compass1") == "On (EFI)"


def test_installed_os_boots_and_is_detected_into_the_config(env):
    a, clock, state = env
    a.create_guest("compass1")
    g = a.find_guest("compass1")
    a.set_guest_model(g, os="HPUX", os_version="11.23")
    a.start_guest(g)
    clock.advance(5)
    assert state_of(a, "compass1") == "On (EFI)"
    clock.advance(30)
    assert state_of(a, "compass1") == "On (OS)"
    assert a.find_guest("compass1").os_type == "HPUX"       # shown at once
    # ... and written to vmm_config.current by the next change (spec 01 §12)
    a.modify_guest(a.find_guest("compass1"), GuestChanges(label="x"))
    text = (state / "guests" / "compass1" / "vmm_config.current").read_text()
    assert "os_type = HPUX" in text and "os_version = 11.23" in text
    kinds = [e.kind for e in a.store.events(subject=g.uuid)]
    assert "guest.os_detected" in kinds


def test_graceful_stop_passes_through_stopping_and_hard_stop_is_immediate(env):
    a, clock, _ = env
    a.create_guest("g")
    a.start_guest(a.find_guest("g"))
    clock.advance(10)
    a.stop_guest(a.find_guest("g"))
    assert state_of(a, "g") == "Stopping"
    with pytest.raises(AgentError):
        a.start_guest(a.find_guest("g"))                  # not Off yet
    clock.advance(10)
    assert state_of(a, "g") == "Off"
    a.start_guest(a.find_guest("g"))
    a.stop_guest(a.find_guest("g"), hard=True)
    assert state_of(a, "g") == "Off"


def test_attention_state(env):
    a, clock, _ = env
    a.create_guest("g")
    a.start_guest(a.find_guest("g"))
    clock.advance(6)
    a.set_guest_model(a.find_guest("g"), attention=True)
    assert state_of(a, "g") == "On (ATTN!)"
    a.set_guest_model(a.find_guest("g"), attention=False)
    assert state_of(a, "g") == "On (EFI)"


def test_static_change_to_running_guest_waits_in_next_and_rotates_at_boot(env):
    a, clock, state = env
    a.create_guest("g", GuestChanges(memory_mb=1024))
    a.start_guest(a.find_guest("g"))
    out = a.modify_guest(a.find_guest("g"), GuestChanges(memory_mb=2048, label="new"))
    assert out.info and "-r" in out.info[0]
    d = state / "guests" / "g"
    assert "memory = 1024M" in (d / "vmm_config.current").read_text()
    assert "label = new" in (d / "vmm_config.current").read_text()    # live part applied
    assert "memory = 2048M" in (d / "vmm_config.next").read_text()
    assert a.find_guest("g").memory_mb == 1024        # a running guest shows its active config
    assert a.next_config(a.find_guest("g")).memory_mb == 2048
    a.stop_guest(a.find_guest("g"), hard=True)
    assert a.find_guest("g").memory_mb == 2048        # off: the next boot's config
    a.start_guest(a.find_guest("g"))
    assert not (d / "vmm_config.next").exists()
    assert "memory = 2048M" in (d / "vmm_config.current").read_text()
    assert "memory = 1024M" in (d / "vmm_config.prev").read_text()


def test_active_only_change_lasts_until_reboot(env):
    a, clock, state = env
    a.create_guest("myguest2")
    with pytest.raises(AgentError):
        a.modify_guest(a.find_guest("myguest2"), GuestChanges(
            entitlement=Entitlement(percent=50.0, mhz=None)), active_only=True)
    a.start_guest(a.find_guest("myguest2"))
    a.modify_guest(a.find_guest("myguest2"), GuestChanges(
        entitlement=Entitlement(percent=50.0, mhz=None)), active_only=True)
    assert a.find_guest("myguest2").entitlement.percent == 50.0
    clock.advance(10)
    a.reboot_guest(a.find_guest("myguest2"))
    assert a.find_guest("myguest2").entitlement.percent == 10.0


def test_running_guest_storage_hot_add_needs_an_existing_adapter(env):
    a, clock, _ = env
    from agent.resources import parse_resource
    a.create_guest("g")
    a.start_guest(a.find_guest("g"))
    with pytest.raises(AgentError, match="needs the guest"):
        a.modify_guest(a.find_guest("g"), GuestChanges(add=[parse_resource(
            "disk:scsi::disk:/dev/rdsk/c3t1d0")]))
    a.stop_guest(a.find_guest("g"), hard=True)
    a.modify_guest(a.find_guest("g"), GuestChanges(add=[parse_resource(
        "disk:scsi::disk:/dev/rdsk/c3t1d0")]))
    a.start_guest(a.find_guest("g"))
    a.modify_guest(a.find_guest("g"), GuestChanges(add=[parse_resource(
        "dvd:scsi::disk:/dev/rdsk/c1t1d2")]))
    assert [s.device for s in a.find_guest("g").storage] == ["disk", "dvd"]


def test_exclusive_backing_store_blocks_second_start(env):
    a, clock, _ = env
    from agent.resources import parse_resource
    a.create_guest("a", GuestChanges(add=[parse_resource("disk:scsi::lv:/dev/vg01/rlvol1")]))
    # a whole disk of vg01 overlaps the LV (spec 03 §8.1): warning at create (-F for the error)
    a.create_guest("b", GuestChanges(add=[parse_resource("disk:scsi::disk:/dev/rdsk/c4t1d0")]),
                   force=True)
    a.start_guest(a.find_guest("a"))
    with pytest.raises(AgentError) as exc:
        a.start_guest(a.find_guest("b"))
    assert "    Warning 1 on item /dev/rdsk/c4t1d0: Device file '/dev/rdsk/c4t1d0' in use by " \
           "another guest." in exc.value.lines
    a.stop_guest(a.find_guest("a"), hard=True)
    a.start_guest(a.find_guest("b"))


def test_dynamic_memory_target_moves_in_chunks(env):
    a, clock, _ = env
    a.create_guest("guest1", GuestChanges(memory_mb=6144, dynmem={
        "ram_dyn_type": "any", "ram_dyn_min": 1222, "ram_dyn_max": 6144}))
    g = a.find_guest("guest1")
    a.set_guest_model(g, os="HPUX", kit="A.03.00", workload_mb=1024)
    a.start_guest(g)
    clock.advance(40)
    mem = a.runtime(g).memory
    assert (mem.boot_mb, mem.current_mb, mem.driver) == (6135, 6135, True)
    assert a.find_guest("guest1").dynmem.type == "any"
    out = a.modify_guest(a.find_guest("guest1"), GuestChanges(ram_target=2048))
    assert out.info[-1] == "Successfully began to change ram_target to 2103 MB."
    # the boot decided `any`: the driver loaded, so the configuration now says `driver`
    assert a.find_guest("guest1").dynmem.type == "driver"
    assert out.info[-2] == "Attempting to decrease memory from 6135 MB to 2103 MB."
    clock.advance(1)                                    # 256 MB/s: 4 chunks
    mem = a.runtime(g).memory
    assert mem.current_mb == 6135 - 4 * 64 and mem.moving
    clock.advance(60)
    mem = a.runtime(g).memory
    assert mem.current_mb == 2103 and not mem.moving


def test_ram_target_without_guest_kit_fails_with_the_guides_message(env):
    a, clock, _ = env
    a.create_guest("guest0", GuestChanges(dynmem={"ram_dyn_type": "driver"}))
    a.start_guest(a.find_guest("guest0"))
    clock.advance(60)
    with pytest.raises(AgentError) as exc:
        a.modify_guest(a.find_guest("guest0"), GuestChanges(ram_target=2048))
    assert exc.value.lines == ["ERROR (guest0): Query to dynamic memory driver failed: "
                               "Function is not available.", "Failed to set ram_target."]


def test_state_is_visible_across_processes(tmp_path):
    state = tmp_path / "state"
    a = make_agent(state, host=guide_host(efi_seconds=0.0, os_boot_seconds=0.0))
    a.create_guest("compass1")
    env = dict(os.environ, VMPROVIDER_STATE_DIR=str(state))
    env.pop("REQUESTS_CA_BUNDLE", None)
    code = ("from agent.api import Agent; a = Agent(); "
            "a.start_guest(a.find_guest('compass1'))")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    fresh = Agent(state)
    assert fresh.runtime(fresh.find_guest("compass1")).state == "On (EFI)"


def test_boot_host_admits_guests_in_order_until_resources_run_out(env):
    a, clock, _ = env
    for name in ("a1", "a2", "a3"):
        a.create_guest(name, GuestChanges(memory_mb=4096))
    out = a.boot_host()
    assert [g.name for g in out.value] == ["a1", "a2"]
    assert out.warnings == ["Guest a3 did not start: Insufficient free memory for guest."]


def test_new_memory_size_adjusts_the_dynamic_memory_range(env):
    a, clock, _ = env
    a.create_guest("guest1", GuestChanges(memory_mb=6144, dynmem={
        "ram_dyn_type": "any", "ram_dyn_min": 1222, "ram_dyn_max": 6144,
        "ram_dyn_target_start": 4096}))
    a.modify_guest(a.find_guest("guest1"), GuestChanges(memory_mb=3072))
    dm = a.find_guest("guest1").dynmem
    assert (dm.min_mb, dm.max_mb, dm.target_start_mb) == (1222, 3072, 3072)
    with pytest.raises(AgentError, match="ram_dyn_min"):
        a.modify_guest(a.find_guest("guest1"), GuestChanges(memory_mb=1024))


@pytest.mark.parametrize("running", [False, True])
def test_a_modify_that_changes_nothing_writes_nothing(env, running):
    """A client sending back what it read (a workload manager's loop) leaves no trace: no
    new revision, log line or event; a real change afterwards is written as usual."""
    from guest_support import fingerprint
    a, clock, state = env
    a.create_guest("compass1", GuestChanges(vcpus=1, entitlement=Entitlement(percent=20)))
    if running:
        a.start_guest(a.find_guest("compass1"))
        clock.advance(30)
    before, seq = fingerprint(state), a.store.last_seq()
    same = a.modify_guest(a.find_guest("compass1"),
                          GuestChanges(vcpus=1, entitlement=Entitlement(percent=20)))
    assert same.value.entitlement == Entitlement(percent=20)
    assert fingerprint(state) == before and a.store.last_seq() == seq
    a.modify_guest(a.find_guest("compass1"), GuestChanges(entitlement=Entitlement(percent=30)))
    assert [e.kind for e in a.store.events(since_seq=seq)] == ["guest.modify"]
    assert a.find_guest("compass1").entitlement == Entitlement(percent=30)
