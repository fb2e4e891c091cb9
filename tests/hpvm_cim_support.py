"""Helpers of the VM-model CIM tests (tests/test_cim_*.py): the real server on a state folder
that holds the guide's host, a pywbem connection to it, and the normalization that lets two
stores made by different routes (hpvm commands, CIM methods) be compared.

What legitimately differs between two stores built the same way: guest UUIDs, serial numbers,
generated MAC addresses, VM numbers (when one route refused a step), process ids of running
guests. Everything else -- every configuration line, every hpvmstatus line -- must be equal.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pywbem

from guest_support import init_state, run_cli
from server_helpers import free_port, server_command, wait_for

ROOT = Path(__file__).resolve().parent.parent
NS = "root/cimv2"
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "VMPROVIDER_STATE_DIR")}
# the model moves fast enough for tests: On (EFI) at once, a graceful stop in 0.3 s
TIMINGS = dict(efi_seconds=0.0, os_boot_seconds=0.5, stop_seconds=0.3)


@dataclass
class RealServer:
    port: int
    state_dir: Path
    cert_path: Path
    admin_password: str
    proc: subprocess.Popen
    log_path: Path

    def conn(self, user: str = "admin", password: str | None = None,
             namespace: str = NS) -> pywbem.WBEMConnection:
        return pywbem.WBEMConnection(f"https://127.0.0.1:{self.port}",
                                     (user, password or self.admin_password),
                                     default_namespace=namespace,
                                     ca_certs=str(self.cert_path), timeout=60)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_server(base: Path, *, prepared: bool = False, **host_kw) -> RealServer:
    """`python -m provider.cli serve` on 127.0.0.1 (free port) over the state folder
    `base/state`: a fresh one holding the guide's host (tests/guest_support.guide_host with
    fast TIMINGS), or with `prepared` the one the caller already populated."""
    base.mkdir(parents=True, exist_ok=True)
    state = base / "state"
    if not prepared:
        init_state(state, **{**TIMINGS, **host_kw})
    port = free_port()
    env = dict(CLEAN_ENV, PYTHONUNBUFFERED="1")
    log_path, out_path = base / "server.log", base / "server.out"
    with open(log_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen(
            server_command("--bind", "127.0.0.1", "--port", str(port), "--state-dir",
                           str(state), "--certs-dir", str(base / "certs")),
            cwd=ROOT, env=env, stdout=out, stderr=err)
    ready = wait_for(lambda: proc.poll() is not None or
                     b"connect: pywbemcli" in out_path.read_bytes(), timeout=90)
    if not ready or proc.poll() is not None:
        proc.kill()
        raise RuntimeError("the CIM server did not start:\n" +
                           log_path.read_text(errors="replace")[-3000:] +
                           out_path.read_text(errors="replace"))
    password = (state / "admin-password").read_text().strip()
    return RealServer(port=port, state_dir=state, cert_path=base / "certs" / "server.pem",
                      admin_password=password, proc=proc, log_path=log_path)


# -- reading a store the way an administrator does --------------------------------------------

def cli(main, argv, state_dir, stdin: str = "") -> tuple[int, str, str]:
    return run_cli(main, argv, state_dir, stdin)


def guest_state(state_dir, name: str) -> str | None:
    from agent.api import Agent
    agent = Agent(state_dir)
    try:
        g = agent.find_guest(name)
    except Exception:
        return None
    return agent.runtime(g).state


def wait_state(state_dir, name: str, state: str, timeout: float = 10.0) -> bool:
    return wait_for(lambda: guest_state(state_dir, name) == state, timeout=timeout, step=0.05)


# -- normalization ------------------------------------------------------------------------------

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_SERIAL = re.compile(r"\bVM\d{8}\b")
_MAC_DASH = re.compile(r"\b([0-9a-f]{2}(?:[-:][0-9a-f]{2}){5})\b", re.I)
_MAC_HEX = re.compile(r"\b0x([0-9a-f]{12})\b", re.I)


class Normalizer:
    """Replaces each distinct UUID, serial and MAC by a numbered placeholder, numbered in
    order of first appearance (so the same structure on both sides gives the same text)."""

    def __init__(self, replace: dict[str, str] | None = None):
        self.maps: dict[str, dict[str, str]] = {"UUID": {}, "SERIAL": {}, "MAC": {}}
        self.replace = replace or {}           # text -> placeholder (a route's own folders)

    def _sub(self, kind: str, key: str) -> str:
        m = self.maps[kind]
        if key not in m:
            m[key] = f"<{kind}{len(m) + 1}>"
        return m[key]

    def __call__(self, text: str) -> str:
        for old, placeholder in self.replace.items():
            text = text.replace(old, placeholder)
        text = _UUID.sub(lambda m: self._sub("UUID", m.group(0).lower()), text)
        text = _SERIAL.sub(lambda m: self._sub("SERIAL", m.group(0)), text)
        text = _MAC_HEX.sub(lambda m: "0x" + self._sub("MAC", m.group(1).lower()), text)
        text = _MAC_DASH.sub(
            lambda m: self._sub("MAC", re.sub(r"[-:]", "", m.group(1)).lower()), text)
        text = re.sub(r"^(vm_number\s*=\s*)\d+", r"\1<N>", text, flags=re.M)
        text = re.sub(r"^(Virtual Machine ID\s*:\s*)\d+", r"\1<N>", text, flags=re.M)
        text = re.sub(r"^(Running on pid\s*:\s*)\d+", r"\1<PID>", text, flags=re.M)
        return text


def summary_row(status_out: str, name: str) -> str | None:
    """The guest's row of the `hpvmstatus` summary, VM number blanked."""
    for line in status_out.splitlines():
        if line.split(" ", 1)[0] == name:
            return re.sub(r"^(\S+\s+)\d+", lambda m: m.group(1) + "#", line)
    return None


def guest_view(state_dir, names: list[str], replace: dict[str, str] | None = None
               ) -> dict[str, str]:
    """What an administrator sees of these guests: their configuration files and their
    hpvmstatus summary row, -V and -d, normalized."""
    from agent.cli import hpvmstatus
    norm = Normalizer(replace)
    view: dict[str, str] = {}
    code, summary, err = cli(hpvmstatus.main, [], state_dir)
    for name in names:
        link = Path(state_dir) / "guests" / name
        view[f"{name} exists"] = str(link.exists())
        if not link.exists():
            continue
        folder = link.resolve()
        for which in ("current", "next", "prev"):
            f = folder / f"vmm_config.{which}"
            view[f"{name} vmm_config.{which}"] = norm(f.read_text()) if f.exists() else "-"
        view[f"{name} hpvmstatus"] = str(summary_row(summary, name))
        for opt in ("-V", "-d"):
            code, out, err = cli(hpvmstatus.main, [opt, "-P", name], state_dir)
            view[f"{name} hpvmstatus {opt}"] = norm(out + err)
    return view


def host_view(state_dir, replace: dict[str, str] | None = None) -> dict[str, str]:
    """The host-wide tables: vswitches (file and hpvmnet), device database (file and
    hpvmdevmgmt -l all)."""
    from agent.cli import hpvmdevmgmt, hpvmnet
    norm = Normalizer(replace)
    common = Path(state_dir) / "common"
    view = {}
    for name in ("vswitches", "hpvm_mgmtdb"):
        f = common / name
        view[name] = norm(f.read_text()) if f.exists() else "-"
    view["hpvmnet"] = norm("".join(cli(hpvmnet.main, [], state_dir)[1:]))
    view["hpvmdevmgmt -l all"] = norm("".join(cli(hpvmdevmgmt.main, ["-l", "all"],
                                                  state_dir)[1:]))
    return view


# -- CIM values ---------------------------------------------------------------------------------

def U(n) -> pywbem.Uint64:
    return pywbem.Uint64(n)


def proc_rasd(vcpus=None, entitlement_percent=None, instance_id=None) -> pywbem.CIMInstance:
    props = {"ResourceType": pywbem.Uint16(3)}
    if instance_id:
        props["InstanceID"] = instance_id
    if vcpus is not None:
        props["VirtualQuantity"] = U(vcpus)
    if entitlement_percent is not None:
        props["AllocationUnits"] = "percent*10^-2"
        props["Reservation"] = U(int(round(entitlement_percent * 100)))
    return pywbem.CIMInstance("HPVM_ProcessorAllocationSettingData", props)


def mem_rasd(memory_mb=None, instance_id=None, *, dm_control=None, dm_type=None,
             dm_min=None, dm_max=None, dm_target_start=None, target=None) -> pywbem.CIMInstance:
    props = {"ResourceType": pywbem.Uint16(4), "AllocationUnits": "byte*2^20"}
    if instance_id:
        props["InstanceID"] = instance_id
    if memory_mb is not None:
        props["VirtualQuantity"] = U(memory_mb)
    if dm_control is not None:
        props["DynamicMemoryControl"] = bool(dm_control)
    if dm_type is not None:
        props["DynamicMemoryType"] = dm_type
    if dm_min is not None:
        props["Reservation"] = U(dm_min)
    if dm_max is not None:
        props["Limit"] = U(dm_max)
    if dm_target_start is not None:
        props["DynamicMemoryTargetStart"] = U(dm_target_start)
    if target is not None:
        props["TargetMemory"] = U(target)
    return pywbem.CIMInstance("HPVM_MemoryAllocationSettingData", props)


def disk_rasd(device: str, backing: str, location: str, *, address: str | None = None,
              instance_id=None) -> pywbem.CIMInstance:
    """A storage RASD in DMTF terms (DeviceType, BackingType, HostResource)."""
    rtype = {"disk": 17, "dvd": 16, "tape": 18}[device]
    props = {"ResourceType": pywbem.Uint16(rtype), "DeviceType": device,
             "AdapterType": "scsi", "BackingType": backing, "HostResource": [location]}
    if address:
        props["Address"] = address
    if instance_id:
        props["InstanceID"] = instance_id
    return pywbem.CIMInstance("HPVM_StorageAllocationSettingData", props)


def spec_rasd(spec: str, instance_id=None) -> pywbem.CIMInstance:
    """A storage or network RASD given as an hpvmresources(5) spec."""
    cls = ("HPVM_EthernetPortAllocationSettingData" if spec.startswith("network")
           else "HPVM_StorageAllocationSettingData")
    props = {"ResourceSpecification": spec}
    if instance_id:
        props["InstanceID"] = instance_id
    return pywbem.CIMInstance(cls, props)


def nic_rasd(vswitch: str, mac: str | None = None, instance_id=None) -> pywbem.CIMInstance:
    props = {"ResourceType": pywbem.Uint16(10), "Connection": [vswitch]}
    if mac:
        props["Address"] = mac
    if instance_id:
        props["InstanceID"] = instance_id
    return pywbem.CIMInstance("HPVM_EthernetPortAllocationSettingData", props)


def vssd(name: str | None = None, **props) -> pywbem.CIMInstance:
    values = {}
    if name is not None:
        values["ElementName"] = name
    for k, v in props.items():
        if k == "AutomaticStartupAction":
            v = pywbem.Uint16(v)
        elif isinstance(v, list):              # typed, since an empty list carries no type
            v = pywbem.CIMProperty(k, v, type="string", is_array=True)
        values[k] = v
    return pywbem.CIMInstance("HPVM_VirtualSystemSettingData", values)
