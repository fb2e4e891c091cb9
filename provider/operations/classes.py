"""Class and qualifier operations: reads answered by the schema, writes refused (the schema
is compiled from mof/ at start and fixed while the server runs)."""
from __future__ import annotations

import pywbem
from pywbem import CIMError

from provider.operations.common import get_bool, get_property_list, get_str


def get_class(d, req, principal):
    name = get_str(req.params, "ClassName", required=True)
    return d.schema.op_get_class(
        req.namespace, name,
        local_only=get_bool(req.params, "LocalOnly", True),
        include_qualifiers=get_bool(req.params, "IncludeQualifiers", True),
        include_class_origin=get_bool(req.params, "IncludeClassOrigin", False),
        property_list=get_property_list(req.params))


def enumerate_classes(d, req, principal):
    return d.schema.op_enumerate_classes(
        req.namespace, get_str(req.params, "ClassName") or None,
        deep_inheritance=get_bool(req.params, "DeepInheritance", False),
        local_only=get_bool(req.params, "LocalOnly", True),
        include_qualifiers=get_bool(req.params, "IncludeQualifiers", True),
        include_class_origin=get_bool(req.params, "IncludeClassOrigin", False))


def enumerate_class_names(d, req, principal):
    return d.schema.op_enumerate_class_names(
        req.namespace, get_str(req.params, "ClassName") or None,
        deep_inheritance=get_bool(req.params, "DeepInheritance", False))


def get_qualifier(d, req, principal):
    return d.schema.op_get_qualifier(req.namespace,
                                     get_str(req.params, "QualifierName", required=True))


def enumerate_qualifiers(d, req, principal):
    return d.schema.op_enumerate_qualifiers(req.namespace)


def refuse_schema_change(d, req, principal):
    raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                   f"{req.name}: the schema is fixed while the server runs "
                   f"(it is compiled from mof/ at start)")
