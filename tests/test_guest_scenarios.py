"""Scenario tests: the guide's examples of hpvmcreate, hpvmstart, hpvmmodify, hpvmclone,
hpvmstop and hpvmremove, replayed through the commands themselves (spec 01 §23-§29)."""
from __future__ import annotations

import os

import pytest

from agent.api import Agent
from agent.cli import (hpvmclone, hpvmcreate, hpvmmodel, hpvmmodify, hpvmremove, hpvmstart,
                       hpvmstop)
from guest_support import init_state, run_cli


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.delenv("VMPROVIDER_STATE_DIR", raising=False)
    return init_state(tmp_path / "state")


def agent_of(state):
    return Agent(state)


def test_create_compass1_with_too_many_vcpus_warns_and_creates(state):
    code, out, err = run_cli(hpvmcreate.main, ["-P", "compass1", "-c", "3", "-r", "4GB"], state)
    assert code == 0
    assert err.splitlines() == [
        "HPVM guest compass1 configuration problems:",
        "    Warning 1: Guest's vcpus exceeds server's physical cpus.",
        "    Warning 2: Insufficient cpu resource for guest.",
        "These problems may prevent HPVM guest compass1 from starting.",
        "hpvmcreate: The creation process is continuing.",
    ]
    g = agent_of(state).find_guest("compass1")
    assert (g.vcpus, g.memory_mb, g.os_type) == (3, 4096, "UNKNOWN")
    assert agent_of(state).runtime(g).state == "Off"


def test_start_refused_then_modify_fixes_and_start_succeeds(state):
    run_cli(hpvmcreate.main, ["-P", "compass1", "-c", "3", "-r", "4GB"], state)
    code, out, err = run_cli(hpvmstart.main, ["-P", "compass1"], state)
    assert code == 1
    assert err.splitlines() == [
        "HPVM guest compass1 configuration problems:",
        "    Warning 1: Guest's vcpus exceeds server's physical cpus.",
        "    Warning 2: Insufficient cpu resource for guest.",
        "These problems may prevent HPVM guest compass1 from booting.",
        "hpvmstart: Unable to continue.",
    ]
    assert agent_of(state).runtime(agent_of(state).find_guest("compass1")).state == "Off"
    code, out, err = run_cli(hpvmmodify.main, ["-P", "compass1", "-c", "1", "-r", "2G"], state)
    assert (code, out, err) == (0, "", "")          # "hpvmmodify generates no warnings"
    code, out, err = run_cli(hpvmstart.main, ["-P", "compass1"], state)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "(C) Copyright 2000 - 2007 Hewlett-Packard Development Company, L.P."
    assert "Allocating guest memory: 2048MB" in lines
    assert "  allocating low RAM (0-80000000, 2048MB)" in lines
    assert lines[-1] == "hpvmstart: Successful start initiation of guest 'compass1'"
    a = agent_of(state)
    assert a.runtime(a.find_guest("compass1")).state in ("Booting", "On (EFI)")


def test_start_refused_for_memory_and_cpu(state):
    # the guide's second failure: not enough memory and entitlement for compass1
    init_state(state, cpus=1, memory_mb=3072)
    run_cli(hpvmcreate.main, ["-P", "big", "-r", "1G", "-e", "95", "-B", "manual"], state)
    run_cli(hpvmstart.main, ["-P", "big", "-Q"], state)
    run_cli(hpvmcreate.main, ["-P", "compass1", "-r", "2G"], state)
    code, out, err = run_cli(hpvmstart.main, ["-P", "compass1"], state)
    assert code == 1
    assert err.splitlines() == [
        "HPVM guest compass1 configuration problems:",
        "    Warning 1: Insufficient free memory for guest.",
        "    Warning 2: Insufficient cpu resource for guest.",
        "These problems may prevent HPVM guest compass1 from booting.",
        "hpvmstart: Unable to continue.",
    ]


def test_stop_prompt_default_is_no_and_y_stops(state):
    run_cli(hpvmcreate.main, ["-P", "compass1"], state)
    run_cli(hpvmstart.main, ["-P", "compass1"], state)
    code, out, err = run_cli(hpvmstop.main, ["-P", "compass1"], state, stdin="\n")
    assert code == 0
    assert out.startswith("hpvmstop: Stop the virtual machine 'compass1'? [n/y]: ")
    a = agent_of(state)
    assert a.runtime(a.find_guest("compass1")).state != "Off"
    code, out, err = run_cli(hpvmstop.main, ["-P", "compass1", "-h"], state, stdin="y\n")
    assert code == 0 and err == ""
    a = agent_of(state)
    assert a.runtime(a.find_guest("compass1")).state == "Off"


def test_stop_quiet_option_Q_has_no_output(state):
    run_cli(hpvmcreate.main, ["-P", "compass1"], state)
    run_cli(hpvmstart.main, ["-P", "compass1"], state)
    assert run_cli(hpvmstop.main, ["-P", "compass1", "-Q"], state) == (0, "", "")


def test_stop_all_requires_F_and_names_each_guest(state):
    for name in ("compass1", "compass2", "compass3"):
        run_cli(hpvmcreate.main, ["-P", name, "-r", "1G"], state)
        run_cli(hpvmstart.main, ["-P", name], state)
    code, out, err = run_cli(hpvmstop.main, ["-a"], state)
    assert code == 1 and err == "hpvmstop: Option -a requires -F\n"
    code, out, err = run_cli(hpvmstop.main, ["-a", "-F"], state)
    assert code == 0
    assert out.splitlines() == ["Stopping virtual machine compass1",
                                "Stopping virtual machine compass2",
                                "Stopping virtual machine compass3"]


def test_stop_of_an_off_guest_is_an_error(state):
    run_cli(hpvmcreate.main, ["-P", "compass1"], state)
    code, out, err = run_cli(hpvmstop.main, ["-P", "compass1", "-F"], state)
    assert code == 1
    assert err.splitlines() == ["hpvmstop: The guest 'compass1' is not running.",
                                "hpvmstop: Unable to continue."]


def test_remove_prompt_and_running_guest_refused(state):
    run_cli(hpvmcreate.main, ["-P", "compass1"], state)
    run_cli(hpvmcreate.main, ["-P", "hpux1"], state)
    run_cli(hpvmstart.main, ["-P", "hpux1"], state)
    code, out, err = run_cli(hpvmremove.main, ["-P", "hpux1"], state)
    assert code == 1
    assert err.splitlines() == ["hpvmremove: The guest is currently running, not able to remove.",
                                "hpvmremove: Unable to continue."]
    code, out, err = run_cli(hpvmremove.main, ["-P", "compass1"], state, stdin="n\n")
    assert code == 0 and out == "hpvmremove: Remove the virtual machine 'compass1'? [n/y]: n\n"
    assert [g.name for g in agent_of(state).guests()] == ["compass1", "hpux1"]
    code, out, err = run_cli(hpvmremove.main, ["-P", "compass1"], state, stdin="y\n")
    assert code == 0
    assert [g.name for g in agent_of(state).guests()] == ["hpux1"]
    assert not (state / "guests" / "compass1").exists()


def test_remove_by_number_with_F_needs_no_prompt(state):
    run_cli(hpvmcreate.main, ["-P", "myguest"], state)
    num = agent_of(state).find_guest("myguest").vm_number
    assert run_cli(hpvmremove.main, ["-F", "-p", str(num)], state) == (0, "", "")
    assert agent_of(state).guests() == []


def test_vm_numbers_are_monotonic_and_never_reused(state):
    for name in ("a", "b", "c"):
        run_cli(hpvmcreate.main, ["-P", name], state)
    run_cli(hpvmremove.main, ["-P", "c", "-F"], state)
    run_cli(hpvmcreate.main, ["-P", "d"], state)
    nums = {g.name: g.vm_number for g in agent_of(state).guests()}
    assert nums == {"a": 1, "b": 2, "d": 4}


def test_clone_inherits_and_gets_new_identity(state):
    run_cli(hpvmcreate.main, ["-P", "compass2", "-r", "1G", "-O", "hpux:11.23", "-l",
                              "test guest", "-a", "disk:scsi::disk:/dev/rdsk/c3t1d0",
                              "-a", "network:lan::vswitch:localnet", "-u", "ops:admin"], state)
    code, out, err = run_cli(hpvmclone.main, ["-P", "compass2", "-N", "compass5"], state)
    assert code == 0
    # inherited disk: the clone could not run beside its source (a warning, not an error)
    assert "Device file '/dev/rdsk/c3t1d0' in use by another guest." in err
    a = agent_of(state)
    src, clone = a.find_guest("compass2"), a.find_guest("compass5")
    assert clone.uuid != src.uuid and clone.vm_number > src.vm_number
    assert clone.serial != src.serial and clone.serial.startswith("VM") and len(clone.serial) == 10
    assert (clone.memory_mb, clone.os_type, clone.os_version, clone.label) == \
        (1024, "HPUX", "11.23", "test guest")
    assert clone.storage == src.storage
    assert clone.nics[0].mac != src.nics[0].mac            # mac_address defaults to new
    assert clone.nics[0].port != src.nics[0].port          # a different vswitch port unless -S
    assert clone.roles == src.roles


def test_clone_same_mac_and_serial_and_shared_ports(state):
    run_cli(hpvmcreate.main, ["-P", "vm1", "-a", "network:lan::vswitch:localnet"], state)
    code, out, err = run_cli(hpvmclone.main, ["-P", "vm1", "-N", "vmclone1", "-S", "-x",
                                              "mac_address=same", "-x", "serial_number=same"],
                             state)
    a = agent_of(state)
    src, clone = a.find_guest("vm1"), a.find_guest("vmclone1")
    assert clone.serial == src.serial and clone.nics[0].port == src.nics[0].port
    assert clone.nics[0].mac == src.nics[0].mac
    assert "MAC address in use for switch localnet." in err


def test_clone_duplicates_a_file_backing_store(state, tmp_path):
    disk = tmp_path / "linux1.disk"
    disk.write_bytes(b"\x01" * 4096)
    run_cli(hpvmcreate.main, ["-P", "linux1", "-a", f"disk:scsi:0,0,0:file:{disk}"], state)
    code, out, err = run_cli(hpvmclone.main, ["-P", "linux1", "-N", "linux2", "-b",
                                              "disk:scsi:0,0,0:file:"], state)
    assert code == 0, err
    copy = f"{disk}.linux2"
    assert open(copy, "rb").read() == disk.read_bytes()
    clone = agent_of(state).find_guest("linux2")
    assert clone.storage[0].location == copy and err == ""


def test_clone_name_must_be_new(state):
    run_cli(hpvmcreate.main, ["-P", "a"], state)
    run_cli(hpvmcreate.main, ["-P", "b"], state)
    code, out, err = run_cli(hpvmclone.main, ["-P", "a", "-N", "b"], state)
    assert code == 1 and "The guest 'b' already exists." in err


def test_modify_add_modify_delete_devices(state):
    run_cli(hpvmcreate.main, ["-P", "myguest2"], state)
    assert run_cli(hpvmmodify.main, ["-P", "myguest2", "-a", "disk:scsi::disk:/dev/rdsk/c3t2d0",
                                     "-a", "dvd:scsi::disk:/dev/rdsk/c1t1d2"], state)[0] == 0
    g = agent_of(state).find_guest("myguest2")
    assert [(s.device, s.bus, s.slot, s.target) for s in g.storage] == \
        [("disk", 0, 0, 0), ("dvd", 0, 0, 1)]
    assert run_cli(hpvmmodify.main, ["-P", "myguest2", "-m",
                                     "disk:scsi:0,0,0:disk:/dev/rdsk/c8t2d0"], state)[0] == 0
    g = agent_of(state).find_guest("myguest2")
    assert g.storage[0].location == "/dev/rdsk/c8t2d0"
    assert run_cli(hpvmmodify.main, ["-P", "myguest2", "-d", "dvd:scsi:0,0,1"], state)[0] == 0
    assert [s.device for s in agent_of(state).find_guest("myguest2").storage] == ["disk"]
    code, out, err = run_cli(hpvmmodify.main, ["-P", "myguest2", "-d", "disk:scsi:0,0,2"], state)
    assert code == 1
    assert err.splitlines()[0] == ("hpvmmodify: The resource 'disk:scsi:0,0,2' is not assigned "
                                   "to guest 'myguest2'.")


def test_modify_network_keeps_mac_when_moving_vswitch(state, tmp_path):
    from agent.vswitch import VswitchTable
    a = agent_of(state)
    with a.store.transaction() as txn:
        t = VswitchTable.load(txn)
        t.create("myswitch", None)
        t.save(txn)
    run_cli(hpvmcreate.main, ["-P", "myguest2", "-a",
                              "network:lan:0,2,1a-01-5a-8e-99-fa:vswitch:localnet"], state)
    code, out, err = run_cli(hpvmmodify.main, ["-P", "myguest2", "-m",
                                               "network:lan:0,2:vswitch:myswitch"], state)
    assert code == 0, err
    nic = agent_of(state).find_guest("myguest2").nics[0]
    assert (nic.vswitch, nic.mac, nic.bus, nic.slot) == ("myswitch", "1a-01-5a-8e-99-fa", 0, 2)
    assert run_cli(hpvmmodify.main, ["-P", "myguest2", "-d", "network:lan:0,2"], state)[0] == 0
    assert agent_of(state).find_guest("myguest2").nics == []


def test_rename_keeps_identity_and_swaps_the_link(state):
    run_cli(hpvmcreate.main, ["-P", "myguest1"], state)
    before = agent_of(state).find_guest("myguest1")
    assert run_cli(hpvmmodify.main, ["-P", "myguest1", "-N", "myguest2"], state) == (0, "", "")
    after = agent_of(state).find_guest("myguest2")
    assert (after.uuid, after.vm_number) == (before.uuid, before.vm_number)
    assert not (state / "guests" / "myguest1").exists()
    assert os.readlink(state / "guests" / "myguest2") == f"../uuids/{before.uuid}"


def test_rename_to_an_existing_name_is_refused(state):
    run_cli(hpvmcreate.main, ["-P", "a"], state)
    run_cli(hpvmcreate.main, ["-P", "b"], state)
    code, out, err = run_cli(hpvmmodify.main, ["-P", "a", "-N", "b"], state)
    assert code == 1 and err.startswith("hpvmmodify: The guest 'b' already exists.")


def test_roles_grant_default_oper_and_revoke(state):
    run_cli(hpvmcreate.main, ["-P", "testme", "-u", "testme1:admin", "-g", "ops"], state)
    g = agent_of(state).find_guest("testme")
    assert {(r.kind, r.name, r.role) for r in g.roles} == {("user", "testme1", "admin"),
                                                           ("group", "ops", "oper")}
    assert run_cli(hpvmmodify.main, ["-P", "testme", "-u", "-testme1"], state)[0] == 0
    assert [r.name for r in agent_of(state).find_guest("testme").roles] == ["ops"]


def test_host_boot_starts_auto_guests_only(state):
    run_cli(hpvmcreate.main, ["-P", "auto1", "-r", "1G"], state)
    run_cli(hpvmcreate.main, ["-P", "man1", "-r", "1G", "-B", "manual"], state)
    code, out, err = run_cli(hpvmmodel.main, ["boot"], state)
    assert code == 0 and out == "Starting virtual machine auto1\n"
    a = agent_of(state)
    assert a.runtime(a.find_guest("auto1")).state != "Off"
    assert a.runtime(a.find_guest("man1")).state == "Off"


def test_distributed_guest_refuses_start_and_stop_without_F(state):
    run_cli(hpvmcreate.main, ["-P", "sg1", "-i", "SG_sg1", "-j", "1"], state)
    code, out, err = run_cli(hpvmstart.main, ["-P", "sg1"], state)
    assert code == 1 and "distributed guest" in err
    a = agent_of(state)
    a.start_guest(a.find_guest("sg1"), boot=True)
    code, out, err = run_cli(hpvmstop.main, ["-P", "sg1", "-Q"], state)
    assert code == 1 and "distributed guest" in err
    assert run_cli(hpvmstop.main, ["-P", "sg1", "-F"], state)[0] == 0


def test_command_logs_record_the_commands(state):
    run_cli(hpvmcreate.main, ["-P", "compass1", "-l", "my label"], state)
    a = agent_of(state)
    g = a.find_guest("compass1")
    assert g.label == "my label"
    per_guest = (state / "guests" / "compass1" / "command.log").read_text()
    assert "hpvmcreate -P compass1 -l 'my label'" in per_guest
    assert "hpvmcreate -P compass1" in (state / "common" / "command.log").read_text()
    assert "Guest created" in (state / "guests" / "compass1" / "log").read_text()
    kinds = [e.kind for e in a.store.events(subject=g.uuid)]
    assert kinds == ["guest.create"]


def test_console_scripts_work_as_separate_processes(state):
    import shutil
    import subprocess
    import sys
    bindir = os.path.dirname(sys.executable)
    exe = os.path.join(bindir, "hpvmcreate")
    if not os.path.exists(exe):
        exe = shutil.which("hpvmcreate")
    assert exe, "the hpvmcreate console script is installed with the project"
    env = {k: v for k, v in os.environ.items()
           if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env["VMPROVIDER_STATE_DIR"] = str(state)
    r = subprocess.run([exe, "-P", "compass1", "-c", "3", "-r", "4GB"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "hpvmcreate: The creation process is continuing." in r.stderr
    r = subprocess.run([os.path.join(os.path.dirname(exe), "hpvmstart"), "-P", "compass1"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.endswith("hpvmstart: Unable to continue.\n")
    r = subprocess.run([os.path.join(os.path.dirname(exe), "hpvmcreate"), "-P", "x", "-c", "9"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr.count("\n")) == (1, 1)
