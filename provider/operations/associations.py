"""Associators, AssociatorNames, References, ReferenceNames (and their Open* forms).

An instance traversal asks each association provider only for the association instances
that touch the source (`AssociationProvider.references`), re-checks every reference, and
fetches the far ends grouped by class (`get_many`), so no association class is materialized
whole and no target costs its own round trip.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pywbem
from pywbem import CIMClassName, CIMError, CIMInstanceName

from provider.operations.common import (Shape, get_bool, get_property_list, get_str, invalid,
                                        shape_instance)
from provider.operations.instances import (checked, context, fetch, finish_path,
                                           require_class)
from provider.providers.base import Context, path_key, same_path
from provider.providers.registry import is_a


@dataclass(frozen=True)
class Traversal:
    source: CIMInstanceName | CIMClassName     # namespace set
    assoc_class: str | None = None
    result_class: str | None = None
    role: str | None = None
    result_role: str | None = None

    @property
    def namespace(self) -> str:
        return self.source.namespace


def class_param(d, namespace: str, params, name: str) -> str | None:
    """AssocClass / ResultClass: an existing class or CIM_ERR_INVALID_PARAMETER."""
    value = get_str(params, name)
    if value is None or value == "":
        return None
    try:
        return d.schema.get_class(namespace, value).classname
    except CIMError as exc:
        if exc.status_code == pywbem.CIM_ERR_INVALID_NAMESPACE:
            raise
        raise invalid(f"{name} {value} is not a class in {namespace}") from None


def object_name(d, params, name: str, namespace: str):
    value = params.get(name)
    if isinstance(value, str):
        value = CIMClassName(value)
    if isinstance(value, CIMInstanceName):
        path = value.copy()
    elif isinstance(value, CIMClassName):
        path = value.copy()
    else:
        raise invalid(f"parameter {name} must be an instance or class path")
    path.namespace, path.host = namespace, None
    require_class(d, namespace, path.classname, pywbem.CIM_ERR_INVALID_PARAMETER)
    return path


def traversal(d, req, name: str, *, associators: bool) -> Traversal:
    ns = req.namespace
    source = object_name(d, req.params, name, ns)
    if associators:
        return Traversal(source, class_param(d, ns, req.params, "AssocClass"),
                         class_param(d, ns, req.params, "ResultClass"),
                         get_str(req.params, "Role") or None,
                         get_str(req.params, "ResultRole") or None)
    return Traversal(source, None, class_param(d, ns, req.params, "ResultClass"),
                     get_str(req.params, "Role") or None, None)


def _compatible(d, ns: str, reference_class: str | None, classname: str) -> bool:
    if not reference_class:
        return True
    try:
        return is_a(d.schema, ns, classname, reference_class) or \
            is_a(d.schema, ns, reference_class, classname)
    except CIMError:
        return False


def _reference_props(cls) -> list:
    return [p for p in cls.properties.values() if p.type == "reference"]


def require_source(d, ctx: Context, source: CIMInstanceName) -> None:
    """The source instance exists (CIM_ERR_NOT_FOUND otherwise)."""
    if fetch(d, ctx.with_properties(()), source) is None:
        raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no instance {source.to_wbem_uri()}")


def _matches(d, ctx: Context, t: Traversal, assoc_filter: str | None):
    """(association class, its class, raw instance, matched roles, reference props) for
    every association instance that refers to the source."""
    ns = t.namespace
    source = t.source
    for assoc_name in d.registry.association_classes(ns):
        if assoc_filter and not is_a(d.schema, ns, assoc_name, assoc_filter):
            continue
        cls = d.schema.get_class(ns, assoc_name)
        refs = _reference_props(cls)
        roles = [p.name for p in refs
                 if (t.role is None or p.name.lower() == t.role.lower())
                 and _compatible(d, ns, p.reference_class, source.classname)]
        if not roles:
            continue
        provider = d.registry.provider_for(ns, assoc_name)
        for inst in provider.references(ctx, assoc_name, source, t.role):
            checked(inst, assoc_name, provider)
            matched = []
            for role in roles:
                prop = inst.properties.get(role)
                if prop is not None and isinstance(prop.value, CIMInstanceName) \
                        and same_path(prop.value, source, ns):
                    matched.append(role)
            if matched:
                yield assoc_name, cls, inst, matched, refs


def iter_references(d, ctx: Context, t: Traversal, shape: Shape) -> Iterator:
    ns = t.namespace
    pctx = ctx if shape.property_list is None else ctx.with_properties(shape.property_list)
    for _, cls, inst, _, _ in _matches(d, pctx, t, t.result_class):
        shape_instance(inst, cls, None, shape)
        yield finish_path(d, inst, ns)


def iter_reference_names(d, ctx: Context, t: Traversal) -> Iterator:
    ns = t.namespace
    kctx = ctx.with_properties(())
    for _, _, inst, _, _ in _matches(d, kctx, t, t.result_class):
        yield finish_path(d, inst, ns).path


def _targets(d, ctx: Context, t: Traversal) -> Iterator[CIMInstanceName]:
    ns = t.namespace
    seen = set()
    kctx = ctx.with_properties(())
    for _, _, inst, matched, refs in _matches(d, kctx, t, t.assoc_class):
        for role in matched:
            for ref in refs:
                if ref.name == role:
                    continue
                if t.result_role and ref.name.lower() != t.result_role.lower():
                    continue
                prop = inst.properties.get(ref.name)
                if prop is None or not isinstance(prop.value, CIMInstanceName):
                    continue
                target = prop.value.copy()
                target.namespace = (target.namespace or ns).strip("/")
                target.host = None
                if t.result_class and not _class_is(d, target.namespace, target.classname,
                                                   t.result_class):
                    continue
                key = path_key(target)
                if key in seen:
                    continue
                seen.add(key)
                yield target


def _class_is(d, ns: str, classname: str, base: str) -> bool:
    try:
        return is_a(d.schema, ns, classname, base)
    except CIMError:
        return False


def iter_associator_names(d, ctx: Context, t: Traversal) -> Iterator[CIMInstanceName]:
    for target in _targets(d, ctx, t):
        target.host = d.host_name
        yield target


def iter_associators(d, ctx: Context, t: Traversal, shape: Shape) -> Iterator:
    # Group the far ends by (namespace, class), keeping first-seen order, so each provider
    # is asked once for all of its targets.
    groups: dict[tuple[str, str], list[CIMInstanceName]] = {}
    for target in _targets(d, ctx, t):
        groups.setdefault((target.namespace.lower(), target.classname.lower()), []).append(target)
    for paths in groups.values():
        ns, classname = paths[0].namespace, paths[0].classname
        provider = d.registry.provider_for(ns, classname)
        if provider is None:
            continue
        cls = d.schema.get_class(ns, classname)
        tctx = ctx.with_namespace(ns)
        if shape.property_list is not None:
            tctx = tctx.with_properties(shape.property_list)
        for inst in provider.get_many(tctx, paths):
            checked(inst, classname, provider)
            shape_instance(inst, cls, None, shape)
            yield finish_path(d, inst, ns)


# -- class-level traversals --------------------------------------------------------------------

def _class_matches(d, t: Traversal, assoc_filter: str | None):
    ns = t.namespace
    source = t.source.classname
    for assoc_name in d.association_class_names(ns):
        if assoc_filter and not is_a(d.schema, ns, assoc_name, assoc_filter):
            continue
        cls = d.schema.get_class(ns, assoc_name)
        refs = _reference_props(cls)
        matched = [p.name for p in refs
                   if (t.role is None or p.name.lower() == t.role.lower())
                   and p.reference_class and _class_is(d, ns, source, p.reference_class)]
        if matched:
            yield cls, matched, refs


def class_reference_names(d, t: Traversal) -> list[str]:
    names = []
    for cls, _, _ in _class_matches(d, t, t.result_class):
        if cls.classname not in names:
            names.append(cls.classname)
    return names


def class_associator_names(d, t: Traversal) -> list[str]:
    ns = t.namespace
    names: list[str] = []
    for cls, matched, refs in _class_matches(d, t, t.assoc_class):
        for role in matched:
            for ref in refs:
                if ref.name == role or not ref.reference_class:
                    continue
                if t.result_role and ref.name.lower() != t.result_role.lower():
                    continue
                target = d.schema.get_class(ns, ref.reference_class).classname
                if t.result_class and not _class_is(d, ns, target, t.result_class):
                    continue
                if target not in names:
                    names.append(target)
    return names


def _class_path(d, ns: str, name: str) -> CIMClassName:
    return CIMClassName(name, namespace=ns, host=d.host_name)


def _class_objects(d, req, names: list[str]):
    ns = req.namespace
    iq = get_bool(req.params, "IncludeQualifiers", False)
    ico = get_bool(req.params, "IncludeClassOrigin", False)
    props = get_property_list(req.params)
    return [(_class_path(d, ns, n),
             d.schema.op_get_class(ns, n, local_only=False, include_qualifiers=iq,
                                   include_class_origin=ico, property_list=props))
            for n in names]


# -- operations --------------------------------------------------------------------------------

def _shape(req) -> Shape:
    return Shape.of(get_property_list(req.params),
                    include_qualifiers=get_bool(req.params, "IncludeQualifiers", False),
                    include_class_origin=get_bool(req.params, "IncludeClassOrigin", False))


def associators(d, req, principal):
    t = traversal(d, req, "ObjectName", associators=True)
    if isinstance(t.source, CIMClassName):
        return _class_objects(d, req, class_associator_names(d, t))
    ctx = context(d, principal, t.namespace, "Associators")
    require_source(d, ctx, t.source)
    return list(iter_associators(d, ctx, t, _shape(req)))


def associator_names(d, req, principal):
    t = traversal(d, req, "ObjectName", associators=True)
    if isinstance(t.source, CIMClassName):
        return [_class_path(d, t.namespace, n) for n in class_associator_names(d, t)]
    ctx = context(d, principal, t.namespace, "AssociatorNames", ())
    require_source(d, ctx, t.source)
    return list(iter_associator_names(d, ctx, t))


def references(d, req, principal):
    t = traversal(d, req, "ObjectName", associators=False)
    if isinstance(t.source, CIMClassName):
        return _class_objects(d, req, class_reference_names(d, t))
    ctx = context(d, principal, t.namespace, "References")
    require_source(d, ctx, t.source)
    return list(iter_references(d, ctx, t, _shape(req)))


def reference_names(d, req, principal):
    t = traversal(d, req, "ObjectName", associators=False)
    if isinstance(t.source, CIMClassName):
        return [_class_path(d, t.namespace, n) for n in class_reference_names(d, t)]
    ctx = context(d, principal, t.namespace, "ReferenceNames", ())
    require_source(d, ctx, t.source)
    return list(iter_reference_names(d, ctx, t))
