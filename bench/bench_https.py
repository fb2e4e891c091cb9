"""The CIM server over HTTPS, against floors measured side by side in the same run.

Servers run in subprocesses (one at a time, so client and server each get a core); the
client is a raw keep-alive http.client connection over TLS.

The synthetic provider registered for this bench builds its instances the way every provider
of this server does: through an `InstanceFactory` made from the class declaration, one
`make` per instance from plain Python values (the same values the floor starts from), per
request; nothing is pre-built or cached between requests.

1. EnumerateInstances of 1000 guest-sized instances (20 properties, from that synthetic
   provider): our server (provider -> Dispatcher -> serializer) against the floor =
   building the same elements with lxml from plain Python values (measured here) plus a
   bare Twisted TLS server sending those bytes. Target: at most 1.5x.
2. GetInstance requests/s from one keep-alive client against the bare Twisted TLS server
   answering a reply of the same size. Target: at least 0.5x.
3. Pulling 10,000 instances 100 at a time (OpenEnumerateInstances + PullInstancesWithPath):
   growth of the server's resident memory (peak during the pull minus before). Target:
   at most 20 MB.
"""
from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench._common import (GUEST_PROPERTIES_MOF, basic_auth, cim_request, classname_param,
                           https_connection, imethod_body, listen_cim, spawn_server,
                           stop_server)
from bench.bench_serialize import guest_values

ENUM_COUNT = 1000
PULL_COUNT = 10_000
PULL_BATCH = 100
ENUM_ROUNDS = 7
GET_SECONDS = 3.0

# The synthetic class: the 20 properties of bench_serialize.guest_values, typed alike.
_CLASS_MOF = """
[Description ("Synthetic guest-sized class for bench_https.")]
class {name} {{
    [Key, Description ("Class of the instance.")] string CreationClassName;
    [Key, Description ("Unique name.")] string Name;
""" + GUEST_PROPERTIES_MOF.replace("{", "{{").replace("}", "}}")
# PRB_ManySystem (the 10,000-instance pull) is a separate class, not a subclass, so that
# enumerating PRB_VirtualSystem (deep by default) returns exactly 1000 instances.
BENCH_MOF = _CLASS_MOF.format(name="PRB_VirtualSystem") + _CLASS_MOF.format(name="PRB_ManySystem")


# --------------------------------------------------------------------------- the provider

def guest_record(i: int, classname: str = "PRB_VirtualSystem") -> dict:
    """What a provider of this server starts from: one guest's plain Python values
    (bench_serialize.guest_values, the floor's input), keyed by property name."""
    _, props = guest_values(i)
    values = {name: value for name, _type, value in props}
    values["CreationClassName"] = classname
    return values


def synthetic_provider(schema):
    """The synthetic provider, built the way this server's providers are: one
    `InstanceFactory` per class from its declaration, and every instance made from plain
    values by `InstanceFactory.make` when a request asks for it (nothing is pre-built)."""
    from provider.providers.base import InstanceFactory, InstanceProvider

    class Synthetic(InstanceProvider):
        namespaces = ("root/cimv2",)
        classnames = ("PRB_VirtualSystem", "PRB_ManySystem")

        def __init__(self):
            self.factories = {c.lower(): InstanceFactory.for_class(schema, "root/cimv2", c)
                              for c in self.classnames}

        def enumerate(self, ctx, classname):
            f = self.factories[classname.lower()]
            count = ENUM_COUNT if classname.lower() == "prb_virtualsystem" else PULL_COUNT
            for i in range(count):
                yield f.make(guest_record(i, f.classname), ctx)

        def get(self, ctx, path):
            f = self.factories.get(path.classname.lower())
            name = path.keybindings.get("Name", "")
            m = re.fullmatch(r"guest(\d{4,})", str(name))
            if f is None or not m or int(m.group(1)) >= ENUM_COUNT:
                return None
            return f.make(guest_record(int(m.group(1)), f.classname), ctx)

    return Synthetic()


# --------------------------------------------------------------------------- servers

def _serve_ours(workdir: Path) -> None:
    """Subprocess: our server with a registry holding only the synthetic provider."""
    import socket

    from twisted.internet import reactor

    from agent.clock import SystemClock
    from provider.operations import Dispatcher
    from provider.providers.registry import ProviderRegistry
    from provider.schema import Schema
    from provider.server import CIMServer
    from provider.settings import Settings

    mof = workdir / "bench.mof"
    schema = Schema.load(namespaces={"root/cimv2": ["qualifiers.mof", str(mof)]})

    registry = ProviderRegistry(schema)
    registry.register(synthetic_provider(schema))
    clock = SystemClock()
    dispatcher = Dispatcher(schema, registry, clock=clock, host_name=socket.getfqdn())
    settings = Settings(bind="127.0.0.1", port=0, state_dir=workdir / "state",
                        certs_dir=workdir / "certs", workers=2)
    listen_cim(CIMServer, settings, dispatcher, clock, workdir / "state")
    reactor.run()


def _serve_bare(workdir: Path) -> None:
    """Subprocess: a bare Twisted TLS server answering POST /<name> with a fixed payload."""
    from twisted.internet import endpoints, reactor
    from twisted.web import resource, server

    from provider import tls

    payloads = {p.stem.encode(): p.read_bytes() for p in (workdir / "payloads").iterdir()}

    class Bare(resource.Resource):
        isLeaf = True

        def render_POST(self, request):
            request.content.read()
            request.setHeader(b"Content-Type", b'application/xml; charset="utf-8"')
            return payloads[request.path.strip(b"/")]

    cert, key, _ = tls.ensure_certificate(workdir / "certs")
    ctx = tls.context_factory(cert, key)
    ep = endpoints.SSL4ServerEndpoint(reactor, 0, ctx, interface="127.0.0.1")
    site = server.Site(Bare())
    d = ep.listen(site)
    d.addCallback(lambda port: print(json.dumps({"port": port.getHost().port}), flush=True))
    reactor.run()


# --------------------------------------------------------------------------- client

ENUM_BODY = imethod_body("EnumerateInstances", classname_param("PRB_VirtualSystem"))
GET_BODY = imethod_body("GetInstance", (
    '<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="PRB_VirtualSystem">'
    '<KEYBINDING NAME="CreationClassName"><KEYVALUE VALUETYPE="string">PRB_VirtualSystem'
    '</KEYVALUE></KEYBINDING><KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">guest0042'
    '</KEYVALUE></KEYBINDING></INSTANCENAME></IPARAMVALUE>'))


def _time_enum(port, path, auth, rounds=ENUM_ROUNDS) -> tuple[float, bytes]:
    conn = https_connection(port)
    data = cim_request(conn, path, "EnumerateInstances", ENUM_BODY, auth)   # warm up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        data = cim_request(conn, path, "EnumerateInstances", ENUM_BODY, auth)
        times.append(time.perf_counter() - t0)
    conn.close()
    return statistics.median(times), data


def _rate_get(port, path, auth, seconds=GET_SECONDS) -> tuple[float, bytes]:
    conn = https_connection(port)
    data = b""
    for _ in range(20):
        data = cim_request(conn, path, "GetInstance", GET_BODY, auth)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        data = cim_request(conn, path, "GetInstance", GET_BODY, auth)
        n += 1
    rate = n / (time.perf_counter() - t0)
    conn.close()
    return rate, data


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def _pull_all(port: int, auth: str, pid: int) -> tuple[int, int, int]:
    """Open + Pull 100 at a time; returns (instances, rss before KB, max rss seen KB)."""
    conn = https_connection(port)
    before = _rss_kb(pid)
    peak = before
    params = classname_param("PRB_ManySystem") + \
        f'<IPARAMVALUE NAME="MaxObjectCount"><VALUE>{PULL_BATCH}</VALUE></IPARAMVALUE>'
    data = cim_request(conn, "/cimom", "OpenEnumerateInstances",
                    imethod_body("OpenEnumerateInstances", params), auth)
    total = data.count(b"<VALUE.INSTANCEWITHPATH>")
    while True:
        peak = max(peak, _rss_kb(pid))
        m = re.search(rb'NAME="EnumerationContext"[^>]*>\s*<VALUE>([^<]*)</VALUE>', data)
        eos = re.search(rb'NAME="EndOfSequence"[^>]*>\s*<VALUE>TRUE</VALUE>', data)
        if eos or not m:
            break
        ctx = m.group(1).decode()
        params = (f'<IPARAMVALUE NAME="EnumerationContext"><VALUE>{ctx}</VALUE></IPARAMVALUE>'
                  f'<IPARAMVALUE NAME="MaxObjectCount"><VALUE>{PULL_BATCH}</VALUE>'
                  f'</IPARAMVALUE>')
        data = cim_request(conn, "/cimom", "PullInstancesWithPath",
                        imethod_body("PullInstancesWithPath", params), auth)
        total += data.count(b"<VALUE.INSTANCEWITHPATH>")
    peak = max(peak, _rss_kb(pid))
    conn.close()
    return total, before, peak


# --------------------------------------------------------------------------- main

def _pipeline_breakdown(work: Path) -> tuple[float, float]:
    """In-process, no HTTP: parse + dispatch + serialize of the two requests (median ms),
    to show how much of `ours` the transport adds."""
    import socket

    from agent.clock import SystemClock
    from provider import cimxml
    from provider.messages import Principal
    from provider.operations import Dispatcher
    from provider.providers.registry import ProviderRegistry
    from provider.schema import Schema

    schema = Schema.load(namespaces={"root/cimv2": ["qualifiers.mof", str(work / "bench.mof")]})

    registry = ProviderRegistry(schema)
    registry.register(synthetic_provider(schema))
    dispatcher = Dispatcher(schema, registry, clock=SystemClock(), host_name=socket.getfqdn())
    principal = Principal("admin", "admin", source="127.0.0.1")

    def once(body):
        t0 = time.perf_counter()
        req = cimxml.parse_request(body)
        cimxml.serialize_response(req, dispatcher.handle(req, principal))
        return time.perf_counter() - t0

    enum = statistics.median(once(ENUM_BODY) for _ in range(ENUM_ROUNDS))
    get = statistics.median(once(GET_BODY) for _ in range(300))
    return enum, get


def main() -> None:
    from bench.bench_serialize import floor

    with tempfile.TemporaryDirectory(prefix="bench_https.") as tmp:
        work = Path(tmp)
        (work / "bench.mof").write_text(BENCH_MOF)
        (work / "payloads").mkdir()
        values = [guest_values(i) for i in range(ENUM_COUNT)]
        (work / "payloads" / "enum.xml").write_bytes(floor(values))

        ours, info = spawn_server("bench.bench_https", "--serve-ours", str(work))
        bare = None
        try:
            auth = basic_auth(info["password"])
            # 3. memory first, on a fresh server (one small request to warm it up)
            _rate_get(info["port"], "/cimom", auth, seconds=0.2)
            pulled, rss_before, rss_peak = _pull_all(info["port"], auth, ours.pid)
            if pulled != PULL_COUNT:
                raise RuntimeError(f"pulled {pulled} instances, not {PULL_COUNT}")
            _, get_reply = _rate_get(info["port"], "/cimom", auth, seconds=0.2)
            if b">guest0042<" not in get_reply:
                raise RuntimeError("GetInstance returned the wrong instance")
            (work / "payloads" / "get.xml").write_bytes(get_reply)
            bare, binfo = spawn_server("bench.bench_https", "--serve-bare", str(work))

            # 1. and 2., alternating ours and bare so both see the same machine load
            t_ours, t_send, builds = [], [], []
            get_ours, get_bare = [], []
            for _ in range(3):
                t, enum_reply = _time_enum(info["port"], "/cimom", auth, rounds=3)
                t_ours.append(t)
                t, _ = _time_enum(binfo["port"], "/enum", None, rounds=3)
                t_send.append(t)
                t0 = time.perf_counter()
                floor_bytes = floor(values)
                builds.append(time.perf_counter() - t0)
                get_ours.append(_rate_get(info["port"], "/cimom", auth, seconds=1.0)[0])
                get_bare.append(_rate_get(binfo["port"], "/get", None, seconds=1.0)[0])
            if enum_reply.count(b"<VALUE.NAMEDINSTANCE>") != ENUM_COUNT:
                raise RuntimeError("EnumerateInstances returned the wrong number of instances")
        finally:
            stop_server(ours)
            if bare is not None:
                stop_server(bare)
        pipe_enum, pipe_get = _pipeline_breakdown(work)

    t_ours, t_send, t_build = min(t_ours), min(t_send), min(builds)
    get_ours, get_bare = max(get_ours), max(get_bare)
    t_floor = t_build + t_send
    print(f"EnumerateInstances, {ENUM_COUNT} instances x 20 properties over HTTPS "
          "(keep-alive; best of 3 alternating rounds, each a median of 3)")
    print(f"  ours:  {t_ours * 1000:8.1f} ms  {len(enum_reply):8d} bytes "
          f"(of which parse+dispatch+serialize in-process {pipe_enum * 1000:.1f} ms)")
    print(f"  floor: {t_floor * 1000:8.1f} ms  {len(floor_bytes):8d} bytes "
          f"(lxml build {t_build * 1000:.1f} ms + bare Twisted TLS {t_send * 1000:.1f} ms)")
    print(f"  ours / floor = {t_ours / t_floor:5.2f}x   (target: <= 1.5x)")
    print(f"GetInstance from one keep-alive client ({len(get_reply)} byte reply; "
          "best of 3 alternating 1 s windows)")
    print(f"  ours: {get_ours:8.0f} req/s   bare Twisted TLS: {get_bare:8.0f} req/s   "
          f"(parse+dispatch+serialize in-process {pipe_get * 1e6:.0f} us/request)")
    print(f"  ours / bare = {get_ours / get_bare:5.2f}x   (target: >= 0.5x)")
    growth_mb = (rss_peak - rss_before) / 1024
    print(f"Pull {PULL_COUNT} instances {PULL_BATCH} at a time (fresh server)")
    print(f"  server RSS before {rss_before / 1024:.1f} MB, peak {rss_peak / 1024:.1f} MB, "
          f"growth {growth_mb:.1f} MB   (target: <= 20 MB)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-ours":
        _serve_ours(Path(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--serve-bare":
        _serve_bare(Path(sys.argv[2]))
    else:
        main()
