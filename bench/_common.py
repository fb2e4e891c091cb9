"""What the benchmarks share: a bench host in a temporary state folder, timing side by side,
commands timed as whole processes, and the CIM server in a subprocess with a raw HTTPS client.

Everything here is measuring machinery; what a benchmark measures and prints stays in it.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_HOST_UUID = "99999999-2222-3333-4444-555555555555"

# The 18 non-key properties of a guest-sized class (the shape of bench_serialize.guest_values),
# closing the class: the synthetic classes differ only in their header and keys.
GUEST_PROPERTIES_MOF = """    string ElementName;
    string Caption;
    string Description;
    uint16 EnabledState;
    uint16 RequestedState;
    uint16 HealthState;
    uint16 OperationalStatus[];
    string StatusDescriptions[];
    uint32 NumberOfVCPUs;
    uint64 MemoryMB;
    uint32 GuestID;
    boolean AutoBoot;
    boolean OnlineMigration;
    datetime InstallDate;
    datetime TimeOfLastStateChange;
    string OSType;
    string Devices[];
    string Networks[];
};
"""


# --------------------------------------------------------------------------- the host

def bench_host(*, host_uuid: str = BENCH_HOST_UUID, nics: tuple = (), **timings):
    """A large host (64 CPUs, 4 TB) whose guests start and stop at once (zero timings)."""
    from agent.hostfacts import HostFacts, Timings, default_storage
    disks, lvs, fss = default_storage()
    return HostFacts(cpus=64, cpu_mhz=2000, memory_mb=4 * 1024 * 1024, swap_mb=8 * 1024 * 1024,
                     host_uuid=host_uuid, hostname="benchhost", nics=nics,
                     disks=disks, logical_volumes=lvs, filesystems=fss,
                     timings=Timings(efi_seconds=0.0, os_boot_seconds=0.0, stop_seconds=0.0,
                                     **timings))


def host_state(prefix: str, host, **agent_options):
    """(temporary root, Agent on <root>/state with `host`): the caller removes the root."""
    from agent.api import Agent
    from agent.hostfacts import write_host
    root = tempfile.mkdtemp(prefix=prefix)
    state = os.path.join(root, "state")
    write_host(state, host)
    return root, Agent(state, host=host, **agent_options)


# --------------------------------------------------------------------------- timing

def alternating_medians(rounds: int, *measures) -> list[float]:
    """The median of each measure (a callable returning seconds) over `rounds` rounds in
    which they take turns, so machine noise hits every side alike."""
    samples: list[list[float]] = [[] for _ in measures]
    for _ in range(rounds):
        for side, measure in zip(samples, measures):
            side.append(measure())
    return [statistics.median(side) for side in samples]


def within(ratio: float, limit: int) -> str:
    """`ok`, or `OVER <limit>x` when a ratio misses its target."""
    return "ok" if ratio <= limit else f"OVER {limit}x"


def process_seconds(argv: list[str], *, env=None, check: bool = False) -> float:
    """Wall time of one run of a command as a whole process (its output discarded)."""
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=check)
    return time.perf_counter() - t0


def command_median(command: str, args: list[str], state_dir: str, runs: int, *,
                   check: bool = False) -> float | None:
    """Median wall time of an installed hpvm* command on `state_dir`, or None when the
    command is not installed next to this Python."""
    exe = os.path.join(os.path.dirname(sys.executable), command)
    if not os.path.exists(exe):
        return None
    env = dict(os.environ, VMPROVIDER_STATE_DIR=state_dir)
    return statistics.median(process_seconds([exe] + args, env=env, check=check)
                             for _ in range(runs))


# --------------------------------------------------------------------------- the server

def spawn_server(module: str, *args: str, control: bool = False):
    """Start `python -m <module> <args>` (a server that prints one JSON line of what a client
    needs, then serves): (process, that line). `control`: a stdin pipe to talk to it, and
    closing it stops the server. The CA bundle variables are dropped: they would override
    the client's TLS options."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE if control else None,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError(f"the {module} server did not start")
    return proc, json.loads(line)


def stop_server(proc: subprocess.Popen) -> None:
    """Ask the server to stop (close its control pipe, else SIGTERM); kill it after 10 s."""
    if proc.stdin is not None:
        proc.stdin.close()
    else:
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def listen_cim(server_class, settings, dispatcher, clock, state: Path, **server_options):
    """In a server subprocess: listen, and print the port and the admin password (the line
    `spawn_server` waits for). The caller runs the reactor."""
    from twisted.internet import reactor
    server = server_class(settings, dispatcher=dispatcher, clock=clock, reactor=reactor,
                          **server_options)
    server.prepare()
    ports = server.listen()
    print(json.dumps({"port": ports[0].getHost().port,
                      "password": (state / "admin-password").read_text().strip()}), flush=True)
    return server


# --------------------------------------------------------------------------- the client

def basic_auth(password: str, user: str = "admin") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def https_connection(port: int) -> http.client.HTTPSConnection:
    """A keep-alive connection to 127.0.0.1 (the bench server's certificate is self-made)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)


def cim_request(conn, path: str, method: str, body: bytes, auth: str | None,
                obj: str = "root/cimv2") -> bytes:
    headers = {"Content-Type": 'application/xml; charset="utf-8"',
               "CIMOperation": "MethodCall", "CIMMethod": method, "CIMObject": obj}
    if auth:
        headers["Authorization"] = auth
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{method}: HTTP {resp.status} {data[:200]!r}")
    return data


def imethod_body(name: str, params: str) -> bytes:
    """A CIM-XML intrinsic method call on root/cimv2."""
    return (f'<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            f'<MESSAGE ID="1001" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="{name}">'
            f'<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/>'
            f'</LOCALNAMESPACEPATH>{params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>').encode()


def classname_param(cls: str) -> str:
    return f'<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="{cls}"/></IPARAMVALUE>'
