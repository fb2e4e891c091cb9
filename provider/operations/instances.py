"""Instance operations: reads over the providers, writes routed to their write handlers."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Iterator

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from provider.operations.classinfo import class_info
from provider.operations.common import (Shape, get_bool, get_instance_name, get_property_list,
                                        get_str, invalid, shape_instance)
from provider.operations.params import type_value
from provider.providers.base import PRINCIPAL_ROLES, ROLES, Context, InstanceProvider

# -- checks ------------------------------------------------------------------------------------


def require_class(d, namespace: str, classname: str | None,
                  code: int = pywbem.CIM_ERR_INVALID_CLASS) -> pywbem.CIMClass:
    if not classname:
        raise invalid("a class name is required")
    try:
        return d.schema.get_class(namespace, classname)
    except CIMError as exc:
        if exc.status_code == pywbem.CIM_ERR_INVALID_NAMESPACE:
            raise
        raise CIMError(code, f"class {classname} does not exist in {namespace}") from None


def check_keys(cim_class: pywbem.CIMClass, path: CIMInstanceName) -> None:
    """The path names exactly the class's keys (CIM_ERR_INVALID_PARAMETER otherwise)."""
    keys = class_info(cim_class).keys_lower
    given = {k.lower() for k in path.keybindings}
    if keys and keys != given:
        missing = sorted(keys - given)
        extra = sorted(given - keys)
        detail = "; ".join(filter(None, [
            f"missing key(s) {', '.join(missing)}" if missing else "",
            f"unknown key(s) {', '.join(extra)}" if extra else ""]))
        raise invalid(f"bad instance path for {cim_class.classname}: {detail}")


def authorize(ctx: Context, provider: InstanceProvider, action: str, target,
              roles: frozenset[str]) -> None:
    principal = ctx.principal
    if principal.role in ROLES and principal.role in roles:
        return
    if principal.role in PRINCIPAL_ROLES and provider.authorize(ctx, action, target):
        return
    what = target.classname if hasattr(target, "classname") else str(target)
    raise CIMError(pywbem.CIM_ERR_ACCESS_DENIED,
                   f"user {principal.user} ({principal.role}) may not {action} {what}")


def context(d, principal, namespace: str, operation: str,
            property_list: Iterable[str] | None = None) -> Context:
    props = None if property_list is None else frozenset(p.lower() for p in property_list)
    return Context(principal=principal, namespace=namespace, clock=d.clock,
                   host_name=d.host_name, operation=operation, property_list=props)


def finish_path(d, inst: CIMInstance, namespace: str) -> CIMInstance:
    """Give the instance its full path: keys (built from the properties if the provider left
    the path out), namespace and host."""
    path = inst.path
    if path is None:
        keys = d.schema.key_names(namespace, inst.classname)
        bindings = {}
        for key in keys:
            prop = inst.properties.get(key)
            if prop is None:
                raise CIMError(pywbem.CIM_ERR_FAILED,
                               f"provider returned {inst.classname} without key {key}")
            bindings[prop.name] = prop.value
        path = CIMInstanceName(inst.classname, keybindings=bindings)
        inst.path = path
    path.namespace = namespace
    path.host = d.host_name
    return inst


def finish_name(d, path: CIMInstanceName, namespace: str) -> CIMInstanceName:
    path.namespace = namespace
    path.host = d.host_name
    return path


# -- read pipelines ----------------------------------------------------------------------------

def provider_context(ctx: Context, shape: Shape, requested: pywbem.CIMClass | None) -> Context:
    """The property list a provider may rely on: the client's list, narrowed to the requested
    class's properties when DeepInheritance is false."""
    if shape.property_list is None and (shape.deep_inheritance or requested is None):
        return ctx
    names = shape.property_list
    if not shape.deep_inheritance and requested is not None:
        own = {n.lower() for n in requested.properties}
        names = own if names is None else names & own
    return replace(ctx, property_list=names)


def checked(inst, classname: str, provider) -> CIMInstance:
    if not isinstance(inst, CIMInstance) or inst.classname.lower() != classname.lower():
        got = getattr(inst, "classname", type(inst).__name__)
        raise CIMError(pywbem.CIM_ERR_FAILED,
                       f"{type(provider).__name__} returned {got} for {classname}")
    return inst


def iter_instances(d, ctx: Context, classname: str, shape: Shape) -> Iterator[CIMInstance]:
    """Every instance of `classname` and its subclasses in ``ctx.namespace``, shaped."""
    ns = ctx.namespace
    requested = d.schema.get_class(ns, classname)
    pctx = provider_context(ctx, shape, requested)
    for served in d.registry.served(ns, classname):
        provider = d.registry.provider_for(ns, served)
        cls = d.schema.get_class(ns, served)
        for inst in provider.enumerate(pctx, served):
            checked(inst, served, provider)
            shape_instance(inst, cls, requested, shape)
            yield finish_path(d, inst, ns)


def iter_names(d, ctx: Context, classname: str) -> Iterator[CIMInstanceName]:
    ns = ctx.namespace
    kctx = ctx.with_properties(())
    for served in d.registry.served(ns, classname):
        provider = d.registry.provider_for(ns, served)
        for path in provider.enumerate_names(kctx, served):
            if not isinstance(path, CIMInstanceName):
                raise CIMError(pywbem.CIM_ERR_FAILED,
                               f"{type(provider).__name__} returned a non-path for {served}")
            yield finish_name(d, path, ns)


def fetch(d, ctx: Context, path: CIMInstanceName) -> CIMInstance | None:
    """The raw instance at `path` (namespace set) from its provider, or None."""
    provider = d.registry.provider_for(path.namespace, path.classname)
    if provider is None:
        return None
    if ctx.namespace != path.namespace:
        ctx = ctx.with_namespace(path.namespace)
    inst = provider.get(ctx, path)
    if inst is None:
        return None
    return checked(inst, path.classname, provider)


# -- operations --------------------------------------------------------------------------------

def get_instance(d, req, principal):
    ns = req.namespace
    path = get_instance_name(req.params, "InstanceName", ns)
    cls = require_class(d, ns, path.classname)
    check_keys(cls, path)
    props = get_property_list(req.params)
    get_bool(req.params, "LocalOnly", False)       # checked, then treated as false (DSP0200 1.4)
    shape = Shape.of(props,
                     include_qualifiers=get_bool(req.params, "IncludeQualifiers", False),
                     include_class_origin=get_bool(req.params, "IncludeClassOrigin", False))
    ctx = context(d, principal, ns, "GetInstance", props)
    inst = fetch(d, ctx, path)
    if inst is None:
        raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no instance {path.to_wbem_uri()}")
    shape_instance(inst, cls, None, shape)
    return finish_path(d, inst, ns)


def enumerate_instances(d, req, principal):
    ns = req.namespace
    classname = get_str(req.params, "ClassName", required=True)
    cls = require_class(d, ns, classname)
    props = get_property_list(req.params)
    get_bool(req.params, "LocalOnly", False)       # checked, then treated as false (DSP0200 1.4)
    shape = Shape.of(props,
                     deep_inheritance=get_bool(req.params, "DeepInheritance", True),
                     include_qualifiers=get_bool(req.params, "IncludeQualifiers", False),
                     include_class_origin=get_bool(req.params, "IncludeClassOrigin", False))
    ctx = context(d, principal, ns, "EnumerateInstances", props)
    return list(iter_instances(d, ctx, cls.classname, shape))


def enumerate_instance_names(d, req, principal):
    ns = req.namespace
    classname = get_str(req.params, "ClassName", required=True)
    cls = require_class(d, ns, classname)
    ctx = context(d, principal, ns, "EnumerateInstanceNames", ())
    return list(iter_names(d, ctx, cls.classname))


def _check_properties(cls: pywbem.CIMClass, inst: CIMInstance) -> None:
    for name, prop in inst.properties.items():
        decl = cls.properties.get(name)
        if decl is None:
            raise CIMError(pywbem.CIM_ERR_NO_SUCH_PROPERTY,
                           f"class {cls.classname} has no property {name}")
        if prop.value is not None and (prop.type != decl.type or
                                       bool(prop.is_array) != bool(decl.is_array)):
            want = decl.type + ("[]" if decl.is_array else "")
            got = prop.type + ("[]" if prop.is_array else "")
            raise CIMError(pywbem.CIM_ERR_TYPE_MISMATCH,
                           f"property {decl.name} is {want}, not {got}")


def _write_provider(d, ns: str, classname: str, action: str, operation: str):
    provider = d.registry.provider_for(ns, classname)
    if provider is None or not provider.supports(action):
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                       f"{operation} is not supported for {classname}")
    return provider


def create_instance(d, req, principal):
    ns = req.namespace
    new = req.params.get("NewInstance")
    if not isinstance(new, CIMInstance):
        raise invalid("NewInstance must be an instance")
    cls = require_class(d, ns, new.classname)
    abstract = cls.qualifiers.get("Abstract")
    if abstract is not None and abstract.value:
        raise CIMError(pywbem.CIM_ERR_INVALID_CLASS, f"class {cls.classname} is abstract")
    _check_properties(cls, new)
    provider = _write_provider(d, ns, cls.classname, "create", "CreateInstance")
    ctx = context(d, principal, ns, "CreateInstance")
    inst = new.copy()
    inst.classname = cls.classname
    if inst.path is not None:
        inst.path.namespace = ns
        inst.path.host = None
    authorize(ctx, provider, "create", inst, provider.roles_for("create"))
    path = provider.create(ctx, inst)
    if not isinstance(path, CIMInstanceName):
        raise CIMError(pywbem.CIM_ERR_FAILED, f"{type(provider).__name__} returned no path")
    return finish_name(d, path.copy(), ns)


def _key_names(cls) -> frozenset[str]:
    return class_info(cls).keys_lower


def modify_instance(d, req, principal):
    ns = req.namespace
    mod = req.params.get("ModifiedInstance")
    if not isinstance(mod, CIMInstance) or mod.path is None:
        raise invalid("ModifiedInstance must be an instance with its path")
    path = mod.path.copy()
    path.namespace, path.host = ns, None
    cls = require_class(d, ns, path.classname)
    if mod.classname.lower() != path.classname.lower():
        raise invalid(f"instance of {mod.classname} given for path of {path.classname}")
    check_keys(cls, path)
    _check_properties(cls, mod)
    provider = _write_provider(d, ns, cls.classname, "modify", "ModifyInstance")
    props = get_property_list(req.params)
    inst = mod.copy()
    inst.path = path
    if props is None:
        names = [cls.properties[n].name for n in inst.properties]
    else:
        names = []
        for name in props:
            decl = cls.properties.get(name)
            if decl is None:           # DSP0200: names not in the class are ignored
                continue
            if decl.name not in inst.properties:
                inst.properties[decl.name] = pywbem.CIMProperty(
                    decl.name, None, type=decl.type, is_array=decl.is_array,
                    reference_class=decl.reference_class, embedded_object=decl.embedded_object)
            if decl.name not in names:
                names.append(decl.name)
    keys = _key_names(cls)
    changed = []
    for name in names:
        if name.lower() in keys:
            given = inst.properties[name].value
            bound = next((v for k, v in path.keybindings.items() if k.lower() == name.lower()),
                         None)
            if given is not None and given != bound:
                raise invalid(f"key property {name} cannot be modified")
            continue
        changed.append(name)
    ctx = context(d, principal, ns, "ModifyInstance")
    authorize(ctx, provider, "modify", path, provider.roles_for("modify"))
    provider.modify(ctx, inst, changed)


def delete_instance(d, req, principal):
    ns = req.namespace
    path = get_instance_name(req.params, "InstanceName", ns)
    cls = require_class(d, ns, path.classname)
    check_keys(cls, path)
    provider = _write_provider(d, ns, cls.classname, "delete", "DeleteInstance")
    ctx = context(d, principal, ns, "DeleteInstance")
    authorize(ctx, provider, "delete", path, provider.roles_for("delete"))
    provider.delete(ctx, path)


def _property_decl(cls, name):
    decl = cls.properties.get(name)
    if decl is None:
        raise CIMError(pywbem.CIM_ERR_NO_SUCH_PROPERTY,
                       f"class {cls.classname} has no property {name}")
    return decl


def get_property(d, req, principal):
    ns = req.namespace
    path = get_instance_name(req.params, "InstanceName", ns)
    name = get_str(req.params, "PropertyName", required=True)
    cls = require_class(d, ns, path.classname)
    check_keys(cls, path)
    decl = _property_decl(cls, name)
    ctx = context(d, principal, ns, "GetProperty", [decl.name])
    inst = fetch(d, ctx, path)
    if inst is None:
        raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no instance {path.to_wbem_uri()}")
    prop = inst.properties.get(decl.name)
    if prop is None:
        prop = pywbem.CIMProperty(decl.name, None, type=decl.type, is_array=decl.is_array,
                                  reference_class=decl.reference_class,
                                  embedded_object=decl.embedded_object)
    return prop


def set_property(d, req, principal):
    ns = req.namespace
    path = get_instance_name(req.params, "InstanceName", ns)
    name = get_str(req.params, "PropertyName", required=True)
    cls = require_class(d, ns, path.classname)
    check_keys(cls, path)
    decl = _property_decl(cls, name)
    if decl.name.lower() in _key_names(cls):
        raise invalid(f"key property {decl.name} cannot be modified")
    value = type_value(decl, req.params.get("NewValue"))
    provider = _write_provider(d, ns, cls.classname, "modify", "SetProperty")
    inst = CIMInstance(cls.classname, path=path)
    inst.properties[decl.name] = pywbem.CIMProperty(
        decl.name, value, type=decl.type, is_array=decl.is_array,
        reference_class=decl.reference_class, embedded_object=decl.embedded_object)
    ctx = context(d, principal, ns, "SetProperty")
    authorize(ctx, provider, "modify", path, provider.roles_for("modify"))
    provider.modify(ctx, inst, [decl.name])
