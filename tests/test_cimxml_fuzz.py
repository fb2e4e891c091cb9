"""Bounded fuzzing of the request parser: mutated real requests (pywbem's and wbemcli's),
mutated element trees and a list of hostile documents. Every input must end as a CIMRequest,
a ProtocolError or a pywbem.CIMError (never another exception, never a hang), and whatever
the parser accepted or refused inside a CIM response must serialize into a readable reply."""
from __future__ import annotations

import json
import signal
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from unittest import mock

import pytest
import pywbem
import pywbem._cim_operations as cim_operations
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree
from pywbem import (CIMClassName, CIMInstance, CIMInstanceName, CIMProperty,
                    CIMQualifierDeclaration, Uint16, Uint32)

from provider.cimxml import ProtocolError, parse_request, serialize_error
from provider.messages import CIMRequest

pytestmark = pytest.mark.slow

WBEMCLI = json.loads((Path(__file__).parent / "data" / "cimxml" /
                      "wbemcli_requests.json").read_text())


@lru_cache(maxsize=1)
def corpus() -> tuple[bytes, ...]:
    """Real request bodies: what pywbem sends for a spread of operations, and wbemcli's."""
    bodies = [c["body"].encode("utf-8") for c in WBEMCLI]

    def capture(conn, req_data, headers, target_type="server"):
        bodies.append(b'<?xml version="1.0" encoding="utf-8" ?>\n' + req_data.encode())
        raise pywbem.CIMError(pywbem.CIM_ERR_NOT_FOUND, "captured")

    path = CIMInstanceName("PRB_VM", {"Name": "vm1", "Id": Uint16(4),
                                      "Ref": CIMInstanceName("PRB_H", {"K": True})})
    inst = CIMInstance("PRB_VM", path=path, properties=[
        CIMProperty("Name", "vm1"), CIMProperty("Tags", ["a", None], type="string"),
        CIMProperty("E", CIMInstance("X", properties={"a": "<b>"}), embedded_object="instance")])
    calls = [
        ("GetInstance", (path,), {"PropertyList": ["Name"], "IncludeClassOrigin": True}),
        ("EnumerateInstances", ("PRB_VM",), {"DeepInheritance": True}),
        ("ModifyInstance", (inst,), {"PropertyList": ["Tags"]}),
        ("CreateInstance", (inst,), {}),
        ("Associators", (path,), {"AssocClass": "PRB_A", "Role": "X"}),
        ("OpenEnumerateInstances", ("PRB_VM",), {"MaxObjectCount": 10,
                                                 "OperationTimeout": 5}),
        ("PullInstancesWithPath", (("c1", "root/cimv2"), 10), {}),
        ("ExecQuery", ("WQL", "SELECT * FROM PRB_VM"), {}),
        ("SetQualifier", (CIMQualifierDeclaration("Q", "string", scopes={"CLASS": True}),),
         {}),
        ("InvokeMethod", ("Go", path.copy(), [("A", Uint32(1)), ("B", ["x"]), ("R", path)]),
         {}),
        ("InvokeMethod", ("Go", CIMClassName("PRB_VM", namespace="root/cimv2"), []), {}),
    ]
    with mock.patch.object(cim_operations, "wbem_request", capture):
        conn = pywbem.WBEMConnection("http://fuzz.invalid", default_namespace="root/cimv2")
        for method, args, kwargs in calls:
            try:
                getattr(conn, method)(*args, **kwargs)
            except pywbem.CIMError:
                pass
    return tuple(bodies)


class Hang(Exception):
    pass


@contextmanager
def no_hang(seconds=10):
    """Turn a hang into a test failure (a guard, not a timing assertion)."""
    if threading.current_thread() is not threading.main_thread():
        yield            # signals only reach the main thread
        return

    def alarm(signum, frame):
        raise Hang(f"parsing took longer than {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def outcome(body: bytes, **limits):
    """Parse; return the outcome and check it can be answered."""
    with no_hang():
        try:
            request = parse_request(body, **limits)
        except ProtocolError as e:
            assert 400 <= e.http_status < 600 and e.message
            return e
        except pywbem.CIMError as e:
            reply = serialize_error(None, e)      # answered with the request it carries
            etree.fromstring(reply)
            return e
    assert isinstance(request, CIMRequest)
    reply = serialize_error(request, pywbem.CIMError(pywbem.CIM_ERR_FAILED, "x"))
    etree.fromstring(reply)
    assert b"/>" not in reply
    return request


def test_corpus_parses():
    for body in corpus():
        assert isinstance(outcome(body), CIMRequest), body[:200]


MUTATIONS = st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "dup", "cut"]),
                               st.integers(0, 10 ** 6), st.integers(1, 64),
                               st.binary(min_size=1, max_size=16)),
                     min_size=1, max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 10 ** 6), mutations=MUTATIONS)
def test_byte_mutations(pick, mutations):
    bodies = corpus()
    data = bytearray(bodies[pick % len(bodies)])
    for op, where, size, blob in mutations:
        i = where % (len(data) + 1)
        if op == "flip" and data:
            data[i % len(data)] ^= 1 << (size % 8)
        elif op == "insert":
            data[i:i] = blob
        elif op == "delete":
            del data[i:i + size]
        elif op == "dup":
            data[i:i] = data[i:i + size * 8]
        elif op == "cut":
            del data[i:]
    outcome(bytes(data))


TAGS = ["CIM", "MESSAGE", "SIMPLEREQ", "MULTIREQ", "IMETHODCALL", "METHODCALL",
        "LOCALNAMESPACEPATH", "NAMESPACE", "IPARAMVALUE", "PARAMVALUE", "VALUE", "VALUE.ARRAY",
        "VALUE.NULL", "VALUE.REFERENCE", "VALUE.REFARRAY", "INSTANCENAME", "KEYBINDING",
        "KEYVALUE", "INSTANCEPATH", "LOCALINSTANCEPATH", "NAMESPACEPATH", "HOST", "CLASSNAME",
        "LOCALCLASSPATH", "CLASSPATH", "INSTANCE", "PROPERTY", "PROPERTY.ARRAY",
        "PROPERTY.REFERENCE", "QUALIFIER", "CLASS", "METHOD", "PARAMETER",
        "PARAMETER.ARRAY", "QUALIFIER.DECLARATION", "SCOPE", "VALUE.NAMEDINSTANCE", "X"]
ATTRS = ["NAME", "TYPE", "CLASSNAME", "VALUETYPE", "PARAMTYPE", "EmbeddedObject",
         "PROPAGATED", "ARRAYSIZE", "CIMVERSION", "DTDVERSION", "ID", "PROTOCOLVERSION",
         "REFERENCECLASS", "ISARRAY", "OVERRIDABLE"]
VALUES = st.one_of(st.sampled_from(["", "string", "uint8", "sint64", "boolean", "reference",
                                    "numeric", "instance", "object", "true", "FALSE", "2.0",
                                    "1.0", "-1", "99999999999999999999", "0x", "root",
                                    "root/cimv2", "a b", "<INSTANCE CLASSNAME='A'/>",
                                    "&lt;!DOCTYPE", "\u00e9\u4e2d"]),
                   st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12))

TREE_OPS = st.lists(st.tuples(st.sampled_from(["rename", "drop", "dup", "attr", "delattr",
                                               "text", "move", "wrap"]),
                              st.integers(0, 10 ** 6), st.integers(0, 10 ** 6),
                              st.sampled_from(TAGS), st.sampled_from(ATTRS), VALUES),
                    min_size=1, max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 10 ** 6), ops=TREE_OPS)
def test_tree_mutations(pick, ops):
    bodies = corpus()
    root = etree.fromstring(bodies[pick % len(bodies)])
    for op, a, b, tag, attr, value in ops:
        nodes = list(root.iter())
        el = nodes[a % len(nodes)]
        other = nodes[b % len(nodes)]
        parent = el.getparent()
        if op == "rename":
            el.tag = tag
        elif op == "drop" and parent is not None:
            parent.remove(el)
        elif op == "dup" and parent is not None:
            parent.insert(parent.index(el), etree.fromstring(etree.tostring(el)))
        elif op == "attr":
            el.set(attr, value)
        elif op == "delattr" and el.attrib:
            del el.attrib[sorted(el.attrib)[a % len(el.attrib)]]
        elif op == "text":
            el.text = value
        elif op == "move" and parent is not None and el is not other and \
                el not in other.iterancestors():
            other.append(el)
        elif op == "wrap" and parent is not None:
            wrapper = etree.Element(tag)
            parent.replace(el, wrapper)
            wrapper.append(el)
    outcome(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def _envelope(inner: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            '<MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="GetInstance">'
            '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/></LOCALNAMESPACEPATH>'
            f'{inner}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>')


def _nested_embedding(levels: int) -> str:
    text = '<INSTANCE CLASSNAME="A"></INSTANCE>'
    for _ in range(levels):
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = (f'<INSTANCE CLASSNAME="A"><PROPERTY NAME="e" TYPE="string" '
                f'EmbeddedObject="instance"><VALUE>{escaped}</VALUE></PROPERTY></INSTANCE>')
    return text


LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                    for i in range(1, 10))
          + ']><CIM CIMVERSION="2.0" DTDVERSION="2.0">&lol9;</CIM>')

HOSTILE = {
    "billion laughs": LAUGHS.encode(),
    "quadratic blowup": ('<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY a "' + "x" * 50000
                         + '">]><CIM>' + "&a;" * 2000 + "</CIM>").encode(),
    "external DTD": b'<?xml version="1.0"?><!DOCTYPE CIM SYSTEM "http://127.0.0.1:9/x.dtd">'
                    b'<CIM CIMVERSION="2.0" DTDVERSION="2.0"/>',
    "external entity": b'<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY x SYSTEM '
                       b'"file:///etc/passwd">]><CIM>&x;</CIM>',
    "parameter entity": b'<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY % p SYSTEM '
                        b'"http://127.0.0.1:9/p">%p;]><CIM/>',
    "doctype after bom": b'\xef\xbb\xbf<!DOCTYPE CIM><CIM/>',
    "xinclude": _envelope('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                          'href="/etc/passwd" parse="text"/>').encode(),
    "deep nesting": b"<CIM>" + b"<A>" * 100000 + b"</A>" * 100000 + b"</CIM>",
    "deep valid nesting": _envelope(
        '<IPARAMVALUE NAME="InstanceName">' + "<INSTANCENAME CLASSNAME='A'><KEYBINDING "
        "NAME='k'><VALUE.REFERENCE>" * 80 + "<INSTANCENAME CLASSNAME='A'></INSTANCENAME>"
        + "</VALUE.REFERENCE></KEYBINDING></INSTANCENAME>" * 80 + "</IPARAMVALUE>").encode(),
    "deep embedding": _envelope('<IPARAMVALUE NAME="InstanceName"></IPARAMVALUE>').replace(
        "GetInstance", "CreateInstance").replace(
        '<IPARAMVALUE NAME="InstanceName"></IPARAMVALUE>',
        '<IPARAMVALUE NAME="NewInstance">' + _nested_embedding(25) + "</IPARAMVALUE>").encode(),
    "huge attribute": _envelope('<IPARAMVALUE NAME="' + "A" * 6_000_000 + '"></IPARAMVALUE>'
                                ).encode(),
    "huge text": _envelope('<IPARAMVALUE NAME="ClassName"><VALUE>' + "x" * 6_000_000
                           + "</VALUE></IPARAMVALUE>").encode(),
    "many attributes": _envelope("<IPARAMVALUE " + " ".join(f'a{i}="{i}"' for i in range(20000))
                                 + "></IPARAMVALUE>").encode(),
    "many parameters": _envelope('<IPARAMVALUE NAME="LocalOnly"><VALUE>true</VALUE>'
                                 '</IPARAMVALUE>' * 20000).encode(),
    "invalid utf-8": _envelope("").encode().replace(b'"root"', b'"r\xc3\x28t"'),
    "overlong utf-8": _envelope("").encode().replace(b'"root"', b'"\xc0\xafroot"'),
    "utf-8 surrogate": _envelope("").encode().replace(b'"root"', b'"\xed\xa0\x80"'),
    "utf-16": _envelope("").encode("utf-16"),
    "nul byte": _envelope("").encode().replace(b"root", b"ro\x00ot"),
    "control char": _envelope("").encode().replace(b"root", b"ro\x01ot"),
    "cdata doctype": _envelope('<IPARAMVALUE NAME="InstanceName"><![CDATA[<!DOCTYPE x>]]>'
                               "</IPARAMVALUE>").encode(),
    "only declaration": b'<?xml version="1.0" encoding="utf-8" ?>',
    "binary": bytes(range(256)) * 64,
    "too big": b" " * 17_000_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_documents_get_a_dsp0200_answer(name):
    result = outcome(HOSTILE[name])
    assert isinstance(result, (ProtocolError, pywbem.CIMError)), name


def test_hostile_documents_fail_for_the_right_reason():
    for name in ("billion laughs", "quadratic blowup", "external DTD", "external entity",
                 "parameter entity", "doctype after bom"):
        e = outcome(HOSTILE[name])
        assert (e.http_status, e.cim_error_header) == (400, "request-not-valid"), name
    for name in ("invalid utf-8", "overlong utf-8", "utf-8 surrogate", "utf-16", "nul byte"):
        e = outcome(HOSTILE[name])
        assert (e.http_status, e.cim_error_header) == (400, "request-not-well-formed"), name
    assert outcome(HOSTILE["too big"]).http_status == 413
    assert outcome(HOSTILE["deep valid nesting"]).cim_error_header == "request-not-valid"
    deep = outcome(HOSTILE["deep embedding"])
    assert isinstance(deep, ProtocolError) and "deeper" in deep.message
