"""The read side of the VM model in CIM (issue 4 items 2, 4, 5), through the Dispatcher on a
store populated with the agent API: every HPVM_ class and association enumerates and gets,
bad keys are not found, the DSP1042/1057/1041/1043 traversals work both ways, profiles are
found by pywbem's WBEMServer, changes made by the commands are visible in the next request,
guest-scoped users see only their guests, PropertyList narrows the work, and the values are
those hpvmstatus and hpvmnet show for the same store."""
from __future__ import annotations

import re

import pytest
import pywbem
from pywbem import CIMInstanceName, NocaseDict, Uint16, WBEMServer

from agent.api.guests import GuestChanges
from agent.cli import hpvmmodify, hpvmnet, hpvmstatus
from agent.guest import RoleGrant
from agent.resources import parse_resource
from provider.messages import CIMRequest, Principal
from provider.operations import Dispatcher
from provider.providers import ProviderEnvironment, ProviderRegistry, install_all
from provider.providers.base import path_key
from provider.schema import Schema
from tests.guest_support import make_agent, run_cli
from tests.operations_support import DispatcherConnection

NS = "root/cimv2"
INTEROP = "root/interop"
HOST = "vmhost.example.com"
ADMIN = Principal("root", "admin")
READER = Principal("reader", "readonly")
ALICE = Principal("alice", "none")                     # admin of g1 through -u alice:admin
OPS = Principal("bob", "none", groups=("ops",))        # oper of g1 through -g ops:oper
NOBODY = Principal("carol", "none")                    # on no guest's lists

# Classes the populated store has no instance of (jobs are another family's).
MAY_BE_EMPTY = {"HPVM_ConcreteJob", "HPVM_AffectedJobElement", "HPVM_OwningJobElement"}


@pytest.fixture(scope="module")
def schema():
    return Schema.load()


class Host:
    """A populated state folder, its agent and a Dispatcher with every family installed."""

    def __init__(self, schema, state_dir):
        self.state_dir = state_dir
        self.agent = a = make_agent(state_dir)
        a.create_vswitch("sw1", 0)
        a.boot_vswitch("sw1")
        a.create_vswitch("local1")
        disk = state_dir / "g1disk"
        disk.write_bytes(b"\0" * 4096)
        a.add_device_entry("server", "vmhost", ("SERVERID", "1"))
        a.add_device_entry("server", "peer", ("SERVERID", "2"))
        a.add_device_entry("rdev", "/dev/rdsk/c1t2d0")
        a.create_guest("g1", GuestChanges(
            vcpus=2, memory_mb=1024, os_type="HPUX",
            add=[parse_resource(f"disk:scsi::file:{disk}", purpose="add"),
                 parse_resource("dvd:scsi::null:/dev/rdsk/c2t1d0", purpose="add"),
                 parse_resource("network:lan::vswitch:sw1", purpose="add")],
            grant=[RoleGrant("user", "alice", "admin"), RoleGrant("group", "ops", "oper")],
            dynmem={"ram_dyn_type": "any", "ram_dyn_min": 512, "ram_dyn_max": 1024}))
        a.create_guest("g2", GuestChanges(memory_mb=2048, distributed=True,
                                          add=[parse_resource("network:lan::vswitch:sw1",
                                                              purpose="add")]))
        a.start_guest(a.find_guest(name="g1"))
        a.clock.advance(60)
        # a change that waits for g1's next boot (vmm_config.next)
        a.modify_guest(a.find_guest(name="g1"), GuestChanges(vcpus=1))
        self.schema = schema
        self._install()

    def _install(self):
        a = self.agent
        self.registry = ProviderRegistry(self.schema)
        self.env = ProviderEnvironment(schema=self.schema, host_name=HOST, clock=a.clock,
                                       state_dir=self.state_dir, agent=a, version="1.0.0")
        install_all(self.registry, self.env)
        self.dispatcher = Dispatcher(self.schema, self.registry, clock=a.clock, host_name=HOST)

    def reopen(self):
        """A server started afresh on the same state folder (a new Agent object)."""
        from agent.api import Agent
        self.agent = Agent(self.state_dir, clock=self.agent.clock, host=self.agent.host)
        self._install()

    def op(self, name, principal=ADMIN, namespace=NS, **params):
        params = {k: v for k, v in params.items() if v is not None}
        return self.dispatcher.handle(CIMRequest("imethod", name, namespace, NocaseDict(params)),
                                      principal)

    def call(self, method, target, principal=ADMIN, **params):
        return self.dispatcher.handle(
            CIMRequest("method", method, NS, NocaseDict(params), target=target), principal)

    def enum(self, classname, principal=ADMIN, **kw):
        return self.op("EnumerateInstances", principal, ClassName=classname, **kw)

    def one(self, classname, principal=ADMIN, **match):
        found = [i for i in self.enum(classname, principal)
                 if all(i[k] == v for k, v in match.items())]
        assert len(found) == 1, (classname, match, len(found))
        return found[0]

    def uuid(self, name):
        return self.agent.find_guest(name=name).uuid

    def guest_path(self, name):
        return CIMInstanceName("HPVM_Guest", {"CreationClassName": "HPVM_Guest",
                                              "Name": self.uuid(name)}, namespace=NS)

    def assoc(self, obj, assoc, result=None, principal=ADMIN):
        return self.op("AssociatorNames", principal, ObjectName=obj, AssocClass=assoc,
                       ResultClass=result)


@pytest.fixture
def host(schema, tmp_path):
    return Host(schema, tmp_path)


def served_hpvm(host):
    return [c for c in host.registry.served(NS) if c.startswith("HPVM_")]


def keyset(paths):
    return sorted(path_key(p, NS) for p in paths)


# -- every class ------------------------------------------------------------------------------

def test_every_class_enumerates_names_and_gets(host):
    classes = served_hpvm(host)
    concrete = {c for c in host.schema.class_names(NS) if c.startswith(("HPVM_", "HP_"))
                and not getattr(host.schema.get_class(NS, c).qualifiers.get("Abstract"),
                                "value", False)}
    # every concrete class has a provider, but HP_SoftPartitionCS (guests are its subclass)
    assert concrete - set(classes) - MAY_BE_EMPTY == {"HP_SoftPartitionCS"}
    empty = []
    for cls in classes:
        insts = host.enum(cls)
        names = host.op("EnumerateInstanceNames", ClassName=cls)
        assert keyset(i.path for i in insts) == keyset(names), cls
        if not insts:
            empty.append(cls)
        for inst in insts:
            got = host.op("GetInstance", InstanceName=inst.path)
            assert got.path == inst.path
            # the same values (GetInstance may add what an enumeration leaves to it:
            # a vswitch's counters)
            assert {k: got[k] for k in inst.keys()} == dict(inst.items()), cls
    assert set(empty) <= MAY_BE_EMPTY, empty
    # the whole model under the DMTF parents
    systems = {i.classname for i in host.enum("CIM_ComputerSystem")}
    assert {"HPVM_Host", "HPVM_Guest", "HPVM_Switch", "HPVM_MSEServer"} <= systems


def _spoil(path: CIMInstanceName) -> CIMInstanceName:
    bad = path.copy()
    for k, v in bad.keybindings.items():
        if isinstance(v, CIMInstanceName):
            inner = v.copy()
            for ik, iv in inner.keybindings.items():
                if isinstance(iv, str) and ik.lower() != "creationclassname" \
                        and ik.lower() != "systemcreationclassname":
                    inner.keybindings[ik] = iv + "-nope"
            bad.keybindings[k] = inner
            return bad
    for k, v in bad.keybindings.items():
        if isinstance(v, str) and k.lower() not in ("creationclassname",
                                                     "systemcreationclassname"):
            bad.keybindings[k] = v + "-nope"
    return bad


def test_get_with_a_bad_key_is_not_found(host):
    checked = 0
    for cls in served_hpvm(host):
        names = host.op("EnumerateInstanceNames", ClassName=cls)
        if not names:
            continue
        with pytest.raises(pywbem.CIMError) as err:
            host.op("GetInstance", InstanceName=_spoil(names[0]))
        assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND, cls
        checked += 1
    assert checked >= 45
    # a key of another class's format, and a device of another guest
    g1, g2 = host.uuid("g1"), host.uuid("g2")
    for path in (CIMInstanceName("HPVM_VirtualSystemSettingData", {"InstanceID": "HPVM:pool:memory"}, namespace=NS),
                 CIMInstanceName("HPVM_IODevice", {"SystemCreationClassName": "HPVM_Guest", "SystemName": g2, "CreationClassName": "HPVM_IODevice", "DeviceID": "disk:0,0,0"}, namespace=NS),
                 CIMInstanceName("HPVM_StorageAllocationSettingData", {"InstanceID": f"HPVM:{g2}:disk:0,0,0"}, namespace=NS),
                 CIMInstanceName("HPVM_ProcessorAllocationSettingData", {"InstanceID": f"HPVM:{g2}:next:cpu"}, namespace=NS),
                 CIMInstanceName("HPVM_Guest", {"CreationClassName": "HPVM_Host", "Name": g1}, namespace=NS)):
        with pytest.raises(pywbem.CIMError) as err:
            host.op("GetInstance", InstanceName=path)
        assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND, path


# -- traversals -------------------------------------------------------------------------------

def test_host_guest_device_rasd_vssd_traversal_both_ways(host):
    (hp,) = host.op("EnumerateInstanceNames", ClassName="HPVM_Host")
    guests = host.assoc(hp, "HPVM_HostedDependency", "HPVM_Guest")
    g1 = host.guest_path("g1")
    assert keyset(guests) == keyset([g1, host.guest_path("g2")])
    devices = host.assoc(g1, "HPVM_SystemDevice")
    ids = sorted(d["DeviceID"] for d in devices)
    assert ids == sorted(["disk:0,0,0", "dvd:0,0,1", "network:0,1", "serial:com1",
                          "cpu:0", "cpu:1", "memory"])
    disk = next(d for d in devices if d["DeviceID"] == "disk:0,0,0")
    (rasd,) = host.assoc(disk, "HPVM_SettingsDefineState")
    assert rasd.classname == "HPVM_StorageAllocationSettingData"
    assert rasd["InstanceID"] == f"HPVM:{g1['Name']}:disk:0,0,0"
    (vssd,) = host.assoc(rasd, "HPVM_VirtualSystemSettingDataComponent")
    assert vssd["InstanceID"] == f"HPVM:{g1['Name']}"
    (back,) = host.assoc(vssd, "HPVM_SettingsDefineState")
    assert path_key(back, NS) == path_key(g1, NS)
    # and back down the other way
    assert keyset(host.assoc(vssd, "HPVM_SettingsDefineState", "HPVM_Guest")) == keyset([g1])
    parts = host.assoc(vssd, "HPVM_VirtualSystemSettingDataComponent")
    assert path_key(rasd, NS) in {path_key(p, NS) for p in parts}
    assert len(parts) == 5          # cpu, memory, disk, dvd, vNIC
    assert keyset(host.assoc(rasd, "HPVM_SettingsDefineState")) == keyset([disk])
    assert keyset(host.assoc(disk, "HPVM_SystemDevice")) == keyset([g1])
    assert keyset(host.assoc(g1, "HPVM_HostedDependency")) == keyset([hp])
    # every vCPU is defined by the one processor RASD
    cpu_rasd = [p for p in parts if p.classname == "HPVM_ProcessorAllocationSettingData"][0]
    cpus = host.assoc(cpu_rasd, "HPVM_SettingsDefineState")
    assert sorted(c["DeviceID"] for c in cpus) == ["cpu:0", "cpu:1"]
    # References return the association instances themselves
    refs = host.op("References", ObjectName=g1, ResultClass="HPVM_SystemDevice")
    assert len(refs) == 7 and all(r.classname == "HPVM_SystemDevice" for r in refs)


def test_every_association_instance_is_found_from_both_ends(host):
    """The targeted lookups (a traversal builds only what touches its source) miss
    nothing an enumeration has."""
    checked = 0
    for assoc in served_hpvm(host):
        if not host.schema.is_association(NS, assoc):
            continue
        for inst in host.enum(assoc):
            for name, value in inst.items():
                if not isinstance(value, CIMInstanceName) or value.namespace not in (None, NS):
                    continue
                found = host.op("References", ObjectName=value, ResultClass=assoc, Role=name)
                assert path_key(inst.path, NS) in {path_key(f.path, NS) for f in found}, \
                    (assoc, name, value)
                checked += 1
    assert checked > 200


def test_pending_configuration_is_the_next_vssd(host):
    g1 = host.guest_path("g1")
    u = g1["Name"]
    settings = host.op("References", ObjectName=g1, ResultClass="HPVM_ElementSettingData")
    flags = {r["SettingData"]["InstanceID"]: (r["IsDefault"], r["IsCurrent"], r["IsNext"])
             for r in settings}
    assert flags == {f"HPVM:{u}": (1, 1, 2), f"HPVM:{u}:next": (2, 2, 1)}
    nxt = host.op("GetInstance", InstanceName=CIMInstanceName(
        "HPVM_ProcessorAllocationSettingData", {"InstanceID": f"HPVM:{u}:next:cpu"},
        namespace=NS))
    cur = host.op("GetInstance", InstanceName=CIMInstanceName(
        "HPVM_ProcessorAllocationSettingData", {"InstanceID": f"HPVM:{u}:cpu"}, namespace=NS))
    assert (cur["VirtualQuantity"], nxt["VirtualQuantity"]) == (2, 1)
    assert host.one("HPVM_Guest", Name=u)["NextConfigurationPending"] is True
    # the off guest has one configuration
    g2 = host.guest_path("g2")
    assert len(host.assoc(g2, "HPVM_ElementSettingData")) == 1


def test_host_pool_capabilities_templates_traversal(host):
    (hp,) = host.op("EnumerateInstanceNames", ClassName="HPVM_Host")
    pools = host.assoc(hp, "HPVM_HostedResourcePool")
    ids = sorted(p["InstanceID"] for p in pools)
    switches = [s.name for s in host.agent.vswitch_summaries()]
    assert {"sw1", "local1"} <= set(switches)
    assert ids == sorted(["HPVM:pool:memory", "HPVM:pool:processor", "HPVM:pool:storage"]
                         + [f"HPVM:pool:network:{name}" for name in switches])
    mem_pool = next(p for p in pools if p["InstanceID"] == "HPVM:pool:memory")
    (ac,) = host.assoc(mem_pool, "HPVM_ElementCapabilities", "HPVM_AllocationCapabilities")
    assert ac["InstanceID"] == "HPVM:AllocationCapabilities:memory"
    templates = host.op("References", ObjectName=ac, ResultClass="HPVM_SettingsDefineCapabilities")
    roles = sorted((t["PartComponent"]["InstanceID"].rsplit(":", 1)[1], t["ValueRole"],
                    t["ValueRange"]) for t in templates)
    assert roles == [("Default", 0, 0), ("Increment", 3, 3), ("Maximum", 3, 2),
                     ("Minimum", 3, 1)]
    maximum = host.op("GetInstance", InstanceName=CIMInstanceName(
        "HPVM_MemoryAllocationSettingData",
        {"InstanceID": "HPVM:AllocationCapabilities:memory:Maximum"}, namespace=NS))
    assert maximum["VirtualQuantity"] == 64 * 1024 and maximum["AllocationUnits"] == "byte*2^20"
    # back up: template -> capabilities -> pool -> host
    (ac_back,) = host.assoc(templates[0]["PartComponent"], "HPVM_SettingsDefineCapabilities")
    assert path_key(ac_back, NS) == path_key(ac, NS)
    (pool_back,) = host.assoc(ac, "HPVM_ElementCapabilities")
    assert path_key(pool_back, NS) == path_key(mem_pool, NS)
    assert keyset(host.assoc(mem_pool, "HPVM_HostedResourcePool")) == keyset([hp])
    # pools -> devices drawn from them; the host -> services -> capabilities
    drawn = host.assoc(mem_pool, "HPVM_ElementAllocatedFromPool")
    assert sorted(d["SystemName"] for d in drawn) == sorted([host.uuid("g1"), host.uuid("g2")])
    services = host.assoc(hp, "HPVM_HostedService")
    assert sorted(s.classname for s in services) == ["HPVM_VirtualSystemManagementService",
                                                      "HPVM_VirtualSystemMigrationService"]
    vsms = next(s for s in services if s.classname == "HPVM_VirtualSystemManagementService")
    (vsmc,) = host.assoc(vsms, "HPVM_ElementCapabilities")
    assert vsmc["InstanceID"] == "HPVM:ManagementCapabilities"
    vsmc = host.op("GetInstance", InstanceName=vsmc)
    assert vsmc["SynchronousMethodsSupported"] == [2, 3, 5, 6, 7, 10]     # CIM 2.22+ values
    assert vsmc["VirtualSystemTypesSupported"] == ["Integrity VM"]
    for number in vsmc["VendorMethodsSupported"]:      # each advertised method is there
        name = ["CloneSystem", "CollectSystemData", "CreateVirtualSwitch",
                "ChangeVirtualSwitch", "DeleteVirtualSwitch", "StartVirtualSwitch",
                "HaltVirtualSwitch", "RebootVirtualSwitch",
                "SetVirtualSwitchPortVLAN", "SetMemoryTarget", "SetEntitlement"][number - 2]
        provider = host.registry.provider_for(NS, "HPVM_VirtualSystemManagementService")
        assert provider.method_handler(name) is not None, name
    host_caps = sorted(c["InstanceID"] for c in host.assoc(hp, "HPVM_ElementCapabilities"))
    assert host_caps == ["HPVM:EntitlementCapabilities", "HPVM:HostCapabilities",
                         "HPVM:ManagementCapabilities"]


def test_vswitch_wiring_and_device_database_links(host):
    (sw,) = [p for p in host.op("EnumerateInstanceNames", ClassName="HPVM_Switch")
             if p["Name"] == "sw1"]
    (lan,) = host.assoc(sw, "HPVM_SwitchUplink")
    assert lan["DeviceID"] == "lan0"
    ports = host.assoc(sw, "HPVM_SystemDevice", "HPVM_SwitchPort")
    assert sorted(p["DeviceID"] for p in ports) == ["port:1", "port:2"]
    nics = host.assoc(ports[0], "HPVM_SwitchPortConnection")
    assert len(nics) == 1 and nics[0]["DeviceID"].startswith("network:")
    (port_back,) = host.assoc(nics[0], "HPVM_SwitchPortConnection")
    assert path_key(port_back, NS) == path_key(ports[0], NS)
    g2 = host.guest_path("g2")
    servers = host.op("References", ObjectName=g2, ResultClass="HPVM_DistributedHost")
    assert sorted(r["Antecedent"]["Name"] for r in servers) == ["peer", "vmhost"]
    assert not any(r["IsRunningHost"] for r in servers)          # g2 is off
    entries = host.assoc(host.guest_path("g1"), "HPVM_IODeviceDBDependency")
    assert {e["InstanceID"] for e in entries} >= {f"HPVM:gdev:{host.state_dir / 'g1disk'}"}


# -- profiles ---------------------------------------------------------------------------------

def _central(wbem, org, name):
    (prof,) = wbem.get_selected_profiles(org, name)   # org None: any (vendor: Other)
    return wbem.get_central_instances(prof.path)


def test_profiles_and_their_central_instances(host):
    wbem = WBEMServer(DispatcherConnection(host, READER, NS, HOST))
    names = {(p["RegisteredOrganization"], p["RegisteredName"], p["RegisteredVersion"])
             for p in wbem.profiles}
    assert {(2, "System Virtualization", "1.0.0"), (2, "Virtual System", "1.0.0"),
            (2, "Resource Allocation", "1.1.0"), (2, "Allocation Capabilities", "1.0.0"),
            (2, "Memory Resource Virtualization", "1.0.0"),
            (1, "Integrity VM Provider", "A.03.00.00")} <= names
    # migration is not provided yet, so its profile is not claimed
    assert not any(name == "Virtual System Migration" for _, name, _ in names)
    (hp,) = host.op("EnumerateInstanceNames", ClassName="HPVM_Host")
    assert keyset(_central(wbem, "DMTF", "System Virtualization")) == keyset([hp])
    assert keyset(_central(wbem, None, "Integrity VM Provider")) == keyset([hp])
    assert keyset(_central(wbem, "DMTF", "Virtual System")) == \
        keyset([host.guest_path("g1"), host.guest_path("g2")])
    pools = 3 + len(host.agent.vswitch_summaries())
    assert len(_central(wbem, "DMTF", "Resource Allocation")) == pools
    assert [p["InstanceID"] for p in _central(wbem, "DMTF", "Memory Resource Virtualization")] \
        == ["HPVM:pool:memory"]
    assert len(_central(wbem, "DMTF", "Allocation Capabilities")) == pools
    # System Virtualization references its component profiles (DMTF direction)
    refs = host.op("EnumerateInstances", namespace=INTEROP, ClassName="CIM_ReferencedProfile")
    sv_parts = sorted(r["Antecedent"]["InstanceID"] for r in refs
                      if r["Dependent"]["InstanceID"] == "HPVM:DMTF+System Virtualization+1.0.0")
    assert "HPVM:DMTF+Virtual System+1.0.0" in sv_parts and len(sv_parts) == 5
    # from the guest's end, in root/cimv2
    profs = host.op("AssociatorNames", ObjectName=host.guest_path("g1"),
                    AssocClass="CIM_ElementConformsToProfile")
    assert [p["InstanceID"] for p in profs] == ["HPVM:DMTF+Virtual System+1.0.0"]
    # live: a new guest conforms at once
    host.agent.create_guest("g3", GuestChanges(memory_mb=1024))
    assert len(_central(wbem, "DMTF", "Virtual System")) == 3


# -- live -------------------------------------------------------------------------------------

def test_changes_by_the_commands_show_in_the_next_request(host):
    u2 = host.uuid("g2")
    cpu = CIMInstanceName("HPVM_ProcessorAllocationSettingData",
                          {"InstanceID": f"HPVM:{u2}:cpu"}, namespace=NS)
    assert host.op("GetInstance", InstanceName=cpu)["VirtualQuantity"] == 1
    # the hpvmmodify command in-process: another Agent object on the same state folder
    code, _out, err = run_cli(hpvmmodify.main, ["-P", "g2", "-c", "2", "-l", "web"],
                              host.state_dir)
    assert code == 0, err
    assert host.op("GetInstance", InstanceName=cpu)["VirtualQuantity"] == 2
    assert host.one("HPVM_Guest", Name=u2)["VMLabel"] == "web"
    code, _out, err = run_cli(hpvmnet.main, ["-h", "-S", "sw1", "-F"], host.state_dir)
    assert code == 0, err
    sw = host.one("HPVM_Switch", Name="sw1")
    assert (sw["SwitchState"], sw["EnabledState"]) == ("Down", 3)
    host.agent.create_guest("g3", GuestChanges(memory_mb=1024))
    assert {g["ElementName"] for g in host.enum("HPVM_Guest")} == {"g1", "g2", "g3"}
    host.agent.remove_guest(host.agent.find_guest(name="g3"))
    assert {g["ElementName"] for g in host.enum("HPVM_Guest")} == {"g1", "g2"}


def test_an_invalid_guest_is_a_guest_in_state_invalid(host):
    u2 = host.uuid("g2")
    cfg = host.state_dir / "uuids" / u2 / "vmm_config.current"
    cfg.write_text(cfg.read_text().replace("vcpus = 1", "vcpus = many"))
    host.reopen()
    g = host.one("HPVM_Guest", Name=u2)
    assert (g["ElementName"], g["VMState"], g["EnabledState"], g["HealthState"]) == \
        ("g2", "Invalid", 0, 20)
    assert g["ConfigurationFile"].startswith("uuids/") and "vcpus" in g["ConfigurationError"]
    assert host.op("GetInstance", InstanceName=host.guest_path("g1"))["VMState"] == "On (EFI)"
    inv = CIMInstanceName("HPVM_Guest", {"CreationClassName": "HPVM_Guest", "Name": u2},
                          namespace=NS)
    assert host.op("GetInstance", InstanceName=inv)["VMState"] == "Invalid"
    assert host.assoc(inv, "HPVM_SystemDevice") == []          # nothing readable in it
    (caps,) = host.assoc(inv, "HPVM_ElementCapabilities")
    assert host.op("GetInstance", InstanceName=caps)["RequestedStatesSupported"] == []


# -- who sees what ----------------------------------------------------------------------------

def test_guest_scoped_users_see_their_guests_and_parts_only(host):
    u1, u2 = host.uuid("g1"), host.uuid("g2")
    for p in (ALICE, OPS):
        assert [g["Name"] for g in host.enum("HPVM_Guest", p)] == [u1]
        assert len(host.enum("HPVM_Host", p)) == 1
        assert {d["SystemName"] for d in host.enum("CIM_LogicalDevice", p)} == {u1}
        assert all(s["InstanceID"].startswith(f"HPVM:{u1}")
                   for s in host.enum("CIM_SettingData", p))
        for hidden in ("CIM_ResourcePool", "HPVM_Switch", "HPVM_HostCapabilities",
                       "HPVM_VirtualSystemManagementService", "HPVM_GuestIODeviceDB",
                       "HPVM_MSEServer", "HPVM_HostedResourcePool", "HPVM_ServiceAffectsElement"):
            assert host.enum(hidden, p) == [], hidden
        (hp,) = host.op("EnumerateInstanceNames", p, ClassName="HPVM_Host")
        assert [g["Name"] for g in host.assoc(hp, "HPVM_HostedDependency", principal=p)] == [u1]
        with pytest.raises(pywbem.CIMError) as err:
            host.op("GetInstance", p, InstanceName=host.guest_path("g2"))
        assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND
        with pytest.raises(pywbem.CIMError) as err:        # as if it did not exist
            host.assoc(host.guest_path("g2"), "HPVM_SystemDevice", principal=p)
        assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND
        assert len(host.assoc(host.guest_path("g1"), "HPVM_SystemDevice", principal=p)) == 7
        # only their guest conforms to DSP1057, no pool to DSP1041
        wbem = WBEMServer(DispatcherConnection(host, p, NS, HOST))
        assert [g["Name"] for g in _central(wbem, "DMTF", "Virtual System")] == [u1]
        assert _central(wbem, "DMTF", "Resource Allocation") == []
    assert [g["Name"] for g in host.enum("HPVM_Guest", NOBODY)] == []
    assert host.enum("HPVM_IODevice", NOBODY) == []
    assert len(host.enum("HPVM_Guest", READER)) == 2
    assert u2 in {g["Name"] for g in host.enum("HPVM_Guest", READER)}


def test_guest_lists_grant_state_changes_on_that_guest_only(host):
    g1, g2 = host.guest_path("g1"), host.guest_path("g2")
    for p in (NOBODY, READER, ALICE):
        target = g2 if p is ALICE else g1
        with pytest.raises(pywbem.CIMError) as err:
            host.call("RequestStateChange", target, p, RequestedState=Uint16(3))
        assert err.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED
    result = host.call("RequestStateChange", g1, OPS, RequestedState=Uint16(3))
    assert result.return_value == 0
    assert host.agent.runtime(host.agent.find_guest(name="g1")).state == "Off"
    # no host role: no host-wide writes
    inst = pywbem.CIMInstance("HPVM_GuestIODeviceDB", {"InstanceID": "HPVM:gdev:/dev/rdsk/c9t9d9"})
    with pytest.raises(pywbem.CIMError) as err:
        host.op("CreateInstance", ALICE, NewInstance=inst)
    assert err.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED


def test_role_none_in_the_user_file(tmp_path):
    from agent.clock import ManualClock
    from provider.auth import Authenticator, UserFile
    users = UserFile(tmp_path)
    users.add("alice", "none", "alice-secret-1")
    p = Authenticator(users, ManualClock()).verify("alice", "alice-secret-1", "127.0.0.1")
    assert (p.user, p.role) == ("alice", "none")


# -- property lists ---------------------------------------------------------------------------

def test_property_list_narrows_results_and_work(host, monkeypatch):
    g = host.op("GetInstance", InstanceName=host.guest_path("g1"),
                PropertyList=["VMState", "EnabledState"])
    assert set(g.keys()) == {"VMState", "EnabledState"}
    calls = []
    for name in ("scheduler_mode", "host_resources", "multi_server"):
        real = getattr(host.agent, name)
        monkeypatch.setattr(host.agent, name,
                            lambda real=real, name=name: calls.append(name) or real())
    (h,) = host.enum("HPVM_Host", PropertyList=["ElementName", "NumberOfProcessors"])
    assert set(h.keys()) == {"ElementName", "NumberOfProcessors"} and calls == []
    (h,) = host.enum("HPVM_Host")
    assert h["SchedulerMode"] == "NORMAL" and sorted(calls) == ["host_resources",
                                                                "multi_server",
                                                                "scheduler_mode"]
    names = host.op("EnumerateInstanceNames", ClassName="HPVM_EntitlementCapabilities")
    assert len(names) == 1 and calls.count("host_resources") == 1
    # one snapshot per request: a traversal over many targets reads the guests once
    reads = []
    real = host.agent.status_details
    monkeypatch.setattr(host.agent, "status_details",
                        lambda *a, **k: reads.append(1) or real(*a, **k))
    (hp,) = host.op("EnumerateInstanceNames", ClassName="HPVM_Host")
    host.op("Associators", ObjectName=hp, AssocClass="HPVM_HostedDependency")
    assert len(reads) == 1
    reads.clear()
    host.op("Associators", ObjectName=host.guest_path("g1"), AssocClass="HPVM_SystemDevice")
    assert len(reads) == 0      # nothing changed since: the views read above are shared
    host.agent.modify_guest(host.agent.find_guest("g1"), GuestChanges(label="moved"))
    host.op("Associators", ObjectName=host.guest_path("g1"), AssocClass="HPVM_SystemDevice")
    assert len(reads) == 1      # a change: read again, once


# -- the values are the commands' -------------------------------------------------------------

def _sections(text: str) -> list[tuple[str, dict]]:
    out, current = [], None
    for line in text.splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            current = (m.group(1), {})
            out.append(current)
        elif current is not None and ":" in line:
            k, _, v = line.partition(":")
            current[1][k.strip()] = v.strip()
    return out


def test_values_equal_hpvmstatus_and_hpvmnet(host):
    u1 = host.uuid("g1")
    _, text, _ = run_cli(hpvmstatus.main, ["-P", "g1", "-V"], host.state_dir)
    sections = _sections(text)
    vm = dict(sections)["Virtual Machine Details"]
    g = host.one("HPVM_Guest", Name=u1)
    for label, prop in (("Virtual Machine Name", "ElementName"), ("Virtual Machine UUID", "Name"),
                        ("Virtual Machine ID", "VMNumber"), ("VM's Serial Number", "SerialNumber"),
                        ("VM's Model Name", "ModelName"), ("VM's Config Label", "ConfigLabel"),
                        ("Operating System", "OSType"), ("State", "VMState"),
                        ("Start type", "StartType"), ("Console type", "ConsoleType"),
                        ("Guest revision", "GuestRevision"), ("Running on pid", "ProcessID"),
                        ("Application controllers", "ApplicationController")):
        assert vm[label] == str(g[prop]), label
    assert (g["EnabledState"], g["OperationalStatus"]) == (2, [2, 8])      # On (EFI)
    admins = dict(sections)["Authorized Administrators"]
    vssd = host.one("HPVM_VirtualSystemSettingData", InstanceID=f"HPVM:{u1}")
    assert (vssd["AdminUsers"], vssd["OperGroups"]) == ([admins["Admin Users"]],
                                                        [admins["Oper Groups"]])
    cpu = dict(sections)["Virtual CPU Details"]
    prasd = host.one("HPVM_ProcessorAllocationSettingData", InstanceID=f"HPVM:{u1}:cpu")
    assert str(prasd["VirtualQuantity"]) == cpu["Number Virtual CPUs"]
    assert f"{prasd['Reservation'] / 100:.1f}%" == cpu["Percent Entitlement"]
    dyn = dict(sections)["Dynamic Memory Information"]
    mrasd = host.one("HPVM_MemoryAllocationSettingData", InstanceID=f"HPVM:{u1}:memory")
    assert (f"{mrasd['Reservation']} MB", f"{mrasd['Limit']} MB", mrasd["DynamicMemoryType"]) \
        == (dyn["Minimum memory"], dyn["Maximum memory"], dyn["Type"])
    (details,) = host.agent.status_details(name="g1")
    assert (mrasd["VirtualQuantity"], mrasd["ReservedMemory"]) == \
        (details.memory.total_mb, details.memory.reserved_mb)
    storage = [s for name, s in sections if name == "Storage Interface Details"]
    devs = {d["DeviceID"]: d for d in host.enum("HPVM_IODevice")
            if d["SystemName"] == u1}
    for s in storage:
        dev = devs[f"{s['Guest Device type']}:{s['Bus']},{s['Device']},{s['Target']}"]
        assert (dev["IoscanPath"], dev["BackingType"], dev["BackingDevice"]) == \
            (s["Ioscan format"], s["Physical Storage type"], s["Physical Device"])
    (net,) = [s for name, s in sections if name == "Network Interface Details"]
    nic = devs[f"network:{net['Bus']},{net['Device']}"]
    assert (nic["MACAddress"], str(nic["VswitchPort"]), nic["BackingDevice"]) == \
        (net["Mac Address"], net["Vswitch Port"], net["Backing"])
    # -d: the resource specs
    _, text, _ = run_cli(hpvmstatus.main, ["-P", "g1", "-d"], host.state_dir)
    specs = [line for line in text.splitlines() if line and not line.startswith("[")]
    assert sorted(d["ResourceSpecification"] for d in devs.values()) == sorted(specs)
    rasd_specs = [r["ResourceSpecification"] for cls in ("HPVM_StorageAllocationSettingData",
                                                         "HPVM_EthernetPortAllocationSettingData")
                  for r in host.enum(cls) if r["InstanceID"].startswith(f"HPVM:{u1}:")
                  and ":next:" not in r["InstanceID"]]
    assert sorted(rasd_specs) == sorted(s for s in specs if not s.startswith("serial"))
    # -s: host resources
    _, text, _ = run_cli(hpvmstatus.main, ["-s"], host.state_dir)
    res = dict(re.findall(r"^(.+?) = (\d+)", text, re.M))
    h = host.one("HPVM_Host")
    assert (str(h["ProcessorSpeed"]), str(h["TotalPhysicalMemory"]), str(h["AvailableMemory"]),
            str(h["AvailableSwapSpace"]), str(h["NumberOfProcessors"])) == \
        (res["Processor speed"], res["Total physical memory"], res["Available memory"],
         res["Available swap space"], res["Total number of processors"])
    ent = host.one("HPVM_EntitlementCapabilities")
    assert [str(v) for v in ent["AvailableEntitlement"]] == [
        res[f"Available entitlement for a {n} way virtual machine"]
        for n in range(1, len(ent["AvailableEntitlement"]) + 1)]
    caps = host.one("HPVM_HostCapabilities")
    assert str(caps["MaximumVirtualCPUsHPUX"]) == res["Maximum vcpus for an HP-UX virtual machine"]
    assert host.one("HPVM_MemoryPool")["AvailableMemory"] == h["AvailableMemory"]
    # -m: the multi-server environment
    ms = host.agent.multi_server()
    servers = {s["Name"]: s for s in host.enum("HPVM_MSEServer")}
    assert sorted(servers) == sorted(e.hostname for e in ms.servers)
    for e in ms.servers:
        s = servers[e.hostname]
        assert (s["ServerID"], s["ServerState"], s["ServerAddress"] or "") == \
            (e.server_id, e.state, e.ipaddr)
    assert servers["vmhost"]["IsThisHost"] and not servers["peer"]["IsThisHost"]
    assert h["MultiServerID"] == ms.this_server_id == 1
    # hpvmnet -S sw1 -V
    _, text, _ = run_cli(hpvmnet.main, ["-S", "sw1", "-V"], host.state_dir)
    net = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        net.setdefault(k.strip(), v.strip())
    (sw,) = [p for p in host.op("EnumerateInstanceNames", ClassName="HPVM_Switch")
             if p["Name"] == "sw1"]
    sw = host.op("GetInstance", InstanceName=sw)        # counters come with GetInstance
    assert (str(sw["SwitchNumber"]), str(sw["ProcessID"]), sw["SwitchState"], sw["SwitchMode"],
            sw["HostNIC"], sw["HostMACAddress"], str(sw["NumberOfGuests"]),
            str(sw["PacketsIn"])) == \
        (net["number"], net["PID"], net["State"], net["Mode"], net["NamePPA"],
         net["Host MAC Address"], net["Number of guests"], net["Packets in"])
    assert (sw["HostIPAddress"] or "") == net["Host IP Address"]
    # an enumeration reads the vswitch table once; counters when the PropertyList names them
    assert "PacketsIn" not in host.one("HPVM_Switch", Name="sw1")
    counted = [i for i in host.enum("HPVM_Switch", PropertyList=["PacketsIn", "CyclesIn"])
               if i.path["Name"] == "sw1"]
    assert (counted[0]["PacketsIn"], counted[0]["CyclesIn"]) == (int(net["Packets in"]),
                                                                 int(net["Cycles in"]))
    (lan,) = host.enum("HPVM_HostLanDevice")
    assert "0x" + lan["PermanentAddress"].lower() == net["Host MAC Address"]
