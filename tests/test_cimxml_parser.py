"""The CIM-XML request parser: requests as pywbem and sblim wbemcli build them, typing of
IPARAMVALUEs and PARAMVALUEs, header matching, and the DSP0200 answer to every fault."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import pywbem
from pywbem import (CIMClass, CIMClassName, CIMDateTime, CIMInstance, CIMInstanceName,
                    CIMMethod, CIMParameter, CIMProperty, CIMQualifier,
                    CIMQualifierDeclaration, Real64, Sint8, Uint16, Uint32, Uint64)

from cimxml_loopback import Loopback
from provider.cimxml import (ProtocolError, RequestCIMError, check_headers_match,
                             parse_request, parse_value, type_param, type_value)
from provider.messages import CIMRequest, RawParam

WBEMCLI = json.loads((Path(__file__).parent / "data" / "cimxml" /
                      "wbemcli_requests.json").read_text())


def not_found(request):
    raise pywbem.CIMError(pywbem.CIM_ERR_NOT_FOUND, "parse test")


@pytest.fixture
def lb(monkeypatch):
    return Loopback(monkeypatch, not_found)


def call(lb, method, *args, **kwargs) -> CIMRequest:
    with pytest.raises(pywbem.CIMError) as info:
        getattr(lb.conn, method)(*args, **kwargs)
    assert info.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    return lb.last


VM = CIMInstanceName("PRB_VirtualSystem", {"CreationClassName": "PRB_VirtualSystem",
                                           "Name": "vm1"})


# ----------------------------------------------------------------- pywbem's requests

def test_getinstance_from_pywbem(lb):
    req = call(lb, "GetInstance", VM.copy(), LocalOnly=False, IncludeQualifiers=True,
               IncludeClassOrigin=False, PropertyList=["Name", "EnabledState"])
    assert (req.kind, req.name, req.namespace, req.message_id) == \
        ("imethod", "GetInstance", "root/cimv2", "1001")
    assert req.params["InstanceName"] == VM
    assert req.params["InstanceName"].namespace is None
    assert req.params["localonly"] is False and req.params["IncludeQualifiers"] is True
    assert req.params["IncludeClassOrigin"] is False
    assert req.params["PropertyList"] == ["Name", "EnabledState"]


def test_omitted_parameters_are_absent_and_empty_property_list_is_kept(lb):
    req = call(lb, "EnumerateInstances", "PRB_VirtualSystem", namespace="root/interop",
               PropertyList=[])
    assert req.namespace == "root/interop"
    assert dict(req.params) == {"ClassName": "PRB_VirtualSystem", "PropertyList": []}


def test_typed_keys_and_reference_keys(lb):
    inner = CIMInstanceName("PRB_Disk", {"Id": Uint16(3), "Primary": True},
                            namespace="root/cimv2", host="h1")
    path = CIMInstanceName("PRB_Assoc", {"Disk": inner, "When": CIMDateTime(
        "20260101000000.000000+000"), "Size": Uint64(2 ** 40), "Ch": pywbem.Char16("x")})
    req = call(lb, "DeleteInstance", path)
    got = req.params["InstanceName"]
    assert got == path
    assert type(got["Size"]) is Uint64 and type(got["Disk"]["Id"]) is Uint16
    assert got["Disk"].host == "h1" and got["Disk"].namespace == "root/cimv2"
    assert isinstance(got["When"], CIMDateTime)


def test_association_parameters(lb):
    req = call(lb, "Associators", VM.copy(), AssocClass="PRB_A", ResultClass="PRB_B",
               Role="Antecedent", ResultRole="Dependent", IncludeQualifiers=False,
               IncludeClassOrigin=True, PropertyList=None)
    assert req.params["AssocClass"] == "PRB_A" and req.params["ResultClass"] == "PRB_B"
    assert req.params["Role"] == "Antecedent" and req.params["ResultRole"] == "Dependent"
    assert "PropertyList" not in req.params
    req = call(lb, "ReferenceNames", CIMClassName("PRB_VirtualSystem"))
    assert req.params["ObjectName"] == CIMClassName("PRB_VirtualSystem")


def test_pull_parameters_are_typed(lb):
    req = call(lb, "OpenEnumerateInstances", "PRB_VirtualSystem", DeepInheritance=True,
               IncludeClassOrigin=False, PropertyList=["Name"], FilterQueryLanguage="DMTF:FQL",
               FilterQuery="Name = 'vm1'", OperationTimeout=30, ContinueOnError=False,
               MaxObjectCount=100)
    p = req.params
    assert type(p["MaxObjectCount"]) is Uint32 and p["MaxObjectCount"] == 100
    assert type(p["OperationTimeout"]) is Uint32 and p["OperationTimeout"] == 30
    assert p["ContinueOnError"] is False and p["DeepInheritance"] is True
    assert p["FilterQuery"] == "Name = 'vm1'" and p["FilterQueryLanguage"] == "DMTF:FQL"
    req = call(lb, "OpenQueryInstances", "WQL", "SELECT * FROM PRB_VirtualSystem",
               ReturnQueryResultClass=True, MaxObjectCount=0)
    assert req.params["ReturnQueryResultClass"] is True and req.params["MaxObjectCount"] == 0
    req = call(lb, "PullInstancesWithPath", ("ctx-7", "root/cimv2"), 50)
    assert dict(req.params) == {"EnumerationContext": "ctx-7", "MaxObjectCount": 50}
    req = call(lb, "CloseEnumeration", ("ctx-7", "root/cimv2"))
    assert dict(req.params) == {"EnumerationContext": "ctx-7"}
    for op in ("OpenAssociatorInstancePaths", "OpenReferenceInstances"):
        req = call(lb, op, VM.copy(), ResultClass="PRB_X", MaxObjectCount=5)
        assert req.name == op and req.params["InstanceName"] == VM


def test_create_and_modify_instance(lb):
    embedded = CIMInstance("PRB_Setting", properties={"Memory": Uint64(4096)})
    new = CIMInstance("PRB_VirtualSystem", properties=[
        CIMProperty("Name", "vm2"), CIMProperty("VCPUs", Uint16(4)),
        CIMProperty("Tags", ["a", None, "c"], type="string"),
        CIMProperty("Boot", Real64(1.5)), CIMProperty("Sched", Sint8(-3)),
        CIMProperty("Owner", CIMInstanceName("PRB_User", {"Id": "u1"}), type="reference",
                    reference_class="PRB_User"),
        CIMProperty("Setting", embedded, embedded_object="instance"),
        CIMProperty("Settings", [embedded, embedded], embedded_object="instance"),
    ], qualifiers=[CIMQualifier("Description", "a guest")])
    req = call(lb, "CreateInstance", new)
    got = req.params["NewInstance"]
    assert got.classname == "PRB_VirtualSystem"
    for name in ("Name", "VCPUs", "Tags", "Boot", "Sched", "Owner"):
        assert got[name] == new[name], name
    assert got.properties["Owner"].reference_class == "PRB_User"
    assert got["Setting"] == embedded and got["Settings"] == [embedded, embedded]
    assert got.properties["Setting"].embedded_object == "instance"
    assert got.qualifiers["Description"].value == "a guest"
    modified = new.copy()
    modified.path = CIMInstanceName("PRB_VirtualSystem", {"Name": "vm2"})
    req = call(lb, "ModifyInstance", modified, IncludeQualifiers=False, PropertyList=["VCPUs"])
    assert req.params["ModifiedInstance"].path == modified.path
    assert req.params["ModifiedInstance"]["VCPUs"] == 4
    assert req.params["PropertyList"] == ["VCPUs"]


def test_class_and_qualifier_requests(lb):
    klass = CIMClass("PRB_New", superclass="CIM_ManagedElement", qualifiers=[
        CIMQualifier("Description", "new", tosubclass=True)], properties=[
        CIMProperty("Id", None, type="string", qualifiers=[CIMQualifier("Key", True)]),
        CIMProperty("Vals", None, type="uint8", is_array=True, array_size=4)], methods=[
        CIMMethod("Go", "uint32", parameters=[
            CIMParameter("A", "string", is_array=True),
            CIMParameter("R", "reference", reference_class="CIM_Job"),
            CIMParameter("RA", "reference", is_array=True, reference_class="CIM_Job"),
            CIMParameter("S", "sint64", qualifiers=[CIMQualifier("In", True)])])])
    req = call(lb, "CreateClass", klass)
    got = req.params["NewClass"]
    assert got.classname == "PRB_New" and got.superclass == "CIM_ManagedElement"
    assert got.properties["Vals"].array_size == 4 and got.properties["Vals"].is_array
    assert got.methods["Go"].parameters["RA"].reference_class == "CIM_Job"
    assert got.methods["Go"].parameters["RA"].is_array
    assert got.methods["Go"].parameters["S"].qualifiers["In"].value is True
    qd = CIMQualifierDeclaration("Tag", "string", value=["x", "y"], is_array=True,
                                 scopes={"CLASS": True, "PROPERTY": False},
                                 overridable=False, tosubclass=True)
    req = call(lb, "SetQualifier", qd)
    got = req.params["QualifierDeclaration"]
    assert got.name == "Tag" and got.value == ["x", "y"] and got.is_array
    assert got.scopes["CLASS"] is True and got.scopes["PROPERTY"] is False
    assert got.overridable is False and got.tosubclass is True
    req = call(lb, "EnumerateClasses", ClassName="CIM_ManagedElement", DeepInheritance=True)
    assert req.params["ClassName"] == "CIM_ManagedElement"
    req = call(lb, "GetQualifier", "Key")
    assert req.params["QualifierName"] == "Key"


def test_exec_query(lb):
    req = call(lb, "ExecQuery", "DMTF:CQL", "SELECT * FROM PRB_VirtualSystem WHERE a < 'b&c'")
    assert req.params["Query"] == "SELECT * FROM PRB_VirtualSystem WHERE a < 'b&c'"


def test_methodcall_from_pywbem_is_typed_by_paramtype(lb):
    job = CIMInstanceName("CIM_ConcreteJob", {"InstanceID": "j1"}, namespace="root/cimv2")
    setting = CIMInstance("PRB_Setting", properties={"Memory": Uint64(4096)})
    target = VM.copy()
    target.namespace = "root/cimv2"
    call(lb, "InvokeMethod", "RequestStateChange", target,
         [("RequestedState", Uint16(3)), ("Force", True), ("Names", ["a", "b"]),
          ("Job", job), ("Setting", setting), ("When", CIMDateTime("00000001000000.000000:000"))])
    req = lb.last
    assert (req.kind, req.name, req.namespace) == ("method", "RequestStateChange", "root/cimv2")
    assert req.target == target
    p = req.params
    assert p["RequestedState"] == RawParam("RequestedState", "uint16", 3)
    assert type(p["RequestedState"].value) is Uint16
    assert p["Force"].value is True and p["Force"].type == "boolean"
    assert p["Names"].value == ["a", "b"]
    assert p["Job"].value == job and p["Job"].type == "reference"
    assert p["Setting"].value == setting and p["Setting"].embedded_object == "instance"
    assert isinstance(p["When"].value, CIMDateTime)
    # static method on a class path
    call(lb, "InvokeMethod", "DefineSystem", CIMClassName("PRB_Service", namespace="root/cimv2"))
    assert lb.last.target == CIMClassName("PRB_Service", namespace="root/cimv2")


# ----------------------------------------------------------------- wbemcli's requests

@pytest.mark.parametrize("captured", WBEMCLI, ids=[c["CIMMethod"] for c in WBEMCLI])
def test_wbemcli_requests_parse_and_match_their_headers(captured):
    req = parse_request(captured["body"].encode("utf-8"))
    check_headers_match(req, captured["CIMMethod"], captured["CIMObject"],
                        captured["CIMProtocolVersion"])
    assert req.name == captured["CIMMethod"] and req.message_id == "4711"
    assert req.namespace == "root/cimv2"


def _wbemcli(method, index=0):
    return [c for c in WBEMCLI if c["CIMMethod"] == method][index]


def test_wbemcli_numeric_key_without_type_is_an_int():
    req = parse_request(_wbemcli("GetInstance")["body"].encode())
    assert req.params["InstanceName"]["Num"] == 5
    assert req.params["InstanceName"]["Name"] == "vm1"


def test_wbemcli_method_parameters_are_raw_until_typed_from_the_class():
    req = parse_request(_wbemcli("RequestStateChange")["body"].encode())
    p = req.params
    assert p["RequestedState"] == RawParam("RequestedState", None, "3")
    assert p["Flag"].value == "true" and p["Names"].value == ['{"x"', 'y"']
    assert type_param(p["RequestedState"], "uint16", False) == 3
    assert type(type_param(p["RequestedState"], "uint16", False)) is Uint16
    assert type_param(p["Flag"], "boolean", False) is True
    assert type_param(p["Names"], "string", True) == ['{"x"', 'y"']
    with pytest.raises(pywbem.CIMError) as info:
        type_param(p["Names"], "string", False)
    assert info.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    static = parse_request(_wbemcli("RequestStateChange", 1)["body"].encode())
    assert static.target == CIMClassName("PRB_Test", namespace="root/cimv2")


def test_wbemcli_set_property_value_stays_raw():
    req = parse_request(_wbemcli("SetProperty")["body"].encode())
    assert req.params["NewValue"] == "7" and req.params["PropertyName"] == "Num"
    assert type_value(req.params["NewValue"], "uint32", False, name="NewValue") == 7


# ----------------------------------------------------------------- typing helpers

@pytest.mark.parametrize("text,cim_type,expected", [
    (" 42 ", "uint8", 42), ("0x1F", "uint16", 31), ("-128", "sint8", -128),
    ("18446744073709551615", "uint64", 2 ** 64 - 1), ("TRUE", "boolean", True),
    (" false", "boolean", False), ("1.5e3", "real64", 1500.0), ("-INF", "real32",
                                                                 float("-inf")),
    ("x", "char16", "x"), ("  keep  ", "string", "  keep  "),
])
def test_parse_value_accepts_dsp0201_syntax(text, cim_type, expected):
    assert parse_value(text, cim_type) == expected


@pytest.mark.parametrize("text,cim_type", [
    ("1_000", "uint32"), ("\u0661\u0662", "uint32"), ("256", "uint8"), ("-1", "uint32"),
    ("yes", "boolean"), ("1", "boolean"), ("1e", "real64"), ("xy", "char16"),
    ("2026", "datetime"), ("", "uint16"), ("nan1", "real32"),
])
def test_parse_value_rejects_everything_else(text, cim_type):
    with pytest.raises(ValueError):
        parse_value(text, cim_type)


def test_type_value_rechecks_client_typed_values():
    assert type(type_value(Uint16(7), "uint32", False)) is pywbem.Uint32
    assert type_value(CIMInstanceName("A", {"k": "v"}), "reference", False).classname == "A"
    path = type_value('root/cimv2:PRB_Test.Name="vm1"', "reference", False)
    assert path == CIMInstanceName("PRB_Test", {"Name": "vm1"}, namespace="root/cimv2")
    inst = type_value('<INSTANCE CLASSNAME="X"><PROPERTY NAME="a" TYPE="string">'
                      '<VALUE>1</VALUE></PROPERTY></INSTANCE>', "string", False, "instance")
    assert inst == CIMInstance("X", properties={"a": "1"})
    for bad in [(Uint64(2 ** 40), "uint16", False), (True, "uint8", False),
                ("abc", "reference", False), (["1"], "uint8", False), ("1", "uint8", True),
                ("<CLASS NAME='X'></CLASS>", "string", False, "instance")]:
        with pytest.raises(pywbem.CIMError) as info:
            type_value(*bad)
        assert info.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER, bad


# ----------------------------------------------------------------- header matching

def _req(body: str) -> CIMRequest:
    return parse_request(body.encode())


IMETHOD = ('<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
           '<MESSAGE ID="9" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="{op}">'
           '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/>'
           '</LOCALNAMESPACEPATH>{params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>')


def imethod(op="EnumerateInstanceNames",
            params='<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="PRB_Test"/></IPARAMVALUE>'):
    return IMETHOD.replace("{op}", op).replace("{params}", params)


def test_header_rules():
    req = _req(imethod())
    check_headers_match(req, "enumerateinstancenames", "root/cimv2")
    check_headers_match(req, "EnumerateInstanceNames", "root%2Fcimv2", "1.0")
    bad = [("GetInstance", "root/cimv2", None), ("EnumerateInstanceNames", "root/other", None),
           (None, "root/cimv2", None), ("EnumerateInstanceNames", None, None),
           ("EnumerateInstanceNames", "", None), ("EnumerateInstanceNames", "root%FF", None),
           ("EnumerateInstanceNames", "root/cimv2", "1.1")]
    for method, obj, version in bad:
        with pytest.raises(ProtocolError) as info:
            check_headers_match(req, method, obj, version)
        assert (info.value.http_status, info.value.cim_error_header) == (400, "header-mismatch")
    method_req = parse_request(_wbemcli("RequestStateChange")["body"].encode())
    check_headers_match(method_req, "RequestStateChange",
                        'root%2Fcimv2%3APRB_Test.Name%3D%22vm1%22')
    check_headers_match(method_req, "RequestStateChange", 'root/cimv2:PRB_Test.name="vm1"')
    for obj in ('root/cimv2:PRB_Test.Name="vm2"', "root/cimv2:PRB_Test", "root/cimv2",
                'root/other:PRB_Test.Name="vm1"', 'root/cimv2:PRB_Other.Name="vm1"'):
        with pytest.raises(ProtocolError):
            check_headers_match(method_req, "RequestStateChange", obj)
    static = parse_request(_wbemcli("RequestStateChange", 1)["body"].encode())
    check_headers_match(static, "RequestStateChange", "root%2Fcimv2%3APRB_Test")
    with pytest.raises(ProtocolError):
        check_headers_match(static, "RequestStateChange", 'root/cimv2:PRB_Test.Name="vm1"')


# ----------------------------------------------------------------- faults

def cim_fault(body, code):
    with pytest.raises(pywbem.CIMError) as info:
        parse_request(body.encode() if isinstance(body, str) else body)
    assert info.value.status_code == code, info.value
    assert isinstance(info.value, RequestCIMError)
    return info.value


def protocol_fault(body, status, header):
    with pytest.raises(ProtocolError) as info:
        parse_request(body.encode() if isinstance(body, str) else body)
    assert (info.value.http_status, info.value.cim_error_header) == (status, header), \
        info.value
    return info.value


def test_unknown_intrinsic_method_is_not_supported_and_keeps_the_request():
    err = cim_fault(imethod(op="FrobnicateInstances"), pywbem.CIM_ERR_NOT_SUPPORTED)
    assert err.request.name == "FrobnicateInstances" and err.request.message_id == "9"
    assert err.request.kind == "imethod" and err.request.namespace == "root/cimv2"


@pytest.mark.parametrize("params", [
    '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="A"/></IPARAMVALUE>'
    '<IPARAMVALUE NAME="Bogus"><VALUE>1</VALUE></IPARAMVALUE>',
    '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="A"/></IPARAMVALUE>'
    '<IPARAMVALUE NAME="classname"><CLASSNAME NAME="B"/></IPARAMVALUE>',
    '<IPARAMVALUE NAME="ClassName"><VALUE>A</VALUE></IPARAMVALUE>',
    '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="1bad"/></IPARAMVALUE>',
    '<IPARAMVALUE NAME="ClassName"></IPARAMVALUE>',
    '',
])
def test_bad_parameters_are_invalid_parameter(params):
    err = cim_fault(imethod(params=params), pywbem.CIM_ERR_INVALID_PARAMETER)
    assert err.request.name == "EnumerateInstanceNames"


@pytest.mark.parametrize("op,params", [
    ("GetInstance", '<IPARAMVALUE NAME="InstanceName"><CLASSNAME NAME="A"/></IPARAMVALUE>'),
    ("GetInstance", '<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="A">'
                    '<KEYBINDING NAME="k"><KEYVALUE TYPE="uint8">300</KEYVALUE></KEYBINDING>'
                    '</INSTANCENAME></IPARAMVALUE>'),
    ("GetInstance", '<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="A">'
                    '<KEYBINDING NAME="k"><KEYVALUE>1</KEYVALUE></KEYBINDING>'
                    '<KEYBINDING NAME="K"><KEYVALUE>2</KEYVALUE></KEYBINDING>'
                    '</INSTANCENAME></IPARAMVALUE>'),
    ("EnumerateClassNames", '<IPARAMVALUE NAME="DeepInheritance"><VALUE>maybe</VALUE>'
                            '</IPARAMVALUE>'),
    ("PullInstances", '<IPARAMVALUE NAME="EnumerationContext"><VALUE>c</VALUE></IPARAMVALUE>'
                      '<IPARAMVALUE NAME="MaxObjectCount"><VALUE>4294967296</VALUE>'
                      '</IPARAMVALUE>'),
    ("PullInstances", '<IPARAMVALUE NAME="EnumerationContext"><VALUE>c</VALUE></IPARAMVALUE>'
                      '<IPARAMVALUE NAME="MaxObjectCount"><VALUE>-1</VALUE></IPARAMVALUE>'),
    ("GetClass", '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="A"/></IPARAMVALUE>'
                 '<IPARAMVALUE NAME="PropertyList"><VALUE.ARRAY><VALUE.NULL/></VALUE.ARRAY>'
                 '</IPARAMVALUE>'),
    ("CreateInstance", '<IPARAMVALUE NAME="NewInstance"><INSTANCE CLASSNAME="A">'
                       '<PROPERTY NAME="e" TYPE="string" EmbeddedObject="instance"><VALUE>'
                       '&lt;!DOCTYPE x&gt;&lt;INSTANCE CLASSNAME="B"/&gt;</VALUE></PROPERTY>'
                       '</INSTANCE></IPARAMVALUE>'),
    ("CreateInstance", '<IPARAMVALUE NAME="NewInstance"><INSTANCE CLASSNAME="A">'
                       '<PROPERTY NAME="p" TYPE="boolean"><VALUE>2</VALUE></PROPERTY>'
                       '<PROPERTY NAME="P" TYPE="string"></PROPERTY></INSTANCE></IPARAMVALUE>'),
])
def test_mistyped_values_are_invalid_parameter(op, params):
    cim_fault(imethod(op=op, params=params), pywbem.CIM_ERR_INVALID_PARAMETER)


@pytest.mark.parametrize("ns", ['<NAMESPACE NAME=""/>', '<NAMESPACE NAME="root cimv2"/>',
                                '<NAMESPACE NAME="root/cimv2"/>', '<NAMESPACE NAME="a:b"/>'])
def test_malformed_namespace_is_invalid_namespace(ns):
    body = imethod().replace('<NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/>', ns)
    cim_fault(body, pywbem.CIM_ERR_INVALID_NAMESPACE)


def test_protocol_faults():
    protocol_fault(imethod().replace("<SIMPLEREQ>", "<MULTIREQ><SIMPLEREQ>").replace(
        "</SIMPLEREQ>", "</SIMPLEREQ></MULTIREQ>"), 501, "multiple-requests-unsupported")
    protocol_fault(imethod().replace('CIMVERSION="2.0"', 'CIMVERSION="3.0"'), 501,
                   "unsupported-cim-version")
    protocol_fault(imethod().replace('DTDVERSION="2.0"', 'DTDVERSION="1.1"'), 501,
                   "unsupported-dtd-version")
    protocol_fault(imethod().replace('PROTOCOLVERSION="1.0"', 'PROTOCOLVERSION="2.0"'), 501,
                   "unsupported-protocol-version")
    protocol_fault(imethod()[:-10], 400, "request-not-well-formed")
    protocol_fault(b"\xff\xfe<CIM/>", 400, "request-not-well-formed")
    protocol_fault(imethod().encode().replace(b"PRB_Test", b"PRB_\xc3"), 400,
                   "request-not-well-formed")
    protocol_fault(imethod().replace('encoding="utf-8"', 'encoding="ISO-8859-1"'), 400,
                   "request-not-well-formed")
    protocol_fault(b"", 400, "request-not-well-formed")
    protocol_fault(imethod().replace("PRB_Test", "&undefined;"), 400,
                   "request-not-well-formed")


@pytest.mark.parametrize("body", [
    '<?xml version="1.0"?><!DOCTYPE CIM SYSTEM "http://127.0.0.1:9/cim.dtd"><CIM/>',
    '<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">'
    ']><CIM CIMVERSION="2.0" DTDVERSION="2.0">&b;</CIM>',
    '<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY x SYSTEM "file:///etc/passwd">]><CIM>&x;'
    '</CIM>',
    imethod().replace("<SIMPLEREQ>", "<SIMPLEREQ><FOO/>"),
    imethod().replace('<IMETHODCALL NAME="EnumerateInstanceNames">', "<IMETHODCALL>"),
    imethod().replace("<SIMPLEREQ>", "<SIMPLEREQ>text"),
    imethod().replace('<CLASSNAME NAME="PRB_Test"/>', '<CLASSNAME NAME="PRB_Test" X="1"/>'),
    imethod().replace('<CLASSNAME NAME="PRB_Test"/>',
                      '<CLASSNAME NAME="A"/><CLASSNAME NAME="B"/>'),
    imethod(op="GetInstance", params='<IPARAMVALUE NAME="InstanceName"><INSTANCENAME '
            'CLASSNAME="A"><KEYBINDING NAME="k"><KEYVALUE VALUETYPE="text">1</KEYVALUE>'
            '</KEYBINDING></INSTANCENAME></IPARAMVALUE>'),
    imethod().replace("<SIMPLEREQ>", "<SIMPLEEXPREQ>").replace("</SIMPLEREQ>",
                                                               "</SIMPLEEXPREQ>"),
    '<?xml version="1.0" encoding="utf-8" ?><NOTCIM/>',
])
def test_structural_violations_are_request_not_valid(body):
    protocol_fault(body, 400, "request-not-valid")


def nested_reference(levels: int) -> str:
    inner = '<KEYVALUE VALUETYPE="string">x</KEYVALUE>'
    for _ in range(levels):
        inner = (f'<VALUE.REFERENCE><INSTANCENAME CLASSNAME="A"><KEYBINDING NAME="k">{inner}'
                 '</KEYBINDING></INSTANCENAME></VALUE.REFERENCE>')
    return (f'<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="A">'
            f'<KEYBINDING NAME="k">{inner}</KEYBINDING></INSTANCENAME></IPARAMVALUE>')


def test_nesting_depth_is_bounded():
    ok = parse_request(imethod("GetInstance", nested_reference(3)).encode())
    assert ok.params["InstanceName"]["k"]["k"]["k"]["k"] == "x"
    protocol_fault(imethod("GetInstance", nested_reference(20)), 400, "request-not-valid")
    with pytest.raises(ProtocolError):
        parse_request(imethod("GetInstance", nested_reference(3)).encode(), max_depth=12)
    # beyond libxml2's own limit: a syntax error, still a DSP0200 answer
    protocol_fault("<CIM>" + "<A>" * 5000 + "</A>" * 5000 + "</CIM>", 400,
                   "request-not-well-formed")


def test_size_is_bounded():
    body = imethod().encode()
    assert parse_request(body, max_size=len(body)).name == "EnumerateInstanceNames"
    with pytest.raises(ProtocolError) as info:
        parse_request(body, max_size=len(body) - 1)
    assert (info.value.http_status, info.value.cim_error_header) == (413, None)


def test_unnamed_key_values_are_refused_with_a_clear_error():
    err = cim_fault(imethod("GetInstance", '<IPARAMVALUE NAME="InstanceName"><INSTANCENAME '
                            'CLASSNAME="A"><KEYVALUE>1</KEYVALUE></INSTANCENAME></IPARAMVALUE>'),
                    pywbem.CIM_ERR_INVALID_PARAMETER)
    assert "unnamed key" in err.status_description


def test_comments_and_processing_instructions_are_ignored():
    body = imethod().replace("<SIMPLEREQ>", "<SIMPLEREQ><!-- note --><?pi x?>")
    assert parse_request(body.encode()).params["ClassName"] == "PRB_Test"


# ----------------------------------------------------------------- embedded MOF

def _methodcall(param_xml: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            '<MESSAGE ID="7" PROTOCOLVERSION="1.0"><SIMPLEREQ><METHODCALL NAME="DefineSystem">'
            '<LOCALCLASSPATH><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/>'
            '</LOCALNAMESPACEPATH><CLASSNAME NAME="HPVM_VirtualSystemManagementService"/>'
            f'</LOCALCLASSPATH>{param_xml}</METHODCALL></SIMPLEREQ></MESSAGE></CIM>').encode()


def test_embedded_instance_as_mof_text_is_read():
    mof = 'instance of HPVM_MemoryAllocationSettingData { VirtualQuantity = 4096; ' \
          'AllocationUnits = "byte*2^20"; };'
    body = _methodcall('<PARAMVALUE NAME="ResourceSettings" EmbeddedObject="instance">'
                       f'<VALUE.ARRAY><VALUE>{mof}</VALUE></VALUE.ARRAY></PARAMVALUE>')
    req = parse_request(body)
    value = req.params["ResourceSettings"].value
    assert isinstance(value[0], CIMInstance)
    assert value[0].classname == "HPVM_MemoryAllocationSettingData"
    assert value[0]["AllocationUnits"] == "byte*2^20"


def test_malformed_embedded_mof_is_an_invalid_parameter():
    body = _methodcall('<PARAMVALUE NAME="SystemSettings" EmbeddedObject="instance">'
                       '<VALUE>instance of X { Name = ; };</VALUE></PARAMVALUE>')
    with pytest.raises(pywbem.CIMError) as info:
        parse_request(body)
    assert info.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "MOF" in info.value.status_description
