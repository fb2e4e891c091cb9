"""What travels between the layers of the CIM server, independent of XML and HTTP.

    provider.http  --bytes-->  provider.cimxml.parse_request  --CIMRequest-->
    provider.operations.Dispatcher.handle(request, principal)  --result-->
    provider.cimxml.serialize_*  --bytes-->  provider.http

CONTRACT (frame). Values are pywbem's CIM types (CIMInstance, CIMInstanceName, CIMClass,
CIMClassName, CIMQualifierDeclaration, typed CIM values), never loose dicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pywbem import NocaseDict


@dataclass(frozen=True)
class Principal:
    """Who is asking. `role` is the host role: 'admin', 'oper' or 'readonly', or 'none' (no
    host-wide rights: only what a guest's own -u/-g lists grant; see docs/cim-classes.md)."""

    user: str
    role: str
    groups: tuple[str, ...] = ()
    source: str = ""          # peer address, for the audit log


@dataclass
class RawParam:
    """An extrinsic method parameter as it arrived. `type` is None when the client sent no
    PARAMTYPE (sblim wbemcli): the dispatcher types it from the class's method declaration.
    `value` is a str, a list of str, a CIMInstanceName, a CIMInstance (embedded object) or a
    list of those."""

    name: str
    type: str | None
    value: Any
    embedded_object: str | None = None   # 'instance' | 'object' | None


@dataclass
class CIMRequest:
    """One operation request.

    kind 'imethod' (intrinsic): `name` is the operation ('GetInstance', 'OpenEnumerateInstances'),
    `params` maps the IPARAMVALUE names (case-insensitively) to typed values:
      * ClassName -> str; InstanceName, ObjectName -> CIMInstanceName (ObjectName may be a
        CIMClassName for class-level association calls); NewInstance -> CIMInstance;
        ModifiedInstance -> CIMInstance with .path; NewClass/ModifiedClass -> CIMClass;
        QualifierDeclaration -> CIMQualifierDeclaration;
      * LocalOnly, DeepInheritance, IncludeQualifiers, IncludeClassOrigin, ContinueOnError,
        ReturnQueryResultClass -> bool; MaxObjectCount, OperationTimeout -> int (Uint32) or None;
      * PropertyList -> list[str] or None; AssocClass, ResultClass -> str or None;
        Role, ResultRole, QueryLanguage, Query, FilterQueryLanguage, FilterQuery,
        EnumerationContext, PropertyName, QualifierName -> str or None;
      * NewValue (SetProperty) -> the raw value (str, list of str, CIMInstanceName) or None.
      Parameters the client omitted are absent from `params`.
    kind 'method' (extrinsic): `name` is the method name, `target` the CIMInstanceName or
    CIMClassName it is invoked on (namespace set), `params` maps names to RawParam.
    """

    kind: str
    name: str
    namespace: str
    params: NocaseDict = field(default_factory=NocaseDict)
    target: Any = None
    message_id: str = "1"
    protocol_version: str = "1.0"


@dataclass
class PullResult:
    """What every Open*/Pull* operation returns. `context` is None at end of sequence."""

    objects: list
    end_of_sequence: bool
    context: str | None
    query_result_class: Any = None   # OpenQueryInstances with ReturnQueryResultClass


@dataclass
class MethodResult:
    """An extrinsic method's outcome: the typed return value and OUT parameters
    (a list of pywbem.CIMParameter-like (name, type, value) triples)."""

    return_value: Any
    return_type: str
    out_params: list = field(default_factory=list)
