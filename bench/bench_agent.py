"""Agent benchmark: does the cost of an operation stay flat as the host fills with guests?

Prints ratios measured side by side in one run (never a timed assertion):

* create / modify / start / stop, per operation, with 1000 defined guests vs with 10
  (target: at most 2x);
* `hpvmstatus` as a whole process with 1000 guests vs with 1 (target: at most 3x).

    .venv/bin/python -m bench.bench_agent [--big 1000] [--ops 30]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time

from agent.api import Agent
from agent.api.guests import GuestChanges
from bench._common import bench_host, command_median, host_state, within


def populated(n: int) -> tuple[str, Agent]:
    root, agent = host_state(f"vmp-bench-{n}-", bench_host())
    for i in range(n):
        agent.create_guest(f"base{i:05d}", GuestChanges(memory_mb=64))
    return root, agent


def per_op(agent: Agent, ops: int, tag: str) -> dict[str, float]:
    """Seconds per operation for create, modify, start and stop (medians of `ops` runs)."""
    times: dict[str, list[float]] = {"create": [], "modify": [], "start": [], "stop": []}
    for i in range(ops):
        name = f"{tag}{i:04d}"
        t0 = time.perf_counter()
        agent.create_guest(name, GuestChanges(memory_mb=64))
        t1 = time.perf_counter()
        g = agent.find_guest(name)
        t2 = time.perf_counter()
        agent.modify_guest(g, GuestChanges(label="benchmark"))
        t3 = time.perf_counter()
        agent.start_guest(agent.find_guest(name))
        t4 = time.perf_counter()
        agent.stop_guest(agent.find_guest(name), hard=True)
        t5 = time.perf_counter()
        times["create"].append(t1 - t0)
        times["modify"].append(t3 - t2)
        times["start"].append(t4 - t3)
        times["stop"].append(t5 - t4)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=10)
    p.add_argument("--big", type=int, default=1000)
    p.add_argument("--ops", type=int, default=30)
    p.add_argument("--status-runs", type=int, default=5)
    args = p.parse_args([] if argv is None else argv)
    roots = []
    try:
        one_root, one = populated(1)
        roots.append(one_root)
        small_root, small = populated(args.small)
        roots.append(small_root)
        big_root, big = populated(args.big)
        roots.append(big_root)
        # interleave the two sizes so machine noise hits both alike
        s1 = per_op(small, args.ops // 2, "sa")
        b1 = per_op(big, args.ops // 2, "ba")
        s2 = per_op(small, args.ops - args.ops // 2, "sb")
        b2 = per_op(big, args.ops - args.ops // 2, "bb")
        print(f"agent operations, seconds per operation ({args.big} vs {args.small} guests):")
        worst = 0.0
        for op in ("create", "modify", "start", "stop"):
            s = (s1[op] + s2[op]) / 2
            b = (b1[op] + b2[op]) / 2
            ratio = b / s
            worst = max(worst, ratio)
            print(f"  {op:7s} {s * 1000:8.2f} ms  {b * 1000:8.2f} ms  ratio {ratio:5.2f}"
                  f"  {within(ratio, 2)}")
        st1 = command_median("hpvmstatus", [], os.path.join(one_root, "state"), args.status_runs)
        stb = command_median("hpvmstatus", [], os.path.join(big_root, "state"), args.status_runs)
        if st1 is None:
            print("hpvmstatus: not installed; process ratio not measured")
        else:
            r = stb / st1
            print(f"hpvmstatus process: 1 guest {st1 * 1000:.0f} ms, {args.big} guests "
                  f"{stb * 1000:.0f} ms, ratio {r:.2f}  {within(r, 3)}")
        print(f"worst agent-operation ratio: {worst:.2f}")
    finally:
        for r in roots:
            shutil.rmtree(r, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
