"""The compiled schema: class resolution and the DSP0200 class/qualifier operations."""
import pytest
from pywbem import (
    CIM_ERR_INVALID_CLASS,
    CIM_ERR_INVALID_NAMESPACE,
    CIM_ERR_METHOD_NOT_FOUND,
    CIM_ERR_NOT_FOUND,
    CIMError,
)

from provider.schema import Schema, SchemaLoadError


@pytest.fixture(scope="module")
def schema():
    return Schema.load()


def test_both_namespaces_are_compiled(schema):
    assert set(schema.namespaces) == {"root/cimv2", "root/interop"}
    assert schema.has_namespace("root/interop") and schema.has_namespace("/root/cimv2")
    assert not schema.has_namespace("root/nothing")


def test_inherited_properties_carry_their_origin(schema):
    om = schema.get_class("root/interop", "cim_objectmanager")  # case-insensitive
    assert om.classname == "CIM_ObjectManager"
    inst_id = om.properties["InstanceID"]
    assert inst_id.class_origin == "CIM_ManagedElement" and inst_id.propagated is True
    name = om.properties["Name"]
    assert name.class_origin == "CIM_ObjectManager" and name.propagated is False
    # Key is ToSubclass: the override keeps it, marked as inherited
    assert name.qualifiers["Key"].value is True and name.qualifiers["Key"].propagated


def test_restricted_qualifiers_are_not_inherited(schema):
    # Abstract is Restricted: CIM_ManagedElement is abstract, CIM_ObjectManager is not
    assert schema.get_class("root/cimv2", "CIM_ManagedElement").qualifiers["Abstract"].value
    assert "Abstract" not in schema.get_class("root/cimv2", "CIM_ObjectManager").qualifiers


def test_keys_and_associations(schema):
    assert set(schema.key_names("root/interop", "CIM_ObjectManager")) == {
        "SystemCreationClassName", "SystemName", "CreationClassName", "Name"}
    assert set(schema.key_names("root/interop", "CIM_ElementConformsToProfile")) == {
        "ConformantStandard", "ManagedElement"}
    assert schema.is_association("root/interop", "CIM_ElementConformsToProfile")
    assert not schema.is_association("root/interop", "CIM_RegisteredProfile")


def test_registered_profile_has_value_maps(schema):
    # pywbemcli `profile list` needs ValueMap/Values on RegisteredOrganization
    prop = schema.get_class("root/interop", "CIM_RegisteredProfile").properties[
        "RegisteredOrganization"]
    vm = prop.qualifiers["ValueMap"].value
    vals = prop.qualifiers["Values"].value
    assert dict(zip(vm, vals))["2"] == "DMTF"


def test_subclass_queries(schema):
    assert schema.is_subclass("root/cimv2", "CIM_ComputerSystem", "CIM_ManagedElement")
    assert schema.is_subclass("root/cimv2", "CIM_ComputerSystem", "cim_computersystem")
    assert not schema.is_subclass("root/cimv2", "CIM_ManagedElement", "CIM_ComputerSystem")
    assert schema.superclasses("root/cimv2", "CIM_ComputerSystem")[-1] == "CIM_ManagedElement"
    direct = schema.class_names("root/cimv2", "CIM_System", deep=False)
    deep = schema.class_names("root/cimv2", "CIM_System", deep=True)
    assert "CIM_ComputerSystem" in direct
    assert "CIM_VirtualComputerSystem" in deep and "CIM_VirtualComputerSystem" not in direct
    roots = schema.class_names("root/cimv2", None, deep=False)
    assert "CIM_ManagedElement" in roots and "CIM_ComputerSystem" not in roots


def test_get_class_shapes(schema):
    local = schema.op_get_class("root/interop", "CIM_ObjectManager")
    assert "InstanceID" not in local.properties and "Name" in local.properties
    full = schema.op_get_class("root/interop", "CIM_ObjectManager", local_only=False,
                               include_class_origin=True)
    assert full.properties["InstanceID"].class_origin == "CIM_ManagedElement"
    bare = schema.op_get_class("root/interop", "CIM_ObjectManager", local_only=False,
                               include_qualifiers=False)
    assert not bare.qualifiers and not bare.properties["Name"].qualifiers
    assert bare.properties["Name"].class_origin is None
    some = schema.op_get_class("root/interop", "CIM_ObjectManager", local_only=False,
                               property_list=["name", "ElementName", "NoSuchProperty"])
    assert set(some.properties) == {"Name", "ElementName"}
    # responses are copies: the shared class is untouched
    assert schema.get_class("root/interop", "CIM_ObjectManager").properties["Name"].qualifiers


def test_method_lookup(schema):
    meth = schema.method("root/cimv2", "CIM_VirtualSystemManagementService", "DefineSystem")
    assert meth.parameters["ResourceSettings"].is_array
    assert meth.parameters["Job"].reference_class == "CIM_ConcreteJob"
    with pytest.raises(CIMError) as exc:
        schema.method("root/cimv2", "CIM_ComputerSystem", "Fly")
    assert exc.value.status_code == CIM_ERR_METHOD_NOT_FOUND


def test_errors(schema):
    with pytest.raises(CIMError) as exc:
        schema.op_get_class("root/nope", "CIM_ManagedElement")
    assert exc.value.status_code == CIM_ERR_INVALID_NAMESPACE
    with pytest.raises(CIMError) as exc:
        schema.op_get_class("root/cimv2", "CIM_Nope")
    assert exc.value.status_code == CIM_ERR_NOT_FOUND
    with pytest.raises(CIMError) as exc:
        schema.op_enumerate_class_names("root/cimv2", "CIM_Nope")
    assert exc.value.status_code == CIM_ERR_INVALID_CLASS
    with pytest.raises(CIMError) as exc:
        schema.op_get_qualifier("root/cimv2", "NoSuchQualifier")
    assert exc.value.status_code == CIM_ERR_NOT_FOUND


def test_enumerate_operations(schema):
    names = schema.op_enumerate_class_names("root/cimv2", "CIM_Service", deep_inheritance=True)
    classes = schema.op_enumerate_classes("root/cimv2", "CIM_Service", deep_inheritance=True,
                                          local_only=False)
    assert [c.classname for c in classes] == names
    assert "CIM_VirtualSystemManagementService" in names
    quals = {q.name for q in schema.op_enumerate_qualifiers("root/interop")}
    assert {"Key", "ValueMap", "Values", "Association", "EmbeddedInstance"} <= quals
    assert schema.op_get_qualifier("root/interop", "key").name == "Key"


def test_broken_mof_fails_with_file_and_reason(tmp_path):
    (tmp_path / "bad.mof").write_text("class Broken { string Name; \n")
    with pytest.raises(SchemaLoadError, match="bad.mof"):
        Schema.load(tmp_path, {"root/x": ["bad.mof"]})


def test_missing_schema_file_is_named(tmp_path):
    with pytest.raises(SchemaLoadError, match="gone.mof"):
        Schema.load(tmp_path, {"root/x": ["gone.mof"]})
