"""Real clients over HTTPS against a populated VM Host (the real server, subprocess): pywbemcli
`instance shrub` and `profile centralinsts`, pywbem's WBEMServer central-instance discovery
for the DMTF virtualization profiles, and Debian's sblim wbemcli (`ei` on HPVM_Guest, `cm`
RequestStateChange without PARAMTYPE)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pywbem

from agent.cli import hpvmcreate, hpvmnet
from server_helpers import wbemcli_or_skip
from hpvm_cim_support import CLEAN_ENV, TIMINGS, cli, guest_state, start_server, wait_state
from guest_support import init_state

pytestmark = pytest.mark.slow

PYWBEMCLI = str(Path(sys.executable).with_name("pywbemcli"))
WBEMCLI = shutil.which("wbemcli") or "/usr/bin/wbemcli"
GUESTS = ("web1", "db1", "spare1")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A host with a vswitch and three guests (disks, DVD, vNICs), served over HTTPS."""
    base = tmp_path_factory.mktemp("clients")
    state = init_state(base / "state", **TIMINGS)
    for argv in (["-c", "-S", "vsw1", "-n", "0"], ["-b", "-S", "vsw1"]):
        assert cli(hpvmnet.main, argv, state)[0] == 0
    for argv in (["-P", "web1", "-B", "manual", "-O", "hpux:11.23", "-r", "1G",
                  "-a", "disk:scsi::disk:/dev/rdsk/c1t2d0", "-a", "network:lan::vswitch:vsw1"],
                 ["-P", "db1", "-B", "manual", "-c", "2", "-r", "2G",
                  "-a", "disk:scsi::lv:/dev/vg01/rlvol1", "-a", "dvd:scsi::null:/usr/share",
                  "-a", "network:lan::vswitch:vsw1"],
                 ["-P", "spare1", "-B", "manual", "-r", "512M"]):
        code, out, err = cli(hpvmcreate.main, argv, state)
        assert code == 0, err
    server = start_server(base, prepared=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "VMPROVIDER_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)


def _guest_paths(conn) -> dict[str, pywbem.CIMInstanceName]:
    return {i["ElementName"]: i.path
            for i in conn.EnumerateInstances("HPVM_Guest", PropertyList=["ElementName"])}


def _pywbemcli(server, *args, fmt="simple") -> str:
    cmd = [PYWBEMCLI, "-s", f"https://127.0.0.1:{server.port}", "-u", "admin",
           "-p", server.admin_password, "--ca-certs", str(server.cert_path),
           "--default-namespace", "root/cimv2", "-o", fmt, *args]
    proc = subprocess.run(cmd, env=CLEAN_ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _uri(path) -> str:
    p = path.copy()
    p.host = None
    p.namespace = None
    return p.to_wbem_uri(format="canonical").lstrip("/").lstrip(":")


def test_pywbemcli_instance_shrub_of_a_guest(host):
    conn = host.conn()
    db1 = _guest_paths(conn)["db1"]
    out = _pywbemcli(host, "instance", "shrub", _uri(db1), fmt="table")
    # the guest's neighbours by the associations DSP1057 names
    for assoc, far in (("HPVM_HostedDependency", "HPVM_Host"),
                       ("HPVM_SystemDevice", "HPVM_IODevice"),
                       ("HPVM_SystemDevice", "HPVM_Processor"),
                       ("HPVM_SystemDevice", "HPVM_Memory"),
                       ("HPVM_SettingsDefineState", "HPVM_VirtualSystemSettingData"),
                       ("HPVM_ElementSettingData", "HPVM_VirtualSystemSettingData")):
        assert assoc in out and far in out, f"{assoc} -> {far} missing:\n{out}"
    # its devices: two storage devices, one vNIC, the console; nothing of the other guests
    assert out.count(db1.keybindings["Name"]) >= 1
    others = [p.keybindings["Name"] for n, p in _guest_paths(conn).items() if n != "db1"]
    assert not any(o in out for o in others), out
    # the same neighbourhood as the association operations give
    devices = conn.AssociatorNames(db1, AssocClass="HPVM_SystemDevice",
                                   ResultClass="HPVM_IODevice")
    ids = sorted(p.keybindings["DeviceID"] for p in devices)
    assert ids == ["disk:0,0,0", "dvd:0,0,1", "network:0,1", "serial:com1"], ids
    for device_id in ids:
        assert device_id in out, f"{device_id} missing from the shrub:\n{out}"


@pytest.mark.parametrize("profile,expect", [("System Virtualization", "host"),
                                            ("Virtual System", "guests")])
def test_pywbemcli_profile_centralinsts(host, profile, expect):
    conn = host.conn()
    out = _pywbemcli(host, "profile", "centralinsts", "-o", "DMTF", "-p", profile, fmt="table")
    if expect == "host":
        host_path = conn.EnumerateInstanceNames("HPVM_Host")[0]
        assert "HPVM_Host" in out and host_path.keybindings["Name"] in out, out
        assert "HPVM_Guest" not in out
    else:
        uuids = [p.keybindings["Name"] for p in _guest_paths(conn).values()]
        assert len(uuids) == len(GUESTS)
        assert out.count("HPVM_Guest") >= len(GUESTS), out
        for uuid in uuids:
            assert uuid in out, out


def test_wbemserver_get_central_instances_finds_host_and_guests(host):
    conn = host.conn()
    server = pywbem.WBEMServer(conn)
    sv = server.get_selected_profiles("DMTF", "System Virtualization")
    vs = server.get_selected_profiles("DMTF", "Virtual System")
    assert len(sv) == 1 and len(vs) == 1
    hosts = server.get_central_instances(sv[0].path)
    assert [p.classname for p in hosts] == ["HPVM_Host"]
    assert hosts[0].keybindings == conn.EnumerateInstanceNames("HPVM_Host")[0].keybindings
    guests = server.get_central_instances(vs[0].path)
    assert sorted(p.keybindings["Name"] for p in guests) == \
        sorted(p.keybindings["Name"] for p in _guest_paths(conn).values())
    assert {p.classname for p in guests} == {"HPVM_Guest"}
    # each central instance is a real instance
    for path in hosts + guests:
        assert conn.GetInstance(path).path.keybindings == path.keybindings


# -- sblim wbemcli ------------------------------------------------------------------------------

def _wbemcli(server, op, target, *extra) -> str:
    url = f"https://admin:{server.admin_password}@127.0.0.1:{server.port}/{target}"
    proc = subprocess.run([WBEMCLI, op, "-noverify", url, *extra], env=CLEAN_ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{op} {target}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_wbemcli_enumerates_guests(host):
    wbemcli_or_skip(WBEMCLI)
    out = _wbemcli(host, "ei", "root/cimv2:HPVM_Guest")
    assert out.count("HPVM_Guest.") == len(GUESTS), out
    for name in GUESTS:
        assert f'ElementName="{name}"' in out, out
    assert 'VMState="Off"' in out


def test_wbemcli_request_state_change_starts_a_guest(host):
    wbemcli_or_skip(WBEMCLI)
    web1 = _guest_paths(host.conn())["web1"]
    assert guest_state(host.state_dir, "web1") == "Off"
    target = (f'root/cimv2:HPVM_Guest.CreationClassName="HPVM_Guest",'
              f'Name="{web1.keybindings["Name"]}"')
    out = _wbemcli(host, "cm", target, "RequestStateChange.RequestedState=2")
    # wbemcli prints the return value (4096, a job) and the OUT parameters
    assert "4096" in out, out
    assert "HPVM_ConcreteJob" in out, out
    assert wait_state(host.state_dir, "web1", "On (EFI)")
    # a second start is not allowed from On (EFI): 4097, the guest unchanged
    out = _wbemcli(host, "cm", target, "RequestStateChange.RequestedState=2")
    assert "4097" in out, out
    out = _wbemcli(host, "cm", target, "RequestStateChange.RequestedState=3")
    assert wait_state(host.state_dir, "web1", "Off")
