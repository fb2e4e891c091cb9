"""The VM model's methods through the Dispatcher on a store made with the agent API: each
method against the hpvm command that does the same (compare the guest configurations), OUT
Warnings, refusals with the store unchanged, 4097, jobs on a ManualClock, TimeoutPeriod,
embedded instances through the real CIM-XML parser with untyped parameters, device database
writes and authorization."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import pywbem
from pywbem import CIMDateTime, CIMError, CIMInstance, CIMInstanceName

from agent.clock import ManualClock
from agent.cli import hpvmclone, hpvmcreate, hpvmmodify, hpvmnet
from provider.cimxml import parse_request
from provider.messages import CIMRequest, Principal, RawParam
from provider.operations import Dispatcher
from provider.providers.base import InstanceProvider
from provider.providers.hpvm_devicedb_writes import DeviceDbWrites
from provider.providers.hpvm_jobs import install as install_jobs, guest_path, job_manager
from provider.providers.hpvm_lifecycle import GuestLifecycleMethods
from provider.providers.hpvm_management import ManagementServiceMethods
from provider.providers.registry import ProviderEnvironment, ProviderRegistry
from provider.schema import Schema
from tests.guest_support import fingerprint, make_agent, run_cli

NS = "root/cimv2"
ADMIN = Principal("root", "admin")
OPER = Principal("op1", "oper")
OTHER_OPER = Principal("op2", "oper")
READER = Principal("reader", "readonly")
SERVICE = CIMInstanceName("HPVM_VirtualSystemManagementService", keybindings={
    "Name": "HPVM:VirtualSystemManagementService", "SystemCreationClassName": "HPVM_Host",
    "SystemName": "11111111-2222-3333-4444-555555555555",
    "CreationClassName": "HPVM_VirtualSystemManagementService"}, namespace=NS)


@pytest.fixture(scope="module")
def schema():
    return Schema.load()


class _Empty(InstanceProvider):
    namespaces = (NS,)

    def __init__(self, env):
        self.env = env

    def enumerate(self, ctx, classname):
        return iter(())


class GuestProvider(GuestLifecycleMethods, _Empty):
    classnames = ("HPVM_Guest",)


class ServiceProvider(ManagementServiceMethods, _Empty):
    classnames = ("HPVM_VirtualSystemManagementService",)


class DeviceDbProvider(DeviceDbWrites, _Empty):
    classnames = ("HPVM_GuestIODeviceDB", "HPVM_RestrictedIODeviceDB", "HPVM_ServerIODeviceDB")


@dataclasses.dataclass
class World:
    agent: object
    clock: ManualClock
    dispatcher: Dispatcher
    state: Path
    tmp: Path

    def call(self, method, target=SERVICE, principal=ADMIN, **params):
        raw = {k: RawParam(k, None, v) for k, v in params.items()}
        req = CIMRequest("method", method, NS, params=pywbem.NocaseDict(raw), target=target)
        return self.dispatcher.handle(req, principal)

    def out(self, result, name):
        return next((p.value for p in result.out_params if p.name == name), None)


def make_world(schema, tmp_path, name="cim") -> World:
    clock = ManualClock()
    state = tmp_path / name
    agent = make_agent(state, clock=clock)
    env = ProviderEnvironment(schema=schema, host_name="testhost", clock=clock,
                              state_dir=state, agent=agent)
    registry = ProviderRegistry(schema)
    for cls in (GuestProvider, ServiceProvider, DeviceDbProvider):
        registry.register(cls(env))
    install_jobs(registry, env)
    d = Dispatcher(schema, registry, clock=clock, host_name="testhost")
    return World(agent, clock, d, state, tmp_path)


@pytest.fixture
def world(schema, tmp_path):
    return make_world(schema, tmp_path)


def vssd(**values):
    inst = CIMInstance("HPVM_VirtualSystemSettingData")
    for k, v in values.items():
        inst[k] = v
    return inst


def rasd(cls, **values):
    inst = CIMInstance(cls)
    for k, v in values.items():
        inst[k] = v
    return inst


def proc(vcpus=None, reservation=None):
    values = {"ResourceType": pywbem.Uint16(3)}
    if vcpus is not None:
        values["VirtualQuantity"] = pywbem.Uint64(vcpus)
    if reservation is not None:
        values["Reservation"] = pywbem.Uint64(reservation)
        values["AllocationUnits"] = "percent*10^-2"
    return rasd("HPVM_ProcessorAllocationSettingData", **values)


def mem(mb, units="byte*2^20", **extra):
    return rasd("HPVM_MemoryAllocationSettingData", ResourceType=pywbem.Uint16(4),
                VirtualQuantity=pywbem.Uint64(mb), AllocationUnits=units, **extra)


def disk(path, backing="file", address=None, device="disk"):
    values = dict(DeviceType=device, BackingType=backing, HostResource=[path])
    if address:
        values["Address"] = address
    return rasd("HPVM_StorageAllocationSettingData", **values)


def nic(vswitch, mac=None):
    values = dict(ResourceType=pywbem.Uint16(10), Connection=[vswitch])
    if mac:
        values["Address"] = mac
    return rasd("HPVM_EthernetPortAllocationSettingData", **values)


def comparable(g):
    """A guest configuration without what is unique per host (identity, MACs, serial)."""
    d = dataclasses.asdict(g)
    for key in ("uuid", "vm_number", "serial"):
        d.pop(key)
    for n in d["nics"]:
        n["mac"] = None
    return d


def backing_file(tmp_path, name="disk1") -> str:
    path = tmp_path / name
    path.write_bytes(b"\0" * 4096)
    return str(path)


def expect_error(code, fn, *args, match=None, **kw):
    with pytest.raises(CIMError) as info:
        fn(*args, **kw)
    assert info.value.status_code == code, info.value
    if match:
        assert match in info.value.status_description, info.value.status_description
    return info.value


# -- DefineSystem / hpvmcreate ---------------------------------------------------------------

def test_define_system_equals_hpvmcreate_with_the_same_warnings(schema, tmp_path):
    path = backing_file(tmp_path)
    cli_state = tmp_path / "cli"
    make_agent(cli_state)
    code, _, err = run_cli(hpvmcreate.main, [
        "-P", "vm1", "-l", "first guest", "-B", "manual", "-O", "hpux", "-c", "2",
        "-e", "20", "-r", "4G", "-u", "alice:admin", "-a", f"disk:scsi::file:{path}",
        "-a", "network:lan::vswitch:vsw1", "-x", "ram_dyn_type=any"], cli_state)
    assert code == 0
    w = make_world(schema, tmp_path)
    res = w.call("DefineSystem", SystemSettings=vssd(
        ElementName="vm1", VMLabel="first guest", AutomaticStartupAction=pywbem.Uint16(2),
        OSType="HPUX", AdminUsers=["alice"]),
        ResourceSettings=[proc(2, 2000), mem(4096, DynamicMemoryType="any"),
                          disk(path), nic("vsw1")])
    assert res.return_value == 0
    made = w.agent.find_guest(name="vm1")
    assert w.out(res, "ResultingSystem") == guest_path(made.uuid)
    cli_guest = make_agent(cli_state).find_guest(name="vm1")
    assert comparable(made) == comparable(cli_guest)
    # the missing vswitch is a warning, in the guide's block, as hpvmcreate prints it
    warnings = w.out(res, "Warnings")
    assert warnings[0] == "HPVM guest vm1 configuration problems:"
    assert warnings == [line for line in err.splitlines() if not line.startswith("hpvmcreate:")]


def test_define_system_memory_units_megabytes_and_gigabytes(world):
    for name, amount, units in (("m1", 3072, "MegaBytes"), ("m2", 3, "byte*2^30"),
                                ("m3", 3 * 1024 * 1024, "KiloBytes")):
        res = world.call("DefineSystem", SystemSettings=vssd(ElementName=name),
                         ResourceSettings=[mem(amount, units)])
        assert res.return_value == 0
        assert world.agent.find_guest(name=name).memory_mb == 3072


def test_check_only_creates_nothing_and_force_with_check_only_is_refused(world):
    before = fingerprint(world.state)
    res = world.call("DefineSystem", SystemSettings=vssd(ElementName="vm1"),
                     ResourceSettings=[nic("nosuch")], CheckOnly="true")
    assert res.return_value == 0 and world.out(res, "ResultingSystem") is None
    assert "    Warning 1 on item nosuch: 'nosuch' backing device does not exist." in \
        world.out(res, "Warnings")
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, world.call, "DefineSystem",
                 SystemSettings=vssd(ElementName="vm1"), Force="true", CheckOnly="true",
                 match="-F and -s are mutually exclusive")
    assert fingerprint(world.state) == before


@pytest.mark.parametrize("settings, resources, match", [
    (vssd(ElementName="vm1", NoSuchThing="x"), [], "has no property NoSuchThing"),
    (vssd(), [], "ElementName"),
    (CIMInstance("HPVM_Guest", properties={"Name": "x"}), [], "is a HPVM_Guest"),
    (vssd(ElementName="vm1"), [proc(9)], "VirtualQuantity: invalid number of vcpus '9'"),
    (vssd(ElementName="vm1"), [mem(2, "furlongs")], "AllocationUnits: unknown unit"),
    (vssd(ElementName="vm1"), [rasd("HPVM_MemoryAllocationSettingData",
                                    VirtualQuantity=pywbem.Uint64(2048))],
     "AllocationUnits: is required"),
    (vssd(ElementName="vm1"), [proc(1, 1)], "Reservation"),
    (vssd(ElementName="vm1"), [disk("relative/path")], "an absolute path is required"),
    (vssd(ElementName="vm1"), [disk("/tmp/x", backing="tape")], "BackingType"),
    (vssd(ElementName="vm1"), [nic("vsw1", mac="zz-zz")], "Address"),
    (vssd(ElementName="vm1", AutomaticStartupAction=pywbem.Uint16(3)), [],
     "AutomaticStartupAction: 3 is not supported"),
    (vssd(ElementName="vm1"), [proc(1), proc(2)], "a second HPVM_ProcessorAllocationSettingData"),
    (vssd(ElementName="vm1"), [rasd("CIM_ResourceAllocationSettingData",
                                    ResourceType=pywbem.Uint16(24))], "ResourceType"),
])
def test_define_system_bad_settings_are_precise_and_change_nothing(world, settings,
                                                                   resources, match):
    before = fingerprint(world.state)
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, world.call, "DefineSystem",
                 SystemSettings=settings, ResourceSettings=resources, match=match)
    assert fingerprint(world.state) == before


def test_define_system_existing_name_is_already_exists(world):
    world.agent.create_guest("vm1")
    before = fingerprint(world.state)
    expect_error(pywbem.CIM_ERR_ALREADY_EXISTS, world.call, "DefineSystem",
                 SystemSettings=vssd(ElementName="vm1"), match="already exists")
    assert fingerprint(world.state) == before


# -- ModifySystemSettings / resources / hpvmmodify ----------------------------------------------

def _twins(schema, tmp_path, path):
    """The same guest made in a CLI store and a CIM store."""
    cli_state = tmp_path / "cli"
    cli = make_agent(cli_state)
    w = make_world(schema, tmp_path)
    for agent in (cli, w.agent):
        agent.create_vswitch("vsw1")
        agent.create_guest("vm1", _changes(path))
    return cli_state, w


def _changes(path):
    from agent.api.guests import GuestChanges
    from agent.resources import parse_resource
    return GuestChanges(add=[parse_resource(f"disk:scsi:0,1,0:file:{path}"),
                             parse_resource("network:lan:0,2,:vswitch:vsw1")],
                        grant=[])


def test_modify_system_settings_equals_hpvmmodify(schema, tmp_path):
    path = backing_file(tmp_path)
    cli_state, w = _twins(schema, tmp_path, path)
    code, _, _ = run_cli(hpvmmodify.main, ["-P", "vm1", "-N", "vm2", "-l", "renamed",
                                           "-B", "manual", "-O", "linux:rhel4",
                                           "-g", "ops:oper", "-i", "SG", "-j", "1"], cli_state)
    assert code == 0
    g = w.agent.find_guest(name="vm1")
    res = w.call("ModifySystemSettings", SystemSettings=vssd(
        InstanceID=f"HPVM:{g.uuid}", ElementName="vm2", VMLabel="renamed",
        AutomaticStartupAction=pywbem.Uint16(2), OSType="LINUX", OSVersion="rhel4",
        OperGroups=["ops"], ApplicationController="SG", Distributed=True,
        VMNumber=pywbem.Uint32(g.vm_number)))
    assert res.return_value == 0
    assert comparable(w.agent.find_guest(name="vm2")) == \
        comparable(make_agent(cli_state).find_guest(name="vm2"))


def test_modify_system_settings_round_trip_changes_only_what_differs(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    settings = vssd(InstanceID=f"HPVM:{g.uuid}", ElementName="vm1", VMLabel="new",
                    OSType="UNKNOWN", AutomaticStartupAction=pywbem.Uint16(4),
                    VMNumber=pywbem.Uint32(g.vm_number), SerialNumber=g.serial)
    settings["AdminUsers"] = pywbem.CIMProperty("AdminUsers", [], type="string", is_array=True)
    res = world.call("ModifySystemSettings", SystemSettings=settings)
    assert res.return_value == 0 and world.out(res, "Warnings") == []
    after = world.agent.find_guest(name="vm1")
    assert after.label == "new" and after.os_type == "UNKNOWN" and after.start_attr == "auto"


@pytest.mark.parametrize("iid, code, match", [
    ("HPVM:not-a-uuid", pywbem.CIM_ERR_INVALID_PARAMETER, "does not name a guest UUID"),
    ("Other:1", pywbem.CIM_ERR_INVALID_PARAMETER, "is not one of this host's settings"),
    ("HPVM:00000000-0000-0000-0000-000000000001", pywbem.CIM_ERR_NOT_FOUND, "UUID"),
])
def test_modify_system_settings_bad_keys(world, iid, code, match):
    world.agent.create_guest("vm1")
    before = fingerprint(world.state)
    expect_error(code, world.call, "ModifySystemSettings",
                 SystemSettings=vssd(InstanceID=iid, VMLabel="x"), match=match)
    assert fingerprint(world.state) == before


def test_add_modify_remove_resources_equal_hpvmmodify(schema, tmp_path):
    path = backing_file(tmp_path)
    path2 = backing_file(tmp_path, "disk2")
    path3 = backing_file(tmp_path, "disk3")
    cli_state, w = _twins(schema, tmp_path, path)
    for argv in (["-P", "vm1", "-a", f"disk:scsi:0,1,1:file:{path2}"],
                 ["-P", "vm1", "-c", "3", "-e", "25", "-r", "3G", "-x", "ram_dyn_type=any",
                  "-x", "ram_dyn_max=3G"],
                 ["-P", "vm1", "-m", f"disk:scsi:0,1,0:file:{path3}"],
                 ["-P", "vm1", "-d", "disk:scsi:0,1,1"]):
        code, _, err = run_cli(hpvmmodify.main, argv, cli_state)
        assert code == 0, err
    g = w.agent.find_guest(name="vm1")
    res = w.call("AddResourceSettings", AffectedConfiguration=CIMInstanceName(
        "HPVM_VirtualSystemSettingData", keybindings={"InstanceID": f"HPVM:{g.uuid}"}),
        ResourceSettings=[disk(path2, address="0,1,1")])
    assert res.return_value == 0
    added = w.out(res, "ResultingResourceSettings")
    assert [r.keybindings["InstanceID"] for r in added] == [f"HPVM:{g.uuid}:disk:0,1,1"]
    cpu = proc(3, 2500)
    cpu["InstanceID"] = f"HPVM:{g.uuid}:cpu"
    memory = mem(3072, DynamicMemoryType="any", Limit=pywbem.Uint64(3072))
    memory["InstanceID"] = f"HPVM:{g.uuid}:memory"
    moved = disk(path3, address="0,1,0")
    moved["InstanceID"] = f"HPVM:{g.uuid}:disk:0,1,0"
    res = w.call("ModifyResourceSettings", ResourceSettings=[cpu, memory, moved])
    assert res.return_value == 0
    assert [r.keybindings["InstanceID"] for r in w.out(res, "ResultingResourceSettings")] == \
        [f"HPVM:{g.uuid}:cpu", f"HPVM:{g.uuid}:memory", f"HPVM:{g.uuid}:disk:0,1,0"]
    res = w.call("RemoveResourceSettings", ResourceSettings=[CIMInstanceName(
        "HPVM_StorageAllocationSettingData",
        keybindings={"InstanceID": f"HPVM:{g.uuid}:disk:0,1,1"})])
    assert res.return_value == 0
    assert comparable(w.agent.find_guest(name="vm1")) == \
        comparable(make_agent(cli_state).find_guest(name="vm1"))


def test_resource_refusals_change_nothing(schema, tmp_path):
    path = backing_file(tmp_path)
    _, w = _twins(schema, tmp_path, path)
    w.agent.create_guest("other", _changes(backing_file(tmp_path, "o1")))
    g = w.agent.find_guest(name="vm1")
    other = w.agent.find_guest(name="other")
    vref = CIMInstanceName("HPVM_VirtualSystemSettingData",
                           keybindings={"InstanceID": f"HPVM:{g.uuid}"})
    before = fingerprint(w.state)
    foreign = disk(backing_file(tmp_path, "d9"))
    foreign["InstanceID"] = f"HPVM:{other.uuid}:disk:0,1,0"
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, w.call, "AddResourceSettings",
                 AffectedConfiguration=vref, ResourceSettings=[foreign],
                 match="names a setting of another guest")
    wrong = proc(2)
    wrong["InstanceID"] = f"HPVM:{g.uuid}:memory"
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, w.call, "ModifyResourceSettings",
                 ResourceSettings=[wrong], match="is a HPVM_MemoryAllocationSettingData")
    mine, theirs = proc(2), proc(2)
    mine["InstanceID"], theirs["InstanceID"] = f"HPVM:{g.uuid}:cpu", f"HPVM:{other.uuid}:cpu"
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, w.call, "ModifyResourceSettings",
                 ResourceSettings=[mine, theirs], match="names another guest's setting")
    gone = disk(path)
    gone["InstanceID"] = f"HPVM:{g.uuid}:disk:0,3,0"
    expect_error(pywbem.CIM_ERR_NOT_FOUND, w.call, "ModifyResourceSettings",
                 ResourceSettings=[gone], match=f"The resource 'disk:scsi:0,3,0:file:{path}' is not assigned to guest 'vm1'.")
    moved = disk(path, address="0,2,0")
    moved["InstanceID"] = f"HPVM:{g.uuid}:disk:0,1,0"
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, w.call, "ModifyResourceSettings",
                 ResourceSettings=[moved], match="cannot move")
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, w.call, "RemoveResourceSettings",
                 ResourceSettings=[CIMInstanceName(
                     "HPVM_EthernetPortAllocationSettingData",
                     keybindings={"InstanceID": f"HPVM:{g.uuid}:disk:0,1,0"})],
                 match="is a HPVM_StorageAllocationSettingData")
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, w.call, "RemoveResourceSettings",
                 ResourceSettings=[CIMInstanceName(
                     "HPVM_ProcessorAllocationSettingData",
                     keybindings={"InstanceID": f"HPVM:{g.uuid}:cpu"})],
                 match="cannot be removed")
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, w.call, "AddResourceSettings",
                 AffectedConfiguration=vref, ResourceSettings=[mem(4096)],
                 match="changed with ModifyResourceSettings")
    assert fingerprint(w.state) == before


def test_modify_warnings_and_notes_come_back(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    cpu = proc(4)
    cpu["InstanceID"] = f"HPVM:{g.uuid}:cpu"
    res = world.call("ModifyResourceSettings", ResourceSettings=[cpu])
    assert res.return_value == 0
    warnings = world.out(res, "Warnings")
    # 4 vCPUs on the guide's 2-CPU host: hpvmmodify's warning block
    assert warnings[0] == "HPVM guest vm1 configuration problems:"
    assert any("vcpus exceeds server's physical cpus" in line for line in warnings)
    assert world.agent.find_guest(name="vm1").vcpus == 4


# -- CloneSystem / hpvmclone -----------------------------------------------------------------

def test_clone_system_equals_hpvmclone(schema, tmp_path):
    path = backing_file(tmp_path)
    cli_state, w = _twins(schema, tmp_path, path)
    code, _, err = run_cli(hpvmclone.main, ["-P", "vm1", "-N", "vm1b", "-l", "copy",
                                            "-c", "2", "-d", "disk:scsi:0,1,0"], cli_state)
    assert code == 0, err
    g = w.agent.find_guest(name="vm1")
    res = w.call("CloneSystem", SourceSystem=guest_path(g.uuid),
                 SystemSettings=vssd(ElementName="vm1b", VMLabel="copy"),
                 ResourceSettings=[proc(2)],
                 RemovedResourceSettings=[CIMInstanceName(
                     "HPVM_StorageAllocationSettingData",
                     keybindings={"InstanceID": f"HPVM:{g.uuid}:disk:0,1,0"})])
    assert res.return_value == 0
    clone = w.agent.find_guest(name="vm1b")
    assert w.out(res, "ResultingSystem") == guest_path(clone.uuid)
    cli_clone = make_agent(cli_state).find_guest(name="vm1b")
    assert comparable(clone) == comparable(cli_clone)
    assert clone.nics[0].mac != g.nics[0].mac


def test_define_system_with_reference_configuration_is_a_clone(world):
    world.agent.create_guest("src")
    g = world.agent.find_guest(name="src")
    res = world.call("DefineSystem", SystemSettings=vssd(ElementName="copy"),
                     ReferenceConfiguration=CIMInstanceName(
                         "HPVM_VirtualSystemSettingData",
                         keybindings={"InstanceID": f"HPVM:{g.uuid}"}))
    assert res.return_value == 0
    assert world.agent.find_guest(name="copy").memory_mb == g.memory_mb


def test_collect_without_a_guest_is_refused(world):
    # CollectSystemData itself is tested end to end in tests/test_cim_collect.py
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, world.call, "CollectSystemData",
                 match="-P vm-name")


# -- DestroySystem -------------------------------------------------------------------------

def test_destroy_system_removes_an_off_guest_and_refuses_a_running_one(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    world.agent.start_guest(g, force=True)
    before = fingerprint(world.state)
    expect_error(pywbem.CIM_ERR_FAILED, world.call, "DestroySystem",
                 AffectedSystem=guest_path(g.uuid), match="currently running")
    assert fingerprint(world.state) == before
    world.agent.stop_guest(g, hard=True)
    assert world.call("DestroySystem", AffectedSystem=guest_path(g.uuid)).return_value == 0
    assert world.agent.guests() == []
    expect_error(pywbem.CIM_ERR_NOT_FOUND, world.call, "DestroySystem",
                 AffectedSystem=guest_path(g.uuid))
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, world.call, "DestroySystem",
                 AffectedSystem=CIMInstanceName("HPVM_Switch", keybindings={
                     "CreationClassName": "HPVM_Switch", "Name": "x"}),
                 match="is not a guest")


# -- RequestStateChange and jobs -----------------------------------------------------------

def _state(w, name="vm1"):
    return w.agent.runtime(w.agent.find_guest(name=name)).state


def _job(w, res, principal=ADMIN):
    ref = w.out(res, "Job")
    req = CIMRequest("imethod", "GetInstance", NS,
                     params=pywbem.NocaseDict({"InstanceName": ref}))
    return w.dispatcher.handle(req, principal)


def test_start_returns_a_job_that_follows_the_boot(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    res = world.call("RequestStateChange", target=guest_path(g.uuid), principal=OPER,
                     RequestedState="2")
    assert res.return_value == 4096
    job = _job(world, res, OPER)
    assert job["JobState"] == 4 and job["PercentComplete"] == 0
    assert _state(world) == "Booting"
    world.clock.advance(2.5)                 # efi_seconds = 5 on the test host
    job = _job(world, res, OPER)
    assert job["JobState"] == 4 and job["PercentComplete"] == 50
    world.clock.advance(3)
    job = _job(world, res, OPER)
    assert _state(world) == "On (EFI)"       # no OS installed: the boot ends in EFI
    assert job["JobState"] == 7 and job["PercentComplete"] == 100
    assert job["MethodName"] == "HPVM_Guest.RequestStateChange"
    # other users do not see it; admins do; it goes after TimeBeforeRemoval
    expect_error(pywbem.CIM_ERR_NOT_FOUND, _job, world, res, OTHER_OPER)
    assert _job(world, res, ADMIN)["JobState"] == 7
    world.clock.advance(301)
    expect_error(pywbem.CIM_ERR_NOT_FOUND, _job, world, res, OPER)


def test_start_job_waits_for_the_os_when_one_is_installed(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    world.agent.set_guest_model(g, os="HPUX")
    res = world.call("RequestStateChange", target=guest_path(g.uuid), RequestedState="2")
    world.clock.advance(6)
    assert _state(world) == "On (EFI)" and _job(world, res)["JobState"] == 4
    world.clock.advance(30)
    assert _state(world) == "On (OS)" and _job(world, res)["JobState"] == 7


def test_invalid_transitions_return_4097_and_change_nothing(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    before = fingerprint(world.state)
    for requested in ("3", "4", "10", "11"):
        res = world.call("RequestStateChange", target=guest_path(g.uuid),
                         RequestedState=requested)
        assert res.return_value == 4097
        assert world.out(res, "Warnings") == ["The guest 'vm1' is not running."]
    assert fingerprint(world.state) == before
    world.agent.start_guest(g, force=True)
    res = world.call("RequestStateChange", target=guest_path(g.uuid), RequestedState="2")
    assert res.return_value == 4097
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, world.call, "RequestStateChange",
                 target=guest_path(g.uuid), RequestedState="9", match="not supported")


def test_hard_stop_is_immediate_and_graceful_stop_is_a_job(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    world.agent.start_guest(g, force=True)
    res = world.call("RequestStateChange", target=guest_path(g.uuid), RequestedState="3")
    assert res.return_value == 0 and _state(world) == "Off"
    assert job_manager(world.dispatcher.registry.provider_for(
        NS, "HPVM_ConcreteJob").env).requested_state(g.uuid) == 3
    world.agent.start_guest(g, force=True)
    res = world.call("RequestStateChange", target=guest_path(g.uuid), RequestedState="4")
    assert res.return_value == 4096 and _state(world) == "Stopping"
    # a second graceful stop while stopping is not a valid transition
    again = world.call("RequestStateChange", target=guest_path(g.uuid), RequestedState="4")
    assert again.return_value == 4097
    world.clock.advance(10)                  # stop_seconds = 10
    job = _job(world, res)
    assert _state(world) == "Off" and job["JobState"] == 7 and job["Warnings"] == []


def test_graceful_stop_past_its_timeout_ends_as_a_hard_stop(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    world.agent.start_guest(g, force=True)
    res = world.call("RequestStateChange", target=guest_path(g.uuid), RequestedState="4",
                     TimeoutPeriod=str(CIMDateTime("00000000000003.000000:000")))
    world.clock.advance(2)
    assert _job(world, res)["JobState"] == 4 and _state(world) == "Stopping"
    world.clock.advance(1.5)                 # past the 3 s timeout, before stop_seconds
    job = _job(world, res)
    assert job["JobState"] == 7 and _state(world) == "Off"
    assert "stopped hard" in job["Warnings"][0]
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, world.call, "RequestStateChange",
                 target=guest_path(g.uuid), RequestedState="2",
                 TimeoutPeriod=str(CIMDateTime("20261127010000.000000+000")),
                 match="TimeoutPeriod must be an interval")


def test_start_timeout_ends_the_job_in_exception(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    world.agent.set_guest_model(g, os="HPUX")
    res = world.call("RequestStateChange", target=guest_path(g.uuid), RequestedState="2",
                     TimeoutPeriod=str(CIMDateTime("00000000000010.000000:000")))
    world.clock.advance(11)
    job = _job(world, res)
    assert job["JobState"] == 10 and job["ErrorCode"] == 3
    assert "did not reach On (OS)" in job["ErrorDescription"]


def test_reboot_and_reset_restart_the_guest_and_promote_next(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    world.agent.start_guest(g, force=True)
    world.clock.advance(6)
    from agent.api.guests import GuestChanges
    world.agent.modify_guest(g, GuestChanges(vcpus=2))
    assert world.agent.runtime(g).pending_next
    for requested in ("10", "11"):
        res = world.call("RequestStateChange", target=guest_path(g.uuid),
                         RequestedState=requested)
        assert res.return_value == 4096 and _state(world) == "Booting"
        world.clock.advance(6)
        assert _job(world, res)["JobState"] == 7
    assert world.agent.find_guest(name="vm1").vcpus == 2


def test_start_refused_by_capacity_is_an_error_with_the_guide_block(world):
    from agent.api.guests import GuestChanges
    world.agent.create_guest("big", GuestChanges(memory_mb=64 * 1024))
    g = world.agent.find_guest(name="big")
    before = fingerprint(world.state)
    err = expect_error(pywbem.CIM_ERR_FAILED, world.call, "RequestStateChange",
                       target=guest_path(g.uuid), RequestedState="2")
    assert "These problems may prevent HPVM guest big from booting." in \
        err.status_description
    assert fingerprint(world.state) == before


def test_job_associations_link_the_job_and_its_guest(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    res = world.call("RequestStateChange", target=guest_path(g.uuid), RequestedState="2")
    req = CIMRequest("imethod", "AssociatorNames", NS, params=pywbem.NocaseDict({
        "ObjectName": w_out(world, res), "AssocClass": "HPVM_AffectedJobElement"}))
    names = world.dispatcher.handle(req, ADMIN)
    assert [n.keybindings["Name"] for n in names] == [g.uuid]


def w_out(world, res):
    return world.out(res, "Job")


# -- authorization ---------------------------------------------------------------------------

def test_roles(world):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    before = fingerprint(world.state)
    for who in (OPER, READER):
        expect_error(pywbem.CIM_ERR_ACCESS_DENIED, world.call, "DefineSystem", principal=who,
                     SystemSettings=vssd(ElementName="vm2"))
    expect_error(pywbem.CIM_ERR_ACCESS_DENIED, world.call, "RequestStateChange",
                 target=guest_path(g.uuid), principal=READER, RequestedState="2")
    assert fingerprint(world.state) == before


# -- vswitches and the device database ----------------------------------------------------

def test_vswitch_methods_equal_hpvmnet(schema, tmp_path):
    cli_state = tmp_path / "cli"
    make_agent(cli_state)
    for argv in (["-c", "-S", "sw1", "-n", "0"], ["-b", "-S", "sw1"],
                 ["-S", "sw1", "-u", "portid:3:vlanid:20"], ["-c", "-S", "sw2"],
                 ["-h", "-S", "sw1", "-F"], ["-d", "-S", "sw2", "-F"]):
        code, _, err = run_cli(hpvmnet.main, argv, cli_state)
        assert code == 0, (argv, err)
    w = make_world(schema, tmp_path)
    res = w.call("CreateVirtualSwitch", SwitchName="sw1", HostNIC="0")
    sw1 = w.out(res, "ResultingSwitch")
    assert sw1.keybindings["Name"] == "sw1"
    w.call("StartVirtualSwitch", AffectedSwitch=sw1)
    w.call("SetVirtualSwitchPortVLAN", AffectedSwitch=sw1, PortNumber="3", VLANID="20")
    sw2 = w.out(w.call("CreateVirtualSwitch", SwitchName="sw2"), "ResultingSwitch")
    w.call("HaltVirtualSwitch", AffectedSwitch=sw1)
    w.call("DeleteVirtualSwitch", AffectedSwitch=sw2)
    cli = make_agent(cli_state)
    strip = lambda t: [dataclasses.replace(s, pid=None) for s in t.all()]  # noqa: E731
    assert strip(w.agent.vswitch_table()) == strip(cli.vswitch_table())
    before = fingerprint(w.state)
    expect_error(pywbem.CIM_ERR_ALREADY_EXISTS, w.call, "CreateVirtualSwitch",
                 SwitchName="sw1")
    expect_error(pywbem.CIM_ERR_NOT_FOUND, w.call, "StartVirtualSwitch",
                 AffectedSwitch=sw2)
    assert fingerprint(w.state) == before


def test_device_database_writes(world):
    cls = "HPVM_GuestIODeviceDB"

    def request(name, **params):
        return world.dispatcher.handle(
            CIMRequest("imethod", name, NS, params=pywbem.NocaseDict(params)), ADMIN)
    new = CIMInstance(cls, properties={"EntryName": "/var/iso/", "Shared": True})
    path = request("CreateInstance", NewInstance=new)
    assert path.keybindings["InstanceID"] == "HPVM:gdev:/var/iso/"
    entry = world.agent.device_db().find("gdev", "/var/iso/", world.agent.host)
    assert entry.attrs["SHARE"] == "YES"
    before = fingerprint(world.state)
    expect_error(pywbem.CIM_ERR_ALREADY_EXISTS, request, "CreateInstance", NewInstance=new)
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, request, "CreateInstance",
                 NewInstance=CIMInstance(cls, properties={"EntryName": "/x",
                                                          "Attributes": ["CONFIG=rdev"]}),
                 match="set by the VM Host")
    assert fingerprint(world.state) == before
    mod = CIMInstance(cls, properties={"Shared": False}, path=path)
    request("ModifyInstance", ModifiedInstance=mod, PropertyList=["Shared"])
    entry = world.agent.device_db().find("gdev", "/var/iso/", world.agent.host)
    assert entry.attrs["SHARE"] == "NO"
    request("DeleteInstance", InstanceName=path)
    assert world.agent.device_db().find("gdev", "/var/iso/", world.agent.host) is None
    expect_error(pywbem.CIM_ERR_NOT_FOUND, request, "DeleteInstance", InstanceName=path)


# -- the wire: embedded instances in CIM-XML, untyped parameters ------------------------

def _methodcall(method, target: CIMInstanceName, params: str) -> bytes:
    keys = "".join(f'<KEYBINDING NAME="{k}"><KEYVALUE VALUETYPE="string">{v}</KEYVALUE>'
                   f'</KEYBINDING>' for k, v in target.keybindings.items())
    return (f'<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            f'<MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEREQ><METHODCALL NAME="{method}">'
            f'<LOCALINSTANCEPATH><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/>'
            f'<NAMESPACE NAME="cimv2"/></LOCALNAMESPACEPATH>'
            f'<INSTANCENAME CLASSNAME="{target.classname}">{keys}</INSTANCENAME>'
            f'</LOCALINSTANCEPATH>{params}</METHODCALL></SIMPLEREQ></MESSAGE></CIM>').encode()


def _escaped(inst: CIMInstance) -> str:
    from xml.sax.saxutils import escape
    return escape(inst.tocimxmlstr())


def test_define_and_start_through_the_cimxml_parser_with_untyped_params(world, tmp_path):
    path = backing_file(tmp_path)
    params = (
        '<PARAMVALUE NAME="SystemSettings" EmbeddedObject="instance"><VALUE>'
        + _escaped(vssd(ElementName="wire1", VMLabel="over the wire")) + '</VALUE></PARAMVALUE>'
        '<PARAMVALUE NAME="ResourceSettings" EmbeddedObject="instance"><VALUE.ARRAY>'
        + "".join(f"<VALUE>{_escaped(r)}</VALUE>" for r in (proc(2), mem(3072), disk(path)))
        + '</VALUE.ARRAY></PARAMVALUE>'
        '<PARAMVALUE NAME="CheckOnly"><VALUE>false</VALUE></PARAMVALUE>')
    req = parse_request(_methodcall("DefineSystem", SERVICE, params))
    res = world.dispatcher.handle(req, ADMIN)
    assert res.return_value == 0
    g = world.agent.find_guest(name="wire1")
    assert (g.vcpus, g.memory_mb, g.label, g.storage[0].location) == \
        (2, 3072, "over the wire", path)
    target = guest_path(g.uuid)
    req = parse_request(_methodcall("RequestStateChange", target,
                                    '<PARAMVALUE NAME="RequestedState"><VALUE>2</VALUE>'
                                    '</PARAMVALUE>'))
    res = world.dispatcher.handle(req, ADMIN)
    assert res.return_value == 4096 and _state(world, "wire1") == "Booting"
    job = job_manager(world.dispatcher.registry.provider_for(NS, "HPVM_ConcreteJob").env)
    assert [j.action for j in job.jobs(ADMIN)] == ["start"]


# -- embedded instances written in MOF ---------------------------------------------------

from provider.cimxml.embedded_mof import instance_from_mof, is_mof  # noqa: E402


def test_mof_reader_values():
    inst = instance_from_mof('''
        // a memory setting, as cimtest writes it
        instance of HPVM_MemoryAllocationSettingData {
            InstanceID = "HPVM:" "x:memory";   /* adjacent literals join */
            VirtualQuantity = 4096;
            AllocationUnits = "byte*2^20";
            ElementName = "tab\\there \\"quoted\\" \\x41";
            HostResource = {"a", NULL, "b"};
            DynamicMemoryControl = TRUE;
            Limit = NULL;
        };''')
    assert inst.classname == "HPVM_MemoryAllocationSettingData"
    assert inst["InstanceID"] == "HPVM:x:memory"
    assert inst["VirtualQuantity"] == "4096"
    assert inst["ElementName"] == 'tab\there "quoted" A'
    assert inst["HostResource"] == ["a", None, "b"]
    assert inst["DynamicMemoryControl"] is True and inst["Limit"] is None
    assert is_mof("  instance of X {};") and not is_mof(" <INSTANCE/>")


@pytest.mark.parametrize("text, match", [
    ("instance of X { A = 1 }", "expected ;"),
    ("instance of X { A = 1; A = 2; };", "given twice"),
    ("instance of X { A = {{1}}; };", "do not nest"),
    ("instance of X { A = 1; }; instance of Y {};", "one instance declaration"),
    ("class X { };", "expected instance"),
    ('instance of X { A = "\\q"; };', "unknown escape"),
    ("instance of X { A = @; };", "line 1, column 21"),
])
def test_mof_reader_refuses_with_the_position(text, match):
    with pytest.raises(ValueError, match=match):
        instance_from_mof(text)


def test_define_system_from_mof_instances_equals_cimxml(schema, tmp_path):
    path = backing_file(tmp_path)
    via_xml = make_world(schema, tmp_path, "xml")
    via_xml.call("DefineSystem", SystemSettings=vssd(ElementName="m", VMLabel="from mof",
                                                    AutomaticStartupAction=pywbem.Uint16(2)),
                 ResourceSettings=[proc(2, 1500), mem(2048), disk(path, address="0,1,0"),
                                   nic("vsw1", mac="0x02AABBCCDDEE")])
    via_mof = make_world(schema, tmp_path, "mof")
    texts = [
        'instance of HPVM_VirtualSystemSettingData { ElementName = "m"; '
        'VMLabel = "from mof"; AutomaticStartupAction = 2; };',
        'instance of HPVM_ProcessorAllocationSettingData { ResourceType = 3; '
        'VirtualQuantity = 2; Reservation = 1500; AllocationUnits = "percent*10^-2"; };',
        'instance of HPVM_MemoryAllocationSettingData { VirtualQuantity = 2048; '
        'AllocationUnits = "MegaBytes"; };',
        f'instance of HPVM_StorageAllocationSettingData {{ DeviceType = "disk"; '
        f'BackingType = "file"; HostResource = {{"{path}"}}; Address = "0,1,0"; }};',
        'instance of HPVM_EthernetPortAllocationSettingData { ResourceType = 10; '
        'Connection = {"vsw1"}; Address = "02-aa-bb-cc-dd-ee"; };']
    system, *resources = [instance_from_mof(t) for t in texts]
    res = via_mof.call("DefineSystem", SystemSettings=system, ResourceSettings=resources)
    assert res.return_value == 0
    a, b = via_xml.agent.find_guest(name="m"), via_mof.agent.find_guest(name="m")
    assert comparable(a) == comparable(b)
    assert a.nics[0].mac == b.nics[0].mac == "02-aa-bb-cc-dd-ee"
    bad = instance_from_mof('instance of HPVM_MemoryAllocationSettingData { '
                            'VirtualQuantity = "lots"; AllocationUnits = "MegaBytes"; };')
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, via_mof.call, "DefineSystem",
                 SystemSettings=instance_from_mof(
                     'instance of HPVM_VirtualSystemSettingData { ElementName = "n"; };'),
                 ResourceSettings=[bad], match="VirtualQuantity: not a valid uint64")


# -- with the read providers of the VM model (issue 4 item 2) -------------------------------

def _full_world(schema, tmp_path):
    from provider.providers import FAMILIES, install_all
    clock = ManualClock()
    state = tmp_path / "full"
    agent = make_agent(state, clock=clock)
    env = ProviderEnvironment(schema=schema, host_name="testhost", clock=clock,
                              state_dir=state, agent=agent)
    registry = ProviderRegistry(schema)
    assert "provider.providers.hpvm_jobs" in FAMILIES   # the real server serves jobs too
    install_all(registry, env)
    return World(agent, clock, Dispatcher(schema, registry, clock=clock,
                                          host_name="testhost"), state, tmp_path)


def _get(w, cls, iid, principal=ADMIN):
    inst = w.dispatcher.handle(CIMRequest("imethod", "GetInstance", NS, params=pywbem.NocaseDict(
        {"InstanceName": CIMInstanceName(cls, keybindings={"InstanceID": iid})})), principal)
    inst.path = None
    return inst


def test_settings_read_back_and_sent_unchanged_change_nothing(schema, tmp_path):
    w = _full_world(schema, tmp_path)
    path = backing_file(tmp_path)
    w.agent.create_vswitch("vsw1")
    w.agent.create_guest("vm1", dataclasses.replace(
        _changes(path), dynmem={"ram_dyn_type": "any"}))
    g = w.agent.find_guest(name="vm1")
    before = comparable(g)
    items = [_get(w, "HPVM_ProcessorAllocationSettingData", f"HPVM:{g.uuid}:cpu"),
             _get(w, "HPVM_MemoryAllocationSettingData", f"HPVM:{g.uuid}:memory"),
             _get(w, "HPVM_StorageAllocationSettingData", f"HPVM:{g.uuid}:disk:0,1,0"),
             _get(w, "HPVM_EthernetPortAllocationSettingData", f"HPVM:{g.uuid}:network:0,2")]
    res = w.call("ModifyResourceSettings", ResourceSettings=items)
    assert res.return_value == 0
    assert comparable(w.agent.find_guest(name="vm1")) == before
    settings = _get(w, "HPVM_VirtualSystemSettingData", f"HPVM:{g.uuid}")
    settings["VMLabel"] = "changed"
    items[1]["VirtualQuantity"] = pywbem.Uint64(3072)
    w.call("ModifySystemSettings", SystemSettings=settings)
    w.call("ModifyResourceSettings", ResourceSettings=[items[1]])
    after = comparable(w.agent.find_guest(name="vm1"))
    assert {k for k in before if before[k] != after[k]} == {"label", "memory_mb"}
    assert (after["label"], after["memory_mb"]) == ("changed", 3072)


def test_jobs_are_enumerated_for_their_owner_and_admins(schema, tmp_path):
    w = _full_world(schema, tmp_path)
    w.agent.create_guest("vm1")
    g = w.agent.find_guest(name="vm1")
    res = w.call("RequestStateChange", target=guest_path(g.uuid), principal=OPER,
                 RequestedState="2")

    def jobs(principal):
        return w.dispatcher.handle(CIMRequest("imethod", "EnumerateInstances", NS,
                                              params=pywbem.NocaseDict(
                                                  {"ClassName": "HPVM_ConcreteJob"})),
                                   principal)
    assert [j["InstanceID"] for j in jobs(OPER)] == \
        [w.out(res, "Job").keybindings["InstanceID"]]
    assert len(jobs(ADMIN)) == 1 and jobs(OTHER_OPER) == []
    w.clock.advance(6)
    assert jobs(OPER)[0]["JobState"] == 7


def test_guest_list_rights_allow_state_changes_on_that_guest_only(schema, tmp_path):
    from agent.api.guests import GuestChanges
    from agent.guest import RoleGrant
    w = _full_world(schema, tmp_path)
    w.agent.create_guest("mine", GuestChanges(grant=[RoleGrant("user", "alice", "oper")]))
    w.agent.create_guest("theirs")
    alice = Principal("alice", "readonly")
    mine, theirs = (w.agent.find_guest(name=n) for n in ("mine", "theirs"))
    res = w.call("RequestStateChange", target=guest_path(mine.uuid), principal=alice,
                 RequestedState="2")
    assert res.return_value == 4096
    before = fingerprint(w.state)
    expect_error(pywbem.CIM_ERR_ACCESS_DENIED, w.call, "RequestStateChange",
                 target=guest_path(theirs.uuid), principal=alice, RequestedState="2")
    # guest rights are console rights: no configuration changes
    settings = vssd(InstanceID=f"HPVM:{mine.uuid}", VMLabel="x")
    expect_error(pywbem.CIM_ERR_ACCESS_DENIED, w.call, "ModifySystemSettings",
                 principal=alice, SystemSettings=settings)
    assert fingerprint(w.state) == before


def test_references_and_intervals_through_the_cimxml_parser(world, tmp_path):
    world.agent.create_guest("vm1")
    g = world.agent.find_guest(name="vm1")
    world.agent.start_guest(g, force=True)
    path = backing_file(tmp_path)
    ref = (f'<VALUE.REFERENCE><INSTANCENAME CLASSNAME="HPVM_VirtualSystemSettingData">'
           f'<KEYBINDING NAME="InstanceID"><KEYVALUE VALUETYPE="string">HPVM:{g.uuid}'
           f'</KEYVALUE></KEYBINDING></INSTANCENAME></VALUE.REFERENCE>')
    params = (f'<PARAMVALUE NAME="AffectedConfiguration">{ref}</PARAMVALUE>'
              '<PARAMVALUE NAME="ResourceSettings"><VALUE.ARRAY><VALUE>'
              + _escaped(disk(path, address="0,0,0")) + '</VALUE></VALUE.ARRAY></PARAMVALUE>')
    req = parse_request(_methodcall("AddResourceSettings", SERVICE, params))
    # a running guest without a storage adapter: hpvmmodify's refusal, nothing changes
    before = fingerprint(world.state)
    expect_error(pywbem.CIM_ERR_FAILED, world.dispatcher.handle, req, ADMIN,
                 match="needs the guest 'vm1' to be off")
    assert fingerprint(world.state) == before
    req = parse_request(_methodcall(
        "RequestStateChange", guest_path(g.uuid),
        '<PARAMVALUE NAME="RequestedState"><VALUE>4</VALUE></PARAMVALUE>'
        '<PARAMVALUE NAME="TimeoutPeriod"><VALUE>00000000000001.000000:000</VALUE>'
        '</PARAMVALUE>'))
    res = world.dispatcher.handle(req, ADMIN)
    assert res.return_value == 4096
    world.clock.advance(1)
    assert _job(world, res)["JobState"] == 7 and _state(world) == "Off"


def test_clone_copies_a_file_backing_store_as_hpvmclone_b(schema, tmp_path):
    path = backing_file(tmp_path)
    cli_state, w = _twins(schema, tmp_path, path)
    cli_copy, cim_copy = str(tmp_path / "cli-copy"), str(tmp_path / "cim-copy")
    code, _, err = run_cli(hpvmclone.main, ["-P", "vm1", "-N", "vm1b", "-b",
                                            f"disk:scsi:0,1,0:file:{cli_copy}"], cli_state)
    assert code == 0, err
    g = w.agent.find_guest(name="vm1")
    boot = disk(cim_copy, address="0,1,0")
    boot["InstanceID"] = f"HPVM:{g.uuid}:disk:0,1,0"
    res = w.call("CloneSystem", SourceSystem=guest_path(g.uuid),
                 SystemSettings=vssd(ElementName="vm1b"), ResourceSettings=[boot])
    assert res.return_value == 0
    assert Path(cim_copy).read_bytes() == Path(path).read_bytes()
    clone = w.agent.find_guest(name="vm1b")
    cli_clone = make_agent(cli_state).find_guest(name="vm1b")
    assert clone.storage[0].location == cim_copy and cli_clone.storage[0].location == cli_copy
    a, b = comparable(clone), comparable(cli_clone)
    a["storage"][0]["location"] = b["storage"][0]["location"] = ""
    assert a == b
    # a second clone onto the same copy: the file exists, so it is a -m (no copy, shared
    # backing store), which the definition checks refuse as the command would
    before = fingerprint(w.state)
    boot2 = disk(cim_copy, address="0,1,0")
    boot2["InstanceID"] = f"HPVM:{g.uuid}:disk:0,1,0"
    err = expect_error(pywbem.CIM_ERR_FAILED, w.call, "CloneSystem",
                       SourceSystem=guest_path(g.uuid), SystemSettings=vssd(ElementName="vm1c"),
                       ResourceSettings=[boot2])
    assert "cim-copy" in err.status_description
    assert fingerprint(w.state) == before


@pytest.mark.parametrize("text, match", [
    ('instance of CIM_ResourceAllocationSettingData { ResourceType = "many"; };',
     "ResourceType: 'many' is not a number"),
    ('instance of CIM_ResourceAllocationSettingData { ResourceType = 24; };',
     "24 is not a resource this host allocates"),
    ('instance of HPVM_StorageAllocationSettingData { ResourceType = 1; DeviceType = "tape";'
     ' BackingType = "attach"; HostResource = {"/dev/rscsi/c1t2d0"}; };',
     "ResourceType: 1 does not fit DeviceType tape"),
    ('instance of HPVM_ProcessorAllocationSettingData { VirtualQuantity = 70000; };',
     "invalid number of vcpus '70000'"),
    ('instance of HPVM_ProcessorAllocationSettingData { DynamicMemoryType = "any"; };',
     "has no property DynamicMemoryType"),
])
def test_generic_and_mof_settings_refusals(world, text, match):
    before = fingerprint(world.state)
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, world.call, "DefineSystem",
                 SystemSettings=vssd(ElementName="vm1"),
                 ResourceSettings=[instance_from_mof(text)], match=match)
    assert fingerprint(world.state) == before


def test_generic_rasd_class_with_resource_type_stands_for_ours(world):
    res = world.call("DefineSystem", SystemSettings=instance_from_mof(
        'instance of CIM_VirtualSystemSettingData { ElementName = "gen"; };'),
        ResourceSettings=[instance_from_mof(
            'instance of CIM_ResourceAllocationSettingData { ResourceType = 4; '
            'VirtualQuantity = 1; AllocationUnits = "byte*2^30"; };')])
    assert res.return_value == 0
    assert world.agent.find_guest(name="gen").memory_mb == 1024


def test_concurrent_methods_and_job_reads_neither_deadlock_nor_corrupt(world):
    import threading
    for i in range(4):
        world.agent.create_guest(f"t{i}")
    uuids = [world.agent.find_guest(name=f"t{i}").uuid for i in range(4)]
    errors, refs = [], []

    def worker(n):
        try:
            for _ in range(3):
                res = world.call("RequestStateChange", target=guest_path(uuids[n]),
                                 RequestedState="2")
                refs.append(world.out(res, "Job"))
                _job(world, res)
                world.call("RequestStateChange", target=guest_path(uuids[n]),
                           RequestedState="3")
                world.call("ModifySystemSettings", SystemSettings=vssd(
                    InstanceID=f"HPVM:{uuids[n]}", VMLabel=f"label {n}"))
        except Exception as exc:      # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert len({r.keybindings["InstanceID"] for r in refs}) == 12
    assert [world.agent.find_guest(name=f"t{i}").label for i in range(4)] == \
        [f"label {i}" for i in range(4)]
    assert all(_state(world, f"t{i}") == "Off" for i in range(4))


def test_device_entry_read_back_and_modified_changes_one_attribute(schema, tmp_path):
    w = _full_world(schema, tmp_path)
    cls = "HPVM_GuestIODeviceDB"

    def request(name, **params):
        return w.dispatcher.handle(
            CIMRequest("imethod", name, NS, params=pywbem.NocaseDict(params)), ADMIN)
    path = request("CreateInstance", NewInstance=CIMInstance(
        cls, properties={"EntryName": "/var/iso/", "Attributes": ["OWNER=ops"]}))
    inst = request("GetInstance", InstanceName=path)
    before = w.agent.device_db().find("gdev", "/var/iso/", w.agent.host)
    assert before.attrs["OWNER"] == "ops"
    inst["Shared"] = True
    request("ModifyInstance", ModifiedInstance=inst)
    entry = w.agent.device_db().find("gdev", "/var/iso/", w.agent.host)
    changed = {k for k in entry.attrs if entry.attrs[k] != before.attrs.get(k)}
    assert changed == {"SHARE"} and entry.attrs["SHARE"] == "YES"
    inst["EntryName"] = "/var/other/"
    expect_error(pywbem.CIM_ERR_INVALID_PARAMETER, request, "ModifyInstance",
                 ModifiedInstance=inst, match="cannot change")
