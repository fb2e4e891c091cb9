"""The Dispatcher's per-instance fast path (`shape_instance`, per-class facts cached in
`classinfo`) against the plain definition (`shape_instance_reference`): the same instance
comes out for every shape, including undeclared properties, odd name case, qualifiers and
class origins the provider left on, and DeepInheritance against a superclass."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pywbem import CIMInstance, CIMInstanceName, CIMProperty, CIMQualifier, Uint32

from provider.operations import classinfo
from provider.operations.common import Shape, shape_instance, shape_instance_reference
from provider.operations.instances import check_keys
from tests.operations_support import NS, load_test_schema


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    return load_test_schema(tmp_path_factory.mktemp("fastpaths"))


def _instance(names, *, qualified=(), origins=(), inst_qualifier=False):
    inst = CIMInstance("TST_Sub", path=CIMInstanceName("TST_Sub", {"InstanceID": "i"}))
    for name in names:
        q = {"Description": CIMQualifier("Description", "q")} if name in qualified else None
        inst.properties[name] = CIMProperty(
            name, "v", type="string", qualifiers=q,
            class_origin="TST_Base" if name in origins else None)
    if inst_qualifier:
        inst.qualifiers["Description"] = CIMQualifier("Description", "inst")
    return inst


def _state(inst):
    return (inst, [(n, p.class_origin, dict(p.qualifiers)) for n, p in inst.properties.items()],
            dict(inst.qualifiers))


NAMES = ["InstanceID", "instanceid", "ElementName", "Count", "Extra", "Tags", "Undeclared",
         "EXTRA", "Buddy"]


@settings(max_examples=80, deadline=None)
@given(names=st.lists(st.sampled_from(NAMES), unique_by=str.lower, max_size=7),
       qualified=st.sets(st.sampled_from(NAMES)), origins=st.sets(st.sampled_from(NAMES)),
       inst_qualifier=st.booleans(),
       plist=st.none() | st.sets(st.sampled_from(["instanceid", "extra", "count", "nope",
                                                  "elementname"])),
       deep=st.booleans(), requested=st.sampled_from([None, "TST_Base", "TST_Sub"]),
       quals=st.booleans(), origin=st.booleans())
def test_fast_shape_equals_reference(schema, names, qualified, origins, inst_qualifier, plist,
                                     deep, requested, quals, origin):
    cls = schema.get_class(NS, "TST_Sub")
    req = None if requested is None else schema.get_class(NS, requested)
    shape = Shape.of(plist, deep_inheritance=deep, include_qualifiers=quals,
                     include_class_origin=origin)
    kw = dict(qualified=qualified, origins=origins, inst_qualifier=inst_qualifier)
    fast = shape_instance(_instance(names, **kw), cls, req, shape)
    slow = shape_instance_reference(_instance(names, **kw), cls, req, shape)
    assert _state(fast) == _state(slow)


def test_exact_instance_is_left_untouched(schema):
    cls = schema.get_class(NS, "TST_Sub")
    inst = _instance(["InstanceID", "Extra"])
    props_before = list(inst.properties.values())
    shape_instance(inst, cls, None, Shape())
    assert list(inst.properties.values()) == props_before
    assert all(a is b for a, b in zip(inst.properties.values(), props_before))


def test_deep_inheritance_false_keeps_only_the_requested_class(schema):
    cls, base = schema.get_class(NS, "TST_Sub"), schema.get_class(NS, "TST_Base")
    inst = shape_instance(_instance(["InstanceID", "Extra", "Count", "Undeclared"]), cls, base,
                          Shape(deep_inheritance=False))
    assert sorted(inst.properties) == ["Count", "InstanceID"]
    # the cached keep-set of one shape is not reused for another
    inst = shape_instance(_instance(["InstanceID", "Extra"]), cls, base, Shape())
    assert sorted(inst.properties) == ["Extra", "InstanceID"]
    inst = shape_instance(_instance(["InstanceID", "Extra"]), cls, base,
                          Shape.of(["extra"], deep_inheritance=True))
    assert sorted(inst.properties) == ["Extra"]


def test_class_info_is_computed_once_per_class_and_follows_the_class(schema):
    cls = schema.get_class(NS, "TST_Sub")
    info = classinfo.class_info(cls)
    assert classinfo.class_info(cls) is info
    assert info.key_names == ("InstanceID",) and info.keys_lower == {"instanceid"}
    assert "extra" in info.declared and "undeclared" not in info.declared
    other = schema.get_class(NS, "TST_Other")
    assert classinfo.class_info(other).cim_class is other


def test_check_keys_uses_the_class_keys(schema):
    cls = schema.get_class(NS, "TST_Sub")
    check_keys(cls, CIMInstanceName("TST_Sub", {"instanceID": "x"}))
    with pytest.raises(Exception, match="missing key"):
        check_keys(cls, CIMInstanceName("TST_Sub", {"Other": Uint32(1)}))
