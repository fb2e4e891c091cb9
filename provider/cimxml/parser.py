"""Hardened CIM-XML request parser: bytes -> CIMRequest (DSP0200 operations, DSP0201 DTD 2.x).

Hardening, in the order it is applied:
  * a size cap (`max_size`, 413) before anything is looked at;
  * strict UTF-8 (DSP0200 requires it) and no other declared encoding;
  * any DOCTYPE or ENTITY declaration is refused outright (no internal or external DTDs,
    hence no entity expansion, no billion laughs, no external fetches);
  * lxml/libxml2 with DTD loading, entity resolution and network access off, huge_tree off
    (libxml2 then also caps depth at 256 and text nodes at 10 MB);
  * a nesting-depth cap (`max_depth`) enforced while converting, embedded objects included.

Faults are answered the DSP0200 way: `ProtocolError(http_status, cim_error_header, message)`
for what is not a readable request, `RequestCIMError` (a `pywbem.CIMError`) for what is answered
inside a CIM response; it carries `.request`, the request as far as it was understood, so the
HTTP layer can address the <ERROR> to the right method.
"""
from __future__ import annotations

import re
import threading
from urllib.parse import unquote

import pywbem
from lxml import etree
from pywbem import (CIMClass, CIMClassName, CIMInstance, CIMInstanceName, CIMMethod,
                    CIMParameter, CIMProperty, CIMQualifier, CIMQualifierDeclaration,
                    NocaseDict)

from provider.instance_names import instance_name
from provider.messages import CIMRequest, RawParam
from provider.cimxml.embedded_mof import instance_from_mof, is_mof
from provider.cimxml.values import CIM_TYPES, format_value, parse_boolean, parse_number, \
    parse_value

#: Largest request body accepted (the HTTP layer enforces its own, usually smaller, limit).
MAX_REQUEST_SIZE = 16 * 1024 * 1024
#: Deepest element nesting accepted, counted from <CIM> and through embedded objects.
#: Real requests stay under 20; each nested reference in a key adds about 5.
MAX_DEPTH = 64

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_PARAM_TYPES = CIM_TYPES | {"reference"}
_VERSION2_RE = re.compile(r"2\.[0-9]+(\.[0-9]+)*\Z")
_VERSION1_RE = re.compile(r"1\.[0-9]+(\.[0-9]+)*\Z")
# DSP0004 identifiers: letters, '_' and U+0080..U+FFEF first, then also digits.
_CIM_NAME_RE = re.compile(r"[A-Za-z_\u0080-\uFFEF][A-Za-z0-9_\u0080-\uFFEF]{0,255}\Z")
_NS_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")
_ENCODING_RE = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
_UTF8_NAMES = frozenset(("utf-8", "utf8", "us-ascii", "ascii"))


class ProtocolError(Exception):
    """A DSP0200 protocol fault: answered with `http_status` and the `CIMError` header
    `cim_error_header` (None for statuses DSP0200 gives no CIMError value, e.g. 413)."""

    def __init__(self, http_status: int, cim_error_header: str | None, message: str):
        super().__init__(http_status, cim_error_header, message)
        self.http_status = http_status
        self.cim_error_header = cim_error_header
        self.cim_error = cim_error_header
        self.message = message

    def __str__(self) -> str:
        return f"{self.http_status} {self.cim_error_header or ''}: {self.message}"


class RequestCIMError(pywbem.CIMError):
    """A fault in a readable request, answered inside a CIM response (HTTP 200 + <ERROR>).
    `request` is the CIMRequest as far as it was parsed (kind, name, namespace, message id)."""

    def __init__(self, code: int, description: str, request: CIMRequest | None = None):
        super().__init__(code, description)
        self.request = request


class _Fault(Exception):
    """A value-level fault found while converting; becomes a RequestCIMError."""

    def __init__(self, message: str, code: int = pywbem.CIM_ERR_INVALID_PARAMETER):
        super().__init__(message)
        self.code = code


def _not_valid(message: str) -> ProtocolError:
    return ProtocolError(400, "request-not-valid", message)


# --------------------------------------------------------------------------- XML layer

_local = threading.local()


def _xml_parser() -> etree.XMLParser:
    # lxml parsers must not be shared between threads; requests are parsed in a pool.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False,
            dtd_validation=False, huge_tree=False, remove_comments=True, remove_pis=True,
            collect_ids=False, strip_cdata=True)
        _local.parser = parser
    return parser


def _has_dtd(data: bytes) -> bool:
    return b"<!DOCTYPE" in data or b"<!ENTITY" in data or b"<!doctype" in data


def _parse_xml(body: bytes, max_size: int) -> etree._Element:
    if isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise TypeError("parse_request takes the request body as bytes")
    if len(body) > max_size:
        raise ProtocolError(413, None, f"request body of {len(body)} bytes exceeds the "
                                       f"limit of {max_size} bytes")
    if not body.strip():
        raise ProtocolError(400, "request-not-well-formed", "empty request body")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(400, "request-not-well-formed",
                            f"request body is not valid UTF-8 (byte {e.start})") from None
    m = _ENCODING_RE.match(body[:512])
    if m and m.group(1).decode("ascii", "replace").lower() not in _UTF8_NAMES:
        raise ProtocolError(400, "request-not-well-formed",
                            f"XML encoding {m.group(1).decode('ascii', 'replace')!r} is not "
                            "accepted; CIM-XML requests are UTF-8")
    if _has_dtd(body):
        raise _not_valid("DOCTYPE and ENTITY declarations are not accepted")
    try:
        root = etree.fromstring(body, _xml_parser())
    except etree.XMLSyntaxError as e:
        raise ProtocolError(400, "request-not-well-formed",
                            f"XML syntax error: {e.msg}") from None
    except (etree.LxmlError, ValueError) as e:
        raise ProtocolError(400, "request-not-well-formed", f"unreadable XML: {e}") from None
    if root.getroottree().docinfo.doctype:
        raise _not_valid("DOCTYPE declarations are not accepted")
    return root


def _parse_fragment(text: str) -> etree._Element:
    """An embedded object (the text of a VALUE): same hardening, faults are parameter faults."""
    data = text.encode("utf-8", "surrogatepass")
    if _has_dtd(data):
        raise _Fault("embedded object contains a DOCTYPE or ENTITY declaration")
    try:
        return etree.fromstring(data, _xml_parser())
    except (etree.LxmlError, ValueError) as e:
        raise _Fault(f"embedded object is not well-formed XML: {e}") from None


# --------------------------------------------------------------------------- helpers

def _blank(s: str | None) -> bool:
    return s is None or not s.strip(" \t\r\n")


def _check(el, required=(), optional=(), text=False):
    """DTD-level checks of one element: attributes and stray text. Returns el.attrib."""
    attrib = el.attrib
    for key in attrib.keys():
        if key not in required and key not in optional:
            raise _not_valid(f"element {el.tag} has an unexpected attribute {key!r}")
    for key in required:
        if key not in attrib:
            raise _not_valid(f"element {el.tag} lacks the required attribute {key}")
    if not text:
        if not _blank(el.text):
            raise _not_valid(f"element {el.tag} must not contain text")
        for child in el:
            if not _blank(child.tail):
                raise _not_valid(f"element {el.tag} must not contain text")
    return attrib


def _kids(el, allowed) -> list:
    kids = list(el)
    for kid in kids:
        if not isinstance(kid.tag, str) or kid.tag not in allowed:
            tag = kid.tag if isinstance(kid.tag, str) else "a non-element node"
            raise _not_valid(f"element {el.tag} may not contain {tag}")
    return kids


def _flag(el, attrib, name):
    """An optional (true|false) attribute, or None when absent."""
    value = attrib.get(name)
    if value is None:
        return None
    v = value.strip().lower()
    if v == "true":
        return True
    if v == "false":
        return False
    raise _not_valid(f"attribute {name} of {el.tag} must be true or false, not {value!r}")


def _cim_type(el, attrib, name="TYPE", allowed=CIM_TYPES):
    value = attrib.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise _not_valid(f"attribute {name} of {el.tag} is not a CIM type: {value[:64]!r}")
    return value


def _array_size(el, attrib):
    value = attrib.get("ARRAYSIZE")
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", value.strip()):
        raise _not_valid(f"ARRAYSIZE of {el.tag} is not a count: {value[:64]!r}")
    return int(value)


def _embedded(el, attrib):
    value = attrib.get("EmbeddedObject", attrib.get("EMBEDDEDOBJECT"))
    if value is None:
        return None
    if value not in ("object", "instance"):
        raise _not_valid(f"EmbeddedObject of {el.tag} must be object or instance")
    return value


def _name(value: str, what: str) -> str:
    if not _CIM_NAME_RE.match(value):
        raise _Fault(f"invalid {what} {value[:64]!r}")
    return value


def _typed(text, cim_type, what):
    try:
        return parse_value(text, cim_type)
    except ValueError as e:
        raise _Fault(f"{what}: {e}") from None


# --------------------------------------------------------------------------- elements

class _Converter:
    """DSP0201 element -> pywbem object. Structural faults raise ProtocolError
    (request-not-valid), value faults raise _Fault."""

    def __init__(self, max_depth: int):
        self.max_depth = max_depth

    def _deeper(self, el, depth):
        if depth > self.max_depth:
            raise _not_valid(f"elements nest deeper than {self.max_depth} levels")

    # ---- values
    def value(self, el, depth) -> str:
        self._deeper(el, depth)
        _check(el, text=True)
        if len(el):
            raise _not_valid("element VALUE may not contain elements")
        return el.text or ""

    def value_array(self, el, depth) -> list:
        self._deeper(el, depth)
        _check(el)
        out = []
        for kid in _kids(el, ("VALUE", "VALUE.NULL")):
            if kid.tag == "VALUE":
                out.append(self.value(kid, depth + 1))
            else:
                self.value_null(kid, depth + 1)
                out.append(None)
        return out

    def value_null(self, el, depth):
        _check(el)
        if len(el):
            raise _not_valid("element VALUE.NULL must be empty")

    _REF_KIDS = ("CLASSPATH", "LOCALCLASSPATH", "CLASSNAME", "INSTANCEPATH",
                 "LOCALINSTANCEPATH", "INSTANCENAME")

    def value_reference(self, el, depth):
        self._deeper(el, depth)
        _check(el)
        kids = _kids(el, self._REF_KIDS)
        if len(kids) != 1:
            raise _not_valid("element VALUE.REFERENCE holds exactly one path")
        return self.path(kids[0], depth + 1)

    def value_refarray(self, el, depth) -> list:
        self._deeper(el, depth)
        _check(el)
        out = []
        for kid in _kids(el, ("VALUE.REFERENCE", "VALUE.NULL")):
            if kid.tag == "VALUE.REFERENCE":
                out.append(self.value_reference(kid, depth + 1))
            else:
                self.value_null(kid, depth + 1)
                out.append(None)
        return out

    # ---- names and paths
    def path(self, el, depth):
        return getattr(self, _METHOD_OF[el.tag])(el, depth)

    def namespace(self, el, depth) -> str:
        self._deeper(el, depth)
        _check(el)
        kids = _kids(el, ("NAMESPACE",))
        if not kids:
            raise _not_valid("element LOCALNAMESPACEPATH needs at least one NAMESPACE")
        parts = []
        for kid in kids:
            attrib = _check(kid, ("NAME",))
            if len(kid):
                raise _not_valid("element NAMESPACE must be empty")
            parts.append(attrib["NAME"])
        ns = "/".join(parts)
        if not all(_NS_PART_RE.match(p) for p in parts):
            raise _Fault(f"malformed namespace {ns[:128]!r}", pywbem.CIM_ERR_INVALID_NAMESPACE)
        return ns

    def host(self, el, depth) -> str:
        _check(el, text=True)
        if len(el):
            raise _not_valid("element HOST may not contain elements")
        return (el.text or "").strip()

    def namespacepath(self, el, depth):
        self._deeper(el, depth)
        _check(el)
        kids = _kids(el, ("HOST", "LOCALNAMESPACEPATH"))
        if [k.tag for k in kids] != ["HOST", "LOCALNAMESPACEPATH"]:
            raise _not_valid("element NAMESPACEPATH is (HOST, LOCALNAMESPACEPATH)")
        return self.host(kids[0], depth + 1), self.namespace(kids[1], depth + 1)

    def classname(self, el, depth) -> CIMClassName:
        attrib = _check(el, ("NAME",))
        if len(el):
            raise _not_valid("element CLASSNAME must be empty")
        return CIMClassName(_name(attrib["NAME"], "class name"))

    def localclasspath(self, el, depth) -> CIMClassName:
        self._deeper(el, depth)
        _check(el)
        kids = _kids(el, ("LOCALNAMESPACEPATH", "CLASSNAME"))
        if [k.tag for k in kids] != ["LOCALNAMESPACEPATH", "CLASSNAME"]:
            raise _not_valid("element LOCALCLASSPATH is (LOCALNAMESPACEPATH, CLASSNAME)")
        path = self.classname(kids[1], depth + 1)
        path.namespace = self.namespace(kids[0], depth + 1)
        return path

    def classpath(self, el, depth) -> CIMClassName:
        self._deeper(el, depth)
        _check(el)
        kids = _kids(el, ("NAMESPACEPATH", "CLASSNAME"))
        if [k.tag for k in kids] != ["NAMESPACEPATH", "CLASSNAME"]:
            raise _not_valid("element CLASSPATH is (NAMESPACEPATH, CLASSNAME)")
        path = self.classname(kids[1], depth + 1)
        path.host, path.namespace = self.namespacepath(kids[0], depth + 1)
        return path

    def instancename(self, el, depth) -> CIMInstanceName:
        self._deeper(el, depth)
        attrib = _check(el, ("CLASSNAME",))
        classname = _name(attrib["CLASSNAME"], "class name")
        kids = _kids(el, ("KEYBINDING", "KEYVALUE", "VALUE.REFERENCE"))
        keys = NocaseDict()
        for kid in kids:
            if kid.tag != "KEYBINDING":
                if len(kids) != 1:
                    raise _not_valid("element INSTANCENAME is (KEYBINDING* | KEYVALUE? | "
                                     "VALUE.REFERENCE?)")
                # DSP0201 allows one unnamed key; without the schema it cannot be named.
                raise _Fault(f"instance name of {classname} has an unnamed key value; "
                             "name the key with KEYBINDING")
            kb_attrib = _check(kid, ("NAME",))
            key = _name(kb_attrib["NAME"], "key name")
            values = _kids(kid, ("KEYVALUE", "VALUE.REFERENCE"))
            if len(values) != 1:
                raise _not_valid("element KEYBINDING holds one KEYVALUE or VALUE.REFERENCE")
            if key in keys:
                raise _Fault(f"instance name of {classname} binds key {key} twice")
            v = values[0]
            if v.tag == "KEYVALUE":
                keys[key] = self.keyvalue(v, depth + 2)
            else:
                keys[key] = self.value_reference(v, depth + 2)
        try:
            return instance_name(classname, keys)
        except (TypeError, ValueError) as e:
            raise _Fault(f"invalid instance name of {classname}: {e}") from None

    def keyvalue(self, el, depth):
        attrib = _check(el, (), ("VALUETYPE", "TYPE"), text=True)
        if len(el):
            raise _not_valid("element KEYVALUE may not contain elements")
        text = el.text or ""
        valuetype = attrib.get("VALUETYPE", "string")
        if valuetype not in ("string", "boolean", "numeric"):
            raise _not_valid(f"VALUETYPE of KEYVALUE is not string, boolean or numeric: "
                             f"{valuetype[:64]!r}")
        cim_type = attrib.get("TYPE") or None   # some servers write TYPE=""
        if cim_type is not None:
            if cim_type not in CIM_TYPES:
                raise _not_valid(f"TYPE of KEYVALUE is not a CIM type: {cim_type[:64]!r}")
            return _typed(text, cim_type, "key value")
        try:
            if valuetype == "string":
                return text
            if valuetype == "boolean":
                return parse_boolean(text)
            return parse_number(text)
        except ValueError as e:
            raise _Fault(f"key value: {e}") from None

    def localinstancepath(self, el, depth) -> CIMInstanceName:
        self._deeper(el, depth)
        _check(el)
        kids = _kids(el, ("LOCALNAMESPACEPATH", "INSTANCENAME"))
        if [k.tag for k in kids] != ["LOCALNAMESPACEPATH", "INSTANCENAME"]:
            raise _not_valid("element LOCALINSTANCEPATH is (LOCALNAMESPACEPATH, INSTANCENAME)")
        path = self.instancename(kids[1], depth + 1)
        path.namespace = self.namespace(kids[0], depth + 1)
        return path

    def instancepath(self, el, depth) -> CIMInstanceName:
        self._deeper(el, depth)
        _check(el)
        kids = _kids(el, ("NAMESPACEPATH", "INSTANCENAME"))
        if [k.tag for k in kids] != ["NAMESPACEPATH", "INSTANCENAME"]:
            raise _not_valid("element INSTANCEPATH is (NAMESPACEPATH, INSTANCENAME)")
        path = self.instancename(kids[1], depth + 1)
        path.host, path.namespace = self.namespacepath(kids[0], depth + 1)
        return path

    # ---- objects
    def _qualifiers_and(self, el, depth, allowed):
        quals, rest = [], []
        for kid in _kids(el, ("QUALIFIER",) + allowed):
            if kid.tag == "QUALIFIER":
                if rest:
                    raise _not_valid(f"QUALIFIER elements come first in {el.tag}")
                quals.append(self.qualifier(kid, depth + 1))
            else:
                rest.append(kid)
        names = NocaseDict()
        for q in quals:
            if q.name in names:
                raise _Fault(f"qualifier {q.name} given twice in {el.tag}")
            names[q.name] = q
        return names, rest

    def _typed_value(self, el, depth, kids, cim_type, embedded, is_array, what):
        if len(kids) > 1:
            raise _not_valid(f"element {el.tag} holds at most one value")
        if not kids:
            return None
        kid = kids[0]
        if is_array:
            if kid.tag != "VALUE.ARRAY":
                raise _not_valid(f"element {el.tag} takes VALUE.ARRAY")
            raw = self.value_array(kid, depth + 1)
            if embedded:
                return [None if v is None else self.embedded_object(v, embedded, depth + 1, what)
                        for v in raw]
            return [None if v is None else _typed(v, cim_type, what) for v in raw]
        if kid.tag != "VALUE":
            raise _not_valid(f"element {el.tag} takes VALUE")
        raw = self.value(kid, depth + 1)
        if embedded:
            return self.embedded_object(raw, embedded, depth + 1, what)
        return _typed(raw, cim_type, what)

    def qualifier(self, el, depth) -> CIMQualifier:
        self._deeper(el, depth)
        attrib = _check(el, ("NAME", "TYPE"), ("PROPAGATED", "OVERRIDABLE", "TOSUBCLASS",
                                              "TOINSTANCE", "TRANSLATABLE", _XML_LANG))
        name = _name(attrib["NAME"], "qualifier name")
        cim_type = _cim_type(el, attrib)
        kids = _kids(el, ("VALUE", "VALUE.ARRAY"))
        is_array = bool(kids) and kids[0].tag == "VALUE.ARRAY"
        value = self._typed_value(el, depth, kids, cim_type, None, is_array,
                                  f"qualifier {name}")
        try:
            return CIMQualifier(name, value, type=cim_type,
                                propagated=_flag(el, attrib, "PROPAGATED"),
                                overridable=_flag(el, attrib, "OVERRIDABLE"),
                                tosubclass=_flag(el, attrib, "TOSUBCLASS"),
                                toinstance=_flag(el, attrib, "TOINSTANCE"),
                                translatable=_flag(el, attrib, "TRANSLATABLE"))
        except (TypeError, ValueError) as e:
            raise _Fault(f"invalid qualifier {name}: {e}") from None

    def property(self, el, depth) -> CIMProperty:
        self._deeper(el, depth)
        attrib = _check(el, ("NAME", "TYPE"), ("CLASSORIGIN", "PROPAGATED", "EmbeddedObject",
                                              "EMBEDDEDOBJECT", _XML_LANG))
        name = _name(attrib["NAME"], "property name")
        cim_type = _cim_type(el, attrib)
        embedded = _embedded(el, attrib)
        quals, kids = self._qualifiers_and(el, depth, ("VALUE",))
        value = self._typed_value(el, depth, kids, cim_type, embedded, False,
                                  f"property {name}")
        return self._make_property(name, value, type=cim_type, is_array=False,
                                   class_origin=attrib.get("CLASSORIGIN"),
                                   propagated=_flag(el, attrib, "PROPAGATED"),
                                   embedded_object=embedded, qualifiers=quals)

    def property_array(self, el, depth) -> CIMProperty:
        self._deeper(el, depth)
        attrib = _check(el, ("NAME", "TYPE"), ("CLASSORIGIN", "PROPAGATED", "ARRAYSIZE",
                                              "EmbeddedObject", "EMBEDDEDOBJECT", _XML_LANG))
        name = _name(attrib["NAME"], "property name")
        cim_type = _cim_type(el, attrib)
        embedded = _embedded(el, attrib)
        quals, kids = self._qualifiers_and(el, depth, ("VALUE.ARRAY",))
        value = self._typed_value(el, depth, kids, cim_type, embedded, True,
                                  f"property {name}")
        return self._make_property(name, value, type=cim_type, is_array=True,
                                   array_size=_array_size(el, attrib),
                                   class_origin=attrib.get("CLASSORIGIN"),
                                   propagated=_flag(el, attrib, "PROPAGATED"),
                                   embedded_object=embedded, qualifiers=quals)

    def property_reference(self, el, depth) -> CIMProperty:
        self._deeper(el, depth)
        attrib = _check(el, ("NAME",), ("REFERENCECLASS", "CLASSORIGIN", "PROPAGATED"))
        name = _name(attrib["NAME"], "property name")
        quals, kids = self._qualifiers_and(el, depth, ("VALUE.REFERENCE",))
        if len(kids) > 1:
            raise _not_valid("element PROPERTY.REFERENCE holds at most one VALUE.REFERENCE")
        value = self.value_reference(kids[0], depth + 1) if kids else None
        return self._make_property(name, value, type="reference", is_array=False,
                                   reference_class=attrib.get("REFERENCECLASS"),
                                   class_origin=attrib.get("CLASSORIGIN"),
                                   propagated=_flag(el, attrib, "PROPAGATED"),
                                   qualifiers=quals)

    @staticmethod
    def _make_property(name, value, **kw) -> CIMProperty:
        try:
            return CIMProperty(name, value, **kw)
        except (TypeError, ValueError) as e:
            raise _Fault(f"invalid property {name}: {e}") from None

    def _properties(self, owner, kids, depth) -> NocaseDict:
        props = NocaseDict()
        for kid in kids:
            if kid.tag == "METHOD":
                continue
            prop = getattr(self, _METHOD_OF[kid.tag])(kid, depth + 1)
            if prop.name in props:
                raise _Fault(f"property {prop.name} given twice in {owner}")
            props[prop.name] = prop
        return props

    def instance(self, el, depth) -> CIMInstance:
        self._deeper(el, depth)
        attrib = _check(el, ("CLASSNAME",), (_XML_LANG,))
        classname = _name(attrib["CLASSNAME"], "class name")
        quals, kids = self._qualifiers_and(el, depth, ("PROPERTY", "PROPERTY.ARRAY",
                                                       "PROPERTY.REFERENCE"))
        props = self._properties(f"instance of {classname}", kids, depth)
        return CIMInstance(classname, properties=props, qualifiers=quals)

    def value_namedinstance(self, el, depth) -> CIMInstance:
        self._deeper(el, depth)
        _check(el)
        kids = _kids(el, ("INSTANCENAME", "INSTANCE"))
        if [k.tag for k in kids] != ["INSTANCENAME", "INSTANCE"]:
            raise _not_valid("element VALUE.NAMEDINSTANCE is (INSTANCENAME, INSTANCE)")
        path = self.instancename(kids[0], depth + 1)
        inst = self.instance(kids[1], depth + 1)
        inst.path = path
        return inst

    def klass(self, el, depth) -> CIMClass:
        self._deeper(el, depth)
        attrib = _check(el, ("NAME",), ("SUPERCLASS",))
        classname = _name(attrib["NAME"], "class name")
        superclass = attrib.get("SUPERCLASS")
        if superclass is not None:
            superclass = _name(superclass, "superclass name")
        quals, kids = self._qualifiers_and(el, depth, ("PROPERTY", "PROPERTY.ARRAY",
                                                       "PROPERTY.REFERENCE", "METHOD"))
        seen_method = False
        methods = NocaseDict()
        for kid in kids:
            if kid.tag == "METHOD":
                seen_method = True
                m = self.method(kid, depth + 1)
                if m.name in methods:
                    raise _Fault(f"method {m.name} given twice in class {classname}")
                methods[m.name] = m
            elif seen_method:
                raise _not_valid("METHOD elements come last in CLASS")
        props = self._properties(f"class {classname}", kids, depth)
        return CIMClass(classname, properties=props, methods=methods, qualifiers=quals,
                        superclass=superclass)

    def method(self, el, depth) -> CIMMethod:
        self._deeper(el, depth)
        attrib = _check(el, ("NAME",), ("TYPE", "CLASSORIGIN", "PROPAGATED"))
        name = _name(attrib["NAME"], "method name")
        return_type = _cim_type(el, attrib)
        if return_type is None:
            raise _Fault(f"method {name} has no return type")
        quals, kids = self._qualifiers_and(el, depth, ("PARAMETER", "PARAMETER.REFERENCE",
                                                       "PARAMETER.ARRAY",
                                                       "PARAMETER.REFARRAY"))
        params = NocaseDict()
        for kid in kids:
            p = self.parameter(kid, depth + 1)
            if p.name in params:
                raise _Fault(f"parameter {p.name} given twice in method {name}")
            params[p.name] = p
        try:
            return CIMMethod(name, return_type=return_type, parameters=params,
                             class_origin=attrib.get("CLASSORIGIN"),
                             propagated=_flag(el, attrib, "PROPAGATED"), qualifiers=quals)
        except (TypeError, ValueError) as e:
            raise _Fault(f"invalid method {name}: {e}") from None

    def parameter(self, el, depth) -> CIMParameter:
        self._deeper(el, depth)
        tag = el.tag
        if tag == "PARAMETER":
            attrib = _check(el, ("NAME", "TYPE"))
            cim_type, is_array, ref, size = _cim_type(el, attrib), False, None, None
        elif tag == "PARAMETER.ARRAY":
            attrib = _check(el, ("NAME", "TYPE"), ("ARRAYSIZE",))
            cim_type, is_array, ref = _cim_type(el, attrib), True, None
            size = _array_size(el, attrib)
        elif tag == "PARAMETER.REFERENCE":
            attrib = _check(el, ("NAME",), ("REFERENCECLASS",))
            cim_type, is_array, size = "reference", False, None
            ref = attrib.get("REFERENCECLASS")
        else:
            attrib = _check(el, ("NAME",), ("REFERENCECLASS", "ARRAYSIZE"))
            cim_type, is_array = "reference", True
            ref, size = attrib.get("REFERENCECLASS"), _array_size(el, attrib)
        name = _name(attrib["NAME"], "parameter name")
        quals, _ = self._qualifiers_and(el, depth, ())
        try:
            return CIMParameter(name, cim_type, reference_class=ref, is_array=is_array,
                                array_size=size, qualifiers=quals)
        except (TypeError, ValueError) as e:
            raise _Fault(f"invalid parameter {name}: {e}") from None

    def qualifier_declaration(self, el, depth) -> CIMQualifierDeclaration:
        self._deeper(el, depth)
        attrib = _check(el, ("NAME", "TYPE"), ("ISARRAY", "ARRAYSIZE", "OVERRIDABLE",
                                              "TOSUBCLASS", "TOINSTANCE", "TRANSLATABLE"))
        name = _name(attrib["NAME"], "qualifier name")
        cim_type = _cim_type(el, attrib)
        is_array = bool(_flag(el, attrib, "ISARRAY"))
        kids = _kids(el, ("SCOPE", "VALUE", "VALUE.ARRAY"))
        scopes = None
        if kids and kids[0].tag == "SCOPE":
            scopes = self.scope(kids.pop(0))
        if any(k.tag == "SCOPE" for k in kids):
            raise _not_valid("element QUALIFIER.DECLARATION is (SCOPE?, (VALUE | VALUE.ARRAY)?)")
        if kids and (kids[0].tag == "VALUE.ARRAY") != is_array:
            raise _Fault(f"qualifier declaration {name}: value does not match ISARRAY")
        value = self._typed_value(el, depth, kids, cim_type, None, is_array,
                                  f"qualifier declaration {name}")
        try:
            return CIMQualifierDeclaration(
                name, cim_type, value=value, is_array=is_array,
                array_size=_array_size(el, attrib), scopes=scopes,
                overridable=_flag(el, attrib, "OVERRIDABLE"),
                tosubclass=_flag(el, attrib, "TOSUBCLASS"),
                toinstance=_flag(el, attrib, "TOINSTANCE"),
                translatable=_flag(el, attrib, "TRANSLATABLE"))
        except (TypeError, ValueError) as e:
            raise _Fault(f"invalid qualifier declaration {name}: {e}") from None

    _SCOPES = ("CLASS", "ASSOCIATION", "REFERENCE", "PROPERTY", "METHOD", "PARAMETER",
               "INDICATION")

    def scope(self, el) -> NocaseDict:
        attrib = _check(el, (), self._SCOPES)
        if len(el):
            raise _not_valid("element SCOPE must be empty")
        scopes = NocaseDict()
        for key in self._SCOPES:
            flag = _flag(el, attrib, key)
            if flag is not None:
                scopes[key] = flag
        return scopes

    def embedded_object(self, text: str, kind: str, depth: int, what: str):
        """The XML text of an embedded INSTANCE (or CLASS, for kind 'object')."""
        self._deeper(None, depth + 1)
        if kind == "instance" and is_mof(text):
            # libvirt-cim style clients embed instances as MOF text, not CIM-XML
            try:
                return instance_from_mof(text)
            except ValueError as exc:
                raise _Fault(f"{what}: the embedded MOF instance is malformed: {exc}") from None
        root = _parse_fragment(text)
        if root.tag == "INSTANCE":
            return self.instance(root, depth + 1)
        if root.tag == "CLASS" and kind == "object":
            return self.klass(root, depth + 1)
        raise _Fault(f"{what}: the embedded object is not an "
                     f"{'INSTANCE' if kind == 'instance' else 'INSTANCE or CLASS'}")


_METHOD_OF = {
    "CLASSPATH": "classpath", "LOCALCLASSPATH": "localclasspath", "CLASSNAME": "classname",
    "INSTANCEPATH": "instancepath", "LOCALINSTANCEPATH": "localinstancepath",
    "INSTANCENAME": "instancename", "PROPERTY": "property", "PROPERTY.ARRAY": "property_array",
    "PROPERTY.REFERENCE": "property_reference", "VALUE": "value",
    "VALUE.ARRAY": "value_array", "VALUE.REFERENCE": "value_reference",
    "VALUE.REFARRAY": "value_refarray", "INSTANCE": "instance", "CLASS": "klass",
    "VALUE.NAMEDINSTANCE": "value_namedinstance",
    "QUALIFIER.DECLARATION": "qualifier_declaration",
}


# --------------------------------------------------------------------------- operations

# IPARAMVALUE kinds: how the child element becomes the typed value of CIMRequest.params.
_BOOL, _STR, _CLASSNAME, _INSTNAME, _OBJNAME, _PROPLIST, _UINT32 = range(7)
_INSTANCE, _NAMEDINST, _CLASS, _QUALDECL, _NEWVALUE = range(7, 12)

_KIND_ELEMENTS = {
    _BOOL: ("VALUE",), _STR: ("VALUE",), _CLASSNAME: ("CLASSNAME",),
    _INSTNAME: ("INSTANCENAME",), _OBJNAME: ("INSTANCENAME", "CLASSNAME"),
    _PROPLIST: ("VALUE.ARRAY",), _UINT32: ("VALUE",), _INSTANCE: ("INSTANCE",),
    _NAMEDINST: ("VALUE.NAMEDINSTANCE",), _CLASS: ("CLASS",),
    _QUALDECL: ("QUALIFIER.DECLARATION",), _NEWVALUE: ("VALUE", "VALUE.ARRAY", "VALUE.REFERENCE"),
}

_PULL = {"FilterQueryLanguage": _STR, "FilterQuery": _STR, "OperationTimeout": _UINT32,
         "ContinueOnError": _BOOL, "MaxObjectCount": _UINT32}
_ASSOC = {"AssocClass": _CLASSNAME, "ResultClass": _CLASSNAME, "Role": _STR,
          "ResultRole": _STR}
_REF = {"ResultClass": _CLASSNAME, "Role": _STR}
_OBJ = {"IncludeQualifiers": _BOOL, "IncludeClassOrigin": _BOOL, "PropertyList": _PROPLIST}


def _op(required: dict, optional: dict | None = None):
    params = dict(required)
    params.update(optional or {})
    return frozenset(required), params


#: Every DSP0200 intrinsic operation: (required parameter names, {name: kind}).
INTRINSIC_OPERATIONS = {
    "GetClass": _op({"ClassName": _CLASSNAME},
                    {"LocalOnly": _BOOL, **_OBJ}),
    "EnumerateClasses": _op({}, {"ClassName": _CLASSNAME, "DeepInheritance": _BOOL,
                                 "LocalOnly": _BOOL, "IncludeQualifiers": _BOOL,
                                 "IncludeClassOrigin": _BOOL}),
    "EnumerateClassNames": _op({}, {"ClassName": _CLASSNAME, "DeepInheritance": _BOOL}),
    "CreateClass": _op({"NewClass": _CLASS}),
    "ModifyClass": _op({"ModifiedClass": _CLASS}),
    "DeleteClass": _op({"ClassName": _CLASSNAME}),
    "GetInstance": _op({"InstanceName": _INSTNAME}, {"LocalOnly": _BOOL, **_OBJ}),
    "EnumerateInstances": _op({"ClassName": _CLASSNAME},
                              {"LocalOnly": _BOOL, "DeepInheritance": _BOOL, **_OBJ}),
    "EnumerateInstanceNames": _op({"ClassName": _CLASSNAME}),
    "CreateInstance": _op({"NewInstance": _INSTANCE}),
    "ModifyInstance": _op({"ModifiedInstance": _NAMEDINST},
                          {"IncludeQualifiers": _BOOL, "PropertyList": _PROPLIST}),
    "DeleteInstance": _op({"InstanceName": _INSTNAME}),
    "Associators": _op({"ObjectName": _OBJNAME}, {**_ASSOC, **_OBJ}),
    "AssociatorNames": _op({"ObjectName": _OBJNAME}, _ASSOC),
    "References": _op({"ObjectName": _OBJNAME}, {**_REF, **_OBJ}),
    "ReferenceNames": _op({"ObjectName": _OBJNAME}, _REF),
    "ExecQuery": _op({"QueryLanguage": _STR, "Query": _STR}),
    "GetProperty": _op({"InstanceName": _INSTNAME, "PropertyName": _STR}),
    "SetProperty": _op({"InstanceName": _INSTNAME, "PropertyName": _STR},
                       {"NewValue": _NEWVALUE}),
    "GetQualifier": _op({"QualifierName": _STR}),
    "SetQualifier": _op({"QualifierDeclaration": _QUALDECL}),
    "DeleteQualifier": _op({"QualifierName": _STR}),
    "EnumerateQualifiers": _op({}),
    "OpenEnumerateInstances": _op({"ClassName": _CLASSNAME},
                                  {"DeepInheritance": _BOOL, "IncludeClassOrigin": _BOOL,
                                   "PropertyList": _PROPLIST, **_PULL}),
    "OpenEnumerateInstancePaths": _op({"ClassName": _CLASSNAME}, _PULL),
    "OpenAssociatorInstances": _op({"InstanceName": _INSTNAME},
                                   {**_ASSOC, "IncludeClassOrigin": _BOOL,
                                    "PropertyList": _PROPLIST, **_PULL}),
    "OpenAssociatorInstancePaths": _op({"InstanceName": _INSTNAME}, {**_ASSOC, **_PULL}),
    "OpenReferenceInstances": _op({"InstanceName": _INSTNAME},
                                  {**_REF, "IncludeClassOrigin": _BOOL,
                                   "PropertyList": _PROPLIST, **_PULL}),
    "OpenReferenceInstancePaths": _op({"InstanceName": _INSTNAME}, {**_REF, **_PULL}),
    "OpenQueryInstances": _op({"FilterQueryLanguage": _STR, "FilterQuery": _STR},
                              {"ReturnQueryResultClass": _BOOL, "OperationTimeout": _UINT32,
                               "ContinueOnError": _BOOL, "MaxObjectCount": _UINT32}),
    "PullInstancesWithPath": _op({"EnumerationContext": _STR, "MaxObjectCount": _UINT32}),
    "PullInstancePaths": _op({"EnumerationContext": _STR, "MaxObjectCount": _UINT32}),
    "PullInstances": _op({"EnumerationContext": _STR, "MaxObjectCount": _UINT32}),
    "CloseEnumeration": _op({"EnumerationContext": _STR}),
    "EnumerationCount": _op({"EnumerationContext": _STR}),
}
_OPERATION_BY_LOWER = {name.lower(): name for name in INTRINSIC_OPERATIONS}
_CANONICAL_PARAM = {name.lower(): name
                    for _, params in INTRINSIC_OPERATIONS.values() for name in params}

_IPARAM_KIDS = ("VALUE", "VALUE.ARRAY", "VALUE.REFERENCE", "INSTANCENAME", "CLASSNAME",
                "QUALIFIER.DECLARATION", "CLASS", "INSTANCE", "VALUE.NAMEDINSTANCE")
_PARAM_KIDS = ("VALUE", "VALUE.REFERENCE", "VALUE.ARRAY", "VALUE.REFARRAY", "CLASSNAME",
               "INSTANCENAME", "CLASS", "INSTANCE", "VALUE.NAMEDINSTANCE")


class _RequestParser(_Converter):

    def parse(self, root) -> CIMRequest:
        if root.tag != "CIM":
            raise _not_valid(f"the document element is {root.tag!s:.64}, not CIM")
        attrib = _check(root, ("CIMVERSION", "DTDVERSION"))
        if not _VERSION2_RE.match(attrib["CIMVERSION"]):
            raise ProtocolError(501, "unsupported-cim-version",
                                f"CIMVERSION {attrib['CIMVERSION'][:32]!r} is not 2.x")
        if not _VERSION2_RE.match(attrib["DTDVERSION"]):
            raise ProtocolError(501, "unsupported-dtd-version",
                                f"DTDVERSION {attrib['DTDVERSION'][:32]!r} is not 2.x")
        kids = _kids(root, ("MESSAGE", "DECLARATION"))
        if len(kids) != 1 or kids[0].tag != "MESSAGE":
            raise _not_valid("a CIM-XML request is CIM/MESSAGE")
        message = kids[0]
        attrib = _check(message, ("ID", "PROTOCOLVERSION"))
        if not _VERSION1_RE.match(attrib["PROTOCOLVERSION"]):
            raise ProtocolError(501, "unsupported-protocol-version",
                                f"PROTOCOLVERSION {attrib['PROTOCOLVERSION'][:32]!r} is "
                                "not 1.x")
        message_id, version = attrib["ID"], attrib["PROTOCOLVERSION"]
        kids = list(message)
        if len(kids) != 1 or not isinstance(kids[0].tag, str):
            raise _not_valid("element MESSAGE holds exactly one request")
        if kids[0].tag == "MULTIREQ":
            raise ProtocolError(501, "multiple-requests-unsupported",
                                "multiple requests (MULTIREQ) are not supported")
        if kids[0].tag != "SIMPLEREQ":
            raise _not_valid(f"element MESSAGE holds {kids[0].tag!s:.64}; this server "
                             "accepts SIMPLEREQ operation requests")
        simplereq = kids[0]
        _check(simplereq)
        calls = [k for k in _kids(simplereq, ("CORRELATOR", "IMETHODCALL", "METHODCALL"))
                 if k.tag != "CORRELATOR"]
        if len(calls) != 1:
            raise _not_valid("element SIMPLEREQ holds exactly one IMETHODCALL or METHODCALL")
        call = calls[0]
        if call.tag == "IMETHODCALL":
            return self.imethodcall(call, message_id, version)
        return self.methodcall(call, message_id, version)

    # ---- intrinsic
    def imethodcall(self, el, message_id, version) -> CIMRequest:
        attrib = _check(el, ("NAME",))
        name = attrib["NAME"]
        kids = _kids(el, ("LOCALNAMESPACEPATH", "IPARAMVALUE", "RESPONSEDESTINATION"))
        if not kids or kids[0].tag != "LOCALNAMESPACEPATH":
            raise _not_valid("element IMETHODCALL starts with LOCALNAMESPACEPATH")
        if any(k.tag == "RESPONSEDESTINATION" for k in kids):
            raise _not_valid("asynchronous responses (RESPONSEDESTINATION) are not supported")
        if any(k.tag == "LOCALNAMESPACEPATH" for k in kids[1:]):
            raise _not_valid("element IMETHODCALL has one LOCALNAMESPACEPATH")
        request = CIMRequest(kind="imethod", name=name, namespace="",
                             message_id=message_id, protocol_version=version)
        # DTD-level shape of every IPARAMVALUE first: a malformed document is a 400 whatever
        # the operation is.
        iparams = []
        for kid in kids[1:]:
            p_attrib = _check(kid, ("NAME",))
            children = _kids(kid, _IPARAM_KIDS)
            if len(children) > 1:
                raise _not_valid("element IPARAMVALUE holds at most one value")
            iparams.append((p_attrib["NAME"], children[0] if children else None))
        try:
            request.namespace = self.namespace(kids[0], 4)
            canonical = _OPERATION_BY_LOWER.get(name.lower())
            if canonical is None:
                raise _Fault(f"intrinsic method {name[:64]!r} is not supported",
                             pywbem.CIM_ERR_NOT_SUPPORTED)
            request.name = canonical
            required, table = INTRINSIC_OPERATIONS[canonical]
            lower_table = {k.lower(): (k, v) for k, v in table.items()}
            params = NocaseDict()
            for p_name, child in iparams:
                entry = lower_table.get(p_name.lower())
                if entry is None:
                    raise _Fault(f"{canonical} has no parameter {p_name[:64]!r}")
                p_canon, kind = entry
                if p_canon in params:
                    raise _Fault(f"parameter {p_canon} is given twice")
                present, value = self.iparam(p_canon, kind, child)
                if present:
                    params[p_canon] = value
            for p_name in required:
                if params.get(p_name) is None:
                    raise _Fault(f"{canonical} requires the parameter {p_name}")
            request.params = params
        except _Fault as f:
            if not request.namespace:
                request.namespace = "/".join(
                    ns.get("NAME", "") for ns in kids[0] if isinstance(ns.tag, str))
            raise RequestCIMError(f.code, str(f), request) from None
        return request

    def iparam(self, name, kind, child):
        """(present, value) of one IPARAMVALUE; a NULL boolean counts as omitted."""
        if child is None:
            return kind != _BOOL, None
        if child.tag not in _KIND_ELEMENTS[kind]:
            raise _Fault(f"parameter {name} cannot be a {child.tag}")
        depth = 6
        if kind == _BOOL:
            try:
                return True, parse_boolean(self.value(child, depth))
            except ValueError as e:
                raise _Fault(f"parameter {name}: {e}") from None
        if kind == _STR:
            return True, self.value(child, depth)
        if kind == _UINT32:
            return True, _typed(self.value(child, depth), "uint32", f"parameter {name}")
        if kind == _CLASSNAME:
            return True, self.classname(child, depth).classname
        if kind in (_INSTNAME, _OBJNAME):
            return True, self.path(child, depth)
        if kind == _PROPLIST:
            names = self.value_array(child, depth)
            if any(n is None for n in names):
                raise _Fault(f"parameter {name} may not contain NULL entries")
            return True, [n.strip() for n in names]
        if kind == _NEWVALUE:
            if child.tag == "VALUE":
                return True, self.value(child, depth)
            if child.tag == "VALUE.ARRAY":
                return True, self.value_array(child, depth)
            return True, self.value_reference(child, depth)
        return True, getattr(self, _METHOD_OF[child.tag])(child, depth)

    # ---- extrinsic
    def methodcall(self, el, message_id, version) -> CIMRequest:
        attrib = _check(el, ("NAME",))
        name = attrib["NAME"]
        kids = _kids(el, ("LOCALCLASSPATH", "LOCALINSTANCEPATH", "PARAMVALUE",
                          "RESPONSEDESTINATION"))
        if not kids or kids[0].tag not in ("LOCALCLASSPATH", "LOCALINSTANCEPATH"):
            raise _not_valid("element METHODCALL starts with LOCALCLASSPATH or "
                             "LOCALINSTANCEPATH")
        if any(k.tag == "RESPONSEDESTINATION" for k in kids):
            raise _not_valid("asynchronous responses (RESPONSEDESTINATION) are not supported")
        if any(k.tag != "PARAMVALUE" for k in kids[1:]):
            raise _not_valid("element METHODCALL has one target path, then PARAMVALUEs")
        request = CIMRequest(kind="method", name=name, namespace="",
                             message_id=message_id, protocol_version=version)
        shapes = []
        for kid in kids[1:]:
            p_attrib = _check(kid, ("NAME",), ("PARAMTYPE", "TYPE", "EmbeddedObject",
                                               "EMBEDDEDOBJECT"))
            children = _kids(kid, _PARAM_KIDS)
            if len(children) > 1:
                raise _not_valid("element PARAMVALUE holds at most one value")
            p_type = _cim_type(kid, p_attrib, "PARAMTYPE", _PARAM_TYPES)
            if p_type is None:
                p_type = _cim_type(kid, p_attrib, "TYPE", _PARAM_TYPES)
            shapes.append((p_attrib["NAME"], p_type, _embedded(kid, p_attrib),
                           children[0] if children else None))
        try:
            target = self.path(kids[0], 4)
            request.target = target
            request.namespace = target.namespace
            if not _CIM_NAME_RE.match(name):
                raise _Fault(f"invalid method name {name[:64]!r}",
                             pywbem.CIM_ERR_METHOD_NOT_FOUND)
            params = NocaseDict()
            for p_name, p_type, embedded, child in shapes:
                _name(p_name, "parameter name")
                if p_name in params:
                    raise _Fault(f"parameter {p_name} is given twice")
                params[p_name] = self.paramvalue(p_name, p_type, embedded, child)
            request.params = params
        except _Fault as f:
            raise RequestCIMError(f.code, str(f), request) from None
        return request

    def paramvalue(self, name, p_type, embedded, child) -> RawParam:
        what = f"parameter {name}"
        depth = 6
        if child is None:
            return RawParam(name, p_type, None, embedded)
        tag = child.tag
        if tag in ("VALUE", "VALUE.ARRAY"):
            raw = self.value(child, depth) if tag == "VALUE" else self.value_array(child, depth)
            if p_type == "reference":
                raise _Fault(f"{what}: a reference is passed as VALUE.REFERENCE")
            if embedded is not None:
                value = self._embedded_raw(raw, embedded, depth, what)
            elif p_type is not None:
                value = (_typed(raw, p_type, what) if tag == "VALUE" else
                         [None if v is None else _typed(v, p_type, what) for v in raw])
            else:
                value = raw
            return RawParam(name, p_type, value, embedded)
        if tag in ("VALUE.REFERENCE", "VALUE.REFARRAY", "CLASSNAME", "INSTANCENAME"):
            if p_type not in (None, "reference"):
                raise _Fault(f"{what}: PARAMTYPE {p_type} does not take a reference")
            if tag == "VALUE.REFERENCE":
                value = self.value_reference(child, depth)
            elif tag == "VALUE.REFARRAY":
                value = self.value_refarray(child, depth)
            else:
                value = self.path(child, depth)
            return RawParam(name, p_type, value, embedded)
        # CLASS, INSTANCE, VALUE.NAMEDINSTANCE: the object itself (DSP0201 2.4)
        if p_type not in (None, "string"):
            raise _Fault(f"{what}: PARAMTYPE {p_type} does not take an object")
        value = getattr(self, _METHOD_OF[tag])(child, depth)
        kind = embedded or ("object" if tag == "CLASS" else "instance")
        return RawParam(name, p_type, value, kind)

    def _embedded_raw(self, raw, kind, depth, what):
        if isinstance(raw, list):
            return [None if v is None else self.embedded_object(v, kind, depth, what)
                    for v in raw]
        return self.embedded_object(raw, kind, depth, what)


def parse_request(body: bytes, *, max_size: int = MAX_REQUEST_SIZE,
                  max_depth: int = MAX_DEPTH) -> CIMRequest:
    """Parse one CIM-XML operation request.

    Returns a CIMRequest (provider/messages.py). Paths inside intrinsic parameters
    (InstanceName, ObjectName, ModifiedInstance.path) carry no namespace: the operation's
    namespace is `request.namespace`. The METHODCALL target carries its namespace.
    Raises ProtocolError for protocol faults, RequestCIMError (a pywbem.CIMError with
    `.request`) for faults answered inside a CIM response.
    """
    root = _parse_xml(body, max_size)
    try:
        return _RequestParser(max_depth).parse(root)
    except RecursionError:
        raise _not_valid("elements nest too deeply") from None


# --------------------------------------------------------------------------- typing helpers

def type_value(value, cim_type: str, is_array: bool, embedded: str | None = None, *,
               name: str = "value"):
    """Type a raw parameter value with a declared CIM type, as the dispatcher knows it
    from the class (method parameter, property for SetProperty NewValue).

    `value` is what the parser produced: str, list of str/None, a path, an object, or an
    already typed value (client sent PARAMTYPE), which is re-checked against `cim_type`.
    `embedded` is 'instance' or 'object' for EmbeddedInstance/EmbeddedObject declarations.
    Raises RequestCIMError(CIM_ERR_INVALID_PARAMETER) when the value does not fit."""
    if value is None:
        return None
    try:
        if is_array:
            if not isinstance(value, list):
                raise _Fault(f"{name} must be an array")
            return [None if v is None else _type_scalar(v, cim_type, embedded, name)
                    for v in value]
        if isinstance(value, list):
            raise _Fault(f"{name} must not be an array")
        return _type_scalar(value, cim_type, embedded, name)
    except _Fault as f:
        raise RequestCIMError(f.code, str(f)) from None


def _type_scalar(v, cim_type, embedded, name):
    if cim_type == "reference":
        if isinstance(v, (CIMInstanceName, CIMClassName)):
            return v
        if isinstance(v, str):
            try:
                return CIMInstanceName.from_wbem_uri(v if v.startswith("/") else "/" + v)
            except ValueError as e:
                raise _Fault(f"{name}: not an instance path: {e}") from None
        raise _Fault(f"{name} must be a reference")
    if embedded:
        if isinstance(v, CIMInstance) or (isinstance(v, CIMClass) and embedded == "object"):
            return v
        if isinstance(v, str):
            return _Converter(MAX_DEPTH).embedded_object(v, embedded, 0, name)
        raise _Fault(f"{name} must be an embedded {embedded}")
    if cim_type not in CIM_TYPES:
        raise _Fault(f"{name}: unknown CIM type {cim_type!r}")
    if isinstance(v, (CIMInstanceName, CIMClassName, CIMInstance, CIMClass)):
        raise _Fault(f"{name} must be a {cim_type} value, not an object or path")
    if isinstance(v, str) and type(v) is str:
        return _typed(v, cim_type, name)
    # already typed (the client sent PARAMTYPE): re-check through its CIM-XML text
    if getattr(v, "cimtype", None) == cim_type or (cim_type == "boolean" and
                                                   isinstance(v, bool)):
        return v
    try:
        text = format_value(v)
    except TypeError as e:
        raise _Fault(f"{name}: {e}") from None
    return _typed(text, cim_type, name)


def type_param(raw: RawParam, cim_type: str, is_array: bool, embedded: str | None = None):
    """`type_value` for a METHODCALL RawParam with the method's declared parameter type."""
    return type_value(raw.value, cim_type, is_array, embedded, name=f"parameter {raw.name}")


# --------------------------------------------------------------------------- headers

def _decode_header(value: str | bytes | None, header: str) -> str:
    if value is None:
        raise ProtocolError(400, "header-mismatch", f"the {header} header is missing")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    try:
        decoded = unquote(value.strip(), errors="strict")
    except UnicodeDecodeError:
        raise ProtocolError(400, "header-mismatch",
                            f"the {header} header is not UTF-8 once %-decoded") from None
    if not decoded:
        raise ProtocolError(400, "header-mismatch", f"the {header} header is empty")
    return decoded


def check_headers_match(request: CIMRequest, cim_method_header, cim_object_header,
                        cim_protocol_version_header=None) -> None:
    """DSP0200 6.3: CIMMethod must name the call (case-insensitively) and CIMObject, once
    %-decoded, the namespace (intrinsic) or the target path (extrinsic); a CIMProtocolVersion
    header, when given, must equal the message's. Raises ProtocolError 400 header-mismatch."""
    method = _decode_header(cim_method_header, "CIMMethod")
    if method.lower() != request.name.lower():
        raise ProtocolError(400, "header-mismatch",
                            f"CIMMethod {method[:64]!r} differs from the request's "
                            f"{request.name!r}")
    obj = _decode_header(cim_object_header, "CIMObject")
    if cim_protocol_version_header is not None and \
            cim_protocol_version_header.strip() != request.protocol_version:
        raise ProtocolError(400, "header-mismatch",
                            f"CIMProtocolVersion {cim_protocol_version_header[:16]!r} differs "
                            f"from the message's {request.protocol_version!r}")
    if request.kind == "imethod":
        if obj.strip("/").lower() != request.namespace.lower():
            raise ProtocolError(400, "header-mismatch",
                                f"CIMObject {obj[:128]!r} is not the namespace "
                                f"{request.namespace!r}")
        return
    if not _object_matches(obj, request.target):
        raise ProtocolError(400, "header-mismatch",
                            f"CIMObject {obj[:128]!r} is not the target of the method call")


def _object_matches(obj: str, target) -> bool:
    ns, sep, rest = obj.lstrip("/").partition(":")
    if not sep or target is None or target.namespace is None:
        return False
    if ns.strip("/").lower() != target.namespace.lower():
        return False
    if isinstance(target, CIMClassName):
        return rest.lower() == target.classname.lower()
    try:
        path = CIMInstanceName.from_wbem_uri("/" + obj.lstrip("/"))
    except (ValueError, TypeError):
        return False
    if path.classname.lower() != target.classname.lower():
        return False
    if len(path.keybindings) != len(target.keybindings):
        return False
    for key, value in target.keybindings.items():
        if key not in path.keybindings:
            return False
        other = path.keybindings[key]
        if isinstance(value, CIMInstanceName) and isinstance(other, CIMInstanceName):
            a, b = value.copy(), other.copy()
            a.host = b.host = None
            if a.namespace is None or b.namespace is None:
                a.namespace = b.namespace = None
            if a != b:
                return False
        elif value != other and str(value) != str(other):
            return False
    return True
