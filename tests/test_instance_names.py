"""Instance paths filled in directly (provider/instance_names.py) equal pywbem's own, for
every kind of key value, and the parser and the dispatcher's copy give the same paths as
pywbem's constructors would."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pywbem import (CIMDateTime, CIMInstanceName, Char16, NocaseDict, Sint64, Uint8, Uint16,
                    Real32)

from provider import cimxml, instance_names
from provider.instance_names import instance_name, relocated
from provider.operations.common import get_instance_name


def _internals(path: CIMInstanceName):
    return (type(path), path.classname, path.namespace, path.host,
            [(k, type(v), v) for k, v in path.keybindings.items()])


def _keys(pairs) -> NocaseDict:
    d = NocaseDict()
    for k, v in pairs:
        d[k] = v
    return d


REF = CIMInstanceName("T_Target", {"ID": "t1"}, namespace="root/cimv2")
KEY_VALUES = ["x", "", "a<&>", True, False, Uint8(7), Uint16(65535), Sint64(-1), Real32(1.5),
              Char16("q"), CIMDateTime("20261127043000.123456+060"), REF]


@pytest.mark.parametrize("value", KEY_VALUES, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("namespace", [None, "root/cimv2", "/root/cimv2/"])
def test_fast_path_equals_pywbem_for_every_kept_type(value, namespace):
    keys = _keys([("Name", "n"), ("Value", value)])
    fast = instance_name("T_Class", keys, namespace=namespace, host="h:5989")
    slow = CIMInstanceName("T_Class", keys, namespace=namespace, host="h:5989")
    assert fast == slow and _internals(fast) == _internals(slow)
    assert fast.to_wbem_uri() == slow.to_wbem_uri()
    assert fast.copy() == slow and hash(fast) == hash(slow)
    assert list(fast.keybindings) == ["Name", "Value"]       # order and name case kept


def test_keybindings_are_copied_not_shared():
    keys = _keys([("Name", "n")])
    path = instance_name("T_Class", keys)
    keys["Name"] = "changed"
    path.keybindings["Other"] = "x"
    assert path.keybindings["name"] == "n" and "Other" not in keys


@pytest.mark.parametrize("value", [5, 2.5, b"bytes", None, [1, 2]],
                         ids=["int", "float", "bytes", "none", "list"])
def test_other_values_take_pywbem_and_behave_as_it_does(value, monkeypatch):
    keys = _keys([("Name", value)])
    try:
        slow = CIMInstanceName("T_Class", keys)
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e)):
            instance_name("T_Class", keys)
        return
    fast = instance_name("T_Class", keys)
    assert _internals(fast) == _internals(slow)


def test_no_keys_and_switched_off_take_pywbem(monkeypatch):
    assert instance_name("T_Class", NocaseDict()) == CIMInstanceName("T_Class")
    monkeypatch.setattr(instance_names, "_FAST", False)
    keys = _keys([("Name", "n")])
    assert _internals(instance_name("T_Class", keys)) == \
        _internals(CIMInstanceName("T_Class", keys))


def test_slot_names_guard_matches_this_pywbem():
    assert instance_names._FAST


def test_relocated_equals_copy_with_namespace_and_host():
    src = CIMInstanceName("T_Class", {"Name": "n", "Flag": True}, namespace="other",
                          host="far")
    want = src.copy()
    want.namespace = "root/cimv2"
    want.host = None
    got = relocated(src, "root/cimv2")
    assert _internals(got) == _internals(want)
    assert got.keybindings is not src.keybindings


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True),
                          st.one_of(st.text(max_size=8), st.booleans(),
                                    st.integers(0, 255).map(Uint8))),
                min_size=1, max_size=4, unique_by=lambda kv: kv[0].lower()))
def test_generated_keys(pairs):
    keys = _keys(pairs)
    assert _internals(instance_name("T_C", keys, namespace="root/x")) == \
        _internals(CIMInstanceName("T_C", keys, namespace="root/x"))


# -- the parser and the dispatcher use it ------------------------------------------------------

def _get_body(keybindings: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            '<MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="GetInstance">'
            '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/>'
            '</LOCALNAMESPACEPATH><IPARAMVALUE NAME="InstanceName">'
            f'<INSTANCENAME CLASSNAME="T_Class">{keybindings}</INSTANCENAME></IPARAMVALUE>'
            '</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>').encode()


def _kb(name, value, valuetype="string", cim_type=None):
    t = f' TYPE="{cim_type}"' if cim_type else ""
    return (f'<KEYBINDING NAME="{name}"><KEYVALUE VALUETYPE="{valuetype}"{t}>{value}'
            '</KEYVALUE></KEYBINDING>')


REF_XML = ('<KEYBINDING NAME="Ref"><VALUE.REFERENCE><INSTANCENAME CLASSNAME="T_Target">'
           + _kb("ID", "t1") + '</INSTANCENAME></VALUE.REFERENCE></KEYBINDING>')


@pytest.mark.parametrize("kbs,want", [
    (_kb("Name", "guest0042") + _kb("CreationClassName", "T_Class"),
     [("Name", "guest0042"), ("CreationClassName", "T_Class")]),
    (_kb("Flag", "TRUE", "boolean"), [("Flag", True)]),
    (_kb("Num", "42", "numeric"), [("Num", 42)]),                      # plain int: pywbem
    (_kb("Slot", "7", "numeric", "uint16"), [("Slot", Uint16(7))]),
    (_kb("When", "20261127043000.123456+060", "string", "datetime"),
     [("When", CIMDateTime("20261127043000.123456+060"))]),
    (REF_XML, [("Ref", CIMInstanceName("T_Target", {"ID": "t1"}))]),
], ids=["strings", "boolean", "numeric", "typed", "datetime", "reference"])
def test_parsed_instance_names_equal_pywbem_built_ones(kbs, want):
    req = cimxml.parse_request(_get_body(kbs))
    got = req.params["InstanceName"]
    expected = CIMInstanceName("T_Class", _keys(want))
    assert _internals(got) == _internals(expected)
    copied = get_instance_name(req.params, "InstanceName", "root/cimv2")
    expected.namespace = "root/cimv2"
    assert _internals(copied) == _internals(expected)
    assert copied is not got and got.namespace is None      # the request's path untouched


def test_parser_refusals_are_unchanged():
    with pytest.raises(Exception) as dup:
        cimxml.parse_request(_get_body(_kb("Name", "a") + _kb("name", "b")))
    assert "twice" in str(dup.value)
