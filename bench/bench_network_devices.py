"""Vswitch and device-database benchmark: does an hpvmnet / hpvmdevmgmt operation cost the same
on a host whose guests fill the device database as on a nearly empty one?

Each guest has a file backing store and a vNIC (so the database holds two entries per guest,
and its local vswitch a port per guest). Prints, per operation, the median seconds with the big
host vs the small one and their ratio, measured side by side in one run (never a timed
assertion).

    .venv/bin/python -m bench.bench_network_devices [--small 10] [--big 1000] [--ops 20]
"""
from __future__ import annotations

import sys
import argparse
import os
import shutil
import statistics
import time

from agent.api import Agent
from agent.api.guests import GuestChanges
from agent.hostfacts import HostNic
from agent.resources import NetworkResource, StorageResource
from bench._common import bench_host, command_median, host_state, within

NICS = (HostNic("lan0", "02:00:00:00:00:01"), HostNic("lan1", "02:00:00:00:00:02"))


def populated(n: int) -> tuple[str, Agent]:
    root, agent = host_state(f"vmp-netdev-{n}-", bench_host(nics=NICS))
    for k in range(n // 100 + 1):            # a vswitch has 100 ports
        agent.create_vswitch(f"bench{k}")
        agent.boot_vswitch(f"bench{k}")
    files = os.path.join(root, "files")
    os.mkdir(files)
    for i in range(n):
        path = os.path.join(files, f"g{i:05d}.img")
        with open(path, "wb") as f:
            f.truncate(1024 * 1024)
        agent.create_guest(f"g{i:05d}", GuestChanges(
            memory_mb=64, add=[StorageResource("disk", storage="file", location=path),
                               NetworkResource(vswitch=f"bench{i // 100}")]))
    return root, agent


def per_op(agent: Agent, root: str, ops: int, tag: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}

    def timed(label, fn, *args, **kw):
        t0 = time.perf_counter()
        fn(*args, **kw)
        times.setdefault(label, []).append(time.perf_counter() - t0)

    for i in range(ops):
        name = f"{tag}{i:03d}"
        timed("vswitch create", agent.create_vswitch, name, 1)
        timed("vswitch boot", agent.boot_vswitch, name)
        timed("vswitch vlan", agent.set_vswitch_port_vlan, name, port=5, vlan=100)
        timed("vswitch halt", agent.halt_vswitch, name)
        timed("vswitch delete", agent.delete_vswitch, name)
        timed("devmgmt -m", agent.modify_device_entry, "gdev", f"/iso/{name}/", "SHARE", "YES")
        timed("devmgmt -a rdev", agent.add_device_entry, "rdev", f"/dev/rdsk/c9{i}t0d0")
        timed("devmgmt -d rdev", agent.delete_device_entry, "rdev", f"/dev/rdsk/c9{i}t0d0")
        timed("devmgmt -S", agent.create_backing_file, "1M", os.path.join(root, f"{name}.img"))
    return times


def listing_process(state_dir: str, runs: int) -> float | None:
    """Median wall time of `hpvmnet -S bench0` (a listing: it reads every guest, like
    hpvmstatus) as a whole process, or None if the command is not installed."""
    return command_median("hpvmnet", ["-S", "bench0"], state_dir, runs, check=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=10)
    p.add_argument("--big", type=int, default=1000)
    p.add_argument("--ops", type=int, default=20)
    args = p.parse_args([] if argv is None else argv)
    roots = []
    try:
        small_root, small = populated(args.small)
        roots.append(small_root)
        big_root, big = populated(args.big)
        roots.append(big_root)
        samples_s: dict[str, list[float]] = {}
        samples_b: dict[str, list[float]] = {}
        half = args.ops // 2
        for tag, n in (("a", half), ("b", args.ops - half)):     # interleave against noise
            for k, v in per_op(small, small_root, n, f"s{tag}").items():
                samples_s.setdefault(k, []).extend(v)
            for k, v in per_op(big, big_root, n, f"b{tag}").items():
                samples_b.setdefault(k, []).extend(v)
        print(f"seconds per change ({args.big} vs {args.small} guests with a disk and a vNIC):")
        worst = 0.0
        for op in samples_s:
            s = statistics.median(samples_s[op])
            b = statistics.median(samples_b[op])
            ratio = b / s
            worst = max(worst, ratio)
            print(f"  {op:16s} {s * 1000:8.2f} ms  {b * 1000:8.2f} ms  ratio {ratio:5.2f}")
        print(f"worst ratio of a change: {worst:.2f}  {within(worst, 2)}")
        ls = listing_process(os.path.join(small_root, "state"), 5)
        lb = listing_process(os.path.join(big_root, "state"), 5)
        if ls is None:
            print("hpvmnet: not installed; listing process ratio not measured")
        else:
            print(f"hpvmnet -S listing process: {ls * 1000:.0f} ms, {lb * 1000:.0f} ms, "
                  f"ratio {lb / ls:.2f}  {within(lb / ls, 3)}")
    finally:
        for r in roots:
            shutil.rmtree(r, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
