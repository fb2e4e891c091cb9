"""The CIM schema the server publishes: compiled from `mof/` once at start, then fixed.

pywbem's MOF compiler stores each class as written (local elements only). This module
resolves them once (inherited properties, methods and ToSubclass qualifiers, with
class_origin and propagated set) so that lookups on the request path are dictionary reads,
and implements the DSP0200 class and qualifier operations on top of them.
"""
from __future__ import annotations

import copy
import glob
import os
import threading
from pathlib import Path

from pywbem import (
    CIM_ERR_INVALID_CLASS,
    CIM_ERR_INVALID_NAMESPACE,
    CIM_ERR_INVALID_PARAMETER,
    CIM_ERR_NOT_FOUND,
    CIMClass,
    CIMError,
    MOFCompiler,
    MOFWBEMConnection,
    NocaseDict,
)
from pywbem._mof_compiler import MOFCompileError

import mof as mof_package


class SchemaLoadError(Exception):
    """The MOF could not be compiled: the server must not start on half a schema."""


def _inherits(qualifier, declarations) -> bool:
    """Does a qualifier propagate to subclasses and overriding elements (ToSubclass)?"""
    if qualifier.tosubclass is not None:
        return bool(qualifier.tosubclass)
    decl = declarations.get(qualifier.name)
    if decl is not None and decl.tosubclass is not None:
        return bool(decl.tosubclass)
    return True  # DSP0004: ToSubclass is the default flavor


def _merge_qualifiers(local, inherited, declarations):
    """Local qualifiers first, then the inherited ToSubclass ones not overridden."""
    merged = NocaseDict()
    for name, q in local.items():
        merged[name] = q.copy()
    for name, q in inherited.items():
        if name not in merged and _inherits(q, declarations):
            cq = q.copy()
            cq.propagated = True
            merged[name] = cq
    return merged


def _resolve(local: CIMClass, parent: CIMClass | None, declarations) -> CIMClass:
    cls = local.copy()
    cls.path = None
    for prop in cls.properties.values():
        prop.class_origin = prop.class_origin or cls.classname
        prop.propagated = False
    for meth in cls.methods.values():
        meth.class_origin = meth.class_origin or cls.classname
        meth.propagated = False
    if parent is None:
        return cls

    cls.qualifiers = _merge_qualifiers(cls.qualifiers, parent.qualifiers, declarations)

    def merge_elements(local_elems, parent_elems, on_override=None):
        merged = NocaseDict()
        for name, pel in parent_elems.items():
            if name in local_elems:
                el = local_elems[name]
                el.qualifiers = _merge_qualifiers(el.qualifiers, pel.qualifiers, declarations)
                if on_override:
                    on_override(el, pel)
                merged[name] = el
            else:
                el = pel.copy()
                el.propagated = True
                merged[name] = el
        for name, el in local_elems.items():
            if name not in merged:
                merged[name] = el
        return merged

    def override_method(meth, pmeth):
        for pname, prm in meth.parameters.items():
            if pname in pmeth.parameters:
                prm.qualifiers = _merge_qualifiers(
                    prm.qualifiers, pmeth.parameters[pname].qualifiers, declarations)

    cls.properties = merge_elements(cls.properties, parent.properties)
    cls.methods = merge_elements(cls.methods, parent.methods, override_method)
    return cls


def _strip_qualifiers(cls: CIMClass) -> None:
    cls.qualifiers = NocaseDict()
    for prop in cls.properties.values():
        prop.qualifiers = NocaseDict()
    for meth in cls.methods.values():
        meth.qualifiers = NocaseDict()
        for prm in meth.parameters.values():
            prm.qualifiers = NocaseDict()


def _strip_class_origin(cls: CIMClass) -> None:
    for prop in cls.properties.values():
        prop.class_origin = None
        prop.propagated = None
    for meth in cls.methods.values():
        meth.class_origin = None
        meth.propagated = None


class _Namespace:
    """The compiled classes and qualifier declarations of one namespace."""

    def __init__(self, name, local_classes, qualifiers):
        self.name = name
        self.qualifiers = qualifiers
        self.local = local_classes                 # as written in MOF
        self.classes = NocaseDict()                # resolved
        self.children = NocaseDict()               # name -> [direct subclass names]
        self.roots: list[str] = []
        for cname in self._topological(local_classes):
            lcls = local_classes[cname]
            parent = self.classes[lcls.superclass] if lcls.superclass else None
            self.classes[cname] = _resolve(lcls, parent, qualifiers)
            self.children.setdefault(cname, [])
            if lcls.superclass:
                self.children[lcls.superclass].append(lcls.classname)
            else:
                self.roots.append(lcls.classname)
        self.key_names = NocaseDict(
            (c.classname, tuple(p.name for p in c.properties.values()
                                if p.qualifiers.get("Key") is not None
                                and p.qualifiers["Key"].value))
            for c in self.classes.values())

    @staticmethod
    def _topological(classes) -> list[str]:
        order, seen = [], set()

        def visit(name):
            if name.lower() in seen:
                return
            seen.add(name.lower())
            sup = classes[name].superclass
            if sup:
                visit(sup)
            order.append(classes[name].classname)
        for name in classes:
            visit(name)
        return order


class Schema:
    """Classes and qualifier declarations per namespace. Immutable after `load`; shared
    objects returned by the lookup methods must not be modified (the op_* methods return
    copies shaped for a response)."""

    def __init__(self, namespaces: dict[str, _Namespace]):
        self._ns = NocaseDict(namespaces)
        self._lock = threading.Lock()

    # -- construction -------------------------------------------------------------------

    @classmethod
    def load(cls, mof_root: str | os.PathLike | None = None,
             namespaces: dict[str, list[str]] | None = None) -> "Schema":
        root = Path(mof_root) if mof_root else mof_package.MOF_ROOT
        manifest = namespaces or mof_package.NAMESPACES
        compiled = {}
        for ns, patterns in manifest.items():
            conn = MOFWBEMConnection()
            compiler = MOFCompiler(conn, search_paths=[str(root)], log_func=lambda *a: None)
            for pattern in patterns:
                files = sorted(glob.glob(str(root / pattern)))
                if not files and not glob.has_magic(pattern):
                    raise SchemaLoadError(f"schema file {root / pattern} does not exist")
                for path in files:
                    try:
                        compiler.compile_file(path, ns)
                    except MOFCompileError as exc:
                        raise SchemaLoadError(f"{path}: {exc.get_err_msg()}") from exc
                    except CIMError as exc:
                        raise SchemaLoadError(f"{path}: {exc}") from exc
            local = conn.classes.get(ns, NocaseDict())
            quals = conn.qualifiers.get(ns, NocaseDict())
            compiled[ns] = _Namespace(ns, local, quals)
        return cls(compiled)

    # -- lookups (shared objects) ---------------------------------------------------------

    @property
    def namespaces(self) -> list[str]:
        return [n.name for n in self._ns.values()]

    def has_namespace(self, ns: str) -> bool:
        return ns.strip("/") in self._ns

    def _namespace(self, ns: str) -> _Namespace:
        try:
            return self._ns[ns.strip("/")]
        except KeyError:
            raise CIMError(CIM_ERR_INVALID_NAMESPACE, f"namespace {ns!r} does not exist") from None

    def has_class(self, ns: str, name: str) -> bool:
        return name in self._namespace(ns).classes

    def get_class(self, ns: str, name: str) -> CIMClass:
        """The resolved class. Unknown: CIM_ERR_INVALID_CLASS (callers that answer
        GetClass turn it into CIM_ERR_NOT_FOUND)."""
        try:
            return self._namespace(ns).classes[name]
        except KeyError:
            raise CIMError(CIM_ERR_INVALID_CLASS, f"class {name!r} does not exist in {ns}") from None

    def class_names(self, ns: str, base: str | None = None, deep: bool = True) -> list[str]:
        """Names below `base` (not including it), or all classes when base is None and
        deep, or the root classes when base is None and not deep."""
        space = self._namespace(ns)
        if base is None:
            return list(space.classes.keys()) if deep else list(space.roots)
        if base not in space.classes:
            raise CIMError(CIM_ERR_INVALID_CLASS, f"class {base!r} does not exist in {ns}")
        if not deep:
            return list(space.children[base])
        out, stack = [], list(reversed(space.children[base]))
        while stack:
            name = stack.pop()
            out.append(name)
            stack.extend(reversed(space.children[name]))
        return out

    def superclasses(self, ns: str, name: str) -> list[str]:
        """From the direct superclass up to the root."""
        space = self._namespace(ns)
        out = []
        cls = self.get_class(ns, name)
        while cls.superclass:
            cls = space.classes[cls.superclass]
            out.append(cls.classname)
        return out

    def is_subclass(self, ns: str, name: str, base: str) -> bool:
        """True when `name` is `base` or derives from it (case-insensitive)."""
        if name.lower() == base.lower():
            return self.has_class(ns, name)
        space = self._namespace(ns)
        cls = space.classes.get(name)
        while cls is not None and cls.superclass:
            if cls.superclass.lower() == base.lower():
                return True
            cls = space.classes.get(cls.superclass)
        return False

    def key_names(self, ns: str, name: str) -> tuple[str, ...]:
        self.get_class(ns, name)
        return self._namespace(ns).key_names[name]

    def is_association(self, ns: str, name: str) -> bool:
        q = self.get_class(ns, name).qualifiers.get("Association")
        return bool(q is not None and q.value)

    def qualifier(self, ns: str, name: str):
        try:
            return self._namespace(ns).qualifiers[name]
        except KeyError:
            raise CIMError(CIM_ERR_NOT_FOUND, f"qualifier {name!r} is not declared in {ns}") from None

    def qualifiers(self, ns: str) -> list:
        return list(self._namespace(ns).qualifiers.values())

    def method(self, ns: str, classname: str, methodname: str):
        from pywbem import CIM_ERR_METHOD_NOT_FOUND
        cls = self.get_class(ns, classname)
        try:
            return cls.methods[methodname]
        except KeyError:
            raise CIMError(CIM_ERR_METHOD_NOT_FOUND,
                           f"class {classname} has no method {methodname!r}") from None

    # -- DSP0200 class and qualifier operations (copies shaped for the response) ---------

    def _shaped(self, ns, name, local_only, include_qualifiers, include_class_origin,
                property_list=None) -> CIMClass:
        cls = copy.deepcopy(self.get_class(ns, name))  # the shared class stays intact
        if local_only:
            cls.properties = NocaseDict(
                (n, p) for n, p in cls.properties.items() if not p.propagated)
            cls.methods = NocaseDict(
                (n, m) for n, m in cls.methods.items() if not m.propagated)
            cls.qualifiers = NocaseDict(
                (n, q) for n, q in cls.qualifiers.items() if not q.propagated)
        if property_list is not None:
            wanted = {p.lower() for p in property_list}
            cls.properties = NocaseDict(
                (n, p) for n, p in cls.properties.items() if n.lower() in wanted)
        if not include_qualifiers:
            _strip_qualifiers(cls)
        if not include_class_origin:
            _strip_class_origin(cls)
        return cls

    def op_get_class(self, ns, name, *, local_only=True, include_qualifiers=True,
                     include_class_origin=False, property_list=None) -> CIMClass:
        self._namespace(ns)
        if not name:
            raise CIMError(CIM_ERR_INVALID_PARAMETER, "ClassName is required")
        if not self.has_class(ns, name):
            raise CIMError(CIM_ERR_NOT_FOUND, f"class {name!r} does not exist in {ns}")
        return self._shaped(ns, name, local_only, include_qualifiers, include_class_origin,
                            property_list)

    def op_enumerate_class_names(self, ns, name=None, *, deep_inheritance=False) -> list[str]:
        return self.class_names(ns, name or None, deep=deep_inheritance)

    def op_enumerate_classes(self, ns, name=None, *, deep_inheritance=False, local_only=True,
                             include_qualifiers=True, include_class_origin=False) -> list[CIMClass]:
        return [self._shaped(ns, n, local_only, include_qualifiers, include_class_origin)
                for n in self.class_names(ns, name or None, deep=deep_inheritance)]

    def op_get_qualifier(self, ns, name):
        return self.qualifier(ns, name).copy()

    def op_enumerate_qualifiers(self, ns) -> list:
        return [q.copy() for q in self.qualifiers(ns)]

