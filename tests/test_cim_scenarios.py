"""The guide's chapter 3 (spec 01 §23-§29), plus vswitches (hpvmnet) and the device database
(hpvmdevmgmt), done twice against the same kind of store: once with the hpvm commands on one
state folder, once through CIM (pywbem over HTTPS to the real server) on another. After every
step the two stores must agree: the guests' configurations (vmm_config.current/.next/.prev),
their hpvmstatus summary row, -V and -d, the vswitch table and the device database, up to
what legitimately differs (UUIDs, serial numbers, generated MACs, VM numbers, pids; see
tests/hpvm_cim_support.py). The warnings a CIM method returns in its OUT Warnings parameter
are the command's warning lines, and a refusal carries the command's text.

Each scenario works on its own guests and vswitches, so one that fails does not change what
the others compare; the two state folders live for the module (one server).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
import pywbem

from agent.cli import (hpvmclone, hpvmcreate, hpvmdevmgmt, hpvmmodel, hpvmmodify, hpvmnet,
                       hpvmremove, hpvmstart, hpvmstop)
from hpvm_cim_support import (TIMINGS, cli, disk_rasd, guest_state, guest_view, host_view,
                              mem_rasd, nic_rasd, proc_rasd, spec_rasd, start_server, vssd,
                              wait_state)
from guest_support import init_state

pytestmark = pytest.mark.slow

SERVICE = "HPVM_VirtualSystemManagementService"
_BLOCK_PREFIXES = ("HPVM guest ", "    Warning", "These problems")


# -- the two routes -----------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a step did, in terms both routes share."""

    ok: bool
    warnings: list[str] = field(default_factory=list)
    error: list[str] = field(default_factory=list)


def cli_outcome(prog: str, code: int, out: str, err: str, *, info: bool = False) -> Outcome:
    """A command's result: its warning block (and for hpvmmodify its notes on stdout), or
    its refusal without the `<prog>: ` prefixes and the closing `Unable to continue.`"""
    lines = err.splitlines()
    if code == 0:
        warnings = [ln for ln in lines if ln.startswith(_BLOCK_PREFIXES)]
        if info:
            warnings += out.splitlines()
        return Outcome(True, warnings)
    if lines and lines[-1].rstrip(".") == f"{prog}: Unable to continue":
        lines = lines[:-1]
    return Outcome(False, error=[ln[len(prog) + 2:] if ln.startswith(f"{prog}: ") else ln
                                 for ln in lines])


class Cim:
    """The CIM route: methods on the management service, guests and device database."""

    def __init__(self, conn: pywbem.WBEMConnection):
        self.conn = conn
        self.last_job = None

    @property
    def service(self):
        names = self.conn.EnumerateInstanceNames(SERVICE)
        assert len(names) == 1, names
        return names[0]

    def guest(self, name: str) -> pywbem.CIMInstanceName:
        for inst in self.conn.EnumerateInstances("HPVM_Guest", PropertyList=["ElementName"]):
            if inst["ElementName"] == name:
                return inst.path
        raise AssertionError(f"CIM shows no HPVM_Guest named {name}")

    def uuid(self, name: str) -> str:
        return self.guest(name).keybindings["Name"]

    def vssd_path(self, name: str) -> pywbem.CIMInstanceName:
        return pywbem.CIMInstanceName("HPVM_VirtualSystemSettingData",
                                      {"InstanceID": f"HPVM:{self.uuid(name)}"},
                                      namespace="root/cimv2")

    def switch(self, name: str) -> pywbem.CIMInstanceName:
        return pywbem.CIMInstanceName("HPVM_Switch", {"CreationClassName": "HPVM_Switch",
                                                      "Name": name}, namespace="root/cimv2")

    def invoke(self, target, method: str, params: list) -> Outcome:
        try:
            rv, out = self.conn.InvokeMethod(method, target, Params=params)
        except pywbem.CIMError as exc:
            return Outcome(False, error=exc.status_description.splitlines())
        warnings = list(out.get("Warnings") or [])
        self.last_job = out.get("Job")
        if int(rv) == 4097:
            return Outcome(False, error=warnings)
        assert int(rv) in (0, 4096), (method, rv, out)
        return Outcome(True, warnings)

    def svc(self, method: str, **params) -> Outcome:
        return self.invoke(self.service, method, list(params.items()))

    def state_change(self, name: str, requested: int) -> Outcome:
        return self.invoke(self.guest(name), "RequestStateChange",
                           [("RequestedState", pywbem.Uint16(requested))])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(commands' state folder, CIM route, the server): both fresh, the same host."""
    base = tmp_path_factory.mktemp("scenarios")
    cli_dir = init_state(base / "cli-state", **TIMINGS)
    server = start_server(base / "cim")
    try:
        yield cli_dir, Cim(server.conn()), server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "VMPROVIDER_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)


def step(world, prog_main, argv, cim_call, *, info=False, stdin="",
         bad_input=False) -> Outcome:
    """Run one step both ways; the outcomes must be the same. Returns the commands' one.
    `bad_input`: the command's one line may come after the CIM error's `Param (Class).Prop: `
    locator, which the command line has no need of."""
    cli_dir, cim, server = world
    prog = prog_main.__module__.rsplit(".", 1)[-1]
    code, out, err = cli(prog_main, argv, cli_dir, stdin)
    by_cli = cli_outcome(prog, code, out, err, info=info)
    by_cim = cim_call(cim)
    if bad_input:
        assert not by_cli.ok and len(by_cli.error) == 1, by_cli
        assert not by_cim.ok and len(by_cim.error) == 1 and \
            by_cim.error[0].endswith(": " + by_cli.error[0]), \
            f"{prog} {' '.join(argv)}\n  commands: {by_cli}\n  CIM:      {by_cim}"
        return by_cli
    assert by_cim == by_cli, f"{prog} {' '.join(argv)}\n  commands: {by_cli}\n  CIM:      {by_cim}"
    return by_cli


def disks_dirs(world):
    """Each route's own folder for file backing stores (hpvmclone -b writes copies there)."""
    cli_dir, _, server = world
    dirs = (cli_dir.parent / "cli-disks", server.state_dir.parent / "disks")
    for d in dirs:
        d.mkdir(exist_ok=True)
    return dirs


def same_guests(world, *names):
    cli_dir, _, server = world
    a_disks, b_disks = disks_dirs(world)
    a = guest_view(cli_dir, list(names), {str(a_disks): "<DISKS>"})
    b = guest_view(server.state_dir, list(names), {str(b_disks): "<DISKS>"})
    for key in a:
        assert b.get(key) == a[key], \
            f"{key} differs\n--- commands:\n{a[key]}\n--- CIM:\n{b.get(key)}"
    assert a.keys() == b.keys()


def same_host(world):
    cli_dir, _, server = world
    a_disks, b_disks = disks_dirs(world)
    a = host_view(cli_dir, {str(a_disks): "<DISKS>"})
    b = host_view(server.state_dir, {str(b_disks): "<DISKS>"})
    for key in a:
        assert b[key] == a[key], f"{key} differs\n--- commands:\n{a[key]}\n--- CIM:\n{b[key]}"


def both_states(world, name):
    cli_dir, _, server = world
    return guest_state(cli_dir, name), guest_state(server.state_dir, name)


# -- vswitches (hpvmnet), first: the guests below plug into them --------------------------------

def test_vswitch_create_boot_halt_delete(world):
    out = step(world, hpvmnet.main, ["-c", "-S", "myswitch", "-n", "0"],
               lambda c: c.svc("CreateVirtualSwitch", SwitchName="myswitch",
                               HostNIC=pywbem.Uint32(0)))
    assert out.ok
    assert step(world, hpvmnet.main, ["-b", "-S", "myswitch"],
                lambda c: c.svc("StartVirtualSwitch", AffectedSwitch=c.switch("myswitch"))).ok
    assert step(world, hpvmnet.main, ["-c", "-S", "tmpsw"],
                lambda c: c.svc("CreateVirtualSwitch", SwitchName="tmpsw")).ok
    assert step(world, hpvmnet.main, ["-b", "-S", "tmpsw"],
                lambda c: c.svc("StartVirtualSwitch", AffectedSwitch=c.switch("tmpsw"))).ok
    same_host(world)
    # the same name again is refused with hpvmnet's text
    out = step(world, hpvmnet.main, ["-c", "-S", "myswitch", "-n", "0"],
               lambda c: c.svc("CreateVirtualSwitch", SwitchName="myswitch",
                               HostNIC=pywbem.Uint32(0)))
    assert not out.ok and out.error
    assert step(world, hpvmnet.main, ["-h", "-S", "tmpsw", "-Q"],
                lambda c: c.svc("HaltVirtualSwitch", AffectedSwitch=c.switch("tmpsw"))).ok
    same_host(world)
    assert step(world, hpvmnet.main, ["-d", "-S", "tmpsw", "-Q"],
                lambda c: c.svc("DeleteVirtualSwitch", AffectedSwitch=c.switch("tmpsw"))).ok
    same_host(world)


# -- §23, §25, §26, §28, §29: compass1 as the guide walks it ---------------------------------

def test_compass1_create_start_modify_stop_remove(world):
    cli_dir, cim, server = world
    # §23: created with warnings, for a future configuration
    out = step(world, hpvmcreate.main, ["-P", "compass1", "-c", "3", "-r", "4GB"],
               lambda c: c.svc("DefineSystem", SystemSettings=vssd("compass1"),
                               ResourceSettings=[proc_rasd(3), mem_rasd(4096)]))
    assert out.ok and out.warnings == [
        "HPVM guest compass1 configuration problems:",
        "    Warning 1: Guest's vcpus exceeds server's physical cpus.",
        "    Warning 2: Insufficient cpu resource for guest.",
        "These problems may prevent HPVM guest compass1 from starting."]
    same_guests(world, "compass1")
    # a second guest of that name is refused with hpvmcreate's text
    out = step(world, hpvmcreate.main, ["-P", "compass1"],
               lambda c: c.svc("DefineSystem", SystemSettings=vssd("compass1")))
    assert not out.ok and out.error
    # §25: the start is refused with the booting block
    out = step(world, hpvmstart.main, ["-P", "compass1"], lambda c: c.state_change("compass1", 2))
    assert not out.ok and out.error[-1] == \
        "These problems may prevent HPVM guest compass1 from booting."
    # §26: hpvmmodify -c 1 -r 2G generates no warnings
    out = step(world, hpvmmodify.main, ["-P", "compass1", "-c", "1", "-r", "2G"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   proc_rasd(1, instance_id=f"HPVM:{c.uuid('compass1')}:cpu"),
                   mem_rasd(2048, instance_id=f"HPVM:{c.uuid('compass1')}:memory")]),
               info=True)
    assert out == Outcome(True, [])
    same_guests(world, "compass1")
    # §25: now it starts, On (EFI) (no OS installed)
    assert step(world, hpvmstart.main, ["-P", "compass1"],
                lambda c: c.state_change("compass1", 2)).ok
    assert wait_state(cli_dir, "compass1", "On (EFI)")
    assert wait_state(server.state_dir, "compass1", "On (EFI)")
    same_guests(world, "compass1")
    # §26: a DVD added to the running guest
    out = step(world, hpvmmodify.main, ["-P", "compass1", "-a", "dvd:scsi::disk:/dev/rdsk/c1t1d2"],
               lambda c: c.svc("AddResourceSettings", AffectedConfiguration=c.vssd_path("compass1"),
                               ResourceSettings=[disk_rasd("dvd", "disk", "/dev/rdsk/c1t1d2")]),
               info=True)
    same_guests(world, "compass1")
    # vCPUs and memory of a running guest wait for its next boot (vmm_config.next), with
    # hpvmmodify's note among the Warnings
    out = step(world, hpvmmodify.main, ["-P", "compass1", "-c", "2", "-r", "3G"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   proc_rasd(2, instance_id=f"HPVM:{c.uuid('compass1')}:cpu"),
                   mem_rasd(3072, instance_id=f"HPVM:{c.uuid('compass1')}:memory")]),
               info=True)
    assert out.ok and any("next boots" in w for w in out.warnings), out
    assert (server.state_dir / "guests" / "compass1" / "vmm_config.next").exists()
    same_guests(world, "compass1")
    # §29: a running guest cannot be removed
    out = step(world, hpvmremove.main, ["-P", "compass1", "-Q"],
               lambda c: c.svc("DestroySystem", AffectedSystem=c.guest("compass1")))
    assert not out.ok and out.error
    assert both_states(world, "compass1") == ("On (EFI)", "On (EFI)")
    # §28: graceful stop (Stopping, then Off)
    assert step(world, hpvmstop.main, ["-P", "compass1", "-Q"],
                lambda c: c.state_change("compass1", 4)).ok
    assert wait_state(cli_dir, "compass1", "Off")
    assert wait_state(server.state_dir, "compass1", "Off")
    same_guests(world, "compass1")
    # stopping an Off guest: the command's refusal; CIM answers 4097 with that text
    out = step(world, hpvmstop.main, ["-P", "compass1", "-Q"],
               lambda c: c.state_change("compass1", 4))
    assert out == Outcome(False, error=["The guest 'compass1' is not running."])
    # §29: removed; its configuration goes
    assert step(world, hpvmremove.main, ["-P", "compass1", "-Q"],
                lambda c: c.svc("DestroySystem", AffectedSystem=c.guest("compass1"))).ok
    same_guests(world, "compass1")
    assert not (server.state_dir / "guests" / "compass1").exists()
    same_host(world)


# -- §23 with every option, §26 every kind of change, §27 clone, §28 hard stop ----------------

DM_OPTS = ["-x", "dynamic_memory_control=1", "-x", "ram_dyn_type=any", "-x", "ram_dyn_min=1G",
           "-x", "ram_dyn_max=3G", "-x", "ram_dyn_target_start=2G"]


def test_create_with_options_then_modify_each_way(world):
    cli_dir, cim, server = world
    # bad input: the command's one line, nothing created
    step(world, hpvmcreate.main, ["-P", "compass2", "-a", "dvd:scsi::null:"],
         lambda c: c.svc("DefineSystem", SystemSettings=vssd("compass2"),
                         ResourceSettings=[spec_rasd("dvd:scsi::null:")]), bad_input=True)
    same_guests(world, "compass2")
    out = step(world, hpvmcreate.main,
               ["-P", "compass2", "-O", "hpux:11.23", "-l", "payroll test", "-B", "manual",
                "-c", "2", "-e", "20", "-r", "3G", "-u", "alice:admin", "-g", "staff",
                "-a", "disk:scsi::disk:/dev/rdsk/c1t2d0", "-a", "network:lan::vswitch:myswitch",
                "-a", "dvd:scsi::null:/usr/share"] + DM_OPTS,
               lambda c: c.svc("DefineSystem",
                               SystemSettings=vssd("compass2", OSType="HPUX", OSVersion="11.23",
                                                   VMLabel="payroll test",
                                                   AutomaticStartupAction=2,
                                                   AdminUsers=["alice"], OperGroups=["staff"]),
                               ResourceSettings=[
                                   proc_rasd(2, 20), mem_rasd(3072, dm_control=True,
                                                              dm_type="any", dm_min=1024,
                                                              dm_max=3072, dm_target_start=2048),
                                   disk_rasd("disk", "disk", "/dev/rdsk/c1t2d0"),
                                   nic_rasd("myswitch"),
                                   spec_rasd("dvd:scsi::null:/usr/share")]))
    assert out.ok
    same_guests(world, "compass2")
    same_host(world)
    uid = lambda c: c.uuid("compass2")          # noqa: E731
    # -d: the DVD goes
    remove_dvd = lambda c: c.svc("RemoveResourceSettings", ResourceSettings=[   # noqa: E731
        pywbem.CIMInstanceName("HPVM_StorageAllocationSettingData",
                               {"InstanceID": f"HPVM:{uid(c)}:dvd:0,0,1"},
                               namespace="root/cimv2")])
    out = step(world, hpvmmodify.main, ["-P", "compass2", "-d", "dvd:scsi:0,0,1"], remove_dvd,
               info=True)
    assert out.ok
    same_guests(world, "compass2")
    # -m: the disk gets another backing store at the same address
    out = step(world, hpvmmodify.main,
               ["-P", "compass2", "-m", "disk:scsi:0,0,0:disk:/dev/rdsk/c2t1d0s2"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   disk_rasd("disk", "disk", "/dev/rdsk/c2t1d0s2",
                             instance_id=f"HPVM:{uid(c)}:disk:0,0,0")]), info=True)
    assert out.ok
    same_guests(world, "compass2")
    # -a: a file-backed disk on a missing file: a warning, the disk is added
    out = step(world, hpvmmodify.main,
               ["-P", "compass2", "-a", "disk:scsi::file:/nonexistent/c2.img"],
               lambda c: c.svc("AddResourceSettings", AffectedConfiguration=c.vssd_path("compass2"),
                               ResourceSettings=[disk_rasd("disk", "file", "/nonexistent/c2.img")]),
               info=True)
    assert out.ok and out.warnings
    same_guests(world, "compass2")
    # -c -e: vCPUs and entitlement
    out = step(world, hpvmmodify.main, ["-P", "compass2", "-c", "1", "-e", "50"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   proc_rasd(1, 50, instance_id=f"HPVM:{uid(c)}:cpu")]), info=True)
    assert out.ok
    # -r and -x dynamic memory keywords
    out = step(world, hpvmmodify.main,
               ["-P", "compass2", "-r", "4G", "-x", "ram_dyn_max=4G", "-x", "ram_dyn_min=1536M",
                "-x", "ram_dyn_type=driver"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   mem_rasd(4096, instance_id=f"HPVM:{uid(c)}:memory", dm_type="driver",
                            dm_min=1536, dm_max=4096)]), info=True)
    assert out.ok
    same_guests(world, "compass2")
    # a dynamic memory setting that breaks min < max: the same refusal, nothing changed
    out = step(world, hpvmmodify.main, ["-P", "compass2", "-x", "ram_dyn_min=5G"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   mem_rasd(None, instance_id=f"HPVM:{uid(c)}:memory", dm_min=5120)]), info=True)
    assert not out.ok
    same_guests(world, "compass2")
    # -l -B -u (revoke) -g: the VSSD
    out = step(world, hpvmmodify.main,
               ["-P", "compass2", "-l", "payroll prod", "-B", "auto", "-u", "-alice",
                "-g", "staff:admin"],
               lambda c: c.svc("ModifySystemSettings", SystemSettings=vssd(
                   None, InstanceID=f"HPVM:{uid(c)}", VMLabel="payroll prod",
                   AutomaticStartupAction=4, AdminUsers=[], AdminGroups=["staff"],
                   OperGroups=[])), info=True)
    assert out.ok
    same_guests(world, "compass2")
    # -N: renamed; the UUID stays
    before = cim.uuid("compass2")
    out = step(world, hpvmmodify.main, ["-P", "compass2", "-N", "payroll1"],
               lambda c: c.svc("ModifySystemSettings", SystemSettings=vssd(
                   "payroll1", InstanceID=f"HPVM:{uid(c)}")), info=True)
    assert out.ok
    assert cim.uuid("payroll1") == before
    same_guests(world, "compass2", "payroll1")
    same_host(world)


def test_clone_start_hard_stop_remove(world):
    cli_dir, cim, server = world
    out = step(world, hpvmcreate.main,
               ["-P", "linux1", "-O", "linux", "-r", "1G", "-B", "manual",
                "-a", "disk:scsi::lv:/dev/vg01/rlvol1", "-a", "network:lan::vswitch:myswitch"],
               lambda c: c.svc("DefineSystem",
                               SystemSettings=vssd("linux1", OSType="LINUX",
                                                   AutomaticStartupAction=2),
                               ResourceSettings=[mem_rasd(1024),
                                                 spec_rasd("disk:scsi::lv:/dev/vg01/rlvol1"),
                                                 nic_rasd("myswitch")]))
    assert out.ok
    same_guests(world, "linux1")
    # §27: the clone inherits everything; the shared backing store is a warning
    out = step(world, hpvmclone.main, ["-P", "linux1", "-N", "linux2"],
               lambda c: c.svc("CloneSystem", SourceSystem=c.guest("linux1"),
                               SystemSettings=vssd("linux2")))
    assert out.ok and out.warnings
    same_guests(world, "linux1", "linux2")
    # a clone with other characteristics, leaving the disk out (-d) and keeping the serial
    out = step(world, hpvmclone.main,
               ["-P", "linux1", "-N", "linux3", "-l", "third", "-c", "2", "-r", "2G",
                "-d", "disk:scsi:0,0,0", "-x", "serial_number=same"],
               lambda c: c.svc("CloneSystem", SourceSystem=c.guest("linux1"),
                               SystemSettings=vssd("linux3", VMLabel="third"),
                               ResourceSettings=[
                                   proc_rasd(2, instance_id=f"HPVM:{c.uuid('linux1')}:cpu"),
                                   mem_rasd(2048, instance_id=f"HPVM:{c.uuid('linux1')}:memory")],
                               RemovedResourceSettings=[pywbem.CIMInstanceName(
                                   "HPVM_StorageAllocationSettingData",
                                   {"InstanceID": f"HPVM:{c.uuid('linux1')}:disk:0,0,0"},
                                   namespace="root/cimv2")],
                               NewSerialNumber=False))
    assert out.ok
    same_guests(world, "linux1", "linux3")
    # the name of an existing guest is refused
    out = step(world, hpvmclone.main, ["-P", "linux1", "-N", "linux2"],
               lambda c: c.svc("CloneSystem", SourceSystem=c.guest("linux1"),
                               SystemSettings=vssd("linux2")))
    assert not out.ok and out.error
    # start the clone, then a hard stop (-h): Off at once
    assert step(world, hpvmstart.main, ["-P", "linux2"],
                lambda c: c.state_change("linux2", 2)).ok
    assert wait_state(cli_dir, "linux2", "On (EFI)")
    assert wait_state(server.state_dir, "linux2", "On (EFI)")
    # the source cannot start while its clone holds the shared disk
    out = step(world, hpvmstart.main, ["-P", "linux1"], lambda c: c.state_change("linux1", 2))
    assert not out.ok and out.error
    assert step(world, hpvmstop.main, ["-P", "linux2", "-h", "-Q"],
                lambda c: c.state_change("linux2", 3)).ok
    assert both_states(world, "linux2") == ("Off", "Off")
    same_guests(world, "linux1", "linux2", "linux3")
    for name in ("linux3", "linux2"):
        assert step(world, hpvmremove.main, ["-P", name, "-Q"],
                    lambda c, n=name: c.svc("DestroySystem", AffectedSystem=c.guest(n))).ok
    same_guests(world, "linux1", "linux2", "linux3")
    same_host(world)


def test_check_only_and_force(world):
    # -s / CheckOnly: the same warnings, nothing created
    out = step(world, hpvmcreate.main, ["-P", "check1", "-s", "-c", "4", "-r", "4G"],
               lambda c: c.svc("DefineSystem", SystemSettings=vssd("check1"),
                               ResourceSettings=[proc_rasd(4), mem_rasd(4096)], CheckOnly=True))
    assert out.ok and out.warnings
    same_guests(world, "check1")
    assert not (world[2].state_dir / "guests" / "check1").exists()
    # -F / Force: created without checks and without warnings
    out = step(world, hpvmcreate.main, ["-P", "force1", "-F", "-c", "4", "-r", "4G",
                                        "-B", "manual"],
               lambda c: c.svc("DefineSystem", SystemSettings=vssd("force1",
                                                                   AutomaticStartupAction=2),
                               ResourceSettings=[proc_rasd(4), mem_rasd(4096)], Force=True))
    assert out == Outcome(True, [])
    same_guests(world, "force1")
    # hpvmmodify -s: the warnings of the change, the configuration unchanged
    out = step(world, hpvmmodify.main, ["-P", "force1", "-s", "-r", "8G"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   mem_rasd(8192, instance_id=f"HPVM:{c.uuid('force1')}:memory")],
                   CheckOnly=True), info=True)
    assert out.ok
    same_guests(world, "force1")
    assert step(world, hpvmremove.main, ["-P", "force1", "-Q"],
                lambda c: c.svc("DestroySystem", AffectedSystem=c.guest("force1"))).ok


def test_ram_target_moves_a_running_guests_memory(world):
    """hpvmmodify -x ram_target (dynamic memory, an HP-UX guest with the guest kit) and the
    memory RASD's TargetMemory, on a running guest."""
    cli_dir, cim, server = world
    out = step(world, hpvmcreate.main, ["-P", "dm1", "-O", "hpux", "-r", "3G", "-B", "manual",
                                        "-x", "dynamic_memory_control=1", "-x", "ram_dyn_type=any",
                                        "-x", "ram_dyn_min=1G", "-x", "ram_dyn_max=3G"],
               lambda c: c.svc("DefineSystem",
                               SystemSettings=vssd("dm1", OSType="HPUX", AutomaticStartupAction=2),
                               ResourceSettings=[mem_rasd(3072, dm_control=True, dm_type="any",
                                                          dm_min=1024, dm_max=3072)]))
    assert out.ok
    # ram_target is refused while the guest is Off, with the same text
    out = step(world, hpvmmodify.main, ["-P", "dm1", "-x", "ram_target=2G"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   mem_rasd(None, instance_id=f"HPVM:{c.uuid('dm1')}:memory",
                            target=2048)]), info=True)
    assert not out.ok and out.error
    for state_dir in (cli_dir, server.state_dir):      # the model: an OS with the guest kit
        code, _, err = cli(hpvmmodel.main, ["set", "-P", "dm1", "-O", "hpux:11.23",
                                            "-K", "A.03.00"], state_dir)
        assert code == 0, err
    assert step(world, hpvmstart.main, ["-P", "dm1"], lambda c: c.state_change("dm1", 2)).ok
    assert wait_state(cli_dir, "dm1", "On (OS)")
    assert wait_state(server.state_dir, "dm1", "On (OS)")
    out = step(world, hpvmmodify.main, ["-P", "dm1", "-x", "ram_target=2G"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   mem_rasd(None, instance_id=f"HPVM:{c.uuid('dm1')}:memory",
                            target=2048)]), info=True)
    assert out.ok and out.warnings[-1].startswith(
        "Successfully began to change ram_target to "), out
    cli_view, cim_view = guest_view(cli_dir, ["dm1"]), guest_view(server.state_dir, ["dm1"])
    for key in ("dm1 vmm_config.current", "dm1 vmm_config.next"):
        assert cim_view[key] == cli_view[key], key
    # hpvmmodify -A / ActiveOnly: the running guest only; the lasting configuration waits
    out = step(world, hpvmmodify.main, ["-A", "-P", "dm1", "-e", "25"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   proc_rasd(None, 25, instance_id=f"HPVM:{c.uuid('dm1')}:cpu")],
                   ActiveOnly=True), info=True)
    assert out.ok
    cli_view, cim_view = guest_view(cli_dir, ["dm1"]), guest_view(server.state_dir, ["dm1"])
    assert "entitlement = 25.0%" in cli_view["dm1 vmm_config.current"]
    for key in ("dm1 vmm_config.current", "dm1 vmm_config.next"):
        assert cim_view[key] == cli_view[key], key
    assert step(world, hpvmstop.main, ["-P", "dm1", "-h", "-Q"],
                lambda c: c.state_change("dm1", 3)).ok
    same_guests(world, "dm1")


def test_clone_duplicates_a_file_backing_store(world):
    """§27 hpvmclone -b: the source's disk file is copied for the clone, to a named file or
    beside the original (`<file>.<clone>`)."""
    a_disks, b_disks = disks_dirs(world)
    data = os.urandom(64 * 1024)
    for d in (a_disks, b_disks):
        (d / "boot1.img").write_bytes(data)

    out = step(world, hpvmcreate.main, ["-P", "boot1", "-B", "manual", "-a",
                                        f"disk:scsi::file:{a_disks / 'boot1.img'}"],
               lambda c: c.svc("DefineSystem",
                               SystemSettings=vssd("boot1", AutomaticStartupAction=2),
                               ResourceSettings=[
                                   spec_rasd(f"disk:scsi::file:{b_disks / 'boot1.img'}")]))
    assert out.ok
    src = lambda c: f"HPVM:{c.uuid('boot1')}:disk:0,0,0"       # noqa: E731
    # -b with the copy's file named
    out = step(world, hpvmclone.main, ["-P", "boot1", "-N", "boot2", "-b",
                                       f"disk:scsi:0,0,0:file:{a_disks / 'boot2.img'}"],
               lambda c: c.svc("CloneSystem", SourceSystem=c.guest("boot1"),
                               SystemSettings=vssd("boot2"), ResourceSettings=[
                                   disk_rasd("disk", "file", str(b_disks / "boot2.img"),
                                             instance_id=src(c))]))
    assert out.ok
    # -b with the location left empty: beside the original
    out = step(world, hpvmclone.main, ["-P", "boot1", "-N", "boot3", "-b", "disk:scsi:0,0,0:file:"],
               lambda c: c.svc("CloneSystem", SourceSystem=c.guest("boot1"),
                               SystemSettings=vssd("boot3"), ResourceSettings=[
                                   pywbem.CIMInstance("HPVM_StorageAllocationSettingData",
                                                      {"InstanceID": src(c)})]))
    assert out.ok
    for d in (a_disks, b_disks):
        assert (d / "boot2.img").read_bytes() == data
        assert (d / "boot1.img.boot3").read_bytes() == data
    same_guests(world, "boot1", "boot2", "boot3")
    same_host(world)


def test_changing_a_device_the_guest_lacks_is_refused_with_hpvmmodify_text(world):
    assert step(world, hpvmcreate.main, ["-P", "nodev1", "-a", "dvd:scsi::null:/usr/share"],
                lambda c: c.svc("DefineSystem", SystemSettings=vssd("nodev1"),
                                ResourceSettings=[spec_rasd("dvd:scsi::null:/usr/share")])).ok
    uid = lambda c: c.uuid("nodev1")              # noqa: E731
    out = step(world, hpvmmodify.main, ["-P", "nodev1", "-d", "dvd:scsi:0,0,5"],
               lambda c: c.svc("RemoveResourceSettings", ResourceSettings=[
                   pywbem.CIMInstanceName("HPVM_StorageAllocationSettingData",
                                          {"InstanceID": f"HPVM:{uid(c)}:dvd:0,0,5"},
                                          namespace="root/cimv2")]), info=True)
    assert out == Outcome(False, error=[
        "The resource 'dvd:scsi:0,0,5' is not assigned to guest 'nodev1'."])
    out = step(world, hpvmmodify.main, ["-P", "nodev1", "-m", "dvd:scsi:0,0,5:null:/usr/lib"],
               lambda c: c.svc("ModifyResourceSettings", ResourceSettings=[
                   spec_rasd("dvd:scsi::null:/usr/lib",
                             instance_id=f"HPVM:{uid(c)}:dvd:0,0,5")]), info=True)
    assert not out.ok
    same_guests(world, "nodev1")


# -- hpvmdevmgmt -a / -m / -d through CreateInstance / ModifyInstance / DeleteInstance -----------

def _entry(cls, kind, name, **props):
    inst = pywbem.CIMInstance(cls, dict(InstanceID=f"HPVM:{kind}:{name}", **props))
    inst.path = pywbem.CIMInstanceName(cls, {"InstanceID": f"HPVM:{kind}:{name}"},
                                       namespace="root/cimv2")
    return inst


def _db_call(fn) -> Outcome:
    try:
        fn()
    except pywbem.CIMError as exc:
        return Outcome(False, error=exc.status_description.splitlines())
    return Outcome(True)


def test_device_database_add_modify_delete(world):
    gdev, rdev = "HPVM_GuestIODeviceDB", "HPVM_RestrictedIODeviceDB"
    dev = "/dev/rdsk/c1t1d3"
    assert step(world, hpvmdevmgmt.main, ["-a", f"gdev:{dev}:attr:SHARE=YES"],
                lambda c: _db_call(lambda: c.conn.CreateInstance(
                    pywbem.CIMInstance(gdev, {"EntryName": dev, "Shared": True})))).ok
    assert step(world, hpvmdevmgmt.main, ["-m", f"gdev:{dev}:attr:OWNER=payroll"],
                lambda c: _db_call(lambda: c.conn.ModifyInstance(
                    _entry(gdev, "gdev", dev, Attributes=["OWNER=payroll"]),
                    PropertyList=["Attributes"]))).ok
    assert step(world, hpvmdevmgmt.main, ["-a", "rdev:/dev/rdsk/c1t1d4"],
                lambda c: _db_call(lambda: c.conn.CreateInstance(
                    pywbem.CIMInstance(rdev, {"EntryName": "/dev/rdsk/c1t1d4"})))).ok
    same_host(world)
    # the same entry again is refused with hpvmdevmgmt's text
    out = step(world, hpvmdevmgmt.main, ["-a", "rdev:/dev/rdsk/c1t1d4"],
               lambda c: _db_call(lambda: c.conn.CreateInstance(
                   pywbem.CIMInstance(rdev, {"EntryName": "/dev/rdsk/c1t1d4"}))))
    assert not out.ok and out.error
    for kind, cls, name in (("gdev", gdev, dev), ("rdev", rdev, "/dev/rdsk/c1t1d4")):
        assert step(world, hpvmdevmgmt.main, ["-d", f"{kind}:{name}"],
                    lambda c, cls=cls, kind=kind, name=name: _db_call(
                        lambda: c.conn.DeleteInstance(_entry(cls, kind, name).path))).ok
    same_host(world)
