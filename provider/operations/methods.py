"""InvokeMethod: extrinsic methods routed to the provider handler marked with @cim_method."""
from __future__ import annotations

import pywbem
from pywbem import CIMClassName, CIMError, CIMInstanceName, CIMParameter, NocaseDict

from provider.messages import MethodResult, RawParam
from provider.operations.common import invalid
from provider.operations.instances import authorize, check_keys, context, require_class
from provider.operations.params import type_param


def _flag(decl, name: str, default: bool) -> bool:
    qual = decl.qualifiers.get(name)
    return default if qual is None else bool(qual.value)


def typed_in_params(method: pywbem.CIMMethod, raw_params) -> NocaseDict:
    """The client's parameters typed from the method declaration."""
    typed = NocaseDict()
    for key, raw in raw_params.items():
        if not isinstance(raw, RawParam):
            raw = RawParam(key, None, raw)
        decl = method.parameters.get(raw.name)
        if decl is None:
            raise invalid(f"method {method.name} has no parameter {raw.name}")
        if not _flag(decl, "IN", True):
            raise invalid(f"parameter {decl.name} of {method.name} is an output parameter")
        if decl.name in typed:
            raise invalid(f"parameter {decl.name} given twice")
        typed[decl.name] = type_param(decl, raw)
    return typed


def _out_params(method: pywbem.CIMMethod, out) -> list[CIMParameter]:
    if out is None:
        return []
    items = out.items() if hasattr(out, "items") else out
    result = []
    for item in items:
        if isinstance(item, CIMParameter):
            name, value = item.name, item.value
        else:
            name, value = item
            if isinstance(value, CIMParameter):
                value = value.value
        decl = method.parameters.get(name)
        if decl is None or not _flag(decl, "OUT", False):
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"method {method.name} returned undeclared output {name}")
        if value is not None and decl.type not in ("reference",) and \
                not decl.qualifiers.get("EmbeddedInstance") and \
                not decl.qualifiers.get("EmbeddedObject"):
            value = [pywbem.cimvalue(v, decl.type) for v in value] if decl.is_array \
                else pywbem.cimvalue(value, decl.type)
        embedded = decl.embedded_object or (
            "instance" if decl.qualifiers.get("EmbeddedInstance") else
            "object" if decl.qualifiers.get("EmbeddedObject") else None)
        result.append(CIMParameter(decl.name, decl.type, value=value, is_array=decl.is_array,
                                   reference_class=decl.reference_class,
                                   embedded_object=embedded))
    return result


def invoke_method(d, req, principal):
    ns = req.namespace
    target = req.target
    if isinstance(target, str):
        target = CIMClassName(target)
    if not isinstance(target, (CIMInstanceName, CIMClassName)):
        raise invalid("a method call needs an instance or class path")
    target = target.copy()
    target.namespace, target.host = ns, None
    cls = require_class(d, ns, target.classname)
    if isinstance(target, CIMInstanceName):
        check_keys(cls, target)
    method = cls.methods.get(req.name)
    if method is None:
        raise CIMError(pywbem.CIM_ERR_METHOD_NOT_FOUND,
                       f"class {cls.classname} has no method {req.name}")
    if isinstance(target, CIMClassName) and not _flag(method, "Static", False):
        raise invalid(f"{cls.classname}.{method.name} is not static: invoke it on an instance")
    provider = d.registry.provider_for(ns, cls.classname)
    handler = provider.method_handler(method.name) if provider is not None else None
    if handler is None:
        raise CIMError(pywbem.CIM_ERR_METHOD_NOT_AVAILABLE,
                       f"{cls.classname}.{method.name} is not available")
    params = typed_in_params(method, req.params)
    ctx = context(d, principal, ns, method.name)
    authorize(ctx, provider, f"method:{method.name}", target, handler.roles)
    result = provider.call_method(handler, ctx, target, params)
    if isinstance(result, MethodResult):
        value, out = result.return_value, result.out_params
    else:
        value, out = result
    rtype = method.return_type
    if value is not None:
        value = pywbem.cimvalue(value, rtype)
    return MethodResult(value, rtype, _out_params(method, out))
