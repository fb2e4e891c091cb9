"""How a CIM class family serves its classes: read, association, write and method handlers.

A family is one module (``provider/providers/interop.py``, later the VM families) that
defines one or more `InstanceProvider` / `AssociationProvider` subclasses and an
``install(registry, env)`` function that registers them. The Dispatcher does everything the
protocol asks around them (namespaces, class checks, property filtering, paths, pulls,
queries, authorization by host role); a handler only produces or changes instances.

Rules for handlers (they run in the Dispatcher's worker threads, never on the reactor):

* Return fresh pywbem objects: the Dispatcher filters properties and fills paths in place.
* Enumerations return iterators; yield instances one by one so a pull of 10,000 instances
  never holds them all. Read what you need from the agent in one call up front (one snapshot
  of the guest list, say), never one round trip per instance, and hold no lock between
  yields.
* Look at ``ctx.property_list`` to skip expensive properties; key properties are always
  wanted. ``ctx.keys_only`` is true for name enumerations.
* Refuse with ``pywbem.CIMError`` carrying the precise code (NOT_FOUND, INVALID_PARAMETER,
  ACCESS_DENIED, ALREADY_EXISTS, FAILED with the user-facing text ...).
* Providers must be thread-safe: several requests may run at once.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName
from pywbem._nocasedict import NocaseDict

from agent.clock import Clock
from provider.messages import MethodResult, Principal

ROLES = ("admin", "oper", "readonly")
# A principal with host role `none` has no host-wide rights: reads are narrowed by the
# providers (a guest's own admin/oper lists), writes and methods need an `authorize` grant.
NO_HOST_ROLE = "none"
PRINCIPAL_ROLES = ROLES + (NO_HOST_ROLE,)
ADMIN = frozenset({"admin"})
ADMIN_OPER = frozenset({"admin", "oper"})


@dataclass(frozen=True)
class Context:
    """What a handler knows about the request it serves."""

    principal: Principal
    namespace: str
    clock: Clock
    host_name: str
    operation: str = ""
    # Lower-cased names of the properties the client asked for; None means all of them.
    property_list: frozenset[str] | None = None
    # Shared by every Context derived from one request (and by all Pulls of one
    # enumeration): see `memo`.
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def memo(self, key, compute):
        """`compute()` once per request: lets the handlers of several classes share one
        snapshot read from the agent (the guest list, say) instead of reading it again
        for every class or target group. An enumeration pulled in several requests keeps
        its snapshot, so its pages are consistent."""
        try:
            return self.cache[key]
        except KeyError:
            value = self.cache[key] = compute()
            return value

    @property
    def keys_only(self) -> bool:
        return self.property_list is not None and not self.property_list

    def wants(self, name: str) -> bool:
        """True when property `name` will reach the client (keys are always wanted anyway)."""
        return self.property_list is None or name.lower() in self.property_list

    def with_namespace(self, namespace: str) -> "Context":
        return replace(self, namespace=namespace)

    def with_properties(self, names: Iterable[str] | None) -> "Context":
        props = None if names is None else frozenset(n.lower() for n in names)
        return replace(self, property_list=props)


def cim_method(name: str, *, roles: Iterable[str] = ADMIN_OPER):
    """Mark a provider method as the handler of extrinsic method `name`.

    The handler is called as ``handler(ctx, target, params)`` where `target` is the
    CIMInstanceName or CIMClassName it is invoked on (namespace set) and `params` a NocaseDict
    of typed `pywbem.CIMParameter`; it returns a `MethodResult` or a tuple
    ``(return_value, out_params)``. `roles` are the host roles allowed to call it; the
    provider's `authorize` may grant more (a guest's own admin/oper lists).
    """
    allowed = frozenset(roles)
    unknown = allowed - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def mark(func):
        func._cim_method = (name, allowed)
        return func

    return mark


@dataclass(frozen=True)
class MethodHandler:
    name: str
    roles: frozenset[str]
    attribute: str


class InstanceProvider(abc.ABC):
    """Serves the instances of `classnames` (exact, concrete classes) in `namespaces`.

    Read handlers: `enumerate` (required), `enumerate_names`, `get`, `get_many` (defaults
    derived from `enumerate`; override them when the source can do better).
    Write handlers: `create`, `modify`, `delete`; a provider supports the ones it overrides,
    and callers need one of `write_roles` (or a grant from `authorize`).
    Methods: handlers marked with `@cim_method`.
    """

    namespaces: tuple[str, ...] = ()
    classnames: tuple[str, ...] = ()
    write_roles: frozenset[str] = ADMIN

    _cim_methods: dict[str, MethodHandler] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        methods: dict[str, MethodHandler] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                marker = getattr(value, "_cim_method", None)
                if marker:
                    methods[marker[0].lower()] = MethodHandler(marker[0], marker[1], attr)
        cls._cim_methods = methods

    # -- reads -------------------------------------------------------------------------

    @abc.abstractmethod
    def enumerate(self, ctx: Context, classname: str) -> Iterable[CIMInstance]:
        """All instances of exactly `classname` in ``ctx.namespace``, each with its path
        (keybindings at least; the Dispatcher sets namespace and host)."""

    def enumerate_names(self, ctx: Context, classname: str) -> Iterable[CIMInstanceName]:
        """Paths of all instances of `classname`. The default runs `enumerate` with an empty
        property list (the keys-only fast path)."""
        keys_ctx = ctx.with_properties(())
        for inst in self.enumerate(keys_ctx, classname):
            yield inst.path

    def get(self, ctx: Context, path: CIMInstanceName) -> CIMInstance | None:
        """The instance at `path` (same class, complete keys), or None when there is none.
        The default scans `enumerate`; providers override it with a direct lookup."""
        for inst in self.enumerate(ctx, path.classname):
            if inst.path is not None and same_keys(inst.path, path):
                return inst
        return None

    def get_many(self, ctx: Context,
                 paths: list[CIMInstanceName]) -> Iterable[CIMInstance]:
        """Instances for several paths of one class (association targets); missing ones are
        skipped. Override to fetch them in one call to the source."""
        if len(paths) > 4:
            wanted = {path_key(p) for p in paths}
            for inst in self.enumerate(ctx, paths[0].classname):
                if inst.path is not None and path_key(inst.path) in wanted:
                    yield inst
            return
        for path in paths:
            inst = self.get(ctx, path)
            if inst is not None:
                yield inst

    # -- writes ------------------------------------------------------------------------

    def create(self, ctx: Context, instance: CIMInstance) -> CIMInstanceName:
        """Create `instance` (properties typed and checked against the class) and return
        its path."""
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                       f"CreateInstance is not supported for {instance.classname}")

    def modify(self, ctx: Context, instance: CIMInstance, properties: list[str]) -> None:
        """Change the named non-key `properties` of the instance at ``instance.path`` to
        the values in `instance`."""
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                       f"ModifyInstance is not supported for {instance.classname}")

    def delete(self, ctx: Context, path: CIMInstanceName) -> None:
        """Delete the instance at `path` (CIM_ERR_NOT_FOUND when there is none)."""
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                       f"DeleteInstance is not supported for {path.classname}")

    def supports(self, action: str) -> bool:
        """Whether this provider implements write action 'create', 'modify' or 'delete'."""
        mine = getattr(type(self), action, None)
        return mine is not None and mine is not getattr(InstanceProvider, action)

    def roles_for(self, action: str) -> frozenset[str]:
        """Host roles allowed to do write action 'create', 'modify' or 'delete' (default:
        `write_roles`; override to differ per action)."""
        return self.write_roles

    def authorize(self, ctx: Context, action: str, target: Any) -> bool:
        """Extra grants beyond the host roles: return True to let ``ctx.principal`` do
        `action` ('create', 'modify', 'delete' or 'method:<Name>') on `target`. The default
        grants nothing."""
        return False

    # -- methods -----------------------------------------------------------------------

    def method_handler(self, name: str) -> MethodHandler | None:
        return self._cim_methods.get(name.lower())

    def call_method(self, handler: MethodHandler, ctx: Context, target,
                    params) -> MethodResult | tuple:
        return getattr(self, handler.attribute)(ctx, target, params)


class AssociationProvider(InstanceProvider):
    """Serves association classes. `references` lets a traversal fetch only the association
    instances that touch one source object instead of materializing them all."""

    def references(self, ctx: Context, classname: str, source: CIMInstanceName,
                   role: str | None) -> Iterable[CIMInstance]:
        """Instances of exactly `classname` that refer to `source` (through property `role`
        when given). Returning extra instances is harmless (the Dispatcher re-checks each
        reference); missing ones are a bug. The default filters `enumerate`."""
        for inst in self.enumerate(ctx, classname):
            for prop in inst.properties.values():
                if prop.type == "reference" and (role is None or prop.name.lower() == role.lower()) \
                        and isinstance(prop.value, CIMInstanceName) \
                        and same_path(prop.value, source, ctx.namespace):
                    yield inst
                    break


# -- paths ---------------------------------------------------------------------------------

def _key_value(value, default_namespace):
    if isinstance(value, CIMInstanceName):
        return path_key(value, default_namespace)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    return ("o", str(value))


def path_key(path: CIMInstanceName, default_namespace: str | None = None) -> tuple:
    """A hashable identity of an instance path: namespace (lower-case), class (lower-case)
    and keybindings (names lower-case; string values compared exactly). Host is ignored; a
    path (or a reference inside it) without namespace is taken to be in `default_namespace`."""
    ns = (path.namespace or default_namespace or "").strip("/").lower()
    keys = tuple(sorted((k.lower(), _key_value(v, ns)) for k, v in path.keybindings.items()))
    return (ns, path.classname.lower(), keys)


def same_keys(a: CIMInstanceName, b: CIMInstanceName) -> bool:
    """Same class and keybindings; namespace and host ignored."""
    return path_key(a, "")[1:] == path_key(b, "")[1:]


def same_path(a: CIMInstanceName, b: CIMInstanceName, default_namespace: str) -> bool:
    """Same object: namespaces compared with `default_namespace` standing in for a missing one."""
    return path_key(a, default_namespace) == path_key(b, default_namespace)


# -- building instances typed from the class ---------------------------------------------------

# The fast path of InstanceFactory.make fills pywbem's slots directly, exactly as pywbem's own
# constructors would for the values it accepts (tests/test_instance_factory.py holds the two
# equal for every CIM type). pywbem is pinned to 1.9.x; should a release rename a slot, make
# takes the plain path throughout.
_FAST_MAKE = (
    {"_name", "_value", "_type", "_class_origin", "_array_size", "_propagated", "_is_array",
     "_reference_class", "_qualifiers", "_embedded_object"}
    <= set(getattr(pywbem.CIMProperty, "__slots__", ()))
    and {"_classname", "_properties", "_qualifiers", "_path"}
    <= set(getattr(CIMInstance, "__slots__", ()))
    and {"_classname", "_keybindings", "_host", "_namespace"}
    <= set(getattr(CIMInstanceName, "__slots__", ()))
    and isinstance(getattr(NocaseDict(), "_data", None), dict))
_SLOW = object()      # "this value needs pywbem's conversion"
_new_property = pywbem.CIMProperty.__new__
_new_instance = CIMInstance.__new__
_new_path = CIMInstanceName.__new__
# CIMDateTime parsed from the exact string form (a regex and several objects each): the same
# timestamps come back request after request (install dates, state changes), and a
# CIMDateTime is immutable, so instances may share one. Bounded; emptied when full.
_DATETIMES: dict[str, pywbem.CIMDateTime] = {}
_DATETIMES_MAX = 4096
# keybinding values pywbem stores unchanged (see pywbem._cim_obj._cim_keybinding)
_KEEPS_AS_IS = (str, bool, pywbem.CIMType)


def _exact(cim_type: str):
    """The value a property of `cim_type` holds for `value`, when pywbem would keep or
    convert it without question (the value's Python type is the one pywbem produces, or the
    one it converts from with the type's constructor), else _SLOW."""
    if cim_type in ("string", "char16"):
        def conv(value):
            return value if isinstance(value, str) else _SLOW
        return conv
    if cim_type == "boolean":
        def conv(value):
            return value if value is True or value is False else _SLOW
        return conv
    if cim_type == "datetime":
        def conv(value, _t=pywbem.CIMDateTime, _seen=_DATETIMES):
            kind = type(value)
            if kind is _t:
                return value
            if kind is str:
                hit = _seen.get(value)
                if hit is None:
                    hit = _t(value)
                    if len(_seen) >= _DATETIMES_MAX:
                        _seen.clear()
                    _seen[value] = hit
                return hit
            return _SLOW
        return conv
    py_type = pywbem.type_from_name(cim_type)    # Uint8 ... Real64
    if issubclass(py_type, int):
        # pywbem's integer types check the range in Python and then call int's __new__;
        # in range, that is all they do
        low, high, new = py_type.minvalue, py_type.maxvalue, int.__new__

        def conv(value, _t=py_type):
            kind = type(value)
            if kind is _t:
                return value
            if kind is int:
                return new(_t, value) if low <= value <= high else _t(value)
            return _SLOW
        return conv

    def conv(value, _t=py_type, _source=float):
        kind = type(value)
        if kind is _t:
            return value
        if kind is _source:
            return _t(value)         # range-checked by pywbem's type, as cimvalue does
        return _SLOW
    return conv


class _Slot:
    """One declared property, ready for the fast path."""

    __slots__ = ("name", "folded", "type", "is_array", "conv", "fast")

    def __init__(self, decl: pywbem.CIMProperty):
        self.name = decl.name
        self.folded = decl.name.casefold()      # the key NocaseDict files it under
        self.type = decl.type
        self.is_array = bool(decl.is_array)
        self.fast = (decl.type != "reference" and not decl.embedded_object
                     and decl.reference_class is None)
        self.conv = _exact(decl.type) if self.fast else None

    def typed(self, value):
        """The property value, or _SLOW."""
        if value is None:
            return None
        conv = self.conv
        if self.is_array:
            if type(value) is not list and type(value) is not tuple:
                return _SLOW
            out = []
            for v in value:
                if v is None:
                    out.append(None)
                    continue
                v = conv(v)
                if v is _SLOW:
                    return _SLOW
                out.append(v)
            return out
        if type(value) is list or type(value) is tuple:
            return _SLOW         # pywbem refuses an array for a scalar: let it say so
        return conv(value)

    def property(self, value) -> pywbem.CIMProperty:
        p = _new_property(pywbem.CIMProperty)
        p._name = self.name
        p._value = value
        p._type = self.type
        p._class_origin = None
        p._array_size = None
        p._propagated = None
        p._is_array = self.is_array
        p._reference_class = None
        p._qualifiers = None       # pywbem creates an empty qualifier dict on first use
        p._embedded_object = None
        return p


class InstanceFactory:
    """Builds instances of one class from plain Python values, typed from the class
    declaration, so providers never guess CIM types. Build one per class and reuse it.

    `make` is on the path of every instance every provider returns. Values whose Python
    type is already what pywbem would store (str for strings, bool, the pywbem integer and
    real types or plain int/float for them, CIMDateTime or its string form, lists of these)
    are filled into the pywbem objects directly, skipping pywbem's per-value inference and
    validation; anything else (references, embedded objects, other types) goes through
    pywbem's constructors. Both give equal objects (tests/test_instance_factory.py)."""

    def __init__(self, cim_class: pywbem.CIMClass, namespace: str):
        self.classname = cim_class.classname
        self.namespace = namespace
        self._decls: dict[str, pywbem.CIMProperty] = {
            name.lower(): prop for name, prop in cim_class.properties.items()}
        self.key_names: tuple[str, ...] = tuple(
            prop.name for prop in cim_class.properties.values()
            if prop.qualifiers.get("Key") is not None and prop.qualifiers["Key"].value)
        self._key_lower = frozenset(k.lower() for k in self.key_names)
        self._slots: dict[str, _Slot] = {
            name.lower(): _Slot(prop) for name, prop in cim_class.properties.items()}
        self._key_slots = tuple((k.lower(), self._slots[k.lower()]) for k in self.key_names)
        self._path_namespace = namespace.strip("/") if namespace is not None else None
        self.fast = _FAST_MAKE

    @classmethod
    def for_class(cls, schema, namespace: str, classname: str) -> "InstanceFactory":
        return cls(schema.get_class(namespace, classname), namespace)

    def has(self, name: str) -> bool:
        return name.lower() in self._decls

    def declaration(self, name: str) -> pywbem.CIMProperty | None:
        """The class's declaration of property `name` (any case), or None."""
        return self._decls.get(name.lower())

    def _typed(self, decl: pywbem.CIMProperty, value):
        if value is None:
            return None
        if decl.type == "reference":
            if not isinstance(value, CIMInstanceName):
                raise TypeError(f"{self.classname}.{decl.name} needs a CIMInstanceName")
            return value
        if decl.embedded_object:
            return value
        if decl.is_array:
            return [pywbem.cimvalue(v, decl.type) for v in value]
        return pywbem.cimvalue(value, decl.type)

    def path(self, keys: Mapping[str, Any]) -> CIMInstanceName:
        """The path of the instance whose key values are in `keys` (names in any case)."""
        lookup = {k.lower(): v for k, v in keys.items()}
        bindings = {}
        for name in self.key_names:
            if name.lower() not in lookup:
                raise ValueError(f"{self.classname}: key {name} missing")
            bindings[name] = self._typed(self._decls[name.lower()], lookup[name.lower()])
        return CIMInstanceName(self.classname, keybindings=bindings, namespace=self.namespace)

    def make(self, values: Mapping[str, Any], ctx: Context | None = None,
             *, skip_absent: bool = False) -> CIMInstance:
        """An instance with the given property values and its path from the key values.
        With `ctx`, non-key properties the client did not ask for are left out.
        Unknown property names raise ValueError (a provider bug, never client input) unless
        `skip_absent` (for values a MOF variant may lack)."""
        if not self.fast:
            return self.make_reference(values, ctx, skip_absent=skip_absent)
        wanted = None if ctx is None else ctx.property_list
        key_lower = self._key_lower
        slots = self._slots
        table = {}
        for name, value in values.items():
            low = name.lower()
            slot = slots.get(low)
            if slot is None:
                if skip_absent:
                    continue
                raise ValueError(f"{self.classname} has no property {name}")
            if wanted is not None and low not in wanted and low not in key_lower:
                continue
            typed = slot.typed(value) if slot.fast else _SLOW
            if typed is _SLOW:
                decl = self._decls[low]
                prop = pywbem.CIMProperty(
                    decl.name, self._typed(decl, value), type=decl.type,
                    is_array=decl.is_array, reference_class=decl.reference_class,
                    embedded_object=decl.embedded_object)
            else:
                prop = slot.property(typed)
            table[slot.folded] = (slot.name, prop)
        inst = _new_instance(CIMInstance)
        inst._classname = self.classname
        props = NocaseDict()
        props._data.update(table)
        inst._properties = props if table else None
        inst._qualifiers = None
        inst._path = self._fast_path(values)
        return inst

    def _fast_path(self, values: Mapping[str, Any]) -> CIMInstanceName:
        """`path(values)` filled in directly when every key value is one pywbem keeps as
        it is (strings, booleans, pywbem's CIM types); otherwise `path` itself."""
        lookup = {k.lower(): v for k, v in values.items()}
        table = {}
        for low, slot in self._key_slots:
            if low not in lookup or not slot.fast or slot.is_array:
                return self.path(values)
            typed = slot.typed(lookup[low])
            if typed is _SLOW or not isinstance(typed, _KEEPS_AS_IS):
                return self.path(values)
            table[slot.folded] = (slot.name, typed)
        path = _new_path(CIMInstanceName)
        path._classname = self.classname
        keys = NocaseDict()
        keys._data.update(table)
        path._keybindings = keys
        path._host = None
        path._namespace = self._path_namespace
        return path

    def make_reference(self, values: Mapping[str, Any], ctx: Context | None = None,
                       *, skip_absent: bool = False) -> CIMInstance:
        """`make` through pywbem's constructors only (the definition the fast path keeps)."""
        inst = CIMInstance(self.classname)
        props = inst.properties
        key_lower = self._key_lower
        for name, value in values.items():
            decl = self._decls.get(name.lower())
            if decl is None:
                if skip_absent:
                    continue
                raise ValueError(f"{self.classname} has no property {name}")
            if ctx is not None and name.lower() not in key_lower and not ctx.wants(name):
                continue
            props[decl.name] = pywbem.CIMProperty(
                decl.name, self._typed(decl, value), type=decl.type,
                is_array=decl.is_array, reference_class=decl.reference_class,
                embedded_object=decl.embedded_object)
        inst.path = self.path(values)
        return inst


def method_result(value, return_type: str, out_params: Iterable = ()) -> MethodResult:
    """Helper for method handlers: a MethodResult with `value` typed as `return_type`."""
    typed = None if value is None else pywbem.cimvalue(value, return_type)
    return MethodResult(typed, return_type, list(out_params))

