"""Test-only stand-ins and helpers for the transport tests (provider/http, auth, tls).

`MiniDispatcher` is just enough of the operations to drive the HTTP layer on its own, with
the real CIM-XML codec (provider.cimxml); the real Dispatcher (provider.operations) is
exercised end to end in test_server_clients.py.
"""
from __future__ import annotations

import base64
import http.client
import socket
import ssl
import sys
import threading
import time

import pywbem



class MiniDispatcher:
    """EnumerateInstanceNames/GetInstance of TST_Thing, DeleteInstance needing oper, and
    operations that fail or take time, to exercise the transport."""

    def __init__(self, count: int = 3):
        self.names = [pywbem.CIMInstanceName("TST_Thing", {"Name": f"t{i}"},
                                             namespace="root/cimv2") for i in range(count)]
        self.calls = []
        self.gate = threading.Event()
        self.gate.set()

    def handle(self, request, principal):
        self.calls.append((request.name, principal))
        op = request.name
        if op == "EnumerateInstanceNames":
            cls = request.params.get("ClassName", "").lower()
            if cls == "tst_boom":
                raise RuntimeError("secret internals")
            if cls == "tst_slow":
                self.gate.wait(10)
                return []
            if cls != "tst_thing":
                raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_CLASS, "no such class")
            return list(self.names)
        if op == "GetInstance":
            name = request.params["InstanceName"]
            inst = pywbem.CIMInstance("TST_Thing", {"Name": name.keybindings["Name"],
                                                    "Caption": "a thing"})
            return inst
        if op == "DeleteInstance":
            if principal.role not in ("admin", "oper"):
                raise pywbem.CIMError(pywbem.CIM_ERR_ACCESS_DENIED,
                                      f"{principal.user} may not delete")
            return None
        raise pywbem.CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, f"{op} is not supported")


def imethod_body(name: str, namespace: str = "root/cimv2", params: str = "",
                 message_id: str = "1001") -> bytes:
    nss = "".join(f'<NAMESPACE NAME="{p}"></NAMESPACE>' for p in namespace.split("/"))
    return (f'<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            f'<MESSAGE ID="{message_id}" PROTOCOLVERSION="1.0"><SIMPLEREQ>'
            f'<IMETHODCALL NAME="{name}"><LOCALNAMESPACEPATH>{nss}</LOCALNAMESPACEPATH>'
            f'{params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>').encode()


def classname_param(cls: str) -> str:
    return f'<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="{cls}"></CLASSNAME></IPARAMVALUE>'


def instancename_param(cls: str, key: str, value: str) -> str:
    return (f'<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="{cls}">'
            f'<KEYBINDING NAME="{key}"><KEYVALUE VALUETYPE="string">{value}</KEYVALUE>'
            f'</KEYBINDING></INSTANCENAME></IPARAMVALUE>')


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def cim_headers(method: str, obj: str = "root/cimv2", auth: str | None = None,
                **extra) -> dict:
    h = {"Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall",
         "CIMMethod": method, "CIMObject": obj}
    if auth:
        h["Authorization"] = auth
    h.update(extra)
    return h


def client_context(cafile=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    if cafile is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def https(port: int, cafile=None, timeout: float = 10) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                       context=client_context(cafile))


def post(conn, body: bytes, headers: dict, method: str = "POST"):
    conn.request(method, "/cimom", body=body, headers=headers)
    resp = conn.getresponse()
    return resp, resp.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


# Runs the server so that the kernel sends it SIGTERM when pytest dies (PR_SET_PDEATHSIG,
# kept across exec); done in the child itself, since preexec_fn is unsafe with threads.
_WITH_PARENT = (
    "import ctypes, os, signal, sys;"
    "ctypes.CDLL('libc.so.6').prctl(1, signal.SIGTERM);"
    "os.getppid() == 1 and sys.exit(1);"
    "os.execv(sys.executable, [sys.executable] + sys.argv[1:])"
)


def server_command(*args: str) -> list[str]:
    """`python -m provider.cli serve ARGS`, tied to this process's life."""
    return [sys.executable, "-c", _WITH_PARENT, "-m", "provider.cli", "serve", *args]


def wbemcli_or_skip(path: str) -> None:
    """Skip a sblim wbemcli test where the client is missing, except as root (CI), where
    `make system-deps` installs it: there a missing client must fail, not skip unseen."""
    import os

    import pytest
    if os.path.exists(path):
        return
    if os.geteuid() == 0:
        pytest.fail(f"sblim wbemcli is not installed at {path} (make system-deps installs it)")
    pytest.skip("sblim wbemcli is not installed (run 'make system-deps' as root)")
