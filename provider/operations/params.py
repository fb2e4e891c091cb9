"""Typing raw values from their declarations: SetProperty's NewValue and extrinsic method
parameters sent without PARAMTYPE (sblim wbemcli). The CIM-XML value rules themselves are
the parser's (`provider.cimxml.type_value`); this module finds the declaration."""
from __future__ import annotations

import pywbem
from pywbem import CIMError, CIMParameter

from provider import cimxml
from provider.messages import RawParam


def embedded_kind(decl) -> str | None:
    """'instance' or 'object' for a property/parameter holding an embedded object."""
    if getattr(decl, "embedded_object", None):
        return decl.embedded_object
    if decl.qualifiers.get("EmbeddedInstance") is not None:
        return "instance"
    if decl.qualifiers.get("EmbeddedObject") is not None:
        return "object"
    return None


def type_value(decl: pywbem.CIMProperty, raw):
    """A raw value (str, list of str, path, instance) typed as property `decl` declares."""
    return cimxml.type_value(raw, decl.type, bool(decl.is_array), embedded_kind(decl),
                             name=f"property {decl.name}")


def type_param(decl: CIMParameter, raw: RawParam) -> CIMParameter:
    """A method parameter typed as `decl` declares it. A PARAMTYPE the client sent must agree
    with the declaration (an embedded object travels as PARAMTYPE string)."""
    embedded = embedded_kind(decl)
    if raw.type is not None and raw.type != decl.type and \
            not (embedded and raw.type == "string"):
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"parameter {decl.name} is {decl.type}, not {raw.type}")
    value = cimxml.type_param(raw, decl.type, bool(decl.is_array), embedded)
    return CIMParameter(decl.name, decl.type, value=value, is_array=decl.is_array,
                        reference_class=decl.reference_class, embedded_object=embedded)
