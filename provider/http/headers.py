"""DSP0200 request header checks (reference §1.1), POST and M-POST alike.

M-POST (RFC 2774) names a namespace in `Man: http://www.dmtf.org/cim/mapping/http/v1.0;ns=NN`
and then sends `NN-CIMOperation`, `NN-CIMMethod`, ...; `CIMHeaders` hides the prefix.
A failed check raises `HTTPFault` with the HTTP status and the `CIMError` header value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

CIM_MAPPING_URI = "http://www.dmtf.org/cim/mapping/http/v1.0"
_MAN_RE = re.compile(r'^\s*"?(?P<uri>[^";\s]+)"?\s*;\s*ns\s*=\s*(?P<ns>\d\d)\s*$')
XML_TYPES = ("application/xml", "text/xml")


class HTTPFault(Exception):
    """A request refused at the HTTP level: status, CIMError header value (or None), text."""

    def __init__(self, status: int, cim_error: str | None, message: str):
        super().__init__(message)
        self.status = status
        self.cim_error = cim_error
        self.message = message


@dataclass
class CIMHeaders:
    """The CIM headers of one request, prefix-free, decoded as latin-1 (HTTP's octets)."""

    operation: str | None
    method: str | None            # CIMMethod, %-decoded
    object: str | None            # CIMObject, %-decoded
    method_raw: str | None
    object_raw: str | None
    protocol_version: str | None
    batch: bool
    mpost_ns: str | None          # "NN" for M-POST

    def prefixed(self, name: str) -> str:
        return f"{self.mpost_ns}-{name}" if self.mpost_ns else name


_ENCODED: dict[str, bytes] = {}     # header name -> its lower-case octets (bounded below)


def _get(request, name: str) -> str | None:
    key = _ENCODED.get(name)
    if key is None:
        key = name.lower().encode("latin-1")
        if len(_ENCODED) < 512:             # the CIM names, and M-POST's NN- forms of them
            _ENCODED[name] = key
    values = request.requestHeaders.getRawHeaders(key)
    if not values:
        return None
    return values[0].decode("latin-1").strip()


def _mpost_namespace(request) -> str:
    if request.clientproto != b"HTTP/1.1":
        raise HTTPFault(400, None, "M-POST needs HTTP/1.1")
    man = _get(request, "Man")
    if man is None:
        raise HTTPFault(400, None, "M-POST without a Man header")
    m = _MAN_RE.match(man)
    if m is None:
        raise HTTPFault(400, None, f"malformed Man header: {man!r}")
    if m.group("uri") != CIM_MAPPING_URI:
        # RFC 2774: a mandatory extension the server does not know.
        raise HTTPFault(510, None, f"unknown mandatory extension {m.group('uri')!r}")
    return m.group("ns")


def declared_mpost_namespace(request) -> str | None:
    """The `ns=NN` of a well-formed Man header (to prefix a fault's CIMError), else None."""
    man = _get(request, "Man")
    m = _MAN_RE.match(man) if man else None
    return m.group("ns") if m else None


def check_content_type(request) -> None:
    ctype = _get(request, "Content-Type")
    if ctype is None:
        raise HTTPFault(400, None, "no Content-Type: CIM-XML requests are application/xml")
    media, *params = [p.strip() for p in ctype.split(";")]
    if media.lower() not in XML_TYPES:
        raise HTTPFault(400, None, f"Content-Type {media!r} is not application/xml or text/xml")
    for p in params:
        key, _, value = p.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in ("utf-8", "utf8"):
                raise HTTPFault(400, None, f"charset {charset!r} is not utf-8")
    encoding = _get(request, "Content-Encoding")
    if encoding is not None and encoding.lower() != "identity":
        raise HTTPFault(400, None, f"Content-Encoding {encoding!r} is not supported")


def read_cim_headers(request, *, mpost: bool) -> CIMHeaders:
    """Check the headers that can be checked before the body is parsed."""
    ns = _mpost_namespace(request) if mpost else None

    def h(name: str) -> str | None:
        return _get(request, f"{ns}-{name}" if ns else name)

    if request.clientproto == b"HTTP/1.1" and _get(request, "Host") is None:
        raise HTTPFault(400, None, "HTTP/1.1 request without a Host header")
    if h("CIMExport") is not None and h("CIMOperation") is None:
        raise HTTPFault(400, "unsupported-operation",
                        "this is a CIM server, not an indication listener")
    operation = h("CIMOperation")
    if operation is None:
        raise HTTPFault(400, None, "no CIMOperation header: not a CIM operation request")
    if operation.lower() != "methodcall":
        raise HTTPFault(400, "unsupported-operation",
                        f"CIMOperation {operation!r} is not MethodCall")
    batch = h("CIMBatch") is not None
    if batch:
        raise HTTPFault(501, "multiple-requests-unsupported",
                        "multiple requests (CIMBatch) are not supported")
    version = h("CIMProtocolVersion")
    if version is not None and not re.fullmatch(r"1\.\d+", version):
        raise HTTPFault(501, "unsupported-protocol-version",
                        f"CIMProtocolVersion {version!r} is not supported (1.x is)")
    method_raw, object_raw = h("CIMMethod"), h("CIMObject")
    if not method_raw:
        raise HTTPFault(400, "header-mismatch", "missing or empty CIMMethod header")
    if not object_raw:
        raise HTTPFault(400, "header-mismatch", "missing or empty CIMObject header")
    check_content_type(request)
    return CIMHeaders(operation=operation, method=unquote(method_raw),
                      object=unquote(object_raw), method_raw=method_raw,
                      object_raw=object_raw, protocol_version=version, batch=batch,
                      mpost_ns=ns)
