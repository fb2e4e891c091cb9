"""CIM-XML (DSP0201) for the CIM server: a hardened request parser and an lxml serializer.

    parse_request(body) -> CIMRequest        raises ProtocolError / RequestCIMError
    check_headers_match(request, CIMMethod, CIMObject[, CIMProtocolVersion])
    serialize_response(request, result) -> bytes
    serialize_error(request, cim_error) -> bytes
    type_param(raw, cim_type, is_array, embedded) / type_value(...) / parse_value(text, type)
"""
from provider.cimxml.parser import (INTRINSIC_OPERATIONS, MAX_DEPTH, MAX_REQUEST_SIZE,
                                    ProtocolError, RequestCIMError, check_headers_match,
                                    parse_request, type_param, type_value)
from provider.cimxml.serializer import serialize_error, serialize_response
from provider.cimxml.values import format_value, parse_value

__all__ = [
    "INTRINSIC_OPERATIONS", "MAX_DEPTH", "MAX_REQUEST_SIZE", "ProtocolError",
    "RequestCIMError", "check_headers_match", "format_value", "parse_request",
    "parse_value", "serialize_error", "serialize_response", "type_param", "type_value",
]
