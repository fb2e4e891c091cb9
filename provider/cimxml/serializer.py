"""lxml serializer: Dispatcher results -> CIM-XML response bytes (DSP0201, DTD 2.0 envelope).

Elements are built straight from the pywbem objects' attributes (never via pywbem's
minidom `tocimxml`). Every element that would be empty gets the text '' so that libxml2
writes `<X></X>`: sblim wbemcli cannot read self-closing tags.
"""
from __future__ import annotations

import re
import socket
import threading
from functools import lru_cache

from lxml import etree
from pywbem import (CIMClass, CIMClassName, CIMInstance, CIMInstanceName, CIMParameter,
                    CIMProperty, CIMQualifierDeclaration)

from provider.cimxml.values import _FORMATTERS, format_value, keyvalue_types
from provider.cimxml.values import format_value as _format_value
from provider.messages import CIMRequest, MethodResult, PullResult

_SubElement = etree.SubElement
_Element = etree.Element
_XML_DECL = b'<?xml version="1.0" encoding="utf-8" ?>\n'

# Characters XML 1.0 cannot carry at all; a CIM string holding one is sent with U+FFFD.
_NOT_XML_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@lru_cache(maxsize=1)
def _default_host() -> str:
    return socket.getfqdn() or socket.gethostname() or "localhost"


def _xml_text(s: str) -> str:
    return _NOT_XML_RE.sub("\ufffd", s)


# ---------------------------------------------------------------------------- builders
# Each _add_* appends to `parent`; attribute dicts are built in DSP0201 order.

def _empty(parent, tag, attrib=None):
    el = _SubElement(parent, tag, attrib) if attrib else _SubElement(parent, tag)
    el.text = ""
    return el


def _add_value(parent, value, embedded=None):
    el = _SubElement(parent, "VALUE")
    if embedded is not None and isinstance(value, (CIMInstance, CIMClass)):
        el.text = _object_text(value)
    else:
        el.text = format_value(value)
    return el


def _add_value_array(parent, values, embedded=None):
    arr = _SubElement(parent, "VALUE.ARRAY")
    if not values:
        arr.text = ""
        return arr
    for v in values:
        if v is None:
            _SubElement(arr, "VALUE.NULL").text = ""
        elif embedded is not None and isinstance(v, (CIMInstance, CIMClass)):
            _SubElement(arr, "VALUE").text = _object_text(v)
        else:
            fmt = _FORMATTERS.get(type(v), _format_value)
            _SubElement(arr, "VALUE").text = v if fmt is None else fmt(v)
    return arr


def _object_text(obj) -> str:
    """An embedded object: the CIM-XML of the INSTANCE/CLASS as text (lxml escapes it)."""
    holder = _Element("X")
    if isinstance(obj, CIMInstance):
        _add_instance(holder, obj)
    else:
        _add_class(holder, obj)
    return etree.tostring(holder[0], encoding="unicode")


def _add_localnamespacepath(parent, namespace):
    lnp = _SubElement(parent, "LOCALNAMESPACEPATH")
    for part in namespace.strip("/").split("/"):
        _SubElement(lnp, "NAMESPACE", NAME=part).text = ""
    return lnp


def _add_namespacepath(parent, host, namespace):
    nsp = _SubElement(parent, "NAMESPACEPATH")
    _SubElement(nsp, "HOST").text = host
    _add_localnamespacepath(nsp, namespace)
    return nsp


def _add_instancename(parent, path):
    if _TEMPLATES_OK:
        el = _instancename_from_template(path)
        if el is not None:
            parent.append(el)
            return el
    return _build_instancename(parent, path)


def _build_instancename(parent, path):
    el = _SubElement(parent, "INSTANCENAME", CLASSNAME=path.classname)
    kbs = path.keybindings
    if not kbs:
        el.text = ""
        return el
    for key, value in kbs.items():
        kb = _SubElement(el, "KEYBINDING", NAME=key)
        if isinstance(value, (CIMInstanceName, CIMClassName)):
            _add_value_reference(kb, value)
            continue
        valuetype, cim_type, text = keyvalue_types(value)
        if cim_type is None:
            kv = _SubElement(kb, "KEYVALUE", VALUETYPE=valuetype)
        else:
            kv = _SubElement(kb, "KEYVALUE", VALUETYPE=valuetype, TYPE=cim_type)
        kv.text = text
    return el


def _add_instancepath(parent, path, host=None, namespace=None):
    ip = _SubElement(parent, "INSTANCEPATH")
    _add_namespacepath(ip, path.host or host or _default_host(), path.namespace or namespace)
    _add_instancename(ip, path)
    return ip


def _add_classpath(parent, path, host=None, namespace=None):
    cp = _SubElement(parent, "CLASSPATH")
    _add_namespacepath(cp, path.host or host or _default_host(), path.namespace or namespace)
    _SubElement(cp, "CLASSNAME", NAME=path.classname).text = ""
    return cp


def _add_value_reference(parent, path):
    """VALUE.REFERENCE with the path element its host/namespace call for (as pywbem does)."""
    vr = _SubElement(parent, "VALUE.REFERENCE")
    if isinstance(path, CIMClassName):
        if path.namespace is None:
            _SubElement(vr, "CLASSNAME", NAME=path.classname).text = ""
        elif path.host is None:
            lcp = _SubElement(vr, "LOCALCLASSPATH")
            _add_localnamespacepath(lcp, path.namespace)
            _SubElement(lcp, "CLASSNAME", NAME=path.classname).text = ""
        else:
            _add_classpath(vr, path)
        return vr
    if path.namespace is None:
        _add_instancename(vr, path)
    elif path.host is None:
        lip = _SubElement(vr, "LOCALINSTANCEPATH")
        _add_localnamespacepath(lip, path.namespace)
        _add_instancename(lip, path)
    else:
        _add_instancepath(vr, path)
    return vr


def _flavors(attrib, obj):
    # QualifierFlavor attributes, written only when set (absent means the DTD default).
    for attr, name in (("overridable", "OVERRIDABLE"), ("tosubclass", "TOSUBCLASS"),
                       ("toinstance", "TOINSTANCE"), ("translatable", "TRANSLATABLE")):
        flag = getattr(obj, attr)
        if flag is not None:
            attrib[name] = "true" if flag else "false"


def _add_qualifier(parent, q):
    attrib = {"NAME": q.name, "TYPE": q.type}
    if q.propagated is not None:
        attrib["PROPAGATED"] = "true" if q.propagated else "false"
    _flavors(attrib, q)
    el = _SubElement(parent, "QUALIFIER", attrib)
    value = q.value
    if value is None:
        el.text = ""
    elif isinstance(value, list):
        _add_value_array(el, value)
    else:
        _add_value(el, value)
    return el


def _items(ncd):
    """The values of a pywbem NocaseDict. Reads its `_data` ({lower: (key, value)}) directly:
    the public views cost a generator frame per item, which shows on large enumerations."""
    if ncd is None:   # pywbem leaves unset qualifier dicts as None internally
        return ()
    data = getattr(ncd, "_data", None)
    if data is None:
        return list(ncd.values())
    return [kv[1] for kv in data.values()]


def _add_property(parent, p):
    """PROPERTY, PROPERTY.ARRAY or PROPERTY.REFERENCE. Hot path: one call per property, so
    it reads CIMProperty's slots (pywbem is pinned to 1.9.x; tests guard the slot names)."""
    cim_type, value, quals = p._type, p._value, p._qualifiers
    if cim_type == "reference":
        attrib = {"NAME": p._name}
        if p._reference_class is not None:
            attrib["REFERENCECLASS"] = p._reference_class
        if p._class_origin is not None:
            attrib["CLASSORIGIN"] = p._class_origin
        if p._propagated is not None:
            attrib["PROPAGATED"] = "true" if p._propagated else "false"
        el = _SubElement(parent, "PROPERTY.REFERENCE", attrib)
        for q in _items(quals):
            _add_qualifier(el, q)
        if value is not None:
            _add_value_reference(el, value)
        elif len(el) == 0:
            el.text = ""
        return el
    attrib = {"NAME": p._name, "TYPE": cim_type}
    is_array = p._is_array
    if is_array and p._array_size is not None:
        attrib["ARRAYSIZE"] = str(p._array_size)
    if p._class_origin is not None:
        attrib["CLASSORIGIN"] = p._class_origin
    if p._propagated is not None:
        attrib["PROPAGATED"] = "true" if p._propagated else "false"
    embedded = p._embedded_object
    if embedded is not None:
        attrib["EmbeddedObject"] = embedded
    el = _SubElement(parent, "PROPERTY.ARRAY" if is_array else "PROPERTY", attrib)
    if quals is not None and quals._data:
        for q in _items(quals):
            _add_qualifier(el, q)
    if value is None:
        if len(el) == 0:
            el.text = ""
    elif is_array:
        _add_value_array(el, value, embedded)
    elif embedded is not None:
        _add_value(el, value, embedded)
    else:
        fmt = _FORMATTERS.get(type(value), _format_value)
        _SubElement(el, "VALUE").text = value if fmt is None else fmt(value)
    return el


def _add_instance(parent, inst):
    if _TEMPLATES_OK:
        el = _instance_from_template(inst)
        if el is not None:
            parent.append(el)
            return el
    return _build_instance(parent, inst)


def _build_instance(parent, inst):
    el = _SubElement(parent, "INSTANCE", CLASSNAME=inst.classname)
    quals = _items(inst.qualifiers)
    for q in quals:
        _add_qualifier(el, q)
    props = _items(inst.properties)
    add = _add_property
    for p in props:
        add(el, p)
    if not props and not quals:
        el.text = ""
    return el


def _add_parameter(parent, p):
    if p.type == "reference":
        tag = "PARAMETER.REFARRAY" if p.is_array else "PARAMETER.REFERENCE"
        attrib = {"NAME": p.name}
        if p.reference_class is not None:
            attrib["REFERENCECLASS"] = p.reference_class
    else:
        tag = "PARAMETER.ARRAY" if p.is_array else "PARAMETER"
        attrib = {"NAME": p.name, "TYPE": p.type}
    if p.is_array and p.array_size is not None:
        attrib["ARRAYSIZE"] = str(p.array_size)
    el = _SubElement(parent, tag, attrib)
    for q in p.qualifiers.values():
        _add_qualifier(el, q)
    if not p.qualifiers:
        el.text = ""
    return el


def _add_method(parent, m):
    attrib = {"NAME": m.name}
    if m.return_type is not None:
        attrib["TYPE"] = m.return_type
    if m.class_origin is not None:
        attrib["CLASSORIGIN"] = m.class_origin
    if m.propagated is not None:
        attrib["PROPAGATED"] = "true" if m.propagated else "false"
    el = _SubElement(parent, "METHOD", attrib)
    for q in m.qualifiers.values():
        _add_qualifier(el, q)
    for p in m.parameters.values():
        _add_parameter(el, p)
    if not m.qualifiers and not m.parameters:
        el.text = ""
    return el


def _add_class(parent, c):
    attrib = {"NAME": c.classname}
    if c.superclass is not None:
        attrib["SUPERCLASS"] = c.superclass
    el = _SubElement(parent, "CLASS", attrib)
    for q in c.qualifiers.values():
        _add_qualifier(el, q)
    for p in c.properties.values():
        _add_property(el, p)
    for m in c.methods.values():
        _add_method(el, m)
    if not c.qualifiers and not c.properties and not c.methods:
        el.text = ""
    return el


_SCOPE_NAMES = ("ASSOCIATION", "CLASS", "INDICATION", "METHOD", "PARAMETER", "PROPERTY",
                "REFERENCE")


def _add_qualifier_declaration(parent, qd):
    attrib = {"NAME": qd.name, "TYPE": qd.type}
    if qd.is_array is not None:
        attrib["ISARRAY"] = "true" if qd.is_array else "false"
    if qd.array_size is not None:
        attrib["ARRAYSIZE"] = str(qd.array_size)
    _flavors(attrib, qd)
    el = _SubElement(parent, "QUALIFIER.DECLARATION", attrib)
    scopes = qd.scopes
    if scopes:
        if scopes.get("any"):
            scope_attrib = {name: "true" for name in _SCOPE_NAMES}
        else:
            scope_attrib = {k.upper(): "true" if v else "false"
                            for k, v in sorted(scopes.items(), key=lambda kv: kv[0].upper())
                            if k.upper() in _SCOPE_NAMES}
        _empty(el, "SCOPE", scope_attrib)
    value = qd.value
    if value is not None:
        if isinstance(value, list):
            _add_value_array(el, value)
        else:
            _add_value(el, value)
    elif not scopes:
        el.text = ""
    return el


def _add_value_namedinstance(parent, inst):
    if _TEMPLATES_OK:
        el = _named_from_template("VALUE.NAMEDINSTANCE", inst, None, None)
        if el is not None:
            parent.append(el)
            return el
    return _build_value_namedinstance(parent, inst)


def _build_value_namedinstance(parent, inst):
    if inst.path is None:
        raise ValueError(f"instance of {inst.classname} has no path")
    el = _SubElement(parent, "VALUE.NAMEDINSTANCE")
    _add_instancename(el, inst.path)
    _add_instance(el, inst)
    return el


def _add_paramvalue(parent, name, cim_type, value, embedded=None, is_array=None):
    attrib = {"NAME": name}
    if cim_type is not None:
        attrib["PARAMTYPE"] = cim_type
    if embedded is not None:
        attrib["EmbeddedObject"] = embedded
    el = _SubElement(parent, "PARAMVALUE", attrib)
    if value is None:
        el.text = ""
    elif isinstance(value, list) or is_array:
        if cim_type == "reference":
            arr = _SubElement(el, "VALUE.REFARRAY")
            for v in value or ():
                if v is None:
                    _SubElement(arr, "VALUE.NULL").text = ""
                else:
                    _add_value_reference(arr, v)
            if not value:
                arr.text = ""
        else:
            _add_value_array(el, value, embedded)
    elif isinstance(value, (CIMInstanceName, CIMClassName)):
        _add_value_reference(el, value)
    else:
        _add_value(el, value, embedded)
    return el


# ---------------------------------------------------------------------------- templates
# An INSTANCE (or INSTANCENAME) is a fixed element structure around variable texts: once the
# structure is known -- class, property names, types, which values are NULL, array lengths --
# the elements of every further instance of that shape are one C-level copy of a template
# built by the element builders above, with the VALUE (KEYVALUE) texts then replaced in
# document order. Copying costs a fraction of creating the elements one by one. Properties
# the templates do not describe (references, embedded objects, qualifiers, class origin,
# propagated, fixed array sizes, NULL array entries) send the instance down the builders.
# Templates live per thread: lxml trees are not shared between the worker threads.

_MAX_TEMPLATES = 512
_templates = threading.local()
_copy_tree = etree._Element.__copy__      # lxml copies the whole subtree
# pywbem is pinned to 1.9.x; should a release rename these, the builders are used throughout.
_TEMPLATES_OK = (
    {"_name", "_value", "_type", "_class_origin", "_array_size", "_propagated", "_is_array",
     "_qualifiers", "_embedded_object"} <= set(getattr(CIMProperty, "__slots__", ()))
    and {"_classname", "_properties", "_qualifiers"} <= set(
        getattr(CIMInstance, "__slots__", ()))
    and {"_classname", "_keybindings"} <= set(getattr(CIMInstanceName, "__slots__", ())))


def _template_cache() -> dict:
    cache = getattr(_templates, "cache", None)
    if cache is None:
        cache = _templates.cache = {}
    return cache


def _from_template(key, texts, build, obj, tags):
    cache = _template_cache()
    template = cache.get(key)
    if template is None:
        if len(cache) >= _MAX_TEMPLATES:
            cache.clear()
        holder = _Element("X")
        template = build(holder, obj)
        holder.remove(template)
        cache[key] = template
    el = _copy_tree(template)
    for slot, text in zip(el.iter(*tags), texts):
        slot.text = text
    return el


def _instance_parts(inst):
    """(shape key, VALUE texts) of `inst`, or None when a property is of a kind the
    templates do not describe."""
    quals = inst._qualifiers
    if quals is not None and getattr(quals, "_data", quals):
        return None
    data = getattr(inst._properties, "_data", None)
    if not data:
        return None           # an empty INSTANCE: nothing to gain
    key = [inst._classname]
    texts = []
    add_key, add_text = key.append, texts.append
    formatters = _FORMATTERS
    for _folded, (_name, p) in data.items():
        cim_type = p._type
        if cim_type == "reference" or p._embedded_object is not None \
                or p._class_origin is not None or p._propagated is not None:
            return None
        pq = p._qualifiers
        if pq is not None and getattr(pq, "_data", pq):
            return None
        value = p._value
        add_key(p._name)
        add_key(cim_type)
        if p._is_array:
            if p._array_size is not None:
                return None
            if value is None:
                add_key(-1)
                continue
            add_key(len(value))
            for v in value:
                if v is None:
                    return None
                fmt = formatters.get(type(v), _format_value)
                add_text(v if fmt is None else fmt(v))
        elif value is None:
            add_key(None)
        else:
            add_key("v")      # a scalar value (arrays record their length, or -1)
            fmt = formatters.get(type(value), _format_value)
            add_text(value if fmt is None else fmt(value))
    return tuple(key), texts


def _instancename_parts(path):
    """(shape key, KEYVALUE texts) of an instance path, or None (reference keys)."""
    data = getattr(path._keybindings, "_data", None)
    if not data:
        return None
    key = [path._classname]
    texts = []
    for _folded, (name, value) in data.items():
        if isinstance(value, (CIMInstanceName, CIMClassName)):
            return None
        valuetype, cim_type, text = keyvalue_types(value)
        key.append(name)
        key.append(valuetype)
        key.append(cim_type)
        texts.append(text)
    return tuple(key), texts


def _instance_from_template(inst):
    parts = _instance_parts(inst)
    if parts is None:
        return None
    return _from_template(("INSTANCE", parts[0]), parts[1], _build_instance, inst, ("VALUE",))


def _instancename_from_template(path):
    parts = _instancename_parts(path)
    if parts is None:
        return None
    return _from_template(("INSTANCENAME", parts[0]), parts[1], _build_instancename, path,
                          ("KEYVALUE",))


def _named_from_template(tag, inst, host, namespace):
    """VALUE.NAMEDINSTANCE (host None) or `tag` holding INSTANCEPATH (host and namespace
    set) and INSTANCE, in one copy: the KEYVALUE texts of the path come first in document
    order, then the VALUE texts of the instance."""
    path = inst.path
    if path is None:
        return None
    name_parts = _instancename_parts(path)
    if name_parts is None:
        return None
    inst_parts = _instance_parts(inst)
    if inst_parts is None:
        return None
    if host is None:
        key = (tag, name_parts[0], inst_parts[0])
        build = _build_value_namedinstance
    else:
        host = path.host or host or _default_host()
        namespace = path.namespace or namespace
        key = (tag, host, namespace, name_parts[0], inst_parts[0])

        def build(parent, obj):
            return _build_instance_with_path(parent, tag, obj, host, namespace)
    return _from_template(key, name_parts[1] + inst_parts[1], build, inst,
                          ("KEYVALUE", "VALUE"))


# ---------------------------------------------------------------------------- responses

def _envelope(request: CIMRequest):
    cim = _Element("CIM", CIMVERSION="2.0", DTDVERSION="2.0")
    msg = _SubElement(cim, "MESSAGE", ID=request.message_id or "0",
                      PROTOCOLVERSION=request.protocol_version or "1.0")
    rsp = _SubElement(msg, "SIMPLERSP")
    tag = "IMETHODRESPONSE" if request.kind == "imethod" else "METHODRESPONSE"
    return cim, _SubElement(rsp, tag, NAME=request.name)


def _tobytes(cim) -> bytes:
    return _XML_DECL + etree.tostring(cim, encoding="utf-8")


def _sanitize(obj):
    """Deep copy of a result with every string made XML-safe (only on the rare retry)."""
    if isinstance(obj, str):
        return type(obj)(_xml_text(obj)) if _NOT_XML_RE.search(obj) else obj
    if isinstance(obj, list):
        return [_sanitize(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_sanitize(v) for v in obj)
    if isinstance(obj, (CIMInstance, CIMClass)):
        obj = obj.copy()
        for p in obj.properties.values():
            p.value = _sanitize(p.value)
        for q in obj.qualifiers.values():
            q.value = _sanitize(q.value)
        if obj.path is not None:
            obj.path = _sanitize(obj.path)
        return obj
    if isinstance(obj, CIMInstanceName):
        obj = obj.copy()
        for k, v in list(obj.keybindings.items()):
            obj.keybindings[k] = _sanitize(v)
        return obj
    if isinstance(obj, CIMProperty):
        obj = obj.copy()
        obj.value = _sanitize(obj.value)
        return obj
    if isinstance(obj, CIMParameter):
        obj = obj.copy()
        obj.value = _sanitize(obj.value)
        return obj
    if isinstance(obj, PullResult):
        return PullResult(_sanitize(obj.objects), obj.end_of_sequence, obj.context,
                          _sanitize(obj.query_result_class))
    if isinstance(obj, MethodResult):
        return MethodResult(_sanitize(obj.return_value), obj.return_type,
                            _sanitize(obj.out_params))
    return obj


def serialize_response(request: CIMRequest, result, *, host: str | None = None) -> bytes:
    """The CIM-XML response to `request` carrying `result` (shapes: docs/architecture.md).

    `host` fills HOST in INSTANCEPATH/CLASSPATH when a result path has none (default: this
    machine's FQDN); a missing namespace there is the request's. Raises ValueError or
    TypeError when the result does not fit the operation."""
    try:
        return _serialize(request, result, host)
    except ValueError as e:
        # lxml refuses strings XML 1.0 cannot carry (control characters, lone surrogates)
        if "XML compatible" not in str(e) and "surrogates" not in str(e):
            raise
        return _serialize(request, _sanitize(result), host)


def _serialize(request, result, host) -> bytes:
    cim, rsp = _envelope(request)
    if request.kind != "imethod":
        _method_result(rsp, result)
        return _tobytes(cim)
    op = request.name
    ns = request.namespace
    builder = _IRETURN_BUILDERS.get(op)
    if builder is None:
        raise ValueError(f"no response shape for operation {op}")
    builder(rsp, result, ns, host)
    if len(rsp) == 0:
        rsp.text = ""
    return _tobytes(cim)


def _ireturn(rsp):
    irv = _SubElement(rsp, "IRETURNVALUE")
    return irv


def _close(irv):
    if len(irv) == 0:
        irv.text = ""


def _list(result, what):
    if result is None:
        return []
    if not isinstance(result, (list, tuple)):
        raise TypeError(f"{what} expects a list, got {type(result).__name__}")
    return result


def _r_none(rsp, result, ns, host):
    if result is not None:
        raise TypeError("this operation returns nothing")


def _expect(result, cls, op):
    if not isinstance(result, cls):
        raise TypeError(f"{op} returns a {cls.__name__}, got {type(result).__name__}")
    return result


def _r_class(rsp, result, ns, host):
    irv = _ireturn(rsp)
    _add_class(irv, _expect(result, CIMClass, "GetClass"))


def _r_classes(rsp, result, ns, host):
    irv = _ireturn(rsp)
    for c in _list(result, "EnumerateClasses"):
        _add_class(irv, c)
    _close(irv)


def _r_classnames(rsp, result, ns, host):
    irv = _ireturn(rsp)
    for name in _list(result, "EnumerateClassNames"):
        if isinstance(name, CIMClassName):
            name = name.classname
        _SubElement(irv, "CLASSNAME", NAME=name).text = ""
    _close(irv)


def _r_qualifier(rsp, result, ns, host):
    irv = _ireturn(rsp)
    _add_qualifier_declaration(irv, _expect(result, CIMQualifierDeclaration, "GetQualifier"))


def _r_qualifiers(rsp, result, ns, host):
    irv = _ireturn(rsp)
    for qd in _list(result, "EnumerateQualifiers"):
        _add_qualifier_declaration(irv, qd)
    _close(irv)


def _r_instance(rsp, result, ns, host):
    irv = _ireturn(rsp)
    _add_instance(irv, _expect(result, CIMInstance, "GetInstance"))


def _r_namedinstances(rsp, result, ns, host):
    irv = _ireturn(rsp)
    add = _add_value_namedinstance
    for inst in _list(result, "EnumerateInstances"):
        add(irv, inst)
    _close(irv)


def _r_instancenames(rsp, result, ns, host):
    irv = _ireturn(rsp)
    for path in _list(result, "EnumerateInstanceNames"):
        _add_instancename(irv, path)
    _close(irv)


def _r_instancename(rsp, result, ns, host):
    irv = _ireturn(rsp)
    _add_instancename(irv, _expect(result, CIMInstanceName, "CreateInstance"))


def _r_objectswithpath(rsp, result, ns, host):
    irv = _ireturn(rsp)
    for obj in _list(result, "Associators/References/ExecQuery"):
        _add_objectwithpath_host(irv, obj, ns, host)
    _close(irv)


def _add_objectwithpath_host(irv, obj, ns, host):
    if not isinstance(obj, tuple):
        _add_instance_with_path(irv, "VALUE.OBJECTWITHPATH", obj, host, ns)
        return
    el = _SubElement(irv, "VALUE.OBJECTWITHPATH")
    classpath, klass = obj
    _add_classpath(el, classpath, host, ns)
    _add_class(el, klass)


def _add_instance_with_path(parent, tag, inst, host, namespace):
    """`tag` (VALUE.OBJECTWITHPATH, VALUE.INSTANCEWITHPATH) = INSTANCEPATH + INSTANCE."""
    if _TEMPLATES_OK:
        el = _named_from_template(tag, inst, host or _default_host(), namespace)
        if el is not None:
            parent.append(el)
            return el
    return _build_instance_with_path(parent, tag, inst, host, namespace)


def _build_instance_with_path(parent, tag, inst, host, namespace):
    el = _SubElement(parent, tag)
    _add_instance_path_and_body(el, inst, host, namespace)
    return el


def _add_instance_path_and_body(el, obj, host, ns):
    if obj.path is None:
        raise ValueError(f"instance of {obj.classname} has no path")
    _add_instancepath(el, obj.path, host, ns)
    _add_instance(el, obj)


def _r_objectpaths(rsp, result, ns, host):
    irv = _ireturn(rsp)
    for path in _list(result, "AssociatorNames/ReferenceNames"):
        op = _SubElement(irv, "OBJECTPATH")
        if isinstance(path, CIMClassName):
            _add_classpath(op, path, host, ns)
        else:
            _add_instancepath(op, path, host, ns)
    _close(irv)


def _r_property(rsp, result, ns, host):
    irv = _ireturn(rsp)
    if result is not None:
        value = result.value if isinstance(result, CIMProperty) else result
        embedded = result.embedded_object if isinstance(result, CIMProperty) else None
        if value is not None:
            if isinstance(value, (CIMInstanceName, CIMClassName)):
                _add_value_reference(irv, value)
            elif isinstance(value, list):
                _add_value_array(irv, value, embedded)
            else:
                _add_value(irv, value, embedded)
    _close(irv)


def _r_count(rsp, result, ns, host):
    irv = _ireturn(rsp)
    if result is not None:
        _SubElement(irv, "VALUE").text = str(int(result))
    _close(irv)


def _pull_params(rsp, result: PullResult):
    _add_paramvalue(rsp, "EndOfSequence", "boolean", bool(result.end_of_sequence))
    # At the end Pegasus sends an empty context; pywbem needs the parameter either way.
    context = "" if result.end_of_sequence or result.context is None else result.context
    pv = _SubElement(rsp, "PARAMVALUE", NAME="EnumerationContext", PARAMTYPE="string")
    _SubElement(pv, "VALUE").text = context


def _check_pull(result):
    if not isinstance(result, PullResult):
        raise TypeError(f"pull operations return a PullResult, got {type(result).__name__}")
    if not result.end_of_sequence and not result.context:
        raise ValueError("a pull result that is not at its end needs a context")


def _r_pull_instances_with_path(rsp, result, ns, host):
    _check_pull(result)
    irv = _ireturn(rsp)
    for inst in result.objects:
        _add_instance_with_path(irv, "VALUE.INSTANCEWITHPATH", inst, host, ns)
    _close(irv)
    _pull_params(rsp, result)


def _r_pull_paths(rsp, result, ns, host):
    _check_pull(result)
    irv = _ireturn(rsp)
    for path in result.objects:
        _add_instancepath(irv, path, host, ns)
    _close(irv)
    _pull_params(rsp, result)


def _r_pull_instances(rsp, result, ns, host):
    _check_pull(result)
    irv = _ireturn(rsp)
    for inst in result.objects:
        _add_instance(irv, inst)
    _close(irv)
    _pull_params(rsp, result)
    if result.query_result_class is not None:
        pv = _SubElement(rsp, "PARAMVALUE", NAME="QueryResultClass")
        _add_class(pv, result.query_result_class)


_IRETURN_BUILDERS = {
    "GetClass": _r_class, "EnumerateClasses": _r_classes,
    "EnumerateClassNames": _r_classnames,
    "GetQualifier": _r_qualifier, "EnumerateQualifiers": _r_qualifiers,
    "GetInstance": _r_instance, "EnumerateInstances": _r_namedinstances,
    "EnumerateInstanceNames": _r_instancenames, "CreateInstance": _r_instancename,
    "ModifyInstance": _r_none, "DeleteInstance": _r_none, "SetProperty": _r_none,
    "CloseEnumeration": _r_none, "SetQualifier": _r_none, "DeleteQualifier": _r_none,
    "CreateClass": _r_none, "ModifyClass": _r_none, "DeleteClass": _r_none,
    "Associators": _r_objectswithpath, "References": _r_objectswithpath,
    "ExecQuery": _r_objectswithpath,
    "AssociatorNames": _r_objectpaths, "ReferenceNames": _r_objectpaths,
    "GetProperty": _r_property, "EnumerationCount": _r_count,
    "OpenEnumerateInstances": _r_pull_instances_with_path,
    "OpenAssociatorInstances": _r_pull_instances_with_path,
    "OpenReferenceInstances": _r_pull_instances_with_path,
    "PullInstancesWithPath": _r_pull_instances_with_path,
    "OpenEnumerateInstancePaths": _r_pull_paths,
    "OpenAssociatorInstancePaths": _r_pull_paths,
    "OpenReferenceInstancePaths": _r_pull_paths,
    "PullInstancePaths": _r_pull_paths,
    "OpenQueryInstances": _r_pull_instances, "PullInstances": _r_pull_instances,
}


def _method_result(rsp, result):
    if not isinstance(result, MethodResult):
        raise TypeError(f"a method call returns a MethodResult, got {type(result).__name__}")
    value = result.return_value
    attrib = {"PARAMTYPE": result.return_type}
    embedded = None
    if isinstance(value, (CIMInstance, CIMClass)):
        embedded = "instance" if isinstance(value, CIMInstance) else "object"
        attrib["EmbeddedObject"] = embedded
    rv = _SubElement(rsp, "RETURNVALUE", attrib)
    if value is None:
        rv.text = ""
    elif isinstance(value, (CIMInstanceName, CIMClassName)):
        _add_value_reference(rv, value)
    else:
        _add_value(rv, value, embedded)
    for p in result.out_params:
        if isinstance(p, CIMParameter):
            name, cim_type, value = p.name, p.type, p.value
            embedded, is_array = p.embedded_object, p.is_array
        else:
            name, cim_type, value = p
            embedded, is_array = None, isinstance(value, list)
        if embedded is None:
            sample = value[0] if isinstance(value, list) and value else value
            if isinstance(sample, CIMInstance):
                embedded = "instance"
            elif isinstance(sample, CIMClass):
                embedded = "object"
        _add_paramvalue(rsp, name, cim_type, value, embedded, is_array)
    if len(rsp) == 0:
        rsp.text = ""


def serialize_error(request: CIMRequest | None, cim_error) -> bytes:
    """A CIM <ERROR> response (sent with HTTP 200) for a pywbem.CIMError. When `request` is
    None the one attached to the error by the parser (`cim_error.request`) is used."""
    if request is None:
        request = getattr(cim_error, "request", None)
    if request is None:
        raise ValueError("serialize_error needs the request the error answers")
    cim, rsp = _envelope(request)
    attrib = {"CODE": str(int(cim_error.status_code))}
    description = cim_error.status_description
    if description:
        attrib["DESCRIPTION"] = _xml_text(description)
    err = _SubElement(rsp, "ERROR", attrib)
    instances = getattr(cim_error, "instances", None) or []
    for inst in instances:
        _add_instance(err, inst)
    if not instances:
        err.text = ""
    return _tobytes(cim)
