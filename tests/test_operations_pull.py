"""Pull operations: sequences, MaxObjectCount, timeouts and expiry on a ManualClock, close,
ownership, limits, refusals and streaming from the providers."""
from __future__ import annotations

import threading

import pytest
import pywbem
from pywbem import CIMInstance, CIMInstanceName

from provider.messages import PullResult
from provider.operations import PullLimits
from tests.operations_support import (ADMIN_P, HOST, NS, OPER_P, OTHER, READER_P, World,
                                      error_code, ids, ref)


@pytest.fixture
def world(tmp_path):
    return World(tmp_path, big=250, pull_limits=PullLimits(default_timeout=30, max_timeout=120,
                                                           max_contexts=4,
                                                           max_contexts_per_user=3))


def drain(world, result, op="PullInstancesWithPath", count=100, principal=READER_P):
    objects = list(result.objects)
    while not result.end_of_sequence:
        result = world.op(op, principal, EnumerationContext=result.context,
                          MaxObjectCount=count)
        objects.extend(result.objects)
    return objects


def test_open_and_pull_sequence(world):
    r = world.op("OpenEnumerateInstances", ClassName="TST_Big", MaxObjectCount=100)
    assert isinstance(r, PullResult) and len(r.objects) == 100 and not r.end_of_sequence
    assert r.context
    r2 = world.op("PullInstancesWithPath", EnumerationContext=r.context, MaxObjectCount=100)
    assert len(r2.objects) == 100 and not r2.end_of_sequence and r2.context == r.context
    r3 = world.op("PullInstancesWithPath", EnumerationContext=r.context, MaxObjectCount=100)
    # the end is reported with the last objects, not in an extra empty round trip
    assert len(r3.objects) == 50 and r3.end_of_sequence and r3.context is None
    objects = r.objects + r2.objects + r3.objects
    assert len({o.path["InstanceID"] for o in objects}) == 250
    assert all(o.path.namespace == NS and o.path.host == HOST for o in objects)
    assert world.dispatcher.pulls.open_count() == 0
    # a finished context is gone
    assert error_code(world.op, "PullInstancesWithPath", EnumerationContext=r.context,
                      MaxObjectCount=1) == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT


def test_exact_multiple_ends_in_the_last_full_batch(world):
    world.big.count = 200
    r = world.op("OpenEnumerateInstancePaths", ClassName="TST_Big", MaxObjectCount=100)
    r2 = world.op("PullInstancePaths", EnumerationContext=r.context, MaxObjectCount=100)
    assert len(r2.objects) == 100 and r2.end_of_sequence
    assert all(isinstance(p, CIMInstanceName) and p.host == HOST for p in r.objects)


def test_max_object_count_zero_and_default(world):
    r = world.op("OpenEnumerateInstances", ClassName="TST_Base", MaxObjectCount=0)
    assert r.objects == [] and not r.end_of_sequence
    assert world.base.calls["enumerate"] <= 1
    r0 = world.op("PullInstancesWithPath", EnumerationContext=r.context, MaxObjectCount=0)
    assert r0.objects == [] and not r0.end_of_sequence
    assert ids(drain(world, r0)) == ["b1", "b2", "s1", "s2"]
    # no MaxObjectCount on Open means 0
    r = world.op("OpenEnumerateInstances", ClassName="TST_Base")
    assert r.objects == [] and r.context
    assert error_code(world.op, "PullInstancesWithPath", EnumerationContext=r.context) == \
        pywbem.CIM_ERR_INVALID_PARAMETER


def test_small_enumeration_finishes_in_the_open(world):
    r = world.op("OpenEnumerateInstances", ClassName="TST_Base", MaxObjectCount=10,
                 PropertyList=["Count"], DeepInheritance=False)
    assert r.end_of_sequence and r.context is None and ids(r.objects) == ["b1", "b2", "s1", "s2"]
    assert all(set(o.properties) <= {"Count"} for o in r.objects)
    assert world.dispatcher.pulls.open_count() == 0


def test_pull_streams_from_the_provider(world):
    world.big.count = 10_000
    r = world.op("OpenEnumerateInstances", ClassName="TST_Big", MaxObjectCount=100)
    assert world.big.produced <= 101          # one batch plus the look-ahead
    r = world.op("PullInstancesWithPath", EnumerationContext=r.context, MaxObjectCount=100)
    assert world.big.produced <= 201
    world.op("CloseEnumeration", EnumerationContext=r.context)
    assert world.big.closed == 1              # the provider's iterator was closed


def test_expiry_on_the_injected_clock(world):
    r = world.op("OpenEnumerateInstances", ClassName="TST_Big", MaxObjectCount=10,
                 OperationTimeout=60)
    world.clock.advance(59)
    r = world.op("PullInstancesWithPath", EnumerationContext=r.context, MaxObjectCount=10)
    world.clock.advance(59)                   # the timer restarts with every response
    r = world.op("PullInstancesWithPath", EnumerationContext=r.context, MaxObjectCount=10)
    world.clock.advance(61)
    assert error_code(world.op, "PullInstancesWithPath", EnumerationContext=r.context,
                      MaxObjectCount=10) == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    assert world.big.closed == 1
    # the default timeout applies when the client sends none
    r = world.op("OpenEnumerateInstancePaths", ClassName="TST_Big", MaxObjectCount=1)
    world.clock.advance(31)
    assert world.dispatcher.pulls.open_count() == 0


@pytest.mark.parametrize("timeout", [0, 121])
def test_operation_timeout_bounds(world, timeout):
    assert error_code(world.op, "OpenEnumerateInstances", ClassName="TST_Big",
                      OperationTimeout=timeout) == pywbem.CIM_ERR_INVALID_OPERATION_TIMEOUT
    assert world.dispatcher.pulls.open_count() == 0


def test_close_and_ownership(world):
    r = world.op("OpenEnumerateInstances", ClassName="TST_Big", MaxObjectCount=1)
    # another user, or the same context in another namespace, is told it does not exist
    assert error_code(world.op, "PullInstancesWithPath", OPER_P, EnumerationContext=r.context,
                      MaxObjectCount=1) == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    assert error_code(world.op, "CloseEnumeration", ADMIN_P, EnumerationContext=r.context) \
        == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    assert error_code(world.op, "PullInstancesWithPath", namespace=OTHER,
                      EnumerationContext=r.context, MaxObjectCount=1) == \
        pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    # the wrong Pull operation for this context
    assert error_code(world.op, "PullInstancePaths", EnumerationContext=r.context,
                      MaxObjectCount=1) == pywbem.CIM_ERR_INVALID_PARAMETER
    # still usable by its owner
    assert len(world.op("PullInstancesWithPath", EnumerationContext=r.context,
                        MaxObjectCount=2).objects) == 2
    world.op("CloseEnumeration", EnumerationContext=r.context)
    assert error_code(world.op, "PullInstancesWithPath", EnumerationContext=r.context,
                      MaxObjectCount=1) == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    assert error_code(world.op, "CloseEnumeration", EnumerationContext="no-such-context") == \
        pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT


def test_context_limits(world):
    for _ in range(3):
        world.op("OpenEnumerateInstancePaths", ClassName="TST_Big", MaxObjectCount=1)
    assert error_code(world.op, "OpenEnumerateInstancePaths", ClassName="TST_Big",
                      MaxObjectCount=1) == pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED
    world.op("OpenEnumerateInstancePaths", OPER_P, ClassName="TST_Big", MaxObjectCount=1)
    assert error_code(world.op, "OpenEnumerateInstancePaths", ADMIN_P, ClassName="TST_Big",
                      MaxObjectCount=1) == pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED
    # an enumeration that finishes in its Open needs no context and is still served
    assert world.op("OpenEnumerateInstances", ADMIN_P, ClassName="TST_Other",
                    MaxObjectCount=5).end_of_sequence
    world.clock.advance(31)
    world.op("OpenEnumerateInstancePaths", ADMIN_P, ClassName="TST_Big", MaxObjectCount=1)


def test_refused_open_options(world):
    assert error_code(world.op, "OpenEnumerateInstances", ClassName="TST_Base",
                      FilterQueryLanguage="DMTF:FQL", FilterQuery="Count = 5") == \
        pywbem.CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED
    assert error_code(world.op, "OpenReferenceInstancePaths", InstanceName=ref("TST_Base", "b1"),
                      FilterQuery="Label = 'l1'") == \
        pywbem.CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED
    assert error_code(world.op, "OpenEnumerateInstancePaths", ClassName="TST_Base",
                      ContinueOnError=True) == pywbem.CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED
    assert error_code(world.op, "OpenEnumerateInstances", ClassName="TST_Nope") == \
        pywbem.CIM_ERR_INVALID_CLASS
    assert world.dispatcher.pulls.open_count() == 0


def test_open_association_operations(world):
    b1 = ref("TST_Base", "b1")
    r = world.op("OpenAssociatorInstances", InstanceName=b1, MaxObjectCount=1)
    assert len(r.objects) == 1
    assert ids(drain(world, r)) == ["o1", "s1"]
    r = world.op("OpenAssociatorInstancePaths", InstanceName=b1, ResultClass="TST_Other",
                 MaxObjectCount=5)
    assert r.end_of_sequence and ids(r.objects) == ["o1"]
    r = world.op("OpenReferenceInstances", InstanceName=b1, MaxObjectCount=1,
                 PropertyList=["Label"])
    refs = drain(world, r)
    assert sorted(x["Label"] for x in refs) == ["l1", "l2"]
    assert all(isinstance(x, CIMInstance) and x.path.host == HOST for x in refs)
    r = world.op("OpenReferenceInstancePaths", InstanceName=b1, Role="Right", MaxObjectCount=5)
    assert r.end_of_sequence and r.objects == []
    assert error_code(world.op, "OpenAssociatorInstances", InstanceName=ref("TST_Base", "zz"),
                      MaxObjectCount=1) == pywbem.CIM_ERR_NOT_FOUND
    assert error_code(world.op, "OpenAssociatorInstancePaths", InstanceName=b1,
                      AssocClass="TST_Nope") == pywbem.CIM_ERR_INVALID_PARAMETER


def test_enumeration_count(world):
    r = world.op("OpenEnumerateInstances", ClassName="TST_Big", MaxObjectCount=10)
    assert world.op("EnumerationCount", EnumerationContext=r.context) == 240
    # counting read ahead; the objects still come, in order, with the next pulls
    rest = drain(world, r)
    assert len(rest) == 250 and len({o.path["InstanceID"] for o in rest}) == 250
    world.dispatcher.pulls.limits.max_batch = 100
    r = world.op("OpenEnumerateInstancePaths", ClassName="TST_Big", MaxObjectCount=10)
    assert world.op("EnumerationCount", EnumerationContext=r.context) is None
    assert len(drain(world, r, "PullInstancePaths")) == 250


def test_provider_error_during_pull_ends_the_enumeration(world):
    r = world.op("OpenEnumerateInstances", ClassName="TST_Base", MaxObjectCount=0)
    world.base.fail_with = pywbem.CIMError(pywbem.CIM_ERR_FAILED, "backend gone")
    assert error_code(world.op, "PullInstancesWithPath", EnumerationContext=r.context,
                      MaxObjectCount=5) == pywbem.CIM_ERR_FAILED
    world.base.fail_with = None
    assert error_code(world.op, "PullInstancesWithPath", EnumerationContext=r.context,
                      MaxObjectCount=5) == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    assert world.dispatcher.pulls.open_count() == 0


def test_a_context_in_use_cannot_be_pulled_or_closed(world):
    world.gate.armed = True
    r = world.op("OpenEnumerateInstances", ClassName="TST_Gate", MaxObjectCount=0)
    results = {}

    def pull():
        results["pull"] = world.op("PullInstancesWithPath", EnumerationContext=r.context,
                                   MaxObjectCount=5)

    worker = threading.Thread(target=pull)
    worker.start()
    assert world.gate.waiting.wait(10)       # the first Pull is inside the provider
    assert error_code(world.op, "PullInstancesWithPath", EnumerationContext=r.context,
                      MaxObjectCount=1) == pywbem.CIM_ERR_PULL_CANNOT_BE_ABANDONED
    assert error_code(world.op, "CloseEnumeration", EnumerationContext=r.context) == \
        pywbem.CIM_ERR_PULL_CANNOT_BE_ABANDONED
    world.clock.advance(1000)                 # a busy context does not expire under its pull
    assert world.dispatcher.pulls.open_count() == 1
    world.gate.gate.set()
    worker.join(10)
    assert ids(results["pull"].objects) == ["g0", "g1", "g2"]
    assert results["pull"].end_of_sequence


@pytest.mark.parametrize("params", [
    {"MaxObjectCount": -1}, {"MaxObjectCount": 2 ** 32}, {"MaxObjectCount": "ten"},
    {"OperationTimeout": True}, {"ContinueOnError": "maybe"},
])
def test_bad_pull_parameter_values(world, params):
    assert error_code(world.op, "OpenEnumerateInstancePaths", ClassName="TST_Big",
                      **params) == pywbem.CIM_ERR_INVALID_PARAMETER
