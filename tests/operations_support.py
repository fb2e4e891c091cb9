"""A small schema and in-memory providers for driving the Dispatcher directly (no HTTP).

The schema is compiled by the real `provider.schema.Schema` from a test MOF (the project's
qualifier declarations plus the TST_ classes below) into root/cimv2 and test/other.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pywbem
from pywbem import (CIMDateTime, CIMError, CIMInstance, CIMInstanceName, NocaseDict, Uint32)

from agent.clock import ManualClock
from agent.errors import AgentError
from provider.messages import CIMRequest, Principal
from provider.operations import Dispatcher, PullLimits
from provider.providers.base import (ADMIN, ADMIN_OPER, AssociationProvider, InstanceFactory,
                                     InstanceProvider, cim_method, method_result, path_key)
from provider.providers.registry import ProviderRegistry
from provider.schema import Schema

ROOT = Path(__file__).resolve().parent.parent
NS = "root/cimv2"
OTHER = "test/other"
HOST = "testhost"

ADMIN_P = Principal("root", "admin")
OPER_P = Principal("op", "oper")
READER_P = Principal("reader", "readonly")

TEST_MOF = """
class TST_Element {
    [Key] string InstanceID;
    string ElementName;
};

class TST_Base : TST_Element {
    uint32 Count;
    boolean Enabled;
    datetime Started;
    string Tags[];
    real64 Ratio;
    TST_Element REF Buddy;
    uint32 Ping([IN] boolean Loud, [IN] string Words[], [IN(false), OUT] uint32 Echo);
    [Static] uint32 Reset([IN] uint16 Level, [IN] TST_Element REF Target);
    uint32 Idle();
};

class TST_Sub : TST_Base {
    string Extra;
};

class TST_Other : TST_Element {
    sint32 Level;
};

[Abstract] class TST_Abstract : TST_Element {
};

class TST_Big : TST_Element {
    uint64 Serial;
};

class TST_Gate : TST_Element {
};

[Association] class TST_Link {
    [Key] TST_Base REF Left;
    [Key] TST_Element REF Right;
    string Label;
};
"""


def load_test_schema(tmp_dir: Path) -> Schema:
    tmp_dir = Path(tmp_dir)
    shutil.copy(ROOT / "mof" / "qualifiers.mof", tmp_dir / "qualifiers.mof")
    (tmp_dir / "test.mof").write_text(TEST_MOF)
    files = ["qualifiers.mof", "test.mof"]
    return Schema.load(mof_root=tmp_dir, namespaces={NS: files, OTHER: files})


class Calls:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.contexts: list = []

    def hit(self, name: str, ctx=None) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            if ctx is not None:
                self.contexts.append((name, ctx))
                ctx.memo(("seen", name), lambda: True)

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.contexts.clear()


class MemoryProvider(InstanceProvider):
    """Instances kept in a dict; create/modify/delete; methods Ping and Reset; a guest-style
    grant: user 'owner' may modify and Ping instance b1 only."""

    def __init__(self, schema, namespace: str, classnames, *, writable: bool = True):
        self.namespaces = (namespace,)
        self.classnames = tuple(classnames)
        self.schema = schema
        self.writable = writable
        self.calls = Calls()
        self.data: dict[tuple, CIMInstance] = {}
        self.factories = {c.lower(): InstanceFactory.for_class(schema, namespace, c)
                          for c in classnames}
        self.fail_with: Exception | None = None

    def add(self, classname: str, **values) -> CIMInstance:
        inst = self.factories[classname.lower()].make(values)
        self.data[path_key(inst.path, self.namespaces[0])] = inst
        return inst

    def enumerate(self, ctx, classname):
        self.calls.hit("enumerate", ctx)
        if self.fail_with is not None:
            raise self.fail_with
        for inst in list(self.data.values()):
            if inst.classname.lower() == classname.lower():
                yield inst.copy()

    def get(self, ctx, path):
        self.calls.hit("get", ctx)
        inst = self.data.get(path_key(path, self.namespaces[0]))
        return inst.copy() if inst is not None else None

    def get_many(self, ctx, paths):
        self.calls.hit("get_many", ctx)
        for path in paths:
            inst = self.data.get(path_key(path, self.namespaces[0]))
            if inst is not None:
                yield inst.copy()

    def supports(self, action):
        return self.writable and super().supports(action)

    def create(self, ctx, instance):
        self.calls.hit("create", ctx)
        inst = self.factories[instance.classname.lower()].make(
            {p.name: p.value for p in instance.properties.values()})
        key = path_key(inst.path, self.namespaces[0])
        if key in self.data:
            raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS, "exists")
        self.data[key] = inst
        return inst.path.copy()

    def modify(self, ctx, instance, properties):
        self.calls.hit("modify", ctx)
        self.last_modify = (instance.copy(), list(properties))
        key = path_key(instance.path, self.namespaces[0])
        if key not in self.data:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, "no such instance")
        stored = self.data[key]
        for name in properties:
            stored.properties[name] = instance.properties[name].copy()

    def delete(self, ctx, path):
        self.calls.hit("delete", ctx)
        key = path_key(path, self.namespaces[0])
        if key not in self.data:
            raise AgentError("hpvmremove: no such guest", kind="not_found")
        del self.data[key]

    def authorize(self, ctx, action, target):
        return ctx.principal.user == "owner" and action in ("modify", "method:Ping") \
            and isinstance(target, CIMInstanceName) and target["InstanceID"] == "b1"

    @cim_method("Ping", roles=ADMIN_OPER)
    def ping(self, ctx, target, params):
        self.calls.hit("Ping", ctx)
        self.last_params = params
        words = params["Words"].value if "Words" in params else []
        return method_result(len(words), "uint32",
                             [("Echo", 7 if params.get("Loud") and params["Loud"].value else 1)])

    @cim_method("Reset", roles=ADMIN)
    def reset(self, ctx, target, params):
        self.calls.hit("Reset", ctx)
        self.last_params = params
        return (Uint32(0), [])


class LinkProvider(AssociationProvider):
    """TST_Link with a `references` that looks only at the links touching the source."""

    classnames = ("TST_Link",)

    def __init__(self, schema, namespace: str):
        self.namespaces = (namespace,)
        self.factory = InstanceFactory.for_class(schema, namespace, "TST_Link")
        self.links: list[tuple[CIMInstanceName, CIMInstanceName, str]] = []
        self.calls = Calls()

    def link(self, left, right, label):
        self.links.append((left, right, label))

    def _make(self, ctx, left, right, label):
        return self.factory.make({"Left": left, "Right": right, "Label": label}, ctx)

    def enumerate(self, ctx, classname):
        self.calls.hit("enumerate", ctx)
        for left, right, label in self.links:
            yield self._make(ctx, left, right, label)

    def references(self, ctx, classname, source, role):
        self.calls.hit("references", ctx)
        wanted = path_key(source, ctx.namespace)
        for left, right, label in self.links:
            if (role in (None, "Left") and path_key(left, ctx.namespace) == wanted) or \
                    (role in (None, "Right") and path_key(right, ctx.namespace) == wanted):
                yield self._make(ctx, left, right, label)


class BigProvider(InstanceProvider):
    """`count` TST_Big instances made on demand; `produced` counts what was yielded."""

    classnames = ("TST_Big",)

    def __init__(self, schema, namespace: str, count: int):
        self.namespaces = (namespace,)
        self.factory = InstanceFactory.for_class(schema, namespace, "TST_Big")
        self.count = count
        self.produced = 0
        self.closed = 0

    def enumerate(self, ctx, classname):
        try:
            for i in range(self.count):
                self.produced += 1
                yield self.factory.make({"InstanceID": f"big{i:05d}", "Serial": i,
                                         "ElementName": f"item {i}"}, ctx)
        finally:
            self.closed += 1


class GateProvider(InstanceProvider):
    """Yields g0, then, once `armed`, waits for `gate` before each further instance
    (concurrency tests)."""

    classnames = ("TST_Gate",)

    def __init__(self, schema, namespace: str, count: int = 3):
        self.namespaces = (namespace,)
        self.factory = InstanceFactory.for_class(schema, namespace, "TST_Gate")
        self.count = count
        self.gate = threading.Event()
        self.waiting = threading.Event()
        self.armed = False

    def enumerate(self, ctx, classname):
        for i in range(self.count):
            if i and self.armed:
                self.waiting.set()
                if not self.gate.wait(10):
                    raise CIMError(pywbem.CIM_ERR_FAILED, "gate never opened")
            yield self.factory.make({"InstanceID": f"g{i}"}, ctx)


def ref(classname: str, instance_id: str, namespace: str | None = None) -> CIMInstanceName:
    return CIMInstanceName(classname, keybindings={"InstanceID": instance_id},
                           namespace=namespace)


STARTED = CIMDateTime("20240101120000.000000+000")


class World:
    """The test schema, populated providers and a Dispatcher on a ManualClock."""

    def __init__(self, tmp_dir: Path, *, big: int = 0, pull_limits: PullLimits | None = None):
        self.schema = load_test_schema(tmp_dir)
        self.clock = ManualClock()
        self.registry = ProviderRegistry(self.schema)
        self.base = MemoryProvider(self.schema, NS, ["TST_Base", "TST_Sub"])
        self.other = MemoryProvider(self.schema, NS, ["TST_Other"], writable=False)
        self.far = MemoryProvider(self.schema, OTHER, ["TST_Other"], writable=False)
        self.links = LinkProvider(self.schema, NS)
        self.big = BigProvider(self.schema, NS, big)
        self.gate = GateProvider(self.schema, NS)
        for p in (self.base, self.other, self.far, self.links, self.big, self.gate):
            self.registry.register(p)
        self.base.add("TST_Base", InstanceID="b1", ElementName="alpha", Count=5, Enabled=True,
                      Tags=["x", "y"], Ratio=0.5, Started=STARTED)
        self.base.add("TST_Base", InstanceID="b2", ElementName="beta", Count=10,
                      Enabled=False, Ratio=2.0)
        self.base.add("TST_Sub", InstanceID="s1", ElementName="gamma", Count=7, Enabled=True,
                      Extra="more", Buddy=ref("TST_Other", "o1", NS))
        self.base.add("TST_Sub", InstanceID="s2", Extra="o'brien")
        self.other.add("TST_Other", InstanceID="o1", ElementName="omega", Level=-3)
        self.far.add("TST_Other", InstanceID="o9", ElementName="far away", Level=9)
        b1, b2 = ref("TST_Base", "b1", NS), ref("TST_Base", "b2", NS)
        s1, o1 = ref("TST_Sub", "s1", NS), ref("TST_Other", "o1", NS)
        self.links.link(b1, o1, "l1")
        self.links.link(b1, s1, "l2")
        self.links.link(s1, b2, "l3")
        self.links.link(b2, ref("TST_Other", "o9", OTHER), "cross")
        self.dispatcher = Dispatcher(self.schema, self.registry, clock=self.clock,
                                     host_name=HOST, pull_limits=pull_limits)

    def reset_calls(self):
        for p in (self.base, self.other, self.far, self.links):
            p.calls.reset()

    def op(self, name: str, principal: Principal = READER_P, namespace: str = NS, **params):
        return self.dispatcher.handle(CIMRequest("imethod", name, namespace, NocaseDict(params)),
                                      principal)

    def call(self, method: str, target, params: dict, principal: Principal = ADMIN_P,
             namespace: str = NS):
        return self.dispatcher.handle(
            CIMRequest("method", method, namespace, NocaseDict(params), target=target),
            principal)


def ids(objects) -> list[str]:
    """Sorted InstanceIDs of instances or paths."""
    out = []
    for obj in objects:
        path = obj.path if isinstance(obj, CIMInstance) else obj
        out.append(path.keybindings["InstanceID"])
    return sorted(out)


def error_code(func, *args, **kwargs) -> int:
    try:
        func(*args, **kwargs)
    except CIMError as exc:
        return exc.status_code
    raise AssertionError("no CIMError raised")


class DispatcherConnection(pywbem.WBEMConnection):
    """A WBEMConnection whose operations go straight to a Dispatcher (no HTTP), so that
    pywbem's own WBEMServer logic runs against our semantics. `world` is any test object
    with `op(name, principal, namespace, **params)`."""

    def __init__(self, world, principal, default_namespace, host="testhost"):
        super().__init__(f"https://{host}:5989", default_namespace=default_namespace)
        self._world = world
        self._principal = principal

    def _do(self, name, namespace, **params):
        return self._world.op(name, self._principal, namespace or self.default_namespace,
                              **params)

    def EnumerateInstanceNames(self, ClassName, namespace=None):
        return self._do("EnumerateInstanceNames", namespace, ClassName=ClassName)

    def EnumerateInstances(self, ClassName, namespace=None, LocalOnly=None,
                           DeepInheritance=None, IncludeQualifiers=None,
                           IncludeClassOrigin=None, PropertyList=None):
        return self._do("EnumerateInstances", namespace, ClassName=ClassName,
                        LocalOnly=LocalOnly, DeepInheritance=DeepInheritance,
                        IncludeQualifiers=IncludeQualifiers,
                        IncludeClassOrigin=IncludeClassOrigin, PropertyList=PropertyList)

    def AssociatorNames(self, ObjectName, AssocClass=None, ResultClass=None, Role=None,
                        ResultRole=None):
        return self._do("AssociatorNames", ObjectName.namespace, ObjectName=ObjectName,
                        AssocClass=AssocClass, ResultClass=ResultClass, Role=Role,
                        ResultRole=ResultRole)

    def GetClass(self, ClassName, namespace=None, LocalOnly=None, IncludeQualifiers=None,
                 IncludeClassOrigin=None, PropertyList=None):
        return self._do("GetClass", namespace, ClassName=ClassName, LocalOnly=LocalOnly,
                        IncludeQualifiers=IncludeQualifiers,
                        IncludeClassOrigin=IncludeClassOrigin, PropertyList=PropertyList)


__all__ = ["ADMIN_P", "DispatcherConnection", "OPER_P", "READER_P", "NS", "OTHER", "HOST", "World", "ids",
           "error_code", "ref", "NocaseDict"]
