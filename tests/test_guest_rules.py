"""The rules of spec 01 §31 and DECISIONS §1: accounting and conflicts."""
from __future__ import annotations

import pytest

from agent import rules
from agent.api.guests import GuestChanges
from agent.clock import ManualClock
from agent.devicedb import DeviceDatabase
from agent.errors import AgentError
from agent.guest import DynamicMemoryConfig, Entitlement, Guest
from agent.resources import parse_resource
from agent.vswitch import VswitchTable
from guest_support import HOST_MAC, guide_host, make_agent


def g(name="g", vcpus=1, memory_mb=2048, percent=10.0, mhz=None, uuid=None):
    return Guest(uuid=uuid or f"00000000-0000-0000-0000-{abs(hash(name)) % 10**12:012d}",
                 name=name, vm_number=1, serial="VM00000001", vcpus=vcpus, memory_mb=memory_mb,
                 entitlement=Entitlement(percent=None if mhz else percent, mhz=mhz))


def test_host_memory_formula_matches_the_guides_worked_example():
    host = guide_host(memory_mb=16 * 1024)
    # 750 MB + 7.5 % x 15 GB = 1.86 GB; two 3 GB guests cost 6.42 GB; 7.72 GB left
    assert rules.host_reserve_mb(host) == pytest.approx(750 + 0.075 * 15 * 1024)
    left = rules.available_memory_mb(host, [g("a", memory_mb=3072), g("b", memory_mb=3072)])
    assert round(left / 1024, 2) == 7.72


def test_available_entitlement_reproduces_hpvmstatus_s():
    host = guide_host(cpus=2, cpu_mhz=1400)
    running = [g("a"), g("b")]
    assert rules.available_entitlement_mhz(host, running, 1) == 1400
    assert rules.available_entitlement_mhz(host, running, 2) == 1260
    assert rules.available_entitlement_mhz(host, running, 3) == 0
    assert rules.max_vcpus(host) == 2
    assert rules.max_vcpus(guide_host(cpus=16)) == 4


def test_entitlement_admission():
    host = guide_host(cpus=2, cpu_mhz=1000)
    assert rules.entitlement_fits(g(vcpus=2, percent=100.0), host, [])
    assert not rules.entitlement_fits(g(vcpus=2, percent=100.0), host, [g("x", percent=5.0)])
    assert not rules.entitlement_fits(g(vcpus=1, mhz=1001), host, [])   # > one physical CPU
    assert rules.entitlement_fits(g(vcpus=1, mhz=1000), host, [])
    assert not rules.entitlement_fits(g(vcpus=3, percent=5.0), host, [])


@pytest.mark.parametrize("dm,memory,ok", [
    (DynamicMemoryConfig(type="any", min_mb=1222, max_mb=6144, target_start_mb=2048), 6144, True),
    (DynamicMemoryConfig(type="any", min_mb=2048, max_mb=1024), 6144, False),
    (DynamicMemoryConfig(type="any", min_mb=2048, target_start_mb=2048), 6144, False),
    (DynamicMemoryConfig(type="any", max_mb=2048, target_start_mb=2049), 6144, False),
    (DynamicMemoryConfig(type="any", target_start_mb=8192), 6144, False),
])
def test_dynamic_memory_constraints(dm, memory, ok):
    assert (rules.dynmem_problem(memory, dm) is None) == ok


def test_chunk_rounding_matches_the_guide():
    assert rules.boot_memory_mb(6144) == 6135 and rules.boot_memory_mb(2048) == 2039
    assert rules.effective_target_mb(6135, 2048) == 2103


@pytest.fixture
def agent(tmp_path):
    return make_agent(tmp_path / "state", clock=ManualClock())


def add(text):
    return parse_resource(text)


def test_dsk_and_rdsk_name_one_device(agent):
    agent.create_guest("a", GuestChanges(add=[add("disk:scsi::disk:/dev/rdsk/c8t2d0")]))
    with pytest.raises(AgentError, match="in use by another guest") as exc:
        agent.create_guest("b", GuestChanges(add=[add("disk:scsi::disk:/dev/dsk/c8t2d0")]))
    assert exc.value.kind == "conflict"


def test_slices_of_one_disk_do_not_conflict_but_the_whole_disk_does(agent):
    agent.create_guest("a", GuestChanges(add=[add("disk:scsi::disk:/dev/rdsk/c2t1d0s1")]))
    agent.create_guest("b", GuestChanges(add=[add("disk:scsi::disk:/dev/rdsk/c2t1d0s2")]))
    with pytest.raises(AgentError, match="in use by another guest"):
        agent.create_guest("c", GuestChanges(add=[add("disk:scsi::disk:/dev/rdsk/c2t1d0")]))


def test_lv_conflicts_with_the_disks_of_its_volume_group(agent):
    agent.create_guest("a", GuestChanges(add=[add("disk:scsi::lv:/dev/vg01/rlvol1")]))
    agent.create_guest("b", GuestChanges(add=[add("disk:scsi::lv:/dev/vg01/rlvol2")]))
    with pytest.raises(AgentError, match="in use by another guest"):
        agent.create_guest("c", GuestChanges(add=[add("disk:scsi::disk:/dev/rdsk/c4t2d0")]))


def test_file_on_a_filesystem_makes_its_device_unusable(agent, tmp_path):
    from agent.hostfacts import FileSystem
    import dataclasses
    mount = tmp_path / "fdev"
    mount.mkdir()
    (mount / "disk1").write_bytes(b"\0" * 1024)
    host = dataclasses.replace(agent.host, filesystems=agent.host.filesystems + (
        FileSystem(str(mount), "/dev/dsk/c8t2d0"),))
    agent.host = host
    agent.create_guest("a", GuestChanges(add=[add(f"disk:scsi::file:{mount}/disk1")]))
    with pytest.raises(AgentError, match="in use by another guest"):
        agent.create_guest("b", GuestChanges(add=[add("disk:scsi::disk:/dev/rdsk/c8t2d0")]))


def test_restricted_device_is_an_error_when_named_and_refuses_start(agent):
    agent.create_guest("a", GuestChanges(add=[add("disk:scsi::disk:/dev/rdsk/c3t2d0")]))
    with agent.store.transaction() as txn:
        db = DeviceDatabase.load(txn)
        db.add("rdev", "/dev/rdsk/c3t2d0", host=agent.host, force=True)
        db.save(txn)
    with pytest.raises(AgentError, match="Device file '/dev/rdsk/c3t2d0' in use by server."):
        agent.create_guest("b", GuestChanges(add=[add("disk:scsi::disk:/dev/rdsk/c3t2d0")]))
    with pytest.raises(AgentError) as exc:
        agent.start_guest(agent.find_guest("a"))
    assert "    Warning 1 on item /dev/rdsk/c3t2d0: Device file '/dev/rdsk/c3t2d0' in use by " \
           "server." in exc.value.lines


def test_host_nic_mac_and_duplicate_mac_are_errors(agent):
    host_mac = HOST_MAC.replace(":", "-")
    with pytest.raises(AgentError, match="conflicts with the VM Host"):
        agent.create_guest("a", GuestChanges(add=[add(f"network:lan:,,{host_mac}:vswitch:localnet")]))
    agent.create_guest("a", GuestChanges(add=[add("network:lan:,,02-00-00-00-00-01:vswitch:localnet")]))
    with pytest.raises(AgentError, match="already in use"):
        agent.create_guest("b", GuestChanges(add=[add("network:lan:,,02-00-00-00-00-01:vswitch:localnet")]))
    out = agent.create_guest("b", GuestChanges(add=[add(
        "network:lan:,,02-00-00-00-00-01:vswitch:localnet")]), force=True)
    assert out.warnings == []                      # -F: no checks, no warnings


def test_halted_vswitch_warns_at_create_and_refuses_start(agent):
    with agent.store.transaction() as txn:
        t = VswitchTable.load(txn)
        t.create("offnet", None)
        t.save(txn)
    out = agent.create_guest("a", GuestChanges(add=[add("network:lan::vswitch:offnet")]))
    assert out.warnings == ["on item offnet: Vswitch offnet is not active."]
    with pytest.raises(AgentError):
        agent.start_guest(agent.find_guest("a"))


def test_swap_shortfall(agent):
    agent.host = guide_host(swap_mb=3000)
    agent.create_guest("a", GuestChanges(memory_mb=2048))
    agent.start_guest(agent.find_guest("a"))
    out = agent.create_guest("b", GuestChanges(memory_mb=2048))
    assert rules.W_SWAP in out.warnings


def test_at_most_256_booted_guests():
    host = guide_host(cpus=64, cpu_mhz=100000, memory_mb=8 * 1024 * 1024, swap_mb=10 ** 8)
    running = {f"u{i}": g(f"r{i}", memory_mb=64, uuid=f"{i:08d}-0000-0000-0000-000000000000")
               for i in range(256)}
    env = rules.Environment(host, list(running.values()), running)
    assert rules.check_start(g("new", memory_mb=64), env) == [rules.W_BOOTED]
