"""The HTTP layer of the CIM server: DSP0200 headers, methods, M-POST, limits, keep-alive,
chunked bodies, and robustness (the server keeps serving)."""
from __future__ import annotations

import logging
import socket
import ssl
import time

import pytest

from server_helpers import (MiniDispatcher, basic, cim_headers, classname_param,
                            client_context, https, imethod_body, post, wait_for)

ENUM = imethod_body("EnumerateInstanceNames", params=classname_param("TST_Thing"))


@pytest.fixture
def srv(transport_server):
    transport_server.auth = basic("admin", transport_server.admin_password)
    return transport_server


def _enum_headers(srv, **extra):
    return cim_headers("EnumerateInstanceNames", auth=srv.auth, **extra)


def test_post_answers_with_cim_response_headers(srv):
    resp, body = post(https(srv.port), ENUM, _enum_headers(srv))
    assert resp.status == 200
    assert resp.getheader("CIMOperation") == "MethodResponse"
    assert resp.getheader("Content-Type").startswith("application/xml")
    assert int(resp.getheader("Content-Length")) == len(body)
    assert int(resp.getheader("WBEMServerResponseTime")) >= 0
    assert resp.getheader("Server") == "vmprovider"
    assert b'<IMETHODRESPONSE NAME="EnumerateInstanceNames">' in body
    assert body.count(b"<INSTANCENAME") == 3


@pytest.mark.parametrize("change, status, cim_error", [
    ({"CIMOperation": None}, 400, None),
    ({"CIMOperation": "MethodResponse"}, 400, "unsupported-operation"),
    ({"CIMMethod": None}, 400, "header-mismatch"),
    ({"CIMMethod": ""}, 400, "header-mismatch"),
    ({"CIMObject": None}, 400, "header-mismatch"),
    ({"CIMMethod": "GetInstance"}, 400, "header-mismatch"),
    ({"CIMObject": "root/interop"}, 400, "header-mismatch"),
    ({"CIMProtocolVersion": "2.0"}, 501, "unsupported-protocol-version"),
    ({"CIMProtocolVersion": "1.1"}, 400, "header-mismatch"),
    ({"CIMBatch": ""}, 501, "multiple-requests-unsupported"),
    ({"Content-Type": "text/plain"}, 400, None),
    ({"Content-Type": "application/xml; charset=iso-8859-1"}, 400, None),
    ({"Content-Type": None}, 400, None),
    ({"Content-Encoding": "gzip"}, 400, None),
])
def test_header_faults(srv, change, status, cim_error):
    headers = _enum_headers(srv)
    for k, v in change.items():
        if v is None:
            headers.pop(k, None)
        else:
            headers[k] = v
    resp, _ = post(https(srv.port), ENUM, headers)
    assert resp.status == status
    assert resp.getheader("CIMError") == cim_error
    assert srv.dispatcher.calls == []


def test_encoded_headers_and_text_xml_are_accepted(srv):
    headers = _enum_headers(srv, CIMObject="root%2Fcimv2", CIMProtocolVersion="1.0")
    headers["Content-Type"] = "text/xml; charset=utf-8"
    resp, _ = post(https(srv.port), ENUM, headers)
    assert resp.status == 200


def test_other_methods_and_paths(srv):
    conn = https(srv.port)
    conn.request("GET", "/cimom", headers={"Authorization": srv.auth})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 405
    assert resp.getheader("Allow") == "POST, M-POST"
    conn.request("BREW", "/cimom")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 501
    conn.request("POST", "/other", body=ENUM, headers=_enum_headers(srv))
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 404


def test_mpost_with_namespace_prefix(srv):
    headers = {"Content-Type": 'application/xml; charset="utf-8"', "Authorization": srv.auth,
               "Man": "http://www.dmtf.org/cim/mapping/http/v1.0;ns=73",
               "73-CIMOperation": "MethodCall", "73-CIMMethod": "EnumerateInstanceNames",
               "73-CIMObject": "root/cimv2"}
    resp, body = post(https(srv.port), ENUM, headers, method="M-POST")
    assert resp.status == 200
    assert resp.getheader("73-CIMOperation") == "MethodResponse"
    assert resp.getheader("Ext") == ""
    assert resp.getheader("Man") == "http://www.dmtf.org/cim/mapping/http/v1.0;ns=73"
    assert body.count(b"<INSTANCENAME") == 3
    # the prefix is the declared one: unprefixed headers do not count on M-POST
    wrong = dict(headers)
    del wrong["73-CIMMethod"]
    wrong["CIMMethod"] = "EnumerateInstanceNames"
    resp, _ = post(https(srv.port), ENUM, wrong, method="M-POST")
    assert resp.status == 400 and resp.getheader("73-CIMError") == "header-mismatch"
    no_man = dict(headers)
    del no_man["Man"]
    resp, _ = post(https(srv.port), ENUM, no_man, method="M-POST")
    assert resp.status == 400
    other = dict(headers, Man="http://example.com/ext;ns=73")
    resp, _ = post(https(srv.port), ENUM, other, method="M-POST")
    assert resp.status == 510


def _raw(srv, data: bytes, read_all=True, timeout=10.0) -> bytes:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    tls = client_context().wrap_socket(sock, server_hostname="localhost")
    try:
        tls.sendall(data)
        chunks = []
        while True:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            except TimeoutError:
                if timeout >= 10:
                    raise
                break           # the server still waits for the rest of a request
            if not chunk:
                break
            chunks.append(chunk)
            if not read_all and b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)
    finally:
        tls.close()


def _head(srv, method="POST", version="HTTP/1.1", extra=b"", body=ENUM, host=True,
          length=True) -> bytes:
    lines = [f"{method} /cimom {version}".encode()]
    if host:
        lines.append(b"Host: localhost")
    lines += [f"Authorization: {srv.auth}".encode(), b"Connection: close",
              b'Content-Type: application/xml; charset="utf-8"']
    if length:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n" + body


def test_mpost_needs_http11(srv):
    reply = _raw(srv, _head(srv, method="M-POST", version="HTTP/1.0",
                            extra=b"Man: http://www.dmtf.org/cim/mapping/http/v1.0;ns=11\r\n"
                                  b"11-CIMOperation: MethodCall\r\n"
                                  b"11-CIMMethod: EnumerateInstanceNames\r\n"
                                  b"11-CIMObject: root/cimv2\r\n"))
    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400")


def test_http11_needs_host(srv):
    reply = _raw(srv, _head(srv, host=False, extra=b"CIMOperation: MethodCall\r\n"
                                                   b"CIMMethod: EnumerateInstanceNames\r\n"
                                                   b"CIMObject: root/cimv2\r\n"))
    assert reply.startswith(b"HTTP/1.1 400")


def test_chunked_request_body(srv):
    body = ENUM
    pieces = [body[i:i + 50] for i in range(0, len(body), 50)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    reply = _raw(srv, _head(srv, body=chunked, length=False,
                            extra=b"Transfer-Encoding: chunked\r\nCIMOperation: MethodCall\r\n"
                                  b"CIMMethod: EnumerateInstanceNames\r\n"
                                  b"CIMObject: root/cimv2\r\n"))
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.count(b"<INSTANCENAME") == 3


def test_413_by_content_length_before_the_body_arrives(make_transport_server):
    srv = make_transport_server(max_request_bytes=4096)
    srv.auth = basic("admin", srv.admin_password)
    big = b"<" * 10_000_000
    head = _head(srv, body=b"", extra=b"CIMOperation: MethodCall\r\n"
                                      b"CIMMethod: EnumerateInstanceNames\r\n"
                                      b"CIMObject: root/cimv2\r\n").replace(
        b"Content-Length: 0", f"Content-Length: {len(big)}".encode())
    # only the headers are sent: the answer must come without the body being read
    reply = _raw(srv, head, read_all=False)
    assert reply.startswith(b"HTTP/1.1 413")
    assert srv.dispatcher.calls == []


def test_413_for_chunked_body_over_the_limit(make_transport_server):
    srv = make_transport_server(max_request_bytes=4096)
    srv.auth = basic("admin", srv.admin_password)
    chunk = b"x" * 1000
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
    reply = _raw(srv, _head(srv, body=chunked, length=False,
                            extra=b"Transfer-Encoding: chunked\r\nCIMOperation: MethodCall\r\n"
                                  b"CIMMethod: EnumerateInstanceNames\r\n"
                                  b"CIMObject: root/cimv2\r\n"), read_all=False)
    assert reply.startswith(b"HTTP/1.1 413")
    assert srv.dispatcher.calls == []
    # and the server still serves
    resp, _ = post(https(srv.port), ENUM, _enum_headers(srv))
    assert resp.status == 200


def test_keep_alive_serves_many_requests_on_one_connection(srv):
    conn = https(srv.port)
    resp, _ = post(conn, ENUM, _enum_headers(srv))
    first = conn.sock
    for _ in range(5):
        resp, _ = post(conn, ENUM, _enum_headers(srv))
        assert resp.status == 200
        assert conn.sock is first          # http.client reconnects only after a close
    assert len(srv.dispatcher.calls) == 6


def test_idle_connection_is_closed(make_transport_server):
    srv = make_transport_server(idle_timeout=0.5)
    srv.auth = basic("admin", srv.admin_password)
    conn = https(srv.port)
    resp, _ = post(conn, ENUM, _enum_headers(srv))
    assert resp.status == 200
    sock = conn.sock
    sock.settimeout(5)
    start = time.monotonic()
    try:
        data = sock.recv(1)
    except (ssl.SSLError, ConnectionResetError):
        data = b""
    assert data == b""
    assert time.monotonic() - start < 4.5


def test_unexpected_exception_is_cim_failed_and_server_keeps_serving(srv, caplog):
    caplog.set_level(logging.ERROR)
    resp, body = post(https(srv.port),
                      imethod_body("EnumerateInstanceNames", params=classname_param("TST_Boom")),
                      _enum_headers(srv))
    assert resp.status == 200
    assert b'<ERROR CODE="1"' in body
    assert b"secret internals" not in body and b"Traceback" not in body
    assert any("EnumerateInstanceNames" in r.getMessage() for r in caplog.records)
    resp, _ = post(https(srv.port), ENUM, _enum_headers(srv))
    assert resp.status == 200


def test_malformed_xml_is_400_and_server_keeps_serving(srv):
    for bad in (b"<CIM><MESSAGE", b"\xff\xfe not xml",
                b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><CIM>&a;</CIM>'):
        resp, _ = post(https(srv.port), bad, _enum_headers(srv))
        assert resp.status == 400
        assert resp.getheader("CIMError") in ("request-not-well-formed", "request-not-valid")
    resp, _ = post(https(srv.port), ENUM, _enum_headers(srv))
    assert resp.status == 200


def test_client_that_went_away_is_not_answered_and_others_are(srv, caplog):
    caplog.set_level(logging.ERROR)
    disp: MiniDispatcher = srv.dispatcher
    disp.gate.clear()
    conn = https(srv.port)
    conn.request("POST", "/cimom",
                 body=imethod_body("EnumerateInstanceNames", params=classname_param("TST_Slow")),
                 headers=_enum_headers(srv))
    assert wait_for(lambda: len(disp.calls) == 1)
    conn.close()
    time.sleep(0.2)
    disp.gate.set()
    time.sleep(0.2)
    resp, _ = post(https(srv.port), ENUM, _enum_headers(srv))
    assert resp.status == 200
    assert not [r for r in caplog.records if r.name.startswith("vmprovider")]


def test_ipv4_mapped_peer_is_named_as_ipv4():
    from provider.http.gate import client_source

    class Req:
        def __init__(self, host):
            self.host = host

        def getClientAddress(self):
            return self

    assert client_source(Req("::ffff:10.1.2.3")) == "10.1.2.3"
    assert client_source(Req("::1")) == "::1"
    assert client_source(Req("192.0.2.7")) == "192.0.2.7"


def test_garbage_on_the_wire_does_not_stop_the_server(srv):
    import random
    rng = random.Random(20261127)
    blobs = [b"\r\n\r\n", b"GET\r\n\r\n", b"POST /cimom HTTP/9.9\r\n\r\n",
             b"POST /cimom HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
             b"POST /cimom HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
             b"POST /cimom HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n",
             b"POST /cimom HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(600))
             + b"\r\n"]
    blobs += [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))
              for _ in range(8)]
    for blob in blobs:
        reply = _raw(srv, blob, timeout=0.5)
        assert not reply or reply.startswith(b"HTTP/1.1 4") or reply.startswith(b"HTTP/1.0 4")
    resp, _ = post(https(srv.port), ENUM, _enum_headers(srv))
    assert resp.status == 200


def test_trickled_request_is_cut_off(make_transport_server):
    srv = make_transport_server(idle_timeout=1.0)
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    tls = client_context().wrap_socket(sock, server_hostname="localhost")
    start = time.monotonic()
    reply = b""
    try:
        for piece in (b"POST /cimom HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"):
            tls.sendall(piece)         # each piece well inside the idle timeout
            time.sleep(0.4)
        tls.settimeout(5)
        while True:
            chunk = tls.recv(4096)
            if not chunk:
                break
            reply += chunk
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        tls.close()
    assert reply.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - start < 5
    resp, _ = post(https(srv.port), ENUM, cim_headers("EnumerateInstanceNames",
                                                      auth=basic("admin", srv.admin_password)))
    assert resp.status == 200
