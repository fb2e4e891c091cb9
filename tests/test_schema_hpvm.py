"""The VM model's schema (mof/cimv2/hpvm_*.mof) against its class reference
(docs/cim-classes.md, "The VM model (root/cimv2)") and against the views of the hpvm commands.

The doc's tables are parsed here, so the reference cannot drift from the MOF: every class,
key, reference, method parameter and mapped property it names must exist as named, and every
field hpvmstatus (-V, -s, -d, summary) and hpvmnet -V print must have a row.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from pywbem import CIMClass

import mof as mof_package
from provider.schema import Schema

NS = "root/cimv2"
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cim-classes.md"
SECTION = "## The VM model (root/cimv2)"
HPVM_FILES = sorted((mof_package.MOF_ROOT / "cimv2").glob("hpvm_*.mof"))

# DECISIONS §4: VMProvider's classes from HP's data sheet, all present.
VMPROVIDER_CLASSES = (
    "HP_SoftPartitionCS", "HPVM_Host", "HPVM_Guest", "HPVM_Switch", "HPVM_IODevice",
    "HPVM_HostLanDevice", "HPVM_Capabilities", "HPVM_HostCapabilities",
    "HPVM_GuestCapabilities", "HPVM_EntitlementCapabilities", "HPVM_IODeviceDB",
    "HPVM_GuestIODeviceDB", "HPVM_ServerIODeviceDB", "HPVM_RestrictedIODeviceDB",
    "HPVM_MSEServer", "HPVM_DistributedHost")

# The DMTF layer: each needs an HPVM_ subclass (DSP1042/1057/1041/1043/1045/1081).
DMTF_LAYER = (
    "CIM_VirtualSystemSettingData", "CIM_ProcessorAllocationSettingData",
    "CIM_MemoryAllocationSettingData", "CIM_StorageAllocationSettingData",
    "CIM_EthernetPortAllocationSettingData", "CIM_VirtualSystemManagementService",
    "CIM_VirtualSystemManagementCapabilities", "CIM_ResourcePool", "CIM_ConcreteJob",
    "CIM_AllocationCapabilities", "CIM_EnabledLogicalElementCapabilities",
    "CIM_VirtualSystemMigrationSettingData",
    "CIM_HostedDependency", "CIM_SystemDevice", "CIM_SettingsDefineState",
    "CIM_VirtualSystemSettingDataComponent", "CIM_ElementSettingData",
    "CIM_HostedResourcePool", "CIM_ElementAllocatedFromPool",
    "CIM_ResourceAllocationFromPool", "CIM_ElementCapabilities",
    "CIM_SettingsDefineCapabilities", "CIM_HostedService", "CIM_ServiceAffectsElement",
    "CIM_AffectedJobElement", "CIM_OwningJobElement")


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema():
    """root/cimv2 compiled from the qualifiers, the DMTF subset and the hpvm files alone, so
    these tests judge this model and nothing else in mof/cimv2."""
    rel = [str(p.relative_to(mof_package.MOF_ROOT)) for p in HPVM_FILES]
    return Schema.load(namespaces={NS: ["qualifiers.mof", "cim/cim_schema_subset.mof", *rel]})


def _section_text() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    nxt = text.find("\n## ", start + len(SECTION))
    return text[start:nxt if nxt >= 0 else len(text)]


def _table(heading: str) -> list[dict[str, str]]:
    """The first Markdown table under `### heading` in the VM model section, as dicts."""
    text = _section_text()
    start = text.index(f"### {heading}\n")
    nxt = text.find("\n### ", start + 1)
    block = text[start:nxt if nxt >= 0 else len(text)]
    rows = [ln for ln in block.splitlines() if ln.startswith("|")]
    assert len(rows) >= 3, f"no table under ### {heading}"
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    out = []
    for ln in rows[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        assert len(cells) == len(header), f"malformed row under {heading}: {ln}"
        out.append(dict(zip(header, cells)))
    return out


def _names(cell: str) -> list[str]:
    return [n.strip() for n in cell.split(",") if n.strip()]


def _mof_class_names() -> list[str]:
    names = []
    for path in HPVM_FILES:
        names += re.findall(r"^class\s+(\w+)", path.read_text(encoding="utf-8"), re.M)
    return names


def _value_map(element) -> list[str]:
    return list(element.qualifiers["ValueMap"].value)


def _values(element) -> dict[str, str]:
    return dict(zip(element.qualifiers["ValueMap"].value, element.qualifiers["Values"].value))


def _is_true(element, qualifier: str, default: bool) -> bool:
    q = element.qualifiers.get(qualifier)
    return default if q is None else bool(q.value)


# --- the schema loads, with every class it promises ----------------------------------------

def test_hpvm_files_are_split_by_family_and_load_with_the_server_schema():
    families = {re.sub(r"^hpvm_\d+_", "", p.stem) for p in HPVM_FILES}
    assert families >= {"systems", "devices", "vswitches", "settings", "pools",
                        "capabilities", "jobs", "services", "devicedb", "associations"}
    served = Schema.load()  # the manifest the server uses picks the files up
    for name in ("HPVM_Guest", "HPVM_VirtualSystemManagementService", "HPVM_SystemDevice"):
        assert served.has_class(NS, name)
    assert not served.has_class("root/interop", "HPVM_Guest")


def test_every_vmprovider_class_of_the_data_sheet_is_present(schema):
    for name in VMPROVIDER_CLASSES:
        assert schema.has_class(NS, name), name
    assert schema.superclasses(NS, "HPVM_Guest")[:2] == ["HP_SoftPartitionCS",
                                                          "CIM_ComputerSystem"]


def test_the_dmtf_layer_has_an_hpvm_subclass_for_each_class(schema):
    ours = [n for n in schema.class_names(NS) if n.startswith("HPVM_")]
    for base in DMTF_LAYER:
        assert any(schema.is_subclass(NS, n, base) for n in ours), base


def test_every_class_of_the_files_is_prefixed_and_in_the_reference(schema):
    in_mof = _mof_class_names()
    assert len(in_mof) == len(set(in_mof))
    assert all(n.startswith(("HPVM_", "HP_")) for n in in_mof)
    documented = {r["Class"] for r in _table("Classes")} | {
        r["Association"] for r in _table("Associations")}
    assert set(in_mof) == documented


def test_classes_have_the_superclass_and_keys_the_reference_gives(schema):
    for row in _table("Classes"):
        name = row["Class"]
        cls = schema.get_class(NS, name)
        assert cls.superclass == row["Superclass"], name
        assert set(schema.key_names(NS, name)) == set(_names(row["Keys"])), name
        assert not schema.is_association(NS, name), name


def test_abstract_bases_are_abstract_and_the_rest_concrete(schema):
    abstract = {n for n in _mof_class_names()
                if _is_true(schema.get_class(NS, n), "Abstract", False)
                and not schema.get_class(NS, n).qualifiers["Abstract"].propagated}
    assert abstract == {"HPVM_Capabilities", "HPVM_IODeviceDB"}


def test_associations_have_the_reference_classes_the_reference_gives(schema):
    for row in _table("Associations"):
        name = row["Association"]
        cls = schema.get_class(NS, name)
        assert schema.is_association(NS, name), name
        assert cls.superclass == row["Superclass"], name
        refs = {p.name: p.reference_class for p in cls.properties.values()
                if p.type == "reference"}
        wanted = dict(part.split(":") for part in row["References"].split(";"))
        wanted = {k.strip(): v.strip() for k, v in wanted.items()}
        assert refs == wanted, name
        assert set(schema.key_names(NS, name)) == set(wanted), name
        for target in wanted.values():
            assert schema.has_class(NS, target), (name, target)


def test_host_guest_and_system_device_associations_have_their_shapes(schema):
    hd = schema.get_class(NS, "HPVM_HostedDependency")
    assert hd.properties["Antecedent"].reference_class == "HPVM_Host"
    assert hd.properties["Dependent"].reference_class == "HPVM_Guest"
    assert schema.is_subclass(NS, "HPVM_HostedDependency", "CIM_HostedDependency")
    sd = schema.get_class(NS, "HPVM_SystemDevice")
    assert schema.is_subclass(NS, "HPVM_SystemDevice", "CIM_SystemDevice")
    # one class carries every system-device pair: guests, the host, vswitches
    for system in ("HPVM_Guest", "HPVM_Host", "HPVM_Switch"):
        assert schema.is_subclass(NS, system, sd.properties["GroupComponent"].reference_class)
    for device in ("HPVM_IODevice", "HPVM_Processor", "HPVM_Memory", "HPVM_HostLanDevice",
                   "HPVM_SwitchPort"):
        assert schema.is_subclass(NS, device, sd.properties["PartComponent"].reference_class)


# --- keys and values -----------------------------------------------------------------------

def test_systems_are_keyed_by_name_and_settings_by_instance_id(schema):
    for name in ("HPVM_Guest", "HPVM_Host", "HPVM_Switch", "HPVM_MSEServer"):
        assert set(schema.key_names(NS, name)) == {"CreationClassName", "Name"}
    for name in ("HPVM_VirtualSystemSettingData", "HPVM_MemoryAllocationSettingData",
                 "HPVM_ConcreteJob", "HPVM_MemoryPool", "HPVM_GuestIODeviceDB"):
        assert schema.key_names(NS, name) == ("InstanceID",)
    text = _section_text()
    assert "`HPVM_Guest.Name` = the guest's UUID" in text
    # every InstanceID format the reference gives starts with HPVM:
    ids = re.findall(r"`(HPVM:[^`]*)`", text)
    assert ids and all(i.startswith("HPVM:") for i in ids)
    assert not re.search(r"InstanceID` = `(?!HPVM:)", text)


def test_guest_state_text_covers_every_state_the_agent_reports(schema):
    from agent.backends.base import STATES
    vm_state = schema.get_class(NS, "HPVM_Guest").properties["VMState"]
    assert vm_state.type == "string"
    assert set(STATES) <= set(_value_map(vm_state))


def test_value_maps_follow_the_agent_model(schema):
    from agent import devicedb, guest, resources, vswitch
    io = schema.get_class(NS, "HPVM_IODevice").properties
    assert set(resources.STORAGE_DEVICES) <= set(_value_map(io["DeviceType"]))
    assert set(resources.STORAGE_KINDS) <= set(_value_map(io["BackingType"]))
    sasd = schema.get_class(NS, "HPVM_StorageAllocationSettingData").properties
    assert set(_value_map(sasd["DeviceType"])) == set(resources.STORAGE_DEVICES)
    assert set(_value_map(sasd["BackingType"])) == set(resources.STORAGE_KINDS)
    assert set(_value_map(sasd["AdapterType"])) == set(resources.STORAGE_ADAPTERS)
    epasd = schema.get_class(NS, "HPVM_EthernetPortAllocationSettingData").properties
    assert set(_value_map(epasd["AdapterType"])) == set(resources.NETWORK_ADAPTERS)
    assert set(_value_map(schema.get_class(NS, "HPVM_Guest").properties["OSType"])) == set(
        guest.OS_TYPES)
    vssd = schema.get_class(NS, "HPVM_VirtualSystemSettingData").properties
    assert set(_value_map(vssd["OSType"])) == set(guest.OS_TYPES)
    sw = schema.get_class(NS, "HPVM_Switch").properties
    assert set(_value_map(sw["SwitchState"])) == set(vswitch.STATES)
    assert _value_map(sw["SwitchMode"]) == [vswitch.MODE]
    port = schema.get_class(NS, "HPVM_SwitchPort").properties
    assert set(_value_map(port["PortState"])) == {vswitch.ACTIVE, vswitch.DOWN,
                                                 vswitch.RESERVED, vswitch.AVAILABLE}
    db = schema.get_class(NS, "HPVM_IODeviceDB").properties
    assert set(_value_map(db["EntryClass"])) == set(devicedb.KINDS)


def test_memory_is_in_megabytes_and_entitlement_in_hundredths_of_a_percent(schema):
    def punit(cls, prop):
        return schema.get_class(NS, cls).properties[prop].qualifiers["PUnit"].value.replace(
            " ", "")
    for cls, props in {
        "HPVM_Memory": ("MinimumMemory", "TargetMemory", "MaximumMemory", "CurrentMemory",
                        "ComfortableMinimum", "BootMemory", "FreeMemory", "AvailableMemory"),
        "HPVM_MemoryAllocationSettingData": ("DynamicMemoryTargetStart", "TargetMemory",
                                             "ReservedMemory", "VHPTSize"),
        "HPVM_GuestCapabilities": ("MinimumMemory", "MaximumMemory"),
        "HPVM_Host": ("TotalPhysicalMemory", "AvailableMemory", "AvailableSwapSpace"),
    }.items():
        for prop in props:
            assert punit(cls, prop) == "byte*2^20", (cls, prop)
    assert punit("HPVM_Memory", "ChunkSize") == "byte*2^10"
    assert punit("HPVM_EntitlementCapabilities", "MinimumEntitlement") == "percent*10^-2"
    assert punit("HPVM_ProcessorAllocationSettingData", "EntitlementMHz") == "hertz*10^6"
    assert "`byte*2^20`" in _section_text()


def test_management_capabilities_use_the_cim_2_22_numbering(schema):
    caps = schema.get_class(NS, "HPVM_VirtualSystemManagementCapabilities").properties
    assert _values(caps["SynchronousMethodsSupported"])["10"] == "AddResourcesSupported"
    assert _values(caps["AsynchronousMethodsSupported"])["2"] == "DefineSystemSupported"
    vendor = _values(caps["VendorMethodsSupported"])
    service = schema.get_class(NS, "HPVM_VirtualSystemManagementService")
    local = [m.name for m in service.methods.values() if m.class_origin == service.classname
             and "Override" not in m.qualifiers]
    assert sorted(local) == sorted(v for k, v in vendor.items() if k != "..")


# --- methods -------------------------------------------------------------------------------

def _hpvm_methods(schema):
    """(class, method) for every method an hpvm file declares (new or overriding)."""
    out = []
    for name in _mof_class_names():
        cls = schema.get_class(NS, name)
        out += [(name, m) for m in cls.methods.values() if m.class_origin == name]
    return out


def test_the_methods_table_matches_the_declared_methods(schema):
    table = {r["Method"]: r for r in _table("Methods")}
    declared = {f"{c}.{m.name}" for c, m in _hpvm_methods(schema)}
    assert set(table) == declared
    for key, row in table.items():
        cname, mname = key.split(".")
        meth = schema.method(NS, cname, mname)
        for pname in _names(row["IN"]):
            prm = meth.parameters[pname]
            assert _is_true(prm, "In", True), (key, pname)
        for pname in _names(row["OUT"]):
            prm = meth.parameters[pname]
            assert _is_true(prm, "Out", False) and not _is_true(prm, "In", True), (key, pname)
        assert set(meth.parameters) == set(_names(row["IN"])) | set(_names(row["OUT"])), key


def test_methods_return_dmtf_codes_and_carry_warnings(schema):
    for cname, meth in _hpvm_methods(schema):
        assert meth.return_type == "uint32", (cname, meth.name)
        codes = _values(meth)
        assert codes["0"] == "Completed with No Error", (cname, meth.name)
        assert codes["4096"] == "Method Parameters Checked - Job Started", (cname, meth.name)
        assert codes["4"] in ("Invalid Parameter", "Failed"), (cname, meth.name)
        warnings = meth.parameters["Warnings"]
        assert warnings.type == "string" and warnings.is_array, (cname, meth.name)
        assert _is_true(warnings, "Out", False) and not _is_true(warnings, "In", True)
    rsc = schema.method(NS, "HPVM_Guest", "RequestStateChange")
    assert _values(rsc)["4097"] == "Invalid State Transition"
    assert _value_map(rsc.parameters["RequestedState"]) == ["2", "3", "4", "10", "11"]
    assert rsc.parameters["TimeoutPeriod"].type == "datetime"


def test_overrides_keep_every_dmtf_parameter(schema):
    for cname, meth in _hpvm_methods(schema):
        if "Override" not in meth.qualifiers:
            continue
        parent = schema.get_class(NS, schema.get_class(NS, cname).superclass)
        dmtf = parent.methods[meth.name]
        for pname, pprm in dmtf.parameters.items():
            prm = meth.parameters[pname]
            assert (prm.type, prm.is_array, prm.reference_class) == (
                pprm.type, pprm.is_array, pprm.reference_class), (cname, meth.name, pname)
            pemb = pprm.qualifiers.get("EmbeddedInstance")
            if pemb is not None:
                assert prm.qualifiers["EmbeddedInstance"].value == pemb.value
            assert _is_true(prm, "Out", False) == _is_true(pprm, "Out", False)
        # what the override adds is optional input or output
        for pname in set(meth.parameters) - set(dmtf.parameters):
            assert not _is_true(meth.parameters[pname], "Required", False), (cname, pname)


def test_the_management_service_has_the_dmtf_and_vendor_methods(schema):
    svc = schema.get_class(NS, "HPVM_VirtualSystemManagementService")
    for name in ("DefineSystem", "DestroySystem", "ModifySystemSettings",
                 "AddResourceSettings", "ModifyResourceSettings", "RemoveResourceSettings",
                 "CloneSystem", "CollectSystemData", "CreateVirtualSwitch",
                 "ChangeVirtualSwitch", "DeleteVirtualSwitch", "StartVirtualSwitch",
                 "HaltVirtualSwitch"):
        assert name in svc.methods, name
    define = svc.methods["DefineSystem"]
    assert define.parameters["SystemSettings"].qualifiers["EmbeddedInstance"].value == \
        "CIM_VirtualSystemSettingData"
    assert define.parameters["ResultingSystem"].reference_class == "CIM_ComputerSystem"
    create = svc.methods["CreateVirtualSwitch"]
    assert create.parameters["ResultingSwitch"].reference_class == "HPVM_Switch"
    assert create.parameters["SwitchName"].qualifiers["MaxLen"].value == 8
    migrate = schema.method(NS, "HPVM_VirtualSystemMigrationService",
                            "MigrateVirtualSystemToHost")
    assert migrate.parameters["MigrationSettingData"].qualifiers[
        "EmbeddedInstance"].value == "CIM_VirtualSystemMigrationSettingData"


def test_embedded_instances_and_references_name_existing_classes(schema):
    for cname, meth in _hpvm_methods(schema):
        for prm in meth.parameters.values():
            if prm.reference_class:
                assert schema.has_class(NS, prm.reference_class), (cname, prm.name)
            emb = prm.qualifiers.get("EmbeddedInstance")
            if emb is not None:
                assert schema.has_class(NS, emb.value), (cname, prm.name)


def test_every_class_serializes_for_getclass(schema):
    # GetClass answers with the server's CIM-XML serializer; what it writes must read back
    # (pywbem's parser) as the same class, methods and parameters included
    from pywbem._tupleparse import TupleParser
    from pywbem._tupletree import xml_to_tupletree_sax

    from provider.cimxml.serializer import serialize_response
    from provider.messages import CIMRequest
    for name in _mof_class_names():
        cls = schema.op_get_class(NS, name, local_only=False, include_qualifiers=True,
                                  include_class_origin=True)
        body = serialize_response(CIMRequest(kind="imethod", name="GetClass", namespace=NS),
                                  cls)
        xml = body.decode("utf-8")
        start = xml.index("<CLASS ")
        back = TupleParser().parse_class(xml_to_tupletree_sax(
            xml[start:xml.index("</CLASS>") + len("</CLASS>")], "class"))
        assert isinstance(back, CIMClass) and back.classname == name
        assert back.superclass == cls.superclass
        assert set(back.properties) == set(cls.properties), name
        assert set(back.methods) == set(cls.methods), name
        for mname, meth in cls.methods.items():
            assert set(back.methods[mname].parameters) == set(meth.parameters), (name, mname)


# --- the field mapping -----------------------------------------------------------------------

def _mapping() -> list[dict[str, str]]:
    return _table("Field mapping")


def test_every_mapped_property_exists(schema):
    rows = _mapping()
    assert rows
    for row in rows:
        targets = _names(row["Class.Property"])
        assert targets, row
        for target in targets:
            cname, _, pname = target.partition(".")
            assert pname, target
            assert pname in schema.get_class(NS, cname).properties, target


def _label_pairs(lines, sep=":"):
    section, out = None, set()
    for line in lines:
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif sep in line:
            out.add((section, line.split(sep, 1)[0].strip()))
    return out


def _rows_of(view) -> set[tuple[str, str]]:
    return {(r["Section"], r["Field"]) for r in _mapping() if r["View"] == view}


def _guest_details():
    from agent.api import views as v
    return v.GuestDetails(
        machine=v.MachineDetails(name="compass1", uuid="43d82eb8-ff27-11d9-a431-00306e39f70b",
                                 vm_number=2, state="On (OS)", pid=24447),
        admins=v.AdministratorDetails(admin_users=["testme1"]),
        cpu=v.CpuDetails(entitlement_mhz=1400),
        memory=v.MemoryDetails(total_mb=2048),
        dynmem=v.DynamicMemoryDetails(live=True, type="driver", min_mb=1024, target_mb=2039,
                                      max_mb=2048, current_mb=2039, comfortable_min_mb=759,
                                      boot_mb=2039, free_mb=1148, available_mb=215,
                                      pressure=0, chunk_kb=65536,
                                      driver_modes=["STARTED", "ENABLED"]),
        storage=[v.StorageDetails(device="disk", adapter="scsi", ioscan="0/0/1/0.0.0", bus=0,
                                  slot=1, function=0, target=0, lun=0, storage="disk",
                                  location="/dev/rdsk/c3t2d0")],
        network=[v.NetworkDetails(vswitch="vswitch1", port=1, ioscan="0/0/0/0", bus=0,
                                  slot=0, function=0, mac="f6-92-cf-35-86-78")],
        misc=[v.MiscDetails()])


def test_every_field_of_hpvmstatus_verbose_has_a_home():
    from agent.api import views as v
    from agent.cli import status_text
    lines = status_text.guest_verbose(_guest_details())
    lines += status_text.invalid_verbose(v.InvalidGuestDetails(
        name="bad", file="/var/opt/hpvm/guests/bad/vmm_config.current", line=3,
        reason="syntax"))
    shown = _label_pairs(lines)
    assert ("Dynamic Memory Information", "Driver Mode(s)") in shown
    assert ("Virtual CPU Details", "Entitlement cycles") in shown
    assert shown == _rows_of("hpvmstatus -V")


def test_every_column_of_the_hpvmstatus_summary_has_a_home():
    import dataclasses

    from agent.api import views as v
    shown = {("Virtual Machines", f.metadata["label"])
             for f in dataclasses.fields(v.SummaryRow)}
    assert shown == _rows_of("hpvmstatus")


def test_every_line_of_hpvmstatus_s_has_a_home():
    from agent.api import views as v
    from agent.cli import status_text
    lines = status_text.host_resources(v.HostResources(
        cpu_mhz=1400, memory_mb=12276, cpus=2, available_memory_mb=7367,
        available_swap_mb=4707, max_vcpus_hpux=2, max_vcpus_windows=2, max_vcpus_linux=2,
        available_entitlement_mhz=[1400, 1260]))
    shown = {(s, re.sub(r"for a \d+ way", "for a N way", f))
             for s, f in _label_pairs(lines, sep=" = ")}
    assert shown == _rows_of("hpvmstatus -s")


def test_every_section_of_hpvmstatus_d_has_a_home():
    from agent.api import views as v
    from agent.cli import status_text
    from agent.resources import CONSOLE_DEVICE, NetworkResource, StorageResource
    lines = status_text.devices(v.DeviceSpecs(
        name="compass1",
        storage=[StorageResource(device="disk", bus=0, slot=1, target=0, storage="disk",
                                 location="/dev/rdsk/c3t2d0")],
        network=[NetworkResource(bus=0, slot=2, mac="f6-92-cf-35-86-78", vswitch="vswitch1",
                                 port=1)],
        misc=[CONSOLE_DEVICE]))
    sections = {ln[1:-1] for ln in lines if ln.startswith("[")} - {"Virtual Machine Devices"}
    # each section lists hpvmresources(5) specs; the spec lives whole in ResourceSpecification
    assert {(s, "resource spec") for s in sections} == _rows_of("hpvmstatus -d")
    for row in _mapping():
        if row["View"] == "hpvmstatus -d":
            assert "HPVM_IODevice.ResourceSpecification" in _names(row["Class.Property"])


def test_every_field_of_hpvmnet_verbose_has_a_home():
    from agent.api.network import COUNTERS, VnicInfo, VswitchDetails, VswitchSummary
    from agent.cli.hpvmnet import render_verbose
    text = render_verbose([VswitchDetails(
        VswitchSummary("hostnet", 296, "Up", "Shared", "lan1", "0x00306e4a92ef",
                       "16.116.8.99"),
        1672, [VnicInfo("armyvm1", "0xEE8D40584D28", "Guest halted", 1)], [],
        {label: 0 for label in COUNTERS})])
    shown = {f for _s, f in _label_pairs(text.splitlines())}
    assert set(COUNTERS) <= shown and "Guest's Name" in shown
    assert shown == {f for _s, f in _rows_of("hpvmnet -V")}
