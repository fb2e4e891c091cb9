"""Workload-manager controls through CIM (issue 5): the guide's dynamic memory examples read
from HPVM_Memory and driven through the memory RASD and SetMemoryTarget, CPU entitlement
through the processor RASD and SetEntitlement with its refusals, the hpvmstatus -r figures
on the processor RASD and HPVM_Processor -- all through the Dispatcher with every provider
family installed, on a ManualClock that hpvmstatus (run in-process on the same agent) shares,
so CIM and the command are compared at the same clock time. Refusals leave the state folder
byte for byte unchanged. Last, the server's periodic tick, and a workload manager moving
entitlement and memory among 10 running guests once a second over HTTPS (pywbem against the
real server), checking capacity and hpvmstatus after every step."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, NocaseDict, Uint32, Uint64

from agent.api.guests import GuestChanges
from agent.cli import hpvmmodify, hpvmstatus
from agent.clock import ManualClock
from agent.guest import Entitlement
from guest_support import fingerprint, make_agent, run_cli
from provider.messages import CIMRequest, Principal, RawParam
from provider.operations import Dispatcher
from provider.providers import ProviderEnvironment, ProviderRegistry, install_all
from provider.schema import Schema

NS = "root/cimv2"
ADMIN = Principal("root", "admin")
OPER = Principal("op1", "oper")
SERVICE_CLASS = "HPVM_VirtualSystemManagementService"
GUIDE_DM = {"ram_dyn_type": "any", "ram_dyn_min": 1222, "ram_dyn_max": 6144}
NO_DRIVER = ("ERROR (guest1): Query to dynamic memory driver failed: Function is not "
             "available.\nFailed to set ram_target.")
DM_PROPERTIES = [("Type", "DynamicMemoryType"), ("Minimum memory", "MinimumMemory"),
                 ("Target memory", "TargetMemory"), ("Maximum memory", "MaximumMemory"),
                 ("Current memory", "CurrentMemory"),
                 ("Comfortable minimum", "ComfortableMinimum"), ("Boot memory", "BootMemory"),
                 ("Free memory", "FreeMemory"), ("Available memory", "AvailableMemory"),
                 ("Memory pressure", "MemoryPressure"), ("Memory chunksize", "ChunkSize"),
                 ("Driver Mode(s)", "DriverModes")]


@pytest.fixture(scope="module")
def schema():
    return Schema.load()


class World:
    """An agent on a ManualClock, the Dispatcher with every family, and hpvmstatus /
    hpvmmodify run in-process on that same agent."""

    def __init__(self, schema, tmp_path, monkeypatch, **host_kw):
        self.clock = ManualClock()
        self.state = tmp_path / "state"
        self.agent = a = make_agent(self.state, clock=self.clock, **host_kw)
        env = ProviderEnvironment(schema=schema, host_name="vmhost", clock=self.clock,
                                  state_dir=self.state, agent=a, version="1.0.0")
        self.registry = ProviderRegistry(schema)
        install_all(self.registry, env)
        self.env = env
        self.dispatcher = Dispatcher(schema, self.registry, clock=self.clock,
                                     host_name="vmhost")

        def opened(opts, argv):
            a.command = " ".join(argv)
            return a
        from agent.cli import common
        for module in (common, hpvmstatus, hpvmmodify):   # wherever the name is bound
            if hasattr(module, "open_agent"):
                monkeypatch.setattr(module, "open_agent", opened)

    # -- guests
    def guide_guest(self, name="guest1", *, kit="A.03.00", workload_mb=1655, **dm):
        """The guide's 6 GB HP-UX guest (DM range 1222 MB - 6 GB), running in its OS."""
        a = self.agent
        a.create_guest(name, GuestChanges(memory_mb=6144, dynmem={**GUIDE_DM, **dm}))
        g = a.find_guest(name)
        a.set_guest_model(g, os="HPUX", os_version="11.23", kit=kit, workload_mb=workload_mb)
        a.start_guest(g)
        self.clock.advance(40)
        return a.find_guest(name)

    def cpu_guest(self, name, *, vcpus=1, percent=10.0):
        a = self.agent
        a.create_guest(name, GuestChanges(vcpus=vcpus, memory_mb=1024,
                                          entitlement=Entitlement(percent=percent)))
        a.set_guest_model(a.find_guest(name), os="HPUX")
        a.start_guest(a.find_guest(name))
        self.clock.advance(40)
        return a.find_guest(name)

    def uuid(self, name):
        return self.agent.find_guest(name).uuid

    def guest_ref(self, name):
        return CIMInstanceName("HPVM_Guest", {"CreationClassName": "HPVM_Guest",
                                              "Name": self.uuid(name)}, namespace=NS)

    # -- CIM
    def op(self, name, principal=ADMIN, **params):
        return self.dispatcher.handle(CIMRequest("imethod", name, NS, NocaseDict(params)),
                                      principal)

    def get(self, classname, principal=ADMIN, **keys):
        return self.op("GetInstance", principal, InstanceName=CIMInstanceName(
            classname, keys, namespace=NS))

    def memory(self, name):
        return self.get("HPVM_Memory", SystemCreationClassName="HPVM_Guest",
                        SystemName=self.uuid(name), CreationClassName="HPVM_Memory",
                        DeviceID="memory")

    def processor(self, name, i=0):
        return self.get("HPVM_Processor", SystemCreationClassName="HPVM_Guest",
                        SystemName=self.uuid(name), CreationClassName="HPVM_Processor",
                        DeviceID=f"cpu:{i}")

    def cpu_rasd(self, name):
        return self.get("HPVM_ProcessorAllocationSettingData",
                        InstanceID=f"HPVM:{self.uuid(name)}:cpu")

    def service(self):
        (svc,) = self.op("EnumerateInstanceNames", ClassName=SERVICE_CLASS)
        return svc

    def call(self, method, principal=ADMIN, **params):
        raw = {k: RawParam(k, None, v) for k, v in params.items()}
        result = self.dispatcher.handle(CIMRequest("method", method, NS, NocaseDict(raw),
                                                   target=self.service()), principal)
        return result.return_value, {p.name: p.value for p in result.out_params}

    def modify(self, *rasds, principal=ADMIN):
        return self.call("ModifyResourceSettings", principal, ResourceSettings=list(rasds))

    def refused(self, method, *args, **params):
        """The CIMError a refused call raises; the state folder is unchanged by it."""
        before = fingerprint(self.state)
        with pytest.raises(CIMError) as exc:
            if method == "ModifyResourceSettings":
                self.modify(*args, **params)
            else:
                self.call(method, *args, **params)
        assert fingerprint(self.state) == before
        return exc.value.status_code, exc.value.status_description

    # -- the command, same agent and clock
    def status(self, *argv) -> str:
        code, out, err = run_cli(hpvmstatus.main, list(argv), self.state)
        assert code == 0, err
        return out


@pytest.fixture
def world(schema, tmp_path, monkeypatch):
    return World(schema, tmp_path, monkeypatch)


def mem_rasd(uuid, **props) -> CIMInstance:
    values = {"InstanceID": f"HPVM:{uuid}:memory"}
    values.update(props)
    return CIMInstance("HPVM_MemoryAllocationSettingData", values)


def cpu_rasd(uuid, **props) -> CIMInstance:
    values = {"InstanceID": f"HPVM:{uuid}:cpu"}
    values.update(props)
    return CIMInstance("HPVM_ProcessorAllocationSettingData", values)


def dm_block(status_v: str) -> dict[str, str]:
    """[Dynamic Memory Information] of hpvmstatus -V as label -> value."""
    lines = status_v.splitlines()
    i = lines.index("[Dynamic Memory Information]")
    out = {}
    for line in lines[i + 1:lines.index("", i)]:
        if " : " in line:
            label, value = line.split(" : ", 1)
            out[label.strip()] = value.strip()
    return out


def cim_text(prop: str, value) -> str:
    """A HPVM_Memory value as hpvmstatus -V prints it."""
    if prop == "DriverModes":
        return " ".join(value)
    if prop == "ChunkSize":
        return f"{value} KB"
    if prop in ("DynamicMemoryType", "MemoryPressure"):
        return str(value)
    return f"{value} MB"


def assert_memory_matches_status(world, name="guest1"):
    """Every [Dynamic Memory Information] field equals HPVM_Memory at this clock time."""
    block = dm_block(world.status("-V", "-P", name))
    mem = world.memory(name)
    shown = {label: cim_text(prop, mem[prop]) for label, prop in DM_PROPERTIES
             if mem[prop] is not None}
    assert shown == block
    return mem, block


# --- dynamic memory: the guide's examples ----------------------------------------------------

def test_a_6_gb_guest_shows_6135_mb_boot_and_current_memory_in_cim(world):
    world.guide_guest()
    mem, block = assert_memory_matches_status(world)
    assert len(block) == 12                               # all twelve fields, live
    assert (mem["BootMemory"], mem["CurrentMemory"], mem["TargetMemory"]) == (6135, 6135, 6135)
    assert mem["DynamicMemoryLive"] is True and mem["DynamicMemoryType"] == "driver"
    assert mem["ChunkSize"] == 65536 and mem["DriverModes"] == ["STARTED", "ENABLED"]
    assert mem["NumberOfBlocks"] * mem["BlockSize"] == 6135 * 2 ** 20


def test_without_a_driver_cim_shows_the_configured_values_only(world):
    world.guide_guest(kit="")
    mem, block = assert_memory_matches_status(world)
    assert set(block) == {"Type", "Minimum memory", "Target memory", "Maximum memory"}
    assert mem["DynamicMemoryLive"] is False
    assert [mem[p] for p in ("CurrentMemory", "FreeMemory", "MemoryPressure",
                             "DriverModes")] == [None, None, None, None]


@pytest.mark.parametrize("amount, units", [(2048, "byte*2^20"), (2048, "MegaBytes"),
                                           (2, "byte*2^30"), (2048 * 1024, "KiloBytes")])
def test_target_2048_mb_on_the_memory_rasd_settles_at_2103_mb(world, amount, units):
    g = world.guide_guest()
    rv, out = world.modify(mem_rasd(g.uuid, AllocationUnits=units, TargetMemory=Uint64(amount)))
    assert rv == 0
    assert out["Warnings"] == ["Attempting to decrease memory from 6135 MB to 2103 MB.",
                               "Successfully began to change ram_target to 2103 MB."]
    world.clock.advance(1)                                # 256 MB/s: four chunks moved
    assert world.memory("guest1")["CurrentMemory"] == 6135 - 4 * 64
    assert_memory_matches_status(world)                   # mid-move, same clock time
    world.clock.advance(60)
    mem, block = assert_memory_matches_status(world)
    assert (mem["CurrentMemory"], mem["TargetMemory"], mem["ComfortableMinimum"]) == \
        (2103, 2103, 2167)
    rasd = world.get("HPVM_MemoryAllocationSettingData", InstanceID=f"HPVM:{g.uuid}:memory")
    assert rasd["TargetMemory"] == 2103


def test_set_memory_target_moves_to_an_amount_the_comfortable_minimum_and_boot_memory(world):
    world.guide_guest()
    ref = world.guest_ref("guest1")
    rv, out = world.call("SetMemoryTarget", AffectedSystem=ref, TargetMemory=Uint64(2048))
    assert (rv, out["EffectiveTarget"]) == (0, 2103)
    assert out["Warnings"][-1] == "Successfully began to change ram_target to 2103 MB."
    world.clock.advance(60)
    assert world.memory("guest1")["CurrentMemory"] == 2103
    rv, out = world.call("SetMemoryTarget", AffectedSystem=ref, TargetMemory=Uint64(0))
    assert out["EffectiveTarget"] == world.memory("guest1")["ComfortableMinimum"] == 2167
    world.clock.advance(60)
    rv, out = world.call("SetMemoryTarget", AffectedSystem=ref, ToBootMemory=True)
    assert out["Warnings"] == ["Attempting to increase memory from 2167 MB to 6135 MB.",
                               "Successfully began to change ram_target to 6135 MB."]
    world.clock.advance(60)
    mem, _ = assert_memory_matches_status(world)
    assert mem["CurrentMemory"] == 6135
    # the store names the CIM user and method, as hpvmmodify names the Unix user
    log = (world.state / "common" / "command.log").read_text()
    assert "cim:root: CIM HPVM_VirtualSystemManagementService.SetMemoryTarget guest1" in log


def test_a_squeezed_guest_shows_free_0_and_pressure_100_in_cim(world):
    world.guide_guest()
    rv, out = world.call("SetMemoryTarget", AffectedSystem=world.guest_ref("guest1"),
                         TargetMemory=Uint64(1024), AllocationUnits="MegaBytes")
    assert out["Warnings"][0] == ("Warning: ram_target 1024 MB is outside the dynamic memory "
                                  "range 1222 MB - 6144 MB.")
    world.clock.advance(60)
    mem, block = assert_memory_matches_status(world)
    assert (mem["CurrentMemory"], mem["FreeMemory"], mem["MemoryPressure"]) == (1271, 0, 100)
    # the guide's way out: give it memory again, here through the RASD
    world.modify(mem_rasd(world.uuid("guest1"), AllocationUnits="byte*2^20",
                          TargetMemory=Uint64(4096)))
    world.clock.advance(60)
    mem, _ = assert_memory_matches_status(world)
    assert (mem["CurrentMemory"], mem["MemoryPressure"]) == (4096, 0)


def test_without_a_driver_both_routes_fail_with_the_guides_text_and_change_nothing(world):
    g = world.guide_guest(kit="")
    code, text = world.refused("SetMemoryTarget", AffectedSystem=world.guest_ref("guest1"),
                               TargetMemory=Uint64(2048))
    assert (code, text) == (pywbem.CIM_ERR_FAILED, NO_DRIVER)
    code, text = world.refused("ModifyResourceSettings", mem_rasd(
        g.uuid, AllocationUnits="byte*2^20", TargetMemory=Uint64(2048)))
    assert (code, text) == (pywbem.CIM_ERR_FAILED, NO_DRIVER)
    # hpvmmodify prints the same lines, with its prefix and closing line
    code, out, err = run_cli(hpvmmodify.main, ["-P", "guest1", "-x", "ram_target=2048M"],
                             world.state)
    assert code == 1
    assert err.splitlines()[:2] == [f"hpvmmodify: {line}" for line in NO_DRIVER.split("\n")]


def test_bad_memory_targets_are_refused_naming_the_parameter(world):
    world.guide_guest()
    ref = world.guest_ref("guest1")
    cases = [
        (dict(AffectedSystem=ref), "TargetMemory: is required"),
        (dict(AffectedSystem=ref, TargetMemory=Uint64(2048), ToBootMemory=True),
         "TargetMemory: give TargetMemory or ToBootMemory"),
        (dict(AffectedSystem=ref, TargetMemory=Uint64(2048), AllocationUnits="furlongs"),
         "AllocationUnits: unknown unit 'furlongs'"),
        (dict(AffectedSystem=ref, TargetMemory=Uint64(1000), AllocationUnits="KiloBytes"),
         "TargetMemory: 1000 KiloBytes is not a whole number of MB"),
        (dict(AffectedSystem=world.service(), TargetMemory=Uint64(2048)),
         "AffectedSystem: HPVM_VirtualSystemManagementService is not a guest"),
    ]
    for params, text in cases:
        code, desc = world.refused("SetMemoryTarget", **params)
        assert code == pywbem.CIM_ERR_INVALID_PARAMETER and desc.startswith(text), desc
    missing = CIMInstanceName("HPVM_Guest", {"CreationClassName": "HPVM_Guest",
                                             "Name": "00000000-0000-0000-0000-000000000000"},
                              namespace=NS)
    code, _ = world.refused("SetMemoryTarget", AffectedSystem=missing, TargetMemory=Uint64(1))
    assert code == pywbem.CIM_ERR_NOT_FOUND
    world.agent.stop_guest(world.agent.find_guest("guest1"), hard=True)
    code, desc = world.refused("SetMemoryTarget", AffectedSystem=ref, TargetMemory=Uint64(2048))
    assert code == pywbem.CIM_ERR_FAILED and "is not running" in desc


def test_the_x_keywords_through_the_memory_rasd_on_a_running_guest(world):
    g = world.guide_guest()
    rv, out = world.modify(mem_rasd(g.uuid, AllocationUnits="byte*2^20",
                                    DynamicMemoryControl=True,
                                    DynamicMemoryTargetStart=Uint64(4096)))
    assert rv == 0
    config = world.agent.next_config(world.agent.find_guest("guest1")) or \
        world.agent.find_guest("guest1")
    assert (config.dynmem.control, config.dynmem.target_start_mb) == (True, 4096)
    # dynamic_memory_control takes effect at once: the driver reports GUESTCTL
    mem, _ = assert_memory_matches_status(world)
    assert mem["DriverModes"] == ["STARTED", "ENABLED", "GUESTCTL"]
    # min < target_start <= max: refused with one line naming both values, nothing changed
    code, desc = world.refused("ModifyResourceSettings", mem_rasd(
        g.uuid, AllocationUnits="byte*2^20", Reservation=Uint64(5000)))
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER and "ram_dyn_" in desc
    assert len(desc.splitlines()) == 1


def test_workload_methods_need_the_admin_role(world):
    world.guide_guest()
    ref = world.guest_ref("guest1")
    for method, params in (("SetMemoryTarget", dict(TargetMemory=Uint64(2048))),
                           ("SetEntitlement", dict(Reservation=Uint32(2000)))):
        before = fingerprint(world.state)
        with pytest.raises(CIMError) as exc:
            world.call(method, OPER, AffectedSystem=ref, **params)
        assert exc.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED
        assert fingerprint(world.state) == before


# --- CPU entitlement ---------------------------------------------------------------------

def resource_rows(status_r: str) -> dict[str, list[str]]:
    """hpvmstatus -r rows by guest name (the columns split on blanks)."""
    lines = status_r.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("====")) + 1
    out = {}
    for line in lines[start:]:
        if not line.strip() or line.startswith("["):
            break
        cols = line.split()
        out[cols[0]] = cols
    return out


def test_the_processor_rasd_changes_a_running_guests_entitlement_at_once(world):
    g = world.cpu_guest("vm1")
    rv, out = world.modify(cpu_rasd(g.uuid, AllocationUnits="percent*10^-2",
                                    Reservation=Uint64(5000)))
    assert rv == 0
    assert world.agent.find_guest("vm1").entitlement == Entitlement(percent=50.0)
    assert world.agent.next_config(world.agent.find_guest("vm1")) is None
    assert world.cpu_rasd("vm1")["Reservation"] == 5000
    assert world.processor("vm1")["Entitlement"] == 5000
    assert resource_rows(world.status("-r"))["vm1"][3] == "50.0%"
    # a Reservation in MHz is -E
    world.modify(cpu_rasd(g.uuid, AllocationUnits="hertz*10^6", Reservation=Uint64(700)))
    assert world.agent.find_guest("vm1").entitlement == Entitlement(percent=None, mhz=700)
    assert (world.processor("vm1")["EntitlementMHz"], world.cpu_rasd("vm1")["Reservation"]) == \
        (700, 5000)
    # a client sending back what it read (usage figures included) changes no setting
    rv, out = world.modify(world.cpu_rasd("vm1"))
    assert (rv, out["Warnings"]) == (0, [])
    assert world.agent.find_guest("vm1").entitlement == Entitlement(percent=None, mhz=700)


def test_set_entitlement_in_percent_or_mhz_and_active_only(world):
    world.cpu_guest("vm1")
    ref = world.guest_ref("vm1")
    assert world.call("SetEntitlement", AffectedSystem=ref, Reservation=Uint32(2550))[0] == 0
    assert world.agent.find_guest("vm1").entitlement == Entitlement(percent=25.5)
    world.call("SetEntitlement", AffectedSystem=ref, EntitlementMHz=Uint32(1400),
               ActiveOnly=True)
    g = world.agent.find_guest("vm1")
    assert g.entitlement == Entitlement(percent=None, mhz=1400)
    assert world.agent.next_config(g).entitlement == Entitlement(percent=25.5)
    assert world.processor("vm1")["Entitlement"] == 10000


def test_entitlement_beyond_capacity_is_refused_with_the_guides_text(world):
    world.cpu_guest("big", vcpus=2, percent=90.0)          # 2 x 1260 MHz of 2800
    small = world.cpu_guest("small")                       # 140 MHz: 2660
    assert world.call("SetEntitlement", AffectedSystem=world.guest_ref("small"),
                      Reservation=Uint32(2000))[0] == 0   # 2800: fits exactly
    code, text = world.refused("SetEntitlement", AffectedSystem=world.guest_ref("small"),
                               Reservation=Uint32(2500))
    assert (code, text) == (pywbem.CIM_ERR_FAILED, "Insufficient cpu resource for guest.")
    code, text = world.refused("ModifyResourceSettings", cpu_rasd(
        small.uuid, AllocationUnits="percent*10^-2", Reservation=Uint64(2500)))
    assert (code, text) == (pywbem.CIM_ERR_FAILED, "Insufficient cpu resource for guest.")
    assert world.agent.find_guest("small").entitlement == Entitlement(percent=20.0)


@pytest.mark.parametrize("params, prop, text", [
    (dict(Reservation=Uint32(400)), "Reservation", "must be at least 5%"),
    (dict(Reservation=Uint32(10001)), "Reservation", ""),
    (dict(EntitlementMHz=Uint32(69)), "EntitlementMHz", "outside 5-100% of a processor"),
    (dict(EntitlementMHz=Uint32(1500)), "EntitlementMHz", "outside 5-100% of a processor"),
    (dict(Reservation=Uint32(2000), EntitlementMHz=Uint32(700)), "Reservation, EntitlementMHz",
     "give the entitlement once"),
    (dict(), "Reservation, EntitlementMHz", "give the entitlement once"),
])
def test_set_entitlement_outside_5_to_100_percent_is_refused(world, params, prop, text):
    world.cpu_guest("vm1")
    code, desc = world.refused("SetEntitlement", AffectedSystem=world.guest_ref("vm1"),
                               **params)
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert desc.startswith(f"{prop}: ") and text in desc, desc


@pytest.mark.parametrize("props, prop", [
    (dict(AllocationUnits="percent*10^-2", Reservation=Uint64(400)), "Reservation"),
    (dict(AllocationUnits="percent*10^-2", Reservation=Uint64(10050)), "Reservation"),
    (dict(EntitlementMHz=Uint32(69)), "EntitlementMHz"),
    (dict(AllocationUnits="hertz*10^6", Reservation=Uint64(1401)), "Reservation"),
    (dict(AllocationUnits="furlongs", Reservation=Uint64(1000)), "AllocationUnits"),
    (dict(Limit=Uint64(5000)), "Limit"),
    (dict(Weight=Uint32(5)), "Weight"),
])
def test_bad_processor_settings_are_refused_naming_the_property(world, props, prop):
    g = world.cpu_guest("vm1")
    code, desc = world.refused("ModifyResourceSettings", cpu_rasd(g.uuid, **props))
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert desc.startswith(f"ResourceSettings[0] (HPVM_ProcessorAllocationSettingData).{prop}:")


def test_processor_classes_show_the_resource_view_at_the_same_clock_time(world):
    world.cpu_guest("vm1", vcpus=2, percent=25.0)
    world.cpu_guest("vm2")
    world.clock.advance(100)
    rows = resource_rows(world.status("-r"))
    for name in ("vm1", "vm2"):
        row, rasd = rows[name], world.cpu_rasd(name)
        # Name, VM #, #VCPUs, Entitlement, Maximum, Percent Usage, Cumulative Usage, ...
        assert f"{rasd['Reservation'] / 100:.1f}%" == row[3]
        assert f"{rasd['Limit'] / 100:.1f}%" == row[4]
        assert f"{rasd['PercentUsage'] / 100:.1f}%" == row[5]
        assert str(rasd["CumulativeUsage"]) == row[6]
    per_vcpu = world.status("-r", "-P", "vm1").split("[Virtual CPU Usage]")[1]
    lines = [ln.split() for ln in per_vcpu.splitlines()
             if re.match(r"^\s+\d+\s", ln)]
    assert len(lines) == 2
    for i, cols in enumerate(lines):
        p = world.processor("vm1", i)
        assert cols == [str(i), str(p["CumulativeUsage"]),
                        f"{p['GuestPercentUsage'] / 100:.1f}%",
                        f"{p['HostPercentUsage'] / 100:.1f}%", str(p["AchievedMHz"])]
        assert (p["Entitlement"], p["MaximumEntitlement"]) == (2500, 10000)
        assert p["LoadPercentage"] == round(p["GuestPercentUsage"] / 100)
    assert world.processor("vm1")["CumulativeUsage"] > 0


def test_usage_is_read_once_per_request_and_not_when_left_out(world, monkeypatch):
    for name in ("vm1", "vm2", "vm3"):
        world.cpu_guest(name, vcpus=2, percent=20.0)
    calls = []
    real = world.agent.cpu_usage
    monkeypatch.setattr(world.agent, "cpu_usage", lambda: calls.append(1) or real())
    insts = world.op("EnumerateInstances", ClassName="HPVM_Processor",
                     PropertyList=["Entitlement"])
    assert len(insts) == 6 and not calls
    insts = world.op("EnumerateInstances", ClassName="HPVM_Processor")
    assert all(i["AchievedMHz"] is not None for i in insts)
    # the accounting is read once per request, for the -r rows and the vCPUs alike: not
    # per guest or vCPU; the guests run, so the next request reads it again (it advances)
    assert len(calls) == 1
    world.op("EnumerateInstances", ClassName="HPVM_ProcessorAllocationSettingData")
    assert len(calls) == 2


# --- the server's periodic tick ------------------------------------------------------------

def test_the_background_work_settles_the_model_after_polling_jobs(world, monkeypatch):
    from provider.background import BackgroundWork
    from provider.providers import hpvm_jobs
    order = []
    manager = hpvm_jobs.job_manager(world.env)
    monkeypatch.setattr(manager, "poll", lambda: order.append("poll") or 0)
    real = world.agent.settle

    def settle():
        assert hpvm_jobs.agent_lock(world.env)._is_owned()   # under the CIM changes' lock
        order.append("settle")
        return real()
    monkeypatch.setattr(world.agent, "settle", settle)
    BackgroundWork(world.env, reactor=None, pool=None)._periodic()
    assert order == ["poll", "settle"]


def test_settling_persists_a_graceful_stop_the_clock_finished(world):
    from provider.providers.hpvm_workload import settle_model
    world.cpu_guest("vm1")
    world.agent.stop_guest(world.agent.find_guest("vm1"))
    world.clock.advance(60)
    before = fingerprint(world.state)
    settle_model(world.env)
    assert fingerprint(world.state) != before              # the finished stop is written
    again = fingerprint(world.state)
    settle_model(world.env)
    assert fingerprint(world.state) == again               # nothing left to write


def test_the_real_server_settles_the_model_by_itself(tmp_path, monkeypatch):
    """No client asks anything: the server's tick writes a finished graceful stop."""
    from agent.api import Agent
    from guest_support import init_state
    from hpvm_cim_support import TIMINGS, start_server
    from server_helpers import wait_for
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    state = init_state(tmp_path / "state", **TIMINGS)
    a = Agent(state)
    a.create_guest("vm1", GuestChanges(memory_mb=1024))
    a.start_guest(a.find_guest("vm1"))
    server = start_server(tmp_path, prepared=True)
    try:
        a.stop_guest(a.find_guest("vm1"))                 # Stopping; Off 0.3 s later
        before = fingerprint(state)
        changed = wait_for(lambda: {k: v for k, v in fingerprint(state).items()
                                    if k.startswith("uuids/") and before.get(k) != v},
                           timeout=10)
        assert changed, server.log_tail()
    finally:
        server.stop()


# --- a workload manager over HTTPS ------------------------------------------------------------

GUESTS = [f"wl{i:02d}" for i in range(10)]
CPU_MHZ, CPUS = 1400, 2


def _prepare_host(base: Path) -> Path:
    """10 HP-UX guests with the guest kit and dynamic_memory_control=1, running."""
    from agent.api import Agent
    from guest_support import init_state
    from hpvm_cim_support import TIMINGS
    state = init_state(base / "state", cpus=CPUS, cpu_mhz=CPU_MHZ, memory_mb=40960,
                       swap_mb=65536, **{**TIMINGS, "memory_mb_per_second": 16384.0})
    a = Agent(state)
    for name in GUESTS:
        a.create_guest(name, GuestChanges(
            memory_mb=2048, entitlement=Entitlement(percent=10.0),
            dynmem={"ram_dyn_type": "any", "ram_dyn_min": 512, "ram_dyn_max": 2048,
                    "dynamic_memory_control": True}))
        g = a.find_guest(name)
        a.set_guest_model(g, os="HPUX", os_version="11.23", kit="A.03.00", workload_mb=256)
        a.start_guest(g)
    return state


def _wait_running(state, timeout=30.0):
    from agent.api import Agent
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = Agent(state)
        dms = [a.status_details(name=n)[0].dynmem for n in GUESTS]
        if all(dm is not None and dm.live for dm in dms):
            return
        time.sleep(0.2)
    raise AssertionError("the guests did not reach On (OS) with a DM driver")


class Wlm:
    """The client side: pywbem over HTTPS, one connection."""

    def __init__(self, server):
        self.conn = server.conn()
        self.state = server.state_dir
        (self.service,) = self.conn.EnumerateInstanceNames(SERVICE_CLASS)
        self.guests = {g["ElementName"]: g.path for g in self.conn.EnumerateInstances(
            "HPVM_Guest", PropertyList=["ElementName"])}
        host = self.conn.EnumerateInstances("HPVM_Host", PropertyList=[
            "ProcessorSpeed", "NumberOfProcessors"])[0]
        self.capacity_mhz = int(host["ProcessorSpeed"]) * int(host["NumberOfProcessors"])

    def invoke(self, method, **params):
        return self.conn.InvokeMethod(method, self.service, **params)

    def entitlements(self) -> dict[str, int]:
        """name -> hundredths of a percent per vCPU, and name -> vCPUs, from the RASDs."""
        uuid_name = {p.keybindings["Name"]: n for n, p in self.guests.items()}
        out, vcpus = {}, {}
        for r in self.conn.EnumerateInstances("HPVM_ProcessorAllocationSettingData",
                                              PropertyList=["InstanceID", "Reservation",
                                                            "VirtualQuantity"]):
            parts = r["InstanceID"].split(":")
            if len(parts) == 3 and parts[1] in uuid_name:    # running configs, no templates
                out[uuid_name[parts[1]]] = int(r["Reservation"])
                vcpus[uuid_name[parts[1]]] = int(r["VirtualQuantity"])
        return out, vcpus

    def used_mhz(self, ent, vcpus) -> float:
        return sum(vcpus[n] * ent[n] / 10000 * CPU_MHZ for n in ent)


def _status(state, *argv) -> str:
    code, out, err = run_cli(hpvmstatus.main, list(argv), state)
    assert code == 0, err
    return out


def _available_1way(status_s: str) -> int:
    m = re.search(r"Available entitlement for a 1 way virtual machine = (\d+) Mhz", status_s)
    return int(m.group(1))


@pytest.mark.slow
def test_a_workload_manager_moves_entitlement_and_memory_among_10_guests(tmp_path,
                                                                          monkeypatch):
    from hpvm_cim_support import start_server
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    state = _prepare_host(tmp_path)
    server = start_server(tmp_path, prepared=True)
    try:
        _wait_running(state)
        wlm = Wlm(server)
        assert sorted(wlm.guests) == GUESTS and wlm.capacity_mhz == CPUS * CPU_MHZ
        want_ent = {n: 1000 for n in GUESTS}
        want_mem = {}
        refusals = 0
        steps = 60
        t0 = time.monotonic()
        for step in range(steps):
            donor, taker = GUESTS[step % 10], GUESTS[(step * 3 + 1) % 10]
            if taker == donor:
                taker = GUESTS[(step + 5) % 10]
            # CPU: take up to 5 % from the donor (never below 5 %), then ask for more than
            # the host has for the taker (refused), then for what is free
            ent, vcpus = wlm.entitlements()
            assert ent == want_ent
            new_donor = max(500, ent[donor] - 500)
            if step % 2:
                wlm.invoke("SetEntitlement", AffectedSystem=wlm.guests[donor],
                           Reservation=Uint32(new_donor))
            else:
                wlm.invoke("ModifyResourceSettings", ResourceSettings=[cpu_rasd(
                    wlm.guests[donor].keybindings["Name"], AllocationUnits="percent*10^-2",
                    Reservation=Uint64(new_donor))])
            want_ent[donor] = new_donor
            free = wlm.capacity_mhz - wlm.used_mhz(want_ent, vcpus)
            grant = int(min(10000 - ent[taker], free / CPU_MHZ * 10000) // 10) * 10
            too_much = ent[taker] + grant + 100
            if too_much <= 10000:
                with pytest.raises(pywbem.CIMError) as exc:
                    wlm.invoke("SetEntitlement", AffectedSystem=wlm.guests[taker],
                               Reservation=Uint32(too_much))
                assert exc.value.status_description == "Insufficient cpu resource for guest."
                refusals += 1
            if grant:
                wlm.invoke("SetEntitlement", AffectedSystem=wlm.guests[taker],
                           Reservation=Uint32(ent[taker] + grant))
                want_ent[taker] = ent[taker] + grant
            # memory: the donor shrinks by a chunk or grows back, the taker the other way
            for name, amount in ((donor, 512 + 64 * (step % 20)),
                                 (taker, 2048 - 64 * (step % 7))):
                uuid = wlm.guests[name].keybindings["Name"]
                rasd_path = CIMInstanceName("HPVM_MemoryAllocationSettingData",
                                            {"InstanceID": f"HPVM:{uuid}:memory"},
                                            namespace=NS)
                if step % 3 == 0:
                    before = int(wlm.conn.GetInstance(rasd_path)["TargetMemory"])
                    rv, out = wlm.invoke("ModifyResourceSettings", ResourceSettings=[mem_rasd(
                        uuid, AllocationUnits="MegaBytes", TargetMemory=Uint64(amount))])
                    effective = int(wlm.conn.GetInstance(rasd_path)["TargetMemory"])
                    if amount == before:                 # the target it shows: unchanged
                        assert out["Warnings"] == [] and effective == before
                        effective = None
                else:
                    rv, out = wlm.invoke("SetMemoryTarget", AffectedSystem=wlm.guests[name],
                                         TargetMemory=Uint64(amount))
                    effective = int(out["EffectiveTarget"])
                assert rv == 0
                if effective is not None:
                    assert out["Warnings"][-1] == \
                        f"Successfully began to change ram_target to {effective} MB."
                    want_mem[name] = effective
            # capacity never exceeded: through CIM ...
            ent, vcpus = wlm.entitlements()
            assert ent == want_ent
            used = wlm.used_mhz(ent, vcpus)
            assert used <= wlm.capacity_mhz
            # ... and through hpvmstatus on the same state folder, where every change shows
            rows = resource_rows(_status(state, "-r"))
            assert {n: rows[n][3] for n in GUESTS} == \
                {n: f"{want_ent[n] / 100:.1f}%" for n in GUESTS}
            assert sum(float(rows[n][3].rstrip("%")) / 100 * CPU_MHZ for n in GUESTS) <= \
                wlm.capacity_mhz + 1e-6
            available = _available_1way(_status(state, "-s"))
            assert abs(available - min(CPU_MHZ, wlm.capacity_mhz - used)) <= 1
            (caps,) = wlm.conn.EnumerateInstances("HPVM_EntitlementCapabilities",
                                                  PropertyList=["AvailableEntitlement"])
            assert caps["AvailableEntitlement"][0] == available
            for name in (donor, taker):
                if name not in want_mem:
                    continue
                assert dm_block(_status(state, "-V", "-P", name))["Target memory"] == \
                    f"{want_mem[name]} MB"
            # once a second
            time.sleep(max(0.0, t0 + step + 1 - time.monotonic()))
        assert refusals >= steps // 2
        # the moves finished: each guest holds its last target, in CIM and hpvmstatus
        time.sleep(0.5)
        mems = {m["SystemName"]: m for m in wlm.conn.EnumerateInstances("HPVM_Memory")}
        for name, target in want_mem.items():
            uuid = wlm.guests[name].keybindings["Name"]
            assert int(mems[uuid]["CurrentMemory"]) == target
            assert dm_block(_status(state, "-V", "-P", name))["Current memory"] == \
                f"{target} MB"
        # the periodic tick (jobs, Agent.settle) ran beside the manager without failing
        assert "periodic work failed" not in server.log_tail()
    finally:
        server.stop()
