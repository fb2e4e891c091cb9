"""Instance, property, class and method operations driven on the Dispatcher directly."""
from __future__ import annotations

import pytest
import pywbem
from pywbem import CIMInstance, CIMInstanceName, CIMProperty, Uint32

from agent.errors import AgentError
from provider.messages import MethodResult, Principal, RawParam
from provider.operations import is_write
from provider.messages import CIMRequest
from tests.operations_support import (ADMIN_P, HOST, NS, OPER_P, READER_P, World, error_code,
                                      ids, ref)


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


# -- EnumerateInstances / Names ------------------------------------------------------------

def test_enumerate_deep_returns_subclass_instances_with_full_paths(world):
    insts = world.op("EnumerateInstances", ClassName="TST_Base")
    assert ids(insts) == ["b1", "b2", "s1", "s2"]
    for inst in insts:
        assert inst.path.namespace == NS and inst.path.host == HOST
        assert inst.path.classname == inst.classname
    s1 = next(i for i in insts if i["InstanceID"] == "s1")
    assert s1["Extra"] == "more"


def test_enumerate_without_deep_inheritance_drops_subclass_properties(world):
    insts = world.op("EnumerateInstances", ClassName="TST_Base", DeepInheritance=False)
    s1 = next(i for i in insts if i["InstanceID"] == "s1")
    assert s1.classname == "TST_Sub"
    assert "Extra" not in s1.properties and s1["Count"] == 7
    # the provider was told it need not compute subclass-only properties
    ctxs = [c for n, c in world.base.calls.contexts if n == "enumerate"]
    assert all(c.property_list is not None and "extra" not in c.property_list for c in ctxs)


def test_enumerate_property_list_ignores_unknown_names_and_keeps_paths(world):
    insts = world.op("EnumerateInstances", ClassName="TST_Base",
                     PropertyList=["count", "NoSuchProperty"])
    assert {i.path["InstanceID"]: tuple(i.properties) for i in insts} == \
        {"b1": ("Count",), "b2": ("Count",), "s1": ("Count",), "s2": ()}
    assert ids(insts) == ["b1", "b2", "s1", "s2"]
    empty = world.op("EnumerateInstances", ClassName="TST_Base", PropertyList=[])
    assert all(len(i.properties) == 0 for i in empty)


def test_local_only_is_treated_as_false_for_instances(world):
    # DSP0200 1.4: servers treat LocalOnly as false for instance operations
    insts = world.op("EnumerateInstances", ClassName="TST_Base", LocalOnly=True)
    b1 = next(i for i in insts if i.path["InstanceID"] == "b1")
    assert {"InstanceID", "ElementName", "Count"} <= set(b1.properties)
    inst = world.op("GetInstance", InstanceName=ref("TST_Sub", "s1"), LocalOnly=True)
    assert {"InstanceID", "Count", "Extra"} <= set(inst.properties)
    assert error_code(world.op, "GetInstance", InstanceName=ref("TST_Sub", "s1"),
                      LocalOnly="sometimes") == pywbem.CIM_ERR_INVALID_PARAMETER


def test_enumerate_class_origin_and_qualifiers(world):
    insts = world.op("EnumerateInstances", ClassName="TST_Sub", IncludeClassOrigin=True,
                     IncludeQualifiers=True)
    s1 = next(i for i in insts if i["InstanceID"] == "s1")
    assert s1.properties["InstanceID"].class_origin == "TST_Element"
    assert s1.properties["Extra"].class_origin == "TST_Sub"
    assert s1.properties["InstanceID"].qualifiers["Key"].value is True
    plain = world.op("EnumerateInstances", ClassName="TST_Sub")
    assert all(p.class_origin is None and not p.qualifiers
               for i in plain for p in i.properties.values())


def test_enumerate_names_uses_the_keys_only_path(world):
    names = world.op("EnumerateInstanceNames", ClassName="TST_Element")
    assert ids(names) == ["b1", "b2", "g0", "g1", "g2", "o1", "s1", "s2"]
    assert all(isinstance(n, CIMInstanceName) and n.namespace == NS and n.host == HOST
               for n in names)
    ctxs = [c for n, c in world.base.calls.contexts if n == "enumerate"]
    assert ctxs and all(c.keys_only for c in ctxs)


def test_enumerate_bad_class_and_namespace(world):
    assert error_code(world.op, "EnumerateInstances", ClassName="TST_Nope") == \
        pywbem.CIM_ERR_INVALID_CLASS
    assert error_code(world.op, "EnumerateInstances", ClassName="TST_Base",
                      namespace="root/nowhere") == pywbem.CIM_ERR_INVALID_NAMESPACE
    assert error_code(world.op, "EnumerateInstances") == pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.op, "EnumerateInstances", ClassName="TST_Base",
                      Bogus=True) == pywbem.CIM_ERR_INVALID_PARAMETER


def test_enumerate_class_without_provider_is_empty(world):
    assert world.op("EnumerateInstances", ClassName="TST_Abstract") == []


# -- GetInstance ---------------------------------------------------------------------------

def test_get_instance_with_property_list(world):
    inst = world.op("GetInstance", InstanceName=ref("TST_Sub", "s1"),
                    PropertyList=["Extra", "Buddy"])
    assert set(inst.properties) == {"Extra", "Buddy"}
    assert inst.path.namespace == NS and inst.path.host == HOST
    assert inst["Buddy"] == ref("TST_Other", "o1", NS)


def test_get_instance_errors(world):
    assert error_code(world.op, "GetInstance", InstanceName=ref("TST_Base", "zz")) == \
        pywbem.CIM_ERR_NOT_FOUND
    bad_key = CIMInstanceName("TST_Base", keybindings={"Name": "b1"})
    assert error_code(world.op, "GetInstance", InstanceName=bad_key) == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.op, "GetInstance", InstanceName=ref("TST_Nope", "b1")) == \
        pywbem.CIM_ERR_INVALID_CLASS
    # a path of the wrong class is not found even though the key value exists elsewhere
    assert error_code(world.op, "GetInstance", InstanceName=ref("TST_Other", "b1")) == \
        pywbem.CIM_ERR_NOT_FOUND


# -- writes and authorization ----------------------------------------------------------------

def new_base(instance_id="b3", **extra):
    props = {"InstanceID": CIMProperty("InstanceID", instance_id),
             "Count": CIMProperty("Count", Uint32(3))}
    for name, value in extra.items():
        props[name] = value
    return CIMInstance("TST_Base", properties=props)


def test_create_instance_returns_path_and_is_readable(world):
    path = world.op("CreateInstance", ADMIN_P, NewInstance=new_base())
    assert path.keybindings == {"InstanceID": "b3"} and path.classname == "TST_Base"
    assert path.namespace == NS and path.host == HOST
    assert world.op("GetInstance", InstanceName=ref("TST_Base", "b3"))["Count"] == 3


def test_create_refusals_change_nothing(world):
    before = len(world.base.data)
    assert error_code(world.op, "CreateInstance", READER_P, NewInstance=new_base()) == \
        pywbem.CIM_ERR_ACCESS_DENIED
    assert error_code(world.op, "CreateInstance", OPER_P, NewInstance=new_base()) == \
        pywbem.CIM_ERR_ACCESS_DENIED
    bogus = new_base(Bogus=CIMProperty("Bogus", "x"))
    assert error_code(world.op, "CreateInstance", ADMIN_P, NewInstance=bogus) == \
        pywbem.CIM_ERR_NO_SUCH_PROPERTY
    wrong_type = new_base(Count=CIMProperty("Count", "three"))
    assert error_code(world.op, "CreateInstance", ADMIN_P, NewInstance=wrong_type) == \
        pywbem.CIM_ERR_TYPE_MISMATCH
    abstract = CIMInstance("TST_Abstract", properties={"InstanceID": "a"})
    assert error_code(world.op, "CreateInstance", ADMIN_P, NewInstance=abstract) == \
        pywbem.CIM_ERR_INVALID_CLASS
    other = CIMInstance("TST_Other", properties={"InstanceID": "o2"})
    assert error_code(world.op, "CreateInstance", ADMIN_P, NewInstance=other) == \
        pywbem.CIM_ERR_NOT_SUPPORTED
    assert error_code(world.op, "CreateInstance", ADMIN_P, NewInstance=new_base("b1")) == \
        pywbem.CIM_ERR_ALREADY_EXISTS
    assert len(world.base.data) == before
    assert world.base.calls["create"] == 1            # only the duplicate reached it


def test_modify_instance_with_and_without_property_list(world):
    mod = CIMInstance("TST_Base", path=ref("TST_Base", "b1"),
                      properties={"Count": CIMProperty("Count", Uint32(99)),
                                  "ElementName": CIMProperty("ElementName", "renamed")})
    world.op("ModifyInstance", ADMIN_P, ModifiedInstance=mod, PropertyList=["Count", "nope"])
    inst = world.op("GetInstance", InstanceName=ref("TST_Base", "b1"))
    assert inst["Count"] == 99 and inst["ElementName"] == "alpha"
    assert world.base.last_modify[1] == ["Count"]
    world.op("ModifyInstance", ADMIN_P, ModifiedInstance=mod)
    assert world.op("GetInstance", InstanceName=ref("TST_Base", "b1"))["ElementName"] == \
        "renamed"
    # a name in PropertyList but not in the instance is set to NULL
    world.op("ModifyInstance", ADMIN_P, ModifiedInstance=mod, PropertyList=["Ratio"])
    assert world.op("GetInstance", InstanceName=ref("TST_Base", "b1"))["Ratio"] is None


def test_modify_refuses_key_changes_and_unknown_properties(world):
    mod = CIMInstance("TST_Base", properties={"InstanceID": CIMProperty("InstanceID", "other")})
    mod.path = ref("TST_Base", "b1")      # set after the properties: pywbem would copy keys
    assert error_code(world.op, "ModifyInstance", ADMIN_P, ModifiedInstance=mod) == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    mod = CIMInstance("TST_Base", path=ref("TST_Base", "b1"),
                      properties={"Bogus": CIMProperty("Bogus", "x")})
    assert error_code(world.op, "ModifyInstance", ADMIN_P, ModifiedInstance=mod) == \
        pywbem.CIM_ERR_NO_SUCH_PROPERTY
    assert world.base.calls["modify"] == 0


def test_provider_grant_lets_a_guest_owner_modify_only_its_guest(world):
    owner = Principal("owner", "readonly")
    mod1 = CIMInstance("TST_Base", path=ref("TST_Base", "b1"),
                       properties={"Count": CIMProperty("Count", Uint32(1))})
    world.op("ModifyInstance", owner, ModifiedInstance=mod1)
    mod2 = CIMInstance("TST_Base", path=ref("TST_Base", "b2"),
                       properties={"Count": CIMProperty("Count", Uint32(1))})
    assert error_code(world.op, "ModifyInstance", owner, ModifiedInstance=mod2) == \
        pywbem.CIM_ERR_ACCESS_DENIED
    assert error_code(world.op, "DeleteInstance", owner, InstanceName=ref("TST_Base", "b1")) \
        == pywbem.CIM_ERR_ACCESS_DENIED


def test_delete_instance(world):
    world.op("DeleteInstance", ADMIN_P, InstanceName=ref("TST_Base", "b2"))
    assert error_code(world.op, "GetInstance", InstanceName=ref("TST_Base", "b2")) == \
        pywbem.CIM_ERR_NOT_FOUND
    # the provider's AgentError(kind=not_found) becomes CIM_ERR_NOT_FOUND with its text
    with pytest.raises(pywbem.CIMError) as err:
        world.op("DeleteInstance", ADMIN_P, InstanceName=ref("TST_Base", "b2"))
    assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    assert err.value.status_description == "hpvmremove: no such guest"
    assert error_code(world.op, "DeleteInstance", ADMIN_P,
                      InstanceName=ref("TST_Other", "o1")) == pywbem.CIM_ERR_NOT_SUPPORTED


# -- GetProperty / SetProperty -------------------------------------------------------------

def test_get_property(world):
    prop = world.op("GetProperty", InstanceName=ref("TST_Base", "b1"), PropertyName="tags")
    assert prop.name == "Tags" and prop.value == ["x", "y"] and prop.is_array
    missing = world.op("GetProperty", InstanceName=ref("TST_Sub", "s2"), PropertyName="Count")
    assert missing.value is None and missing.type == "uint32"
    assert error_code(world.op, "GetProperty", InstanceName=ref("TST_Base", "b1"),
                      PropertyName="Nope") == pywbem.CIM_ERR_NO_SUCH_PROPERTY


def test_set_property_types_the_raw_value(world):
    world.op("SetProperty", ADMIN_P, InstanceName=ref("TST_Base", "b1"), PropertyName="Count",
             NewValue="42")
    value = world.op("GetInstance", InstanceName=ref("TST_Base", "b1"))["Count"]
    assert value == 42 and isinstance(value, Uint32)
    assert error_code(world.op, "SetProperty", ADMIN_P, InstanceName=ref("TST_Base", "b1"),
                      PropertyName="Count", NewValue="many") == pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.op, "SetProperty", ADMIN_P, InstanceName=ref("TST_Base", "b1"),
                      PropertyName="InstanceID", NewValue="x") == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.op, "SetProperty", READER_P, InstanceName=ref("TST_Base", "b1"),
                      PropertyName="Count", NewValue="1") == pywbem.CIM_ERR_ACCESS_DENIED
    assert world.op("GetInstance", InstanceName=ref("TST_Base", "b1"))["Count"] == 42


# -- class and qualifier operations --------------------------------------------------------

def test_class_reads_delegate_to_the_schema(world):
    cls = world.op("GetClass", ClassName="TST_Sub", LocalOnly=False)
    assert cls.classname == "TST_Sub" and "Count" in cls.properties
    names = world.op("EnumerateClassNames", ClassName="TST_Element")
    assert set(names) == {"TST_Base", "TST_Other", "TST_Abstract", "TST_Big",
                          "TST_Gate"}
    assert world.op("GetQualifier", QualifierName="Key").name == "Key"
    assert error_code(world.op, "GetClass", ClassName="TST_Nope") == pywbem.CIM_ERR_NOT_FOUND


@pytest.mark.parametrize("op,params", [
    ("CreateClass", {"NewClass": pywbem.CIMClass("TST_New")}),
    ("ModifyClass", {"ModifiedClass": pywbem.CIMClass("TST_Base")}),
    ("DeleteClass", {"ClassName": "TST_Base"}),
    ("SetQualifier", {"QualifierDeclaration": pywbem.CIMQualifierDeclaration("Q", "string")}),
    ("DeleteQualifier", {"QualifierName": "Key"}),
])
def test_schema_changes_are_refused(world, op, params):
    assert error_code(world.op, op, ADMIN_P, **params) == pywbem.CIM_ERR_NOT_SUPPORTED
    assert world.op("GetClass", ClassName="TST_Base").classname == "TST_Base"


def test_unknown_operation_and_bad_principal(world):
    assert error_code(world.op, "FrobnicateInstances", ClassName="TST_Base") == \
        pywbem.CIM_ERR_NOT_SUPPORTED
    assert error_code(world.op, "EnumerateInstances", Principal("x", "guest"),
                      ClassName="TST_Base") == pywbem.CIM_ERR_ACCESS_DENIED


def test_provider_failures_are_mapped(world):
    world.base.fail_with = AgentError(["hpvmstatus: cannot read", "second line"], kind="failed")
    with pytest.raises(pywbem.CIMError) as err:
        world.op("EnumerateInstances", ClassName="TST_Base")
    assert err.value.status_code == pywbem.CIM_ERR_FAILED
    assert err.value.status_description == "hpvmstatus: cannot read\nsecond line"
    world.base.fail_with = KeyError("secret internal detail")
    with pytest.raises(pywbem.CIMError) as err:
        world.op("EnumerateInstances", ClassName="TST_Base")
    assert err.value.status_code == pywbem.CIM_ERR_FAILED
    assert "secret" not in err.value.status_description


def test_is_write_classifies_requests():
    assert is_write(CIMRequest("imethod", "createinstance", NS))
    assert is_write(CIMRequest("method", "Ping", NS))
    assert not is_write(CIMRequest("imethod", "EnumerateInstances", NS))


# -- InvokeMethod --------------------------------------------------------------------------

def test_invoke_method_types_raw_params_from_the_declaration(world):
    result = world.call("Ping", ref("TST_Base", "b1"),
                        {"Loud": RawParam("Loud", None, "TRUE"),
                         "Words": RawParam("Words", None, ["a", "b", "c"])}, OPER_P)
    assert isinstance(result, MethodResult)
    assert result.return_value == 3 and result.return_type == "uint32"
    assert isinstance(result.return_value, Uint32)
    (echo,) = result.out_params
    assert echo.name == "Echo" and echo.type == "uint32" and echo.value == 7
    assert world.base.last_params["Loud"].value is True
    assert world.base.last_params["Words"].value == ["a", "b", "c"]


def test_invoke_static_method_with_reference(world):
    target = pywbem.CIMClassName("TST_Base")
    result = world.call("Reset", target, {"Level": RawParam("Level", None, "3"),
                                          "Target": RawParam("Target", None,
                                                             ref("TST_Other", "o1"))})
    assert result.return_value == 0
    assert world.base.last_params["Level"].value == 3
    assert world.base.last_params["Level"].type == "uint16"
    assert world.base.last_params["Target"].value == ref("TST_Other", "o1")


def test_invoke_method_refusals(world):
    b1 = ref("TST_Base", "b1")
    assert error_code(world.call, "Vanish", b1, {}) == pywbem.CIM_ERR_METHOD_NOT_FOUND
    assert error_code(world.call, "Idle", b1, {}) == pywbem.CIM_ERR_METHOD_NOT_AVAILABLE
    assert error_code(world.call, "Ping", b1, {"Volume": RawParam("Volume", None, "1")}) == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.call, "Ping", b1, {"Echo": RawParam("Echo", None, "1")}) == \
        pywbem.CIM_ERR_INVALID_PARAMETER                        # an OUT-only parameter
    assert error_code(world.call, "Ping", b1, {"Loud": RawParam("Loud", None, "perhaps")}) == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.call, "Ping", b1, {"Loud": RawParam("Loud", "uint8", 1)}) == \
        pywbem.CIM_ERR_INVALID_PARAMETER                        # PARAMTYPE disagrees
    assert error_code(world.call, "Ping", pywbem.CIMClassName("TST_Base"), {}) == \
        pywbem.CIM_ERR_INVALID_PARAMETER                        # not static
    assert error_code(world.call, "Reset", pywbem.CIMClassName("TST_Base"), {}, OPER_P) == \
        pywbem.CIM_ERR_ACCESS_DENIED
    assert error_code(world.call, "Ping", b1, {}, READER_P) == pywbem.CIM_ERR_ACCESS_DENIED
    assert error_code(world.call, "Ping", ref("TST_Nope", "x"), {}) == \
        pywbem.CIM_ERR_INVALID_CLASS
    assert world.base.calls["Ping"] == 0 and world.base.calls["Reset"] == 0


def test_invoke_method_grant_for_the_guest_owner(world):
    owner = Principal("owner", "readonly")
    assert world.call("Ping", ref("TST_Base", "b1"), {}, owner).return_value == 0
    assert error_code(world.call, "Ping", ref("TST_Base", "b2"), {}, owner) == \
        pywbem.CIM_ERR_ACCESS_DENIED
