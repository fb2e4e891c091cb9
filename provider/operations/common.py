"""Shared pieces of the operations: parameters, class checks, shaping instances for the client."""
from __future__ import annotations

from dataclasses import dataclass

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from provider.instance_names import relocated
from provider.operations.classinfo import class_info, nocase_keys

# IPARAMVALUE names each intrinsic operation accepts (DSP0200 1.4), besides the namespace.
_PULL_OPEN = ("FilterQueryLanguage", "FilterQuery", "OperationTimeout", "ContinueOnError",
              "MaxObjectCount")
PARAMETERS: dict[str, tuple[str, ...]] = {
    "GetClass": ("ClassName", "LocalOnly", "IncludeQualifiers", "IncludeClassOrigin",
                 "PropertyList"),
    "EnumerateClasses": ("ClassName", "DeepInheritance", "LocalOnly", "IncludeQualifiers",
                         "IncludeClassOrigin"),
    "EnumerateClassNames": ("ClassName", "DeepInheritance"),
    "CreateClass": ("NewClass",),
    "ModifyClass": ("ModifiedClass",),
    "DeleteClass": ("ClassName",),
    "GetQualifier": ("QualifierName",),
    "SetQualifier": ("QualifierDeclaration",),
    "DeleteQualifier": ("QualifierName",),
    "EnumerateQualifiers": (),
    "GetInstance": ("InstanceName", "LocalOnly", "IncludeQualifiers", "IncludeClassOrigin",
                    "PropertyList"),
    "EnumerateInstances": ("ClassName", "LocalOnly", "DeepInheritance", "IncludeQualifiers",
                           "IncludeClassOrigin", "PropertyList"),
    "EnumerateInstanceNames": ("ClassName",),
    "CreateInstance": ("NewInstance",),
    "ModifyInstance": ("ModifiedInstance", "IncludeQualifiers", "PropertyList"),
    "DeleteInstance": ("InstanceName",),
    "GetProperty": ("InstanceName", "PropertyName"),
    "SetProperty": ("InstanceName", "PropertyName", "NewValue"),
    "Associators": ("ObjectName", "AssocClass", "ResultClass", "Role", "ResultRole",
                    "IncludeQualifiers", "IncludeClassOrigin", "PropertyList"),
    "AssociatorNames": ("ObjectName", "AssocClass", "ResultClass", "Role", "ResultRole"),
    "References": ("ObjectName", "ResultClass", "Role", "IncludeQualifiers",
                   "IncludeClassOrigin", "PropertyList"),
    "ReferenceNames": ("ObjectName", "ResultClass", "Role"),
    "ExecQuery": ("QueryLanguage", "Query"),
    "OpenEnumerateInstances": ("ClassName", "DeepInheritance", "IncludeClassOrigin",
                               "PropertyList") + _PULL_OPEN,
    "OpenEnumerateInstancePaths": ("ClassName",) + _PULL_OPEN,
    "OpenAssociatorInstances": ("InstanceName", "AssocClass", "ResultClass", "Role",
                                "ResultRole", "IncludeClassOrigin", "PropertyList")
                               + _PULL_OPEN,
    "OpenAssociatorInstancePaths": ("InstanceName", "AssocClass", "ResultClass", "Role",
                                    "ResultRole") + _PULL_OPEN,
    "OpenReferenceInstances": ("InstanceName", "ResultClass", "Role", "IncludeClassOrigin",
                               "PropertyList") + _PULL_OPEN,
    "OpenReferenceInstancePaths": ("InstanceName", "ResultClass", "Role") + _PULL_OPEN,
    "OpenQueryInstances": ("FilterQueryLanguage", "FilterQuery", "ReturnQueryResultClass",
                           "OperationTimeout", "ContinueOnError", "MaxObjectCount"),
    "PullInstancesWithPath": ("EnumerationContext", "MaxObjectCount"),
    "PullInstancePaths": ("EnumerationContext", "MaxObjectCount"),
    "PullInstances": ("EnumerationContext", "MaxObjectCount"),
    "CloseEnumeration": ("EnumerationContext",),
    "EnumerationCount": ("EnumerationContext",),
}


def invalid(message: str) -> CIMError:
    return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, message)


_ALLOWED = {op: frozenset(p.lower() for p in names) for op, names in PARAMETERS.items()}


def check_parameters(operation: str, params) -> None:
    allowed = _ALLOWED[operation]
    for name in params:
        if name.lower() not in allowed:
            raise invalid(f"{operation} has no parameter {name}")


def get_bool(params, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().upper() in ("TRUE", "FALSE"):
        return value.strip().upper() == "TRUE"
    raise invalid(f"{name} must be a boolean")


def get_str(params, name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise invalid(f"parameter {name} is required")
        return None
    if isinstance(value, pywbem.CIMClassName):
        return value.classname
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    return value


def get_uint32(params, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid(f"{name} must be a Uint32")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} must be a Uint32") from None
    if not 0 <= number <= 0xFFFFFFFF:
        raise invalid(f"{name} must be a Uint32")
    return number


def get_property_list(params) -> list[str] | None:
    value = params.get("PropertyList")
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise invalid("PropertyList must be an array of property names")
    return list(value)


def get_instance_name(params, name: str, namespace: str) -> CIMInstanceName:
    value = params.get(name)
    if value is None:
        raise invalid(f"parameter {name} is required")
    if not isinstance(value, CIMInstanceName):
        raise invalid(f"{name} must be an instance path")
    return relocated(value, namespace)


@dataclass(frozen=True)
class Shape:
    """How instances are trimmed for the client (DSP0200 instance-level parameters)."""

    property_list: frozenset[str] | None = None     # lower-case; None = all
    deep_inheritance: bool = True
    include_qualifiers: bool = False
    include_class_origin: bool = False

    @classmethod
    def of(cls, property_list, **kw) -> "Shape":
        props = None if property_list is None else frozenset(p.lower() for p in property_list)
        return cls(property_list=props, **kw)


# pywbem is pinned to 1.9.x; should a release rename these slots, shaping takes the plain path.
_SLOTS_OK = {"_class_origin", "_qualifiers"} <= set(
    getattr(pywbem.CIMProperty, "__slots__", ()))


def shape_instance(inst: CIMInstance, cim_class: pywbem.CIMClass,
                   requested: pywbem.CIMClass | None, shape: Shape) -> CIMInstance:
    """Trim `inst` (a fresh provider object) in place to what the client asked for.

    Properties not declared by the instance's class are dropped (a provider cannot leak
    undeclared data); with DeepInheritance false only the requested class's properties
    remain; PropertyList names not in the class are ignored. LocalOnly is not applied to
    instances: DSP0200 1.4 resolved its contradictory earlier definitions by recommending
    that servers treat it as false (pywbem's mock server does the same), so a client that
    still sends true gets every property.

    Hot path (every instance of every enumeration): the set of property names to keep is
    computed once per class and shape (`ClassInfo.kept`), and the instance's own table is
    compared with it in one set operation, so an instance that already holds exactly what
    is asked for costs no per-property lookups. `shape_instance_reference` is the plain
    definition; tests hold the two equal.
    """
    data = nocase_keys(inst.properties) if _SLOTS_OK else None
    if data is None or shape.include_class_origin or shape.include_qualifiers:
        return shape_instance_reference(inst, cim_class, requested, shape)
    kept = class_info(cim_class).kept(requested, shape.property_list, shape.deep_inheritance)
    if not kept.issuperset(data):
        props = inst.properties
        for name in [entry[0] for folded, entry in data.items() if folded not in kept]:
            del props[name]
    for _name, prop in data.values():
        # slot reads: the public getters cost a Python call each, 20 times per instance
        if prop._class_origin is not None:
            prop.class_origin = None
        quals = prop._qualifiers
        if quals is not None and getattr(quals, "_data", quals):
            prop.qualifiers = {}
    if inst.qualifiers:
        inst.qualifiers = {}
    return inst


def shape_instance_reference(inst: CIMInstance, cim_class: pywbem.CIMClass,
                             requested: pywbem.CIMClass | None, shape: Shape) -> CIMInstance:
    """`shape_instance` by its definition, one property at a time (also the path taken for
    IncludeQualifiers / IncludeClassOrigin, which copy from each declaration anyway)."""
    decls = cim_class.properties
    props = inst.properties
    drop = []
    for name in props:
        decl = decls.get(name)
        if decl is None:
            drop.append(name)
            continue
        low = name.lower()
        if shape.property_list is not None and low not in shape.property_list:
            drop.append(name)
        elif not shape.deep_inheritance and requested is not None \
                and name not in requested.properties:
            drop.append(name)
    for name in drop:
        del props[name]
    if shape.include_class_origin or shape.include_qualifiers:
        for prop in props.values():
            decl = decls[prop.name]
            if shape.include_class_origin:
                prop.class_origin = decl.class_origin or cim_class.classname
            if shape.include_qualifiers:
                prop.qualifiers = decl.qualifiers
        if shape.include_qualifiers:
            inst.qualifiers = cim_class.qualifiers
    else:
        for prop in props.values():
            if prop.class_origin is not None:
                prop.class_origin = None
            if prop.qualifiers:
                prop.qualifiers = {}
        if inst.qualifiers:
            inst.qualifiers = {}
    return inst
