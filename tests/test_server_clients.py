"""The real server (`python -m provider.cli serve`, subprocess) with real clients over HTTPS:
pywbem WBEMConnection and WBEMServer, pywbemcli (pull and non-pull), and Debian's wbemcli."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import pywbem

from server_helpers import wbemcli_or_skip

pytestmark = pytest.mark.slow

INTEROP = "root/interop"
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
PYWBEMCLI = str(Path(sys.executable).with_name("pywbemcli"))
WBEMCLI = shutil.which("wbemcli") or "/usr/bin/wbemcli"


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _conn(live, user="admin", namespace=INTEROP):
    return pywbem.WBEMConnection(f"https://127.0.0.1:{live.port}", (user, live.password(user)),
                                 default_namespace=namespace, ca_certs=str(live.cert_path),
                                 timeout=30)


@pytest.fixture(scope="module")
def om_path(live_server):
    env_before = {k: os.environ.pop(k) for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
                  if k in os.environ}
    try:
        names = _conn(live_server).EnumerateInstanceNames("CIM_ObjectManager")
    finally:
        os.environ.update(env_before)
    assert len(names) == 1
    return names[0]


# -- pywbem ---------------------------------------------------------------------------------

def test_pywbem_connection_operations(live_server, clean_env, om_path):
    conn = _conn(live_server)
    inst = conn.GetInstance(om_path)
    assert inst["ElementName"] == "vmprovider"
    namespaces = conn.EnumerateInstances("CIM_Namespace")
    assert {i["Name"] for i in namespaces} >= {"root/cimv2", "root/interop"}
    cls = conn.GetClass("CIM_ObjectManager", LocalOnly=False)
    assert "Name" in cls.properties
    assert conn.EnumerateClassNames(DeepInheritance=True)
    assert conn.AssociatorNames(om_path, AssocClass="CIM_NamespaceInManager")
    pulled = list(conn.IterEnumerateInstances("CIM_Namespace", MaxObjectCount=1))
    assert len(pulled) == len(namespaces)


def test_pywbem_wbemserver_discovers_interop_brand_namespaces_profiles(live_server,
                                                                       clean_env):
    server = pywbem.WBEMServer(_conn(live_server, namespace="root/cimv2"))
    assert server.interop_ns == INTEROP
    assert server.brand == "vmprovider"
    assert server.version
    assert {"root/cimv2", "root/interop"} <= set(server.namespaces)
    names = {(p["RegisteredName"], p["RegisteredVersion"]) for p in server.profiles}
    assert ("Profile Registration", "1.0.0") in names


def test_readonly_user_is_refused_writes_by_the_real_dispatcher(live_server, clean_env):
    reader = _conn(live_server, "reader")
    assert reader.EnumerateInstanceNames("CIM_Namespace")        # reads are fine
    filt = pywbem.CIMInstance("CIM_IndicationFilter", {
        "Name": "s2-test-filter", "Query": "SELECT * FROM CIM_Indication",
        "QueryLanguage": "WQL", "SourceNamespaces": ["root/cimv2"]})
    with pytest.raises(pywbem.CIMError) as err:
        reader.CreateInstance(filt)
    assert err.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED
    records = [json.loads(line) for line in
               (live_server.state_dir / "audit.log").read_text().splitlines()]
    mine = [r for r in records if r["user"] == "reader"]
    assert mine and mine[-1]["operation"] == "CreateInstance"
    assert mine[-1]["result"] == pywbem.CIM_ERR_ACCESS_DENIED
    assert stat.S_IMODE((live_server.state_dir / "audit.log").stat().st_mode) == 0o600


def test_wrong_password_and_hostile_xml_then_still_serving(live_server, clean_env):
    from server_helpers import basic, cim_headers, https, post

    bad = pywbem.WBEMConnection(f"https://127.0.0.1:{live_server.port}",
                                ("admin", "not-the-password"), default_namespace=INTEROP,
                                ca_certs=str(live_server.cert_path))
    with pytest.raises(pywbem.AuthError):
        bad.EnumerateInstanceNames("CIM_Namespace")
    auth = basic("admin", live_server.admin_password)
    bomb = (b'<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><CIM>&b;</CIM>')
    external = (b'<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b'<CIM>&x;</CIM>')
    deep = b"<CIM>" + b"<A>" * 5000 + b"</A>" * 5000 + b"</CIM>"
    for body in (bomb, external, deep, b"<CIM><MESSAGE", b"\x00\xff"):
        resp, data = post(https(live_server.port), body,
                          cim_headers("EnumerateInstanceNames", "root/interop", auth=auth))
        assert resp.status == 400, body[:40]
        assert resp.getheader("CIMError") in ("request-not-well-formed", "request-not-valid")
        assert b"root:" not in data
    assert _conn(live_server).EnumerateInstanceNames("CIM_Namespace")


# -- pywbemcli ------------------------------------------------------------------------------

def _pywbemcli(live, *args, pull="no", fmt="mof") -> str:
    cmd = [PYWBEMCLI, "-s", f"https://127.0.0.1:{live.port}", "-u", "admin",
           "-p", live.admin_password, "--ca-certs", str(live.cert_path),
           "--use-pull", pull, "--default-namespace", INTEROP, "-o", fmt, *args]
    proc = subprocess.run(cmd, env=CLEAN_ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _uri(path) -> str:
    p = path.copy()
    p.host = None
    p.namespace = None
    return p.to_wbem_uri(format="canonical").lstrip("/").lstrip(":")


def test_pywbemcli_server_namespace_profile(live_server):
    out = _pywbemcli(live_server, "server", "info", fmt="simple")
    assert "vmprovider" in out and "root/interop" in out
    out = _pywbemcli(live_server, "namespace", "list", fmt="simple")
    assert "root/cimv2" in out and "root/interop" in out
    out = _pywbemcli(live_server, "profile", "list", fmt="simple")
    assert "Profile Registration" in out


def test_pywbemcli_classes(live_server):
    out = _pywbemcli(live_server, "class", "enumerate", "--no", "--di")
    assert "CIM_ObjectManager" in out
    out = _pywbemcli(live_server, "class", "get", "CIM_ObjectManager")
    assert "class CIM_ObjectManager" in out
    out = _pywbemcli(live_server, "class", "tree", "CIM_ManagedElement")
    assert "CIM_ObjectManager" in out


@pytest.mark.parametrize("pull", ["yes", "no"])
def test_pywbemcli_instances(live_server, om_path, pull):
    out = _pywbemcli(live_server, "instance", "enumerate", "CIM_Namespace", pull=pull)
    assert out.count("instance of CIM_Namespace") >= 2
    out = _pywbemcli(live_server, "instance", "enumerate", "CIM_Namespace", "--no",
                     pull=pull)
    assert out.count("CIM_Namespace.") >= 2
    uri = _uri(om_path)
    out = _pywbemcli(live_server, "instance", "get", uri, pull=pull)
    assert "instance of CIM_ObjectManager" in out and "vmprovider" in out
    out = _pywbemcli(live_server, "instance", "count", "CIM_Namespace", pull=pull,
                     fmt="simple")
    assert "CIM_Namespace" in out and " 2" in out
    out = _pywbemcli(live_server, "instance", "references", uri, "--no", pull=pull)
    assert "CIM_NamespaceInManager" in out
    out = _pywbemcli(live_server, "instance", "associators", uri, "--no", pull=pull)
    assert "CIM_Namespace" in out


# -- sblim wbemcli --------------------------------------------------------------------------

def _wbemcli(live, op, target, *extra, check=True, tls=("-noverify",)) -> str:
    url = f"https://admin:{live.admin_password}@127.0.0.1:{live.port}/{target}"
    proc = subprocess.run([WBEMCLI, op, *tls, url, *extra], env=CLEAN_ENV,
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, f"{op} {target}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _wbem_keys(path) -> str:
    return ",".join(f'{k}="{v}"' for k, v in path.keybindings.items())


def test_wbemcli(live_server, om_path):
    wbemcli_or_skip(WBEMCLI)
    om = f"root/interop:CIM_ObjectManager.{_wbem_keys(om_path)}"
    out = _wbemcli(live_server, "ei", "root/interop:CIM_Namespace")
    assert out.count("CIM_Namespace.") >= 2 and 'Name="root/cimv2"' in out
    out = _wbemcli(live_server, "ein", "root/interop:CIM_Namespace")
    assert out.count("CIM_Namespace.") >= 2
    out = _wbemcli(live_server, "gi", om, tls=("-cacert", str(live_server.cert_path)))
    assert 'ElementName="vmprovider"' in out
    out = _wbemcli(live_server, "ecn", "root/interop")
    assert "CIM_ObjectManager" in out
    out = _wbemcli(live_server, "gc", "root/interop:CIM_ObjectManager")
    assert "CIM_ObjectManager" in out and "Name" in out
    out = _wbemcli(live_server, "ain", om, "-ac", "CIM_NamespaceInManager")
    assert out.count("CIM_Namespace.") >= 2
    # cm: GetClass, then a METHODCALL whose PARAMVALUEs carry no PARAMTYPE. The object
    # manager has no state-change provider, so the answer is a CIM error wbemcli reads.
    out = _wbemcli(live_server, "cm", om, "RequestStateChange.RequestedState=2", check=False)
    assert re.search(r"Cim: \(\d+\) CIM_ObjectManager.RequestStateChange", out), out
    assert "Http Exception" not in out and "parse" not in out.lower()
    records = [json.loads(line) for line in
               (live_server.state_dir / "audit.log").read_text().splitlines()]
    assert any(r["operation"] == "RequestStateChange" and r["user"] == "admin"
               for r in records)


def test_wbemcli_wrong_password(live_server):
    wbemcli_or_skip(WBEMCLI)
    url = f"https://admin:wrong@127.0.0.1:{live_server.port}/root/interop:CIM_Namespace"
    proc = subprocess.run([WBEMCLI, "ein", "-noverify", url], env=CLEAN_ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Invalid username/password" in proc.stdout + proc.stderr


def test_concurrent_clients_all_served(live_server, clean_env, om_path):
    from concurrent.futures import ThreadPoolExecutor

    def work(user):
        conn = _conn(live_server, user)
        seen = 0
        for _ in range(10):
            seen += len(conn.EnumerateInstanceNames("CIM_Namespace"))
            assert conn.GetInstance(om_path)["Name"] == om_path["Name"]
        return seen

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(work, ["admin", "reader", "oper1", "admin"]))
    assert results == [results[0]] * 4 and results[0] >= 20
