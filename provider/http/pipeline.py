"""One CIM request, off the reactor: parse -> header match -> dispatch -> serialize -> audit.

Everything here blocks and runs in the server's worker pool. The outcome is a `Reply`: an
HTTP status, an optional `CIMError` header, and the body. CIM errors are HTTP 200 with an
<ERROR> element; protocol faults are 4xx/5xx with `CIMError`; anything unexpected becomes
CIM_ERR_FAILED and a log line, never a traceback to the client.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pywbem

from provider.audit import AuditLog, is_audited
from provider.http.headers import CIMHeaders, HTTPFault
from provider.messages import CIMRequest, Principal

log = logging.getLogger("vmprovider.http")

# The intrinsic operations DSP0200 defines (a response to one of them is an IMETHODRESPONSE).
INTRINSIC = frozenset(n.lower() for n in (
    "GetClass", "EnumerateClasses", "EnumerateClassNames", "CreateClass", "ModifyClass",
    "DeleteClass", "GetInstance", "EnumerateInstances", "EnumerateInstanceNames",
    "CreateInstance", "ModifyInstance", "DeleteInstance", "Associators", "AssociatorNames",
    "References", "ReferenceNames", "ExecQuery", "GetProperty", "SetProperty", "GetQualifier",
    "SetQualifier", "DeleteQualifier", "EnumerateQualifiers", "OpenEnumerateInstances",
    "OpenEnumerateInstancePaths", "OpenAssociatorInstances", "OpenAssociatorInstancePaths",
    "OpenReferenceInstances", "OpenReferenceInstancePaths", "OpenQueryInstances",
    "PullInstancesWithPath", "PullInstancePaths", "PullInstances", "CloseEnumeration",
    "EnumerationCount",
))


@dataclass
class Reply:
    status: int
    body: bytes
    cim_error: str | None = None
    content_type: bytes = b'application/xml; charset="utf-8"'


def _protocol_fault(e) -> HTTPFault:
    """S1's ProtocolError(http_status, cim_error_header, message) as an HTTPFault."""
    status = getattr(e, "http_status", None)
    header = getattr(e, "cim_error", getattr(e, "cim_error_header", None))
    message = getattr(e, "message", None)
    if status is None and len(e.args) >= 2:
        status, header = e.args[0], e.args[1]
        message = e.args[2] if len(e.args) > 2 else message
    return HTTPFault(int(status or 400), header, str(message or e))


def _audit_target(request: CIMRequest) -> str:
    def uri(obj) -> str:
        path = getattr(obj, "path", None)
        if path is not None and not isinstance(obj, (pywbem.CIMInstanceName,
                                                     pywbem.CIMClassName)):
            obj = path
        if hasattr(obj, "to_wbem_uri"):
            if obj.namespace is None:      # intrinsic paths travel without their namespace
                obj = obj.copy()
                obj.namespace = request.namespace
            return obj.to_wbem_uri(format="cimobject")
        if isinstance(obj, pywbem.CIMInstance):
            return obj.classname
        if isinstance(obj, pywbem.CIMClass):
            return obj.classname
        return "" if obj is None else str(obj)

    if request.kind == "method":
        return uri(request.target)
    for name in ("InstanceName", "ModifiedInstance", "NewInstance", "ClassName", "NewClass",
                 "ModifiedClass", "QualifierName", "QualifierDeclaration"):
        if name in request.params:
            value = request.params[name]
            if isinstance(value, pywbem.CIMQualifierDeclaration):
                return value.name
            return uri(value)
    return ""


class Pipeline:
    """Holds the codec (S1), the dispatcher (S3) and the audit log; `run` handles one request."""

    def __init__(self, dispatcher, audit: AuditLog | None, *, codec=None,
                 max_request_bytes: int = 4 * 1024 * 1024):
        if codec is None:
            import provider.cimxml as codec
        self.codec = codec
        self.max_request_bytes = max_request_bytes
        self.dispatcher = dispatcher
        self.audit = audit

    def _fallback_request(self, headers: CIMHeaders) -> CIMRequest:
        name = headers.method or "Unknown"
        kind = "imethod" if name.lower() in INTRINSIC else "method"
        return CIMRequest(kind=kind, name=name, namespace="", message_id="0")

    def _error_reply(self, request: CIMRequest, error: pywbem.CIMError) -> Reply:
        return Reply(200, self.codec.serialize_error(request, error))

    def run(self, body: bytes, headers: CIMHeaders, principal: Principal) -> Reply:
        codec = self.codec
        request = None
        try:
            try:
                request = codec.parse_request(body, max_size=self.max_request_bytes)
                codec.check_headers_match(request, headers.method_raw, headers.object_raw,
                                          headers.protocol_version)
            except codec.ProtocolError as e:
                raise _protocol_fault(e) from None
        except HTTPFault as fault:
            return Reply(fault.status, fault.message.encode("utf-8", "replace") + b"\n",
                         fault.cim_error, b"text/plain; charset=utf-8")
        except pywbem.CIMError as e:
            # a fault answered inside a CIM response (bad parameter name/type, ...); S1's
            # RequestCIMError carries the request as far as it was parsed
            partial = request or getattr(e, "request", None)
            return self._error_reply(partial or self._fallback_request(headers), e)
        except Exception:
            log.exception("request parsing failed unexpectedly (user %s from %s)",
                          principal.user, principal.source)
            return self._failed(request or self._fallback_request(headers))

        audited = self.audit is not None and is_audited(request.kind, request.name)
        code, description = 0, ""
        try:
            result = self.dispatcher.handle(request, principal)
            reply = Reply(200, codec.serialize_response(request, result))
        except pywbem.CIMError as e:
            code, description = e.status_code, e.status_description or ""
            reply = self._error_reply(request, e)
        except Exception:
            log.exception("operation %s failed unexpectedly (user %s from %s)",
                          request.name, principal.user, principal.source)
            code, description = pywbem.CIM_ERR_FAILED, "internal error"
            reply = self._failed(request)
        if audited:
            try:
                self.audit.record(user=principal.user, source=principal.source,
                                  operation=request.name, target=_audit_target(request),
                                  namespace=request.namespace, result=code,
                                  description=description)
            except Exception:
                log.exception("cannot write the audit record for %s by %s", request.name,
                              principal.user)
        return reply

    def _failed(self, request: CIMRequest) -> Reply:
        error = pywbem.CIMError(pywbem.CIM_ERR_FAILED,
                                "internal server error; see the server log")
        try:
            return self._error_reply(request, error)
        except Exception:
            log.exception("cannot serialize an error response")
            return Reply(500, b"internal server error\n", None, b"text/plain; charset=utf-8")
