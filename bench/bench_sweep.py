"""An inventory sweep over HTTPS, as a management console makes it, against enumerating the
same number of plain instances in the same server, measured side by side in one run.

The host: 256 guests with 8 devices each (5 file-backed disks, a DVD, 2 vNICs on 8
vswitches), made once per run through the agent API in a temporary state folder. The sweep:
EnumerateInstances of every class a console reads -- host, guests, their devices (I/O
devices, vCPUs, memory), their settings (VSSDs and the four RASD classes), vswitches and
their ports, the pools -- one request per class on one keep-alive connection.

The baseline: a synthetic provider in the same server (same schema, dispatcher, serializer,
TLS) with one class per sweep class, the same number of instances as that class returned,
with the same number of properties and padded to the same bytes per instance on average,
enumerated the same way. Its instances are built on
each request through `InstanceFactory` from plain Python values (strings, ints, lists), as
every provider of this server builds its own -- none serves pre-built objects. The ratio
sweep / baseline is then what the VM model costs beyond producing the same instances the
house way: reading the agent, deriving the views, choosing the values. Target: at most 1.5x.

Printed for information, not as the target: the ratio against the same instances made once
and served pre-built (`prebuilt`: what the server alone costs, no provider work at all), and
against the same instances built per request with pywbem's validating constructors
(`pywbem`: what a naive provider pays).

The server runs in a subprocess with the agent Store instrumented: every snapshot (a
consistent read of the store), generation check and file read is counted, and two
instrumented sweeps assert that no request makes per-guest round trips to the store: one as
a console's repeated sweep sees it (views shared between requests while nothing changed:
one generation check each), one with nothing shared (each request computes its own views,
as the first request after a change does).

    python -m bench sweep
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench._common import (GUEST_PROPERTIES_MOF, basic_auth, cim_request, classname_param,
                           https_connection, imethod_body, listen_cim, spawn_server,
                           stop_server)

GUESTS = 256
DEVICES = 8
VSWITCHES = 8
ROUNDS = 5
FULL = 20                          # properties of the guest shape, the most a plain instance has
TIMES: dict[str, list[float]] = {}  # seconds per request, by class
PROPS: dict[str, float] = {}        # properties per instance returned, by class
# a request may look at the host, the guests, the vswitches, the device database and the
# jobs once each (a generation check and a snapshot apiece): a constant, whatever the number
# of guests; one round trip per guest would be 256 more
MAX_TRIPS_PER_REQUEST = 10

SWEEP = ("HPVM_Host", "HPVM_Guest", "HPVM_IODevice", "HPVM_Processor", "HPVM_Memory",
         "HPVM_VirtualSystemSettingData", "HPVM_ProcessorAllocationSettingData",
         "HPVM_MemoryAllocationSettingData", "HPVM_StorageAllocationSettingData",
         "HPVM_EthernetPortAllocationSettingData", "HPVM_Switch", "HPVM_SwitchPort",
         "HPVM_ProcessorPool", "HPVM_MemoryPool", "HPVM_StoragePool", "HPVM_NetworkPool")
PLAIN = tuple(f"PRB_Plain{i:02d}" for i in range(len(SWEEP)))      # made once, served
BUILT = tuple(f"PRB_Built{i:02d}" for i in range(len(SWEEP)))      # pywbem, on each request
FACTORY = tuple(f"PRB_Maker{i:02d}" for i in range(len(SWEEP)))     # InstanceFactory, each request

_PLAIN_MOF = """
[Description ("Synthetic plain class for bench_sweep.")]
class {name} {{
    [Key] string CreationClassName;
    [Key] string Name;
""" + GUEST_PROPERTIES_MOF.replace("{", "{{").replace("}", "}}")


# --------------------------------------------------------------------------- the host

def big_host():
    from agent.hostfacts import HostFacts, HostNic, Timings, default_storage
    disks, lvs, fss = default_storage()
    return HostFacts(cpus=64, cpu_mhz=1600, memory_mb=4 * 1024 * 1024, swap_mb=4 * 1024 * 1024,
                     host_uuid="0badc0de-0000-4000-8000-000000000256", hostname="benchhost",
                     nics=tuple(HostNic(f"lan{i}", f"00:30:6e:39:f7:{i:02x}") for i in range(4)),
                     disks=disks, logical_volumes=lvs, filesystems=fss,
                     timings=Timings(efi_seconds=0.0, os_boot_seconds=0.0, stop_seconds=0.0))


def populate(state: Path) -> float:
    """256 guests x 8 devices through the agent API (force: no resource checks)."""
    from agent.api import Agent
    from agent.api.guests import GuestChanges
    from agent.hostfacts import write_host
    from agent.resources import parse_resource

    host = big_host()
    write_host(state, host)
    agent = Agent(state, host=host)
    t0 = time.perf_counter()
    for s in range(VSWITCHES):
        # one vswitch Up per host LAN card: four on lan0..lan3, four local ones
        agent.create_vswitch(f"vsw{s}", s if s < 4 else None)
        if agent.vswitch_status(f"vsw{s}") != "Up":
            agent.boot_vswitch(f"vsw{s}")
    for i in range(GUESTS):
        specs = [f"disk:scsi::file:/vmstore/g{i:03d}/disk{j}.img" for j in range(5)]
        specs.append("dvd:scsi::null:/usr/share")
        specs += [f"network:lan::vswitch:vsw{i % VSWITCHES}",
                  f"network:lan::vswitch:vsw{(i + 4) % VSWITCHES}"]
        ch = GuestChanges(vcpus=1 + i % 4, memory_mb=1024 + 512 * (i % 8),
                          add=[parse_resource(s, purpose="add") for s in specs])
        ch.label = f"bench guest {i}"
        ch.start_attr = "manual"
        agent.create_guest(f"bg{i:03d}", ch, force=True)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- the server

def _serve(work: Path) -> None:
    """Subprocess: the real schema and VM providers plus the synthetic plain classes, on
    an instrumented Store; `counts` on stdin answers the store counters on stdout."""
    import socket

    from twisted.internet import reactor

    import mof as mof_package
    from agent import store as store_mod
    from agent.api import Agent
    from agent.clock import SystemClock
    from bench.bench_serialize import guest_instance, guest_values
    from provider.operations import Dispatcher
    from provider.providers import ProviderEnvironment, ProviderRegistry, install_all
    from provider.providers.base import InstanceFactory, InstanceProvider
    from provider.schema import Schema
    from provider.server import CIMServer, product_version
    from provider.settings import Settings

    counts = {"snapshots": 0, "generation": 0, "file_reads": 0}
    lock = threading.Lock()

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            with lock:
                counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    store_mod.Store.snapshot = counted("snapshots", store_mod.Store.snapshot)
    store_mod.Store.generation = counted("generation", store_mod.Store.generation)
    store_mod.Snapshot._read_canon = counted("file_reads", store_mod._View._read_canon)

    namespaces = dict(mof_package.NAMESPACES)
    namespaces["root/cimv2"] = list(namespaces["root/cimv2"]) + [str(work / "plain.mof")]
    schema = Schema.load(namespaces=namespaces)
    plan_path = work / "plan.json"

    class Plain(InstanceProvider):
        """Instances of the bench_serialize guest shape, as many and as big as the plan says."""

        namespaces = ("root/cimv2",)
        classnames = PLAIN + BUILT + FACTORY

        def __init__(self):
            self._plan, self._mtime = {}, None
            self._made: dict = {}
            self._factories = {c: InstanceFactory.for_class(schema, "root/cimv2", c)
                               for c in FACTORY}

        def _instances(self, classname, count, keep, pad):
            # made once per plan: the baseline costs no provider work, only the server's
            key = (count, keep, pad)
            have = self._made.get(classname)
            if have is None or have[0] != key:
                made = list(self._build(classname, count, keep, pad))
                self._made[classname] = have = (key, made)
            return have[1]

        def plan(self):
            mtime = plan_path.stat().st_mtime_ns
            if mtime != self._mtime:
                self._plan, self._mtime = json.loads(plan_path.read_text()), mtime
            return self._plan

        def enumerate(self, ctx, classname):
            if classname in PLAIN:
                return iter(self._instances(classname, *self.plan()[classname]))
            if classname in FACTORY:
                return self._make(ctx, classname,
                                  *self.plan()[PLAIN[FACTORY.index(classname)]])
            return self._build(classname, *self.plan()[PLAIN[BUILT.index(classname)]])

        def _make(self, ctx, classname, count, keep, pad):
            # the house way: plain values, typed by the class's factory, on each request
            f = self._factories[classname]
            for i in range(count):
                _, props = guest_values(i)
                values = {name: value for name, _, value in props[:keep]}
                values["CreationClassName"] = classname
                values["Description"] = values["Description"] + "x" * pad
                yield f.make(values, ctx)

        @staticmethod
        def _build(classname, count, keep, pad):
            for i in range(count):
                inst = guest_instance(i)
                for name in list(inst.properties)[keep:]:
                    del inst.properties[name]
                inst.classname = inst.path.classname = classname
                inst["CreationClassName"] = classname
                inst.path.keybindings["CreationClassName"] = classname
                inst["Description"] = inst["Description"] + "x" * pad
                yield inst

    clock = SystemClock()
    state = work / "state"
    agent = Agent(state)
    registry = ProviderRegistry(schema)
    env = ProviderEnvironment(schema=schema, host_name=socket.getfqdn(), clock=clock,
                              state_dir=state, agent=agent, version=product_version(),
                              options={})
    install_all(registry, env)
    registry.register(Plain())
    dispatcher = Dispatcher(schema, registry, clock=clock, host_name=env.host_name)
    settings = Settings(bind="127.0.0.1", port=0, state_dir=state, certs_dir=work / "certs",
                        workers=2)
    listen_cim(CIMServer, settings, dispatcher, clock, state, agent=agent)

    def control():
        for line in sys.stdin:
            if line.strip() == "counts":
                with lock:
                    print(json.dumps(counts), flush=True)
            elif line.strip() == "cold":
                # forget the views shared between requests: the next request computes
                # its views from the agent, as the first one after a change does
                views = env.options["hpvm_model"].views
                with views.lock:
                    views.epoch = None
                print("{}", flush=True)
        reactor.callFromThread(reactor.stop)

    threading.Thread(target=control, daemon=True).start()
    reactor.run()


class Server:
    def __init__(self, work: Path):
        self.proc, info = spawn_server("bench.bench_sweep", "serve", str(work), control=True)
        self.port = info["port"]
        self.auth = basic_auth(info["password"])

    def counts(self) -> dict:
        return self._ask("counts")

    def cold(self) -> None:
        self._ask("cold")

    def _ask(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        stop_server(self.proc)


# --------------------------------------------------------------------------- the client

def _enum_body(cls: str) -> bytes:
    return imethod_body("EnumerateInstances", classname_param(cls))


def sweep(conn, server: Server, classes, *, per_request=None,
          cold: bool = False) -> tuple[float, dict]:
    """EnumerateInstances of each class on one connection: (seconds, {class: (n, bytes)}).
    `cold`: each request computes its views (none shared from the request before)."""
    seen, total = {}, 0.0
    for cls in classes:
        body = _enum_body(cls)
        if cold:
            server.cold()
        before = server.counts() if per_request is not None else None
        t0 = time.perf_counter()
        data = cim_request(conn, "/cimom", "EnumerateInstances", body, server.auth)
        took = time.perf_counter() - t0
        total += took
        if b"<ERROR" in data:
            raise RuntimeError(f"EnumerateInstances {cls}: {data[:400]!r}")
        seen[cls] = (data.count(b"<VALUE.NAMEDINSTANCE>"), len(data))
        PROPS[cls] = data.count(b"<PROPERTY") / max(1, seen[cls][0])
        TIMES.setdefault(cls, []).append(took)
        if per_request is not None:
            after = server.counts()
            per_request[cls] = {k: after[k] - before[k] for k in after}
    return total, seen


def calibrate(conn, server: Server, work: Path, real: dict) -> dict:
    """The baseline plan: per sweep class as many plain instances, each with as many
    properties as the real ones carry on average (at least 5, at most the 20 of the guest
    shape) and as many bytes (padded in Description). Matching bytes alone would give the
    baseline fewer, longer properties than the real classes and so less work per byte."""
    keeps = {p: min(FULL, max(5, round(PROPS[c]))) for c, p in zip(SWEEP, PLAIN)}
    plan = {p: [max(real[c][0], 1), keeps[p], 0] for c, p in zip(SWEEP, PLAIN)}
    (work / "plan.json").write_text(json.dumps(plan))
    _, plain = sweep(conn, server, PLAIN)
    sizes = {p: plain[p][1] / plan[p][0] for p in PLAIN}
    plan = {}
    for c, p in zip(SWEEP, PLAIN):
        n, size = real[c]
        want = size / n if n else 0
        plan[p] = [n, keeps[p], max(0, round(want - sizes[p]))]
    (work / "plan.json").write_text(json.dumps(plan))
    return plan


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_sweep.") as tmp:
        work = Path(tmp)
        (work / "plain.mof").write_text("".join(_PLAIN_MOF.format(name=n)
                                                for n in PLAIN + BUILT + FACTORY))
        seconds = populate(work / "state")
        print(f"populated {GUESTS} guests x {DEVICES} devices, {VSWITCHES} vswitches "
              f"through the agent API in {seconds:.1f} s")
        server = Server(work)
        try:
            conn = https_connection(server.port)
            _, real = sweep(conn, server, SWEEP)                    # warm up, and the counts
            guests = real["HPVM_Guest"][0]
            assert guests == GUESTS, f"{guests} guests enumerated, expected {GUESTS}"
            assert real["HPVM_IODevice"][0] >= GUESTS * DEVICES, real["HPVM_IODevice"]
            plan = calibrate(conn, server, work, real)
            sweep(conn, server, PLAIN)                                # warm up
            sweep(conn, server, FACTORY)
            t_real, t_plain, t_built, t_fact = [], [], [], []
            for _ in range(ROUNDS):
                t, real = sweep(conn, server, SWEEP)
                t_real.append(t)
                t, fact = sweep(conn, server, FACTORY)
                t_fact.append(t)
                t, plain = sweep(conn, server, PLAIN)
                t_plain.append(t)
                t, built = sweep(conn, server, BUILT)
                t_built.append(t)
            per_request: dict = {}
            before = server.counts()
            sweep(conn, server, SWEEP, per_request=per_request)
            after = server.counts()
            cold_requests: dict = {}
            sweep(conn, server, SWEEP, per_request=cold_requests, cold=True)
            conn.close()
        finally:
            server.stop()

    n_real = sum(n for n, _ in real.values())
    n_plain = sum(n for n, _ in plain.values())
    n_fact = sum(n for n, _ in fact.values())
    b_real = sum(b for _, b in real.values())
    b_plain = sum(b for _, b in plain.values())
    b_fact = sum(b for _, b in fact.values())
    med_real, med_plain = statistics.median(t_real), statistics.median(t_plain)
    med_fact = statistics.median(t_fact)
    print(f"sweep: {len(SWEEP)} EnumerateInstances on one keep-alive HTTPS connection")
    for cls in SWEEP:
        n, b = real[cls]
        pr = per_request[cls]
        ms = statistics.median(TIMES[cls][-ROUNDS - 1:-1]) * 1000   # not the counted one
        ms_fact = statistics.median(TIMES[FACTORY[SWEEP.index(cls)]][-ROUNDS:]) * 1000
        keep = plan[PLAIN[SWEEP.index(cls)]][1]
        print(f"  {cls:40s} {n:5d} inst {b / 1024:6.0f} KiB {ms:6.0f} ms "
              f"{PROPS[cls]:4.1f} props (baseline {ms_fact:5.0f} ms, {keep} props)  store: "
              f"{pr['snapshots']} snapshots, {pr['generation']} generation checks, "
              f"{pr['file_reads']} file reads")
    print(f"sweep    {n_real:6d} instances {b_real / 2**20:6.1f} MiB  median "
          f"{med_real * 1000:7.0f} ms  ({n_real / med_real:,.0f} instances/s)")
    print(f"baseline {n_fact:6d} instances {b_fact / 2**20:6.1f} MiB  median "
          f"{med_fact * 1000:7.0f} ms  ({n_fact / med_fact:,.0f} instances/s)  "
          "plain instances, same counts and sizes, built per request by InstanceFactory")
    print(f"prebuilt {n_plain:6d} instances {b_plain / 2**20:6.1f} MiB  median "
          f"{med_plain * 1000:7.0f} ms  ({n_plain / med_plain:,.0f} instances/s)  "
          "the same, made once and served (no provider work)")
    med_built = statistics.median(t_built)
    n_built = sum(n for n, _ in built.values())
    print(f"pywbem   {n_built:6d} instances {sum(b for _, b in built.values()) / 2**20:6.1f} MiB"
          f"  median {med_built * 1000:7.0f} ms  ({n_built / med_built:,.0f} instances/s)  "
          f"the same, built per request with pywbem's validating constructors")
    ratio = med_real / med_fact
    print(f"ratio sweep/baseline: {ratio:.2f}x (target <= 1.5x) "
          f"{'OK' if ratio <= 1.5 else 'OVER TARGET'}; for information: "
          f"sweep/prebuilt {med_real / med_plain:.2f}x, sweep/pywbem {med_real / med_built:.2f}x")
    trips = [pr["snapshots"] + pr["generation"] for pr in per_request.values()]
    total = {k: after[k] - before[k] for k in after}
    print(f"store during one sweep ({len(SWEEP)} requests, {GUESTS} guests): "
          f"{total['snapshots']} snapshots ({total['snapshots'] / len(SWEEP):.2f}/request, "
          f"max {max(pr['snapshots'] for pr in per_request.values())}), "
          f"{total['generation']} generation checks "
          f"({total['generation'] / len(SWEEP):.2f}/request), {total['file_reads']} file reads "
          f"({total['file_reads'] / len(SWEEP):.2f}/request)")
    assert n_plain == n_real == n_fact, (n_plain, n_real, n_fact)
    assert abs(b_fact - b_plain) <= b_plain // 1000, (b_fact, b_plain)
    worst = max(per_request, key=lambda c: trips[SWEEP.index(c)])
    print(f"store round trips (snapshots + generation checks) per request: max {max(trips)} "
          f"({worst}), limit {MAX_TRIPS_PER_REQUEST}")
    assert max(trips) <= MAX_TRIPS_PER_REQUEST, \
        f"per-guest round trips to the store: {worst}: {per_request[worst]}"
    # the same sweep with nothing shared between requests (as right after a change)
    cold = {c: pr["snapshots"] + pr["generation"] for c, pr in cold_requests.items()}
    worst = max(cold, key=cold.get)
    print(f"store round trips per request with no views shared (each request computes its "
          f"own): max {cold[worst]} ({worst}: {cold_requests[worst]}), "
          f"total {sum(cold.values())} for {len(SWEEP)} requests, "
          f"{sum(pr['file_reads'] for pr in cold_requests.values())} file reads")
    assert cold[worst] <= MAX_TRIPS_PER_REQUEST, \
        f"per-guest round trips to the store: {worst}: {cold_requests[worst]}"
    assert total["file_reads"] < GUESTS, \
        f"the sweep read {total['file_reads']} files for {GUESTS} unchanged guests"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        _serve(Path(sys.argv[2]))
    else:
        main()
