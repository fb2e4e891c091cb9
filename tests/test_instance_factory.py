"""InstanceFactory.make's fast path against its definition (`make_reference`, pywbem's own
constructors): equal objects, equal pywbem internals, for every CIM type, arrays, NULLs,
datetimes, references, embedded instances, property lists, and the same errors."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pywbem import (CIMDateTime, CIMInstance, CIMInstanceName, Char16, Real32, Real64, Sint32,
                    Sint64, Uint8, Uint16, Uint32)

from agent.clock import ManualClock
from provider.messages import Principal
from provider.providers import base
from provider.providers.base import Context, InstanceFactory
from provider.schema import Schema

MOF = """
class TFY_Target {
    [Key] string InstanceID;
};

class TFY_All {
    [Key] string InstanceID;
    [Key] uint16 Slot;
    boolean B;  string S;  char16 C;
    uint8 U8;  sint8 S8;  uint16 U16;  sint16 S16;
    uint32 U32;  sint32 S32;  uint64 U64;  sint64 S64;
    real32 R32;  real64 R64;  datetime DT;
    boolean BA[];  string SA[];  char16 CA[];  uint8 U8A[];  sint64 S64A[];
    real32 R32A[];  real64 R64A[];  datetime DTA[];  uint16 U16A[];
    TFY_Target REF Target;
    [EmbeddedInstance ("TFY_Target")] string Emb;
    [EmbeddedInstance ("TFY_Target")] string EmbA[];
    [EmbeddedObject] string Obj;
};

class TFY_Keys {
    [Key] datetime When;  [Key] boolean Flag;  [Key] char16 Letter;  [Key] sint64 Big;
    string Note;
};

[Association] class TFY_Link {
    [Key] TFY_Target REF Left;  [Key] TFY_Target REF Right;
    string Label;
};
"""

SLOTS = ("_name", "_value", "_type", "_class_origin", "_array_size", "_propagated",
         "_is_array", "_reference_class", "_qualifiers", "_embedded_object")


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfy")
    (folder / "tfy.mof").write_text(MOF)
    return Schema.load(namespaces={"root/cimv2": ["qualifiers.mof", str(folder / "tfy.mof")]})


@pytest.fixture(scope="module")
def factory(schema):
    f = InstanceFactory.for_class(schema, "root/cimv2", "TFY_All")
    assert f.fast, "the fast path is off: pywbem's slots changed"
    return f


def _ctx(props):
    return Context(principal=Principal("root", "admin"), namespace="root/cimv2",
                   clock=ManualClock(), host_name="h", property_list=props)


def _internals(inst: CIMInstance):
    """Everything pywbem keeps for an instance, with the exact Python types of values."""
    def value(v):
        if isinstance(v, list):
            return ("list", [value(x) for x in v])
        return (type(v).__name__, v)
    props = []
    for name, prop in inst.properties.items():
        props.append((name, tuple(value(getattr(prop, s)) if s == "_value"
                                  else (getattr(prop, s) or None) if s == "_qualifiers"
                                  else getattr(prop, s) for s in SLOTS)))
    path = inst.path
    return (inst.classname, props, dict(inst.qualifiers),
            (path.classname, path.namespace, path.host,
             [(k, value(v)) for k, v in path.keybindings.items()]))


def assert_same(factory, values, ctx=None, **kw):
    fast = factory.make(values, ctx, **kw)
    slow = factory.make_reference(values, ctx, **kw)
    assert fast == slow
    assert _internals(fast) == _internals(slow)
    assert list(fast.properties) == list(slow.properties)       # order and name case
    # the fast-built object behaves as a pywbem object under its public API
    assert fast.copy() == slow.copy()
    try:
        mof = slow.tomof()
    except TypeError:                        # a value pywbem kept but cannot write
        with pytest.raises(TypeError):
            fast.tomof()
    else:
        assert fast.tomof() == mof
    return fast


TARGET = CIMInstanceName("TFY_Target", {"InstanceID": "t1"}, namespace="root/cimv2")
EMB = CIMInstance("TFY_Target", properties={"InstanceID": "e1"})

EVERY_TYPE = {
    "InstanceID": "a<&>\"'", "Slot": 7, "B": True, "S": "text", "C": "x",
    "U8": 255, "S8": -128, "U16": Uint16(65535), "S16": -32768, "U32": 4294967295,
    "S32": -2147483648, "U64": 18446744073709551615, "S64": Sint64(-9223372036854775808),
    "R32": 1.5, "R64": Real64(-2.25), "DT": "20261127043000.123456+060",
    "BA": [True, False, None], "SA": ["a", "", None], "CA": [Char16("q"), "r"],
    "U8A": (1, 2, 3), "S64A": [Sint64(-1), 5], "R32A": [Real32(0.5), 2.0],
    "R64A": [], "DTA": [CIMDateTime("20260101120000.000000+000"),
                        "00000001020304.000005:000"],
    "U16A": [2, 32768],
    "Target": TARGET, "Emb": EMB, "EmbA": [EMB, None], "Obj": EMB,
}


def test_every_cim_type_arrays_nulls_references_embedded(factory):
    inst = assert_same(factory, EVERY_TYPE)
    assert type(inst["U8"]) is Uint8 and type(inst["S32"]) is Sint32
    assert type(inst["R32"]) is Real32 and type(inst["DT"]) is CIMDateTime
    assert [type(v) for v in inst["U16A"]] == [Uint16, Uint16]
    assert inst.path.keybindings["Slot"] == 7 and type(inst.path.keybindings["Slot"]) is Uint16


def test_null_values_and_empty_instance(factory):
    values = {name: None for name in EVERY_TYPE if name not in ("InstanceID", "Slot")}
    assert_same(factory, {"InstanceID": "k", "Slot": 1, **values})


@pytest.mark.parametrize("name,value", [
    ("DT", datetime(2026, 11, 27, 4, 30, tzinfo=timezone.utc)),   # pywbem converts these
    ("DT", timedelta(days=1, seconds=5)),
    ("DT", CIMDateTime("20261127043000.******+000")),
    ("B", 0), ("B", "yes"),                  # pywbem's truth test
    ("S", b"bytes"), ("SA", [b"x", "y"]),     # decoded by pywbem
    ("U16", True), ("U16", Uint32(9)), ("U16", "12"), ("R64", 3), ("R32A", [1, 2.5]),
    ("S", 5),                                # pywbem keeps what it cannot type
    ("SA", ("a", "b")),
])
def test_values_pywbem_converts_give_the_same_result(factory, name, value):
    assert_same(factory, {"InstanceID": "k", "Slot": 1, name: value})


@pytest.mark.parametrize("name,value", [
    ("U8", 256), ("S8", -129), ("U64", -1), ("U16A", [1, 70000]),
    ("U16", [1, 2]),                         # an array for a scalar
    ("Target", "not a path"), ("DT", "yesterday"), ("U32", "x"),
])
def test_bad_values_fail_the_same_way(factory, name, value):
    values = {"InstanceID": "k", "Slot": 1, name: value}
    with pytest.raises(Exception) as slow:
        factory.make_reference(values)
    with pytest.raises(type(slow.value)):
        factory.make(values)


def test_unknown_names_skip_absent_and_missing_keys(factory):
    with pytest.raises(ValueError, match="no property Nope"):
        factory.make({"InstanceID": "k", "Slot": 1, "Nope": 1})
    assert_same(factory, {"InstanceID": "k", "Slot": 1, "Nope": 1}, skip_absent=True)
    with pytest.raises(ValueError, match="key Slot missing"):
        factory.make({"InstanceID": "k"})


def test_property_list_keeps_keys_and_names_in_any_case(factory):
    ctx = _ctx(frozenset({"u16", "sa"}))
    inst = assert_same(factory, {"instanceid": "k", "SLOT": 1, "U16": 3, "sa": ["x"],
                                 "S": "dropped"}, ctx)
    assert sorted(inst.properties) == ["InstanceID", "SA", "Slot", "U16"]
    assert_same(factory, {"InstanceID": "k", "Slot": 1, "S": "x"}, _ctx(frozenset()))


def test_fast_built_properties_are_ordinary_pywbem_objects(factory):
    inst = factory.make(EVERY_TYPE)
    prop = inst.properties["S"]
    assert prop.qualifiers == {} and prop.class_origin is None
    prop.qualifiers["Key"] = __import__("pywbem").CIMQualifier("Key", True)
    assert "Key" in inst.properties["S"].qualifiers
    assert not inst.properties["B"].qualifiers       # not shared between properties
    inst["S"] = "changed"
    assert inst["S"] == "changed"
    inst.properties["NewOne"] = __import__("pywbem").CIMProperty("NewOne", "v")
    assert "newone" in inst.properties


def test_the_fast_path_can_be_switched_off(factory, monkeypatch):
    monkeypatch.setattr(factory, "fast", False)
    assert factory.make(EVERY_TYPE) == factory.make_reference(EVERY_TYPE)


_scalar = {
    "B": st.booleans(), "S": st.text(max_size=8), "U8": st.integers(0, 255),
    "S16": st.integers(-2**15, 2**15 - 1), "U64": st.integers(0, 2**64 - 1),
    "R64": st.floats(allow_nan=False), "R32": st.floats(allow_nan=False, width=32),
    "DT": st.sampled_from(["20260101120000.000000+000", "00000001020304.000005:000"]),
}
_arrays = {"SA": st.text(max_size=4), "U8A": st.integers(0, 255), "BA": st.booleans(),
           "R64A": st.floats(allow_nan=False)}


@settings(max_examples=60, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    **{k: st.none() | v for k, v in _scalar.items()},
    **{k: st.none() | st.lists(st.none() | v, max_size=4) for k, v in _arrays.items()}}),
    st.none() | st.sets(st.sampled_from([k.lower() for k in list(_scalar) + list(_arrays)])))
def test_fast_equals_reference_for_generated_values(factory, values, props):
    ctx = None if props is None else _ctx(frozenset(props))
    assert_same(factory, {"InstanceID": "k", "Slot": 3, **values}, ctx)


@pytest.mark.parametrize("keys", [
    {"When": "20261127043000.123456+060", "Flag": True, "Letter": "z", "Big": -5},
    {"When": CIMDateTime("20261127043000.123456+060"), "Flag": False, "Letter": Char16("y"),
     "Big": Sint64(7)},
    {"When": datetime(2026, 1, 1, tzinfo=timezone.utc), "Flag": 1, "Letter": b"x",
     "Big": "12"},                                     # converted by pywbem
])
def test_paths_of_every_key_type(schema, keys):
    keyed = InstanceFactory.for_class(schema, "root/cimv2", "TFY_Keys")
    inst = assert_same(keyed, {**keys, "Note": "n"})
    assert inst.path.namespace == "root/cimv2" and inst.path.host is None
    assert keyed.make(keys).path == keyed.path(keys)


def test_reference_keys_of_an_association(schema):
    link = InstanceFactory.for_class(schema, "root/cimv2", "TFY_Link")
    other = CIMInstanceName("TFY_Target", {"InstanceID": "t2"}, namespace="root/cimv2")
    inst = assert_same(link, {"Left": TARGET, "Right": other, "Label": "l"})
    assert inst.path.keybindings["Right"] == other
    with pytest.raises(TypeError):
        link.make({"Left": "not a path", "Right": other})


def test_slot_names_guard_matches_this_pywbem():
    assert base._FAST_MAKE


def test_datetime_strings_parse_once_and_stay_equal(schema, monkeypatch):
    """The fast path remembers CIMDateTime objects by their exact string (they are
    immutable); results equal pywbem's, bad strings are never remembered, and the memory is
    bounded."""
    monkeypatch.setattr(base, "_DATETIMES", {})
    monkeypatch.setattr(base, "_DATETIMES_MAX", 3)
    f = InstanceFactory.for_class(schema, "root/cimv2", "TFY_All")
    values = {"InstanceID": "k", "Slot": 1, "DT": "20261127043000.123456+060",
              "DTA": ["20260101120000.000000+000", "00000001020304.000005:000"]}
    first = assert_same(f, values)
    second = assert_same(f, values)
    assert second["DT"] is first["DT"]                  # shared, immutable
    assert str(second["DT"]) == "20261127043000.123456+060"
    with pytest.raises(ValueError):
        f.make(dict(values, DT="yesterday"))
    assert "yesterday" not in base._DATETIMES
    for i in range(10):
        assert_same(f, dict(values, DT=f"2026112704300{i}.000000+000"))
    assert len(base._DATETIMES) <= 3
    # equal instants written with different offsets stay distinct texts
    a = f.make(dict(values, DT="20260101120000.000000+000"))
    b = f.make(dict(values, DT="20260101130000.000000+060"))
    assert str(a["DT"]) != str(b["DT"])

