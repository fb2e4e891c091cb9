"""Dynamic memory benchmark: what does the agent's periodic work cost while 256 running guests
move memory at once, and does a new target start moving within one model step?

The periodic work is what a server runs once per model step: `Agent.settle()` (persist
finished stops, DM drivers that loaded) plus one read of every guest's
derived memory (what a monitoring client or the CIM providers cost when they poll). Memory
movement itself needs no work: it is derived from stored facts and the clock.

Printed, measured side by side in one run (never a timed assertion):

* CPU time per model step with 256 guests moving memory, as a share of one core
  (target: at most 5 %), and as a ratio against the same work with 256 idle guests;
* how far each guest's memory moved one model step after a new target was set
  (target: every guest moved).

    .venv/bin/python -m bench.bench_dynmem [--guests 256] [--step 1.0] [--steps 20]
"""
from __future__ import annotations

import sys
import argparse
import shutil
import time

from agent.api import Agent
from agent.api.guests import GuestChanges
from agent.clock import ManualClock
from bench._common import bench_host, host_state


def running_host(n: int) -> tuple[str, Agent, ManualClock]:
    clock = ManualClock()
    host = bench_host(host_uuid="99999999-2222-3333-4444-555555555556",
                      memory_mb_per_second=256.0)
    root, agent = host_state(f"vmp-bench-dm-{n}-", host, clock=clock)
    for i in range(n):
        name = f"g{i:04d}"
        agent.create_guest(name, GuestChanges(memory_mb=6144, dynmem={
            "ram_dyn_type": "driver", "ram_dyn_min": 1222, "ram_dyn_max": 6144}))
        g = agent.find_guest(name)
        agent.set_guest_model(g, os="HPUX", kit="A.03.00", workload_mb=1024)
        agent.start_guest(g)
    clock.advance(1)
    return root, agent, clock


def periodic_work(agent: Agent) -> None:
    agent.settle()
    for g in agent.guests():
        agent.runtime(g).memory


def cpu_per_step(agent: Agent, clock: ManualClock, step: float, steps: int) -> float:
    """Mean CPU seconds of one model step's periodic work."""
    used = 0.0
    for _ in range(steps):
        clock.advance(step)
        t0 = time.process_time()
        periodic_work(agent)
        used += time.process_time() - t0
    return used / steps


def cpu_until_settled(agent: Agent, clock: ManualClock, step: float, limit: int) -> list[float]:
    """CPU seconds of each step's periodic work, from a new target until every move ended."""
    out = []
    for _ in range(limit):
        clock.advance(step)
        t0 = time.process_time()
        periodic_work(agent)
        out.append(time.process_time() - t0)
        if not any(agent.runtime(g).memory.moving for g in agent.guests()):
            break
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="bench_dynmem")
    ap.add_argument("--guests", type=int, default=256)
    ap.add_argument("--step", type=float, default=1.0, help="model step, seconds")
    ap.add_argument("--steps", type=int, default=20, help="idle baseline steps")
    args = ap.parse_args([] if argv is None else argv)
    root, agent, clock = running_host(args.guests)
    try:
        guests = agent.guests()
        periodic_work(agent)                      # warm the caches as a server would be
        idle = cpu_per_step(agent, clock, args.step, args.steps)

        before = {g.uuid: agent.runtime(g).memory.current_mb for g in guests}
        for g in guests:                          # every guest gets a new target at once
            agent.set_memory_target(g, "2048M")
        clock.advance(args.step)
        moved = [before[g.uuid] - agent.runtime(g).memory.current_mb for g in guests]
        steps = cpu_until_settled(agent, clock, args.step, limit=10_000)
        moving = sum(steps) / len(steps)
        worst = max(steps)

        print(f"guests running: {len(guests)}; model step {args.step:g} s; 6135 -> 2103 MB "
              f"each at 256 MB/s: {len(steps) + 1} steps until every move ended")
        print(f"periodic work, idle guests    : {idle * 1e3:8.2f} ms CPU per step "
              f"(mean of {args.steps})")
        print(f"periodic work, moving guests  : {moving * 1e3:8.2f} ms CPU per step "
              f"= {100 * moving / args.step:.2f} % of one core (target <= 5 %)")
        print(f"worst step                    : {worst * 1e3:8.2f} ms CPU "
              f"= {100 * worst / args.step:.2f} % of one core")
        print(f"ratio moving / idle           : {moving / idle if idle else float('inf'):8.2f}x")
        print(f"one step after a new target   : {sum(1 for m in moved if m > 0)}/{len(moved)} "
              f"guests moved, least {min(moved)} MB, most {max(moved)} MB "
              f"(target: all moved)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
