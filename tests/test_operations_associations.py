"""Associators, AssociatorNames, References, ReferenceNames: filters, both directions,
cross-namespace targets, class-level traversals, and the provider calls they cost."""
from __future__ import annotations

import pytest
import pywbem
from pywbem import CIMClass, CIMClassName

from tests.operations_support import HOST, NS, OTHER, World, error_code, ids, ref


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_associators_of_an_instance(world):
    result = world.op("Associators", ObjectName=ref("TST_Base", "b1"))
    assert ids(result) == ["o1", "s1"]
    for inst in result:
        assert inst.path.namespace == NS and inst.path.host == HOST


def test_associators_work_in_both_directions(world):
    assert ids(world.op("Associators", ObjectName=ref("TST_Other", "o1"))) == ["b1"]
    assert ids(world.op("Associators", ObjectName=ref("TST_Sub", "s1"))) == ["b1", "b2"]


@pytest.mark.parametrize("params,expected", [
    ({"AssocClass": "TST_Link"}, ["o1", "s1"]),
    ({"ResultClass": "TST_Other"}, ["o1"]),
    ({"ResultClass": "TST_Base"}, ["s1"]),
    ({"Role": "Left"}, ["o1", "s1"]),
    ({"Role": "right"}, []),
    ({"ResultRole": "Right"}, ["o1", "s1"]),
    ({"ResultRole": "Left"}, []),
    ({"Role": "Left", "ResultRole": "Right", "ResultClass": "TST_Element"}, ["o1", "s1"]),
])
def test_associator_filters(world, params, expected):
    source = ref("TST_Base", "b1")
    assert ids(world.op("Associators", ObjectName=source, **params)) == expected
    assert ids(world.op("AssociatorNames", ObjectName=source, **params)) == expected


def test_associators_reach_other_namespaces(world):
    result = world.op("Associators", ObjectName=ref("TST_Base", "b2"))
    far = [i for i in result if i.path.namespace == OTHER]
    assert ids(far) == ["o9"] and far[0]["ElementName"] == "far away"
    names = world.op("AssociatorNames", ObjectName=ref("TST_Base", "b2"))
    assert {(n.namespace, n["InstanceID"]) for n in names} == {(NS, "s1"), (OTHER, "o9")}
    assert all(n.host == HOST for n in names)


def test_associators_property_list_applies_to_targets(world):
    result = world.op("Associators", ObjectName=ref("TST_Base", "b1"),
                      PropertyList=["ElementName"])
    assert all(set(i.properties) <= {"ElementName"} for i in result)
    assert {i["ElementName"] for i in result} == {"omega", "gamma"}


def test_references_and_reference_names(world):
    refs = world.op("References", ObjectName=ref("TST_Base", "b1"))
    assert sorted(r["Label"] for r in refs) == ["l1", "l2"]
    for r in refs:
        assert r.path.namespace == NS and r.path.host == HOST
        assert r["Left"] == ref("TST_Base", "b1", NS)
    names = world.op("ReferenceNames", ObjectName=ref("TST_Sub", "s1"), Role="Left")
    assert len(names) == 1 and names[0]["Right"] == ref("TST_Base", "b2", NS)
    assert world.op("ReferenceNames", ObjectName=ref("TST_Sub", "s1"),
                    ResultClass="TST_Link", Role="Right")[0]["Left"] == ref("TST_Base", "b1", NS)
    assert world.op("References", ObjectName=ref("TST_Other", "o1"), Role="Left") == []


def test_traversal_asks_only_for_touching_links_and_fetches_targets_in_groups(world):
    world.reset_calls()
    world.op("Associators", ObjectName=ref("TST_Base", "b1"))
    assert world.links.calls["references"] == 1
    assert world.links.calls["enumerate"] == 0
    # one get_many per target class (TST_Other via `other`, TST_Sub via `base`), no per-target get
    assert world.other.calls["get_many"] == 1 and world.other.calls["get"] == 0
    assert world.base.calls["get_many"] == 1
    assert world.base.calls["get"] == 1                 # the source existence check only


def test_traversal_errors(world):
    b1 = ref("TST_Base", "b1")
    assert error_code(world.op, "Associators", ObjectName=b1, AssocClass="TST_Nope") == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.op, "AssociatorNames", ObjectName=b1, ResultClass="TST_Nope") == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.op, "References", ObjectName=b1, ResultClass="Bad Name") == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    assert error_code(world.op, "Associators", ObjectName=ref("TST_Base", "zz")) == \
        pywbem.CIM_ERR_NOT_FOUND
    assert error_code(world.op, "ReferenceNames", ObjectName=ref("TST_Nope", "b1")) == \
        pywbem.CIM_ERR_INVALID_PARAMETER


def test_class_level_traversals_return_classes(world):
    # TST_Base can stand at either end (Left, and Right as a TST_Element)
    names = world.op("AssociatorNames", ObjectName=CIMClassName("TST_Base"))
    assert sorted(n.classname for n in names) == ["TST_Base", "TST_Element"]
    assert [n.classname for n in world.op("AssociatorNames", ObjectName=CIMClassName("TST_Base"),
                                          Role="Left")] == ["TST_Element"]
    assert all(n.namespace == NS and n.host == HOST for n in names)
    # TST_Other is a TST_Element, which is the Right end: its associated class is TST_Base
    assert [n.classname for n in world.op("AssociatorNames",
                                          ObjectName=CIMClassName("TST_Other"))] == ["TST_Base"]
    refs = world.op("ReferenceNames", ObjectName=CIMClassName("TST_Sub"))
    assert [n.classname for n in refs] == ["TST_Link"]
    objs = world.op("Associators", ObjectName=CIMClassName("TST_Other"), ResultRole="Left",
                    IncludeQualifiers=False)
    (path, cls), = objs
    assert isinstance(cls, CIMClass) and path.classname == cls.classname == "TST_Base"
    assert world.op("References", ObjectName=CIMClassName("TST_Other"), Role="Left") == []
    assert world.op("AssociatorNames", ObjectName=CIMClassName("TST_Base"), Role="Left",
                    ResultClass="TST_Other") == []


def test_one_request_shares_one_memo_cache_across_providers(world):
    world.reset_calls()
    world.op("Associators", ObjectName=ref("TST_Base", "b1"))
    caches = {id(ctx.cache) for p in (world.base, world.other, world.links)
              for _, ctx in p.calls.contexts}
    assert len(caches) == 1
    (cache,) = {id(ctx.cache): ctx.cache for _, ctx in world.links.calls.contexts}.values()
    assert {("seen", "references"), ("seen", "get_many"), ("seen", "get")} <= set(cache)
    world.op("Associators", ObjectName=ref("TST_Base", "b1"))
    caches = {id(ctx.cache) for p in (world.base, world.other, world.links)
              for _, ctx in p.calls.contexts}
    assert len(caches) == 2                   # the next request starts afresh
