"""The serializer's per-shape element templates against the element builders: byte-identical
responses for every kind of property, values never leaking from one instance into another,
and templates kept per thread."""
from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pywbem import (CIMDateTime, CIMInstance, CIMInstanceName, CIMProperty, CIMQualifier,
                    Char16, Real32, Real64, Sint8, Uint16, Uint64)

from provider.cimxml import serialize_response
from provider.cimxml import serializer as S
from provider.messages import CIMRequest, PullResult


def _request(name):
    return CIMRequest(kind="imethod", name=name, namespace="root/cimv2", message_id="7")


def both(name, result):
    """(with templates, with the builders only) for one response."""
    with_templates = serialize_response(_request(name), result)
    S._TEMPLATES_OK, saved = False, S._TEMPLATES_OK
    try:
        plain = serialize_response(_request(name), result)
    finally:
        S._TEMPLATES_OK = saved
    return with_templates, plain


def _path(i, **extra):
    return CIMInstanceName("TPL_X", {"Name": f"n{i}", "Slot": Uint16(i), **extra},
                           namespace="root/cimv2", host="h")


SCALARS = st.one_of(
    st.tuples(st.just("string"), st.text(max_size=6).filter(lambda s: "\r" not in s)),
    st.tuples(st.just("boolean"), st.booleans()),
    st.tuples(st.just("uint16"), st.integers(0, 65535).map(Uint16)),
    st.tuples(st.just("sint8"), st.integers(-128, 127).map(Sint8)),
    st.tuples(st.just("uint64"), st.integers(0, 2**64 - 1).map(Uint64)),
    st.tuples(st.just("real32"), st.floats(width=32).map(Real32)),
    st.tuples(st.just("real64"), st.floats().map(Real64)),
    st.tuples(st.just("char16"), st.sampled_from("az<&\"").map(Char16)),
    st.tuples(st.just("datetime"), st.sampled_from([
        CIMDateTime("20261127043000.123456+060"), CIMDateTime("00000001020304.000005:000"),
        CIMDateTime("2026112704****.******+000")])),
)


@st.composite
def properties(draw):
    kind = draw(st.sampled_from(["scalar", "null", "array", "nullarray", "special"]))
    name = draw(st.sampled_from(["A", "b", "Caption", "Data", "E"]))
    cim_type, value = draw(SCALARS)
    if kind == "scalar":
        return CIMProperty(name, value, type=cim_type)
    if kind == "null":
        return CIMProperty(name, None, type=cim_type, is_array=draw(st.booleans()))
    if kind == "array":
        values = draw(st.lists(st.just(value) | st.none(), max_size=3))
        return CIMProperty(name, values, type=cim_type, is_array=True)
    if kind == "nullarray":
        return CIMProperty(name, [], type=cim_type, is_array=True)
    special = draw(st.sampled_from(["qualifier", "origin", "propagated", "reference",
                                    "embedded", "arraysize"]))
    if special == "qualifier":
        return CIMProperty(name, value, type=cim_type,
                           qualifiers={"Description": CIMQualifier("Description", "d")})
    if special == "origin":
        return CIMProperty(name, value, type=cim_type, class_origin="TPL_Base")
    if special == "propagated":
        return CIMProperty(name, value, type=cim_type, propagated=True)
    if special == "reference":
        return CIMProperty(name, _path(1), type="reference", reference_class="TPL_X")
    if special == "embedded":
        return CIMProperty(name, CIMInstance("TPL_E", {"K": "v<"}), type="string",
                           embedded_object="instance")
    return CIMProperty(name, [value], type=cim_type, is_array=True, array_size=1)


@st.composite
def instances(draw, i=0):
    inst = CIMInstance("TPL_X", path=_path(draw(st.integers(0, 3))))
    for prop in draw(st.lists(properties(), max_size=5)):
        inst.properties[prop.name] = prop
    if draw(st.booleans()):
        inst.qualifiers["Description"] = CIMQualifier("Description", "x")
    return inst


@settings(max_examples=150, deadline=None)
@given(st.lists(instances(), max_size=6))
def test_template_output_is_byte_identical(insts):
    for op, result in (("EnumerateInstances", insts),
                       ("OpenEnumerateInstances", PullResult(insts, True, None)),
                       ("Associators", insts)):
        fast, plain = both(op, result)
        assert fast == plain
        assert b"/>" not in fast
    if insts:
        fast, plain = both("GetInstance", insts[0])
        assert fast == plain


def _guest(i, **overrides):
    values = {"Name": f"g{i}", "Caption": f"caption {i} & <{i}>", "Count": Uint16(i),
              "Tags": [f"t{i}", f"u{i}"],
              "When": CIMDateTime(f"2026112704{i % 60:02d}00.000000+000"),
              "On": i % 2 == 0, "Nothing": None}
    values.update(overrides)
    inst = CIMInstance("TPL_X", path=_path(i))
    for name, value in values.items():
        cim_type = {"Count": "uint16", "When": "datetime", "On": "boolean"}.get(name, "string")
        inst.properties[name] = CIMProperty(name, value, type=cim_type,
                                            is_array=isinstance(value, list))
    return inst


def test_every_instance_gets_its_own_values():
    insts = [_guest(i) for i in range(50)]
    fast, plain = both("EnumerateInstances", insts)
    assert fast == plain
    doc = etree.fromstring(fast)
    named = doc.findall(".//VALUE.NAMEDINSTANCE")
    assert len(named) == 50
    for i, el in enumerate(named):
        assert el.find("INSTANCENAME/KEYBINDING/KEYVALUE").text == f"n{i}"
        assert el.find("INSTANCE/PROPERTY[@NAME='Caption']/VALUE").text == \
            f"caption {i} & <{i}>"
        assert [v.text for v in el.findall(".//PROPERTY.ARRAY/VALUE.ARRAY/VALUE")] == \
            [f"t{i}", f"u{i}"]


def test_a_change_of_shape_gets_its_own_template():
    insts = [_guest(0), _guest(1, Tags=["a", "b", "c"]), _guest(2, Nothing="now set"),
             _guest(3, Tags=None), _guest(4, Tags=[]), _guest(5, Tags=["x", None]),
             _guest(6, Tags="a scalar now"), _guest(7, Nothing=[]), _guest(8, Nothing=["1"])]
    fast, plain = both("EnumerateInstances", insts)
    assert fast == plain
    assert b"/>" not in fast


def test_strings_xml_cannot_carry_take_the_sanitizing_retry():
    insts = [_guest(0), _guest(1, Caption="bad \x01 char")]
    fast, plain = both("EnumerateInstances", insts)
    assert fast == plain
    assert "bad \ufffd char".encode() in fast


def test_templates_are_kept_per_thread():
    insts = [_guest(i) for i in range(20)]
    expected = both("EnumerateInstances", insts)[1]
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(serialize_response(_request("EnumerateInstances"), insts))
        except Exception as exc:       # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 80 and all(r == expected for r in results)


def test_slot_guard_matches_this_pywbem():
    assert S._TEMPLATES_OK


@pytest.mark.parametrize("count", [1, S._MAX_TEMPLATES + 5])
def test_template_cache_is_bounded(count):
    insts = [_guest(i, **{f"P{k}": "v" for k in range(i % 7)}) for i in range(count)]
    for i, inst in enumerate(insts):
        inst.classname = f"TPL_C{i}"
    fast, plain = both("EnumerateInstances", insts)
    assert fast == plain
    assert len(S._template_cache()) <= S._MAX_TEMPLATES
