"""CPU accounting of the embedded host model (spec 01 §14, spec 05 §6.5.4).

Each running guest's work asks each of its vCPUs for some share of a physical CPU (its
`cpu_percent`, set with `hpvmmodel set -U`; by default it runs at its entitlement). While the
host can serve everybody (total demand <= physical CPUs x MHz) a guest gets what it asks,
above its entitlement if need be ("uncapped"). When the host is contended every guest is
held to its entitlement, which the admission rule (DECISIONS §1.4) guarantees to fit.

Rates only change when the agent changes something (a start or stop, a new entitlement, a
new demand), so cumulative usage is kept as a checkpoint (`common/cpu_accounting`: when, and
per guest the million cycles used since its boot) written before each change; between
checkpoints the usage is the checkpoint plus the current rate times the elapsed time.
"""
from __future__ import annotations

from dataclasses import dataclass

ACCOUNTING = "common/cpu_accounting"


@dataclass(frozen=True)
class Demand:
    """One running guest, as the scheduler sees it."""

    uuid: str
    vcpus: int
    entitlement_mhz: float     # per vCPU
    demand_mhz: float          # per vCPU, what its work asks


def demand_of(guest, model, cpu_mhz: int) -> Demand:
    ent = guest.entitlement.as_mhz(cpu_mhz)
    pct = getattr(model, "cpu_percent", None)
    want = ent if pct is None else cpu_mhz * float(pct) / 100.0
    return Demand(guest.uuid, guest.vcpus, ent, min(float(cpu_mhz), max(0.0, want)))


def achieved_mhz(demands: list[Demand], cpus: int, cpu_mhz: int) -> dict[str, float]:
    """Per-vCPU MHz each guest gets now: its demand when the host has room for all, else its
    demand held to its entitlement."""
    total = sum(d.vcpus * d.demand_mhz for d in demands)
    contended = total > cpus * cpu_mhz + 1e-9
    return {d.uuid: (min(d.demand_mhz, d.entitlement_mhz) if contended else d.demand_mhz)
            for d in demands}


@dataclass
class Checkpoint:
    """Cumulative usage at `at`: uuid -> (boot count, million cycles since that boot)."""

    at: float = 0.0
    used: dict = None

    @classmethod
    def parse(cls, data: bytes | None) -> "Checkpoint":
        cp = cls(0.0, {})
        for line in (data or b"").decode("utf-8", "replace").splitlines():
            key, _, value = line.partition(" = ")
            try:
                if key == "at":
                    cp.at = float(value)
                elif key and not key.startswith("#"):
                    boots, mcycles = value.split()
                    cp.used[key] = (int(boots), float(mcycles))
            except ValueError:
                continue         # a damaged line counts from zero, never a crash
        return cp

    def to_bytes(self) -> bytes:
        lines = ["# cumulative CPU use per running guest (million cycles since its boot)",
                 f"at = {self.at!r}"]
        lines += [f"{u} = {b} {m!r}" for u, (b, m) in sorted(self.used.items())]
        return ("\n".join(lines) + "\n").encode()


def cumulative_mcycles(cp: Checkpoint, uuid: str, boots: int, started_at: float,
                       rate_mhz_total: float, now: float) -> float:
    """Million cycles a guest used since its boot: the checkpoint (when it is of this boot)
    plus the current rate since then."""
    base, since = 0.0, started_at
    held = cp.used.get(uuid)
    if held is not None and held[0] == boots and cp.at >= started_at:
        base, since = held[1], cp.at
    return base + rate_mhz_total * max(0.0, now - since)
